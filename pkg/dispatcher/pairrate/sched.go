package pairrate

import (
	"time"

	"github.com/wanotify/wanotify/pkg/dispatcher/sched"
)

// The gate as a rule of a sender's scheduler (sched.Gate): a record whose
// pair is not free waits aside until it is, while the sender's other
// records go on; a record let go holds its pair's slot until the call
// stage reports the answer (Sent, PairLimited) or the scheduler gives the
// slot back (Release).

var _ sched.Gate = (*Gate)(nil)

// Partitioned is a scheduler item that knows the partition of its record
// (of notifications.requested or a retry topic: the same number). The
// journal then writes the pair's time there; an item without it is placed
// by its recipient, as producers place requested records.
type Partitioned interface {
	Partition() int32
}

// PairOf is the pair of a scheduler item.
func PairOf(it sched.Item) Pair { return Pair{Sender: it.Sender(), Recipient: it.Recipient()} }

// PartitionOf is the partition of it's record, or -1 when unknown.
func PartitionOf(it sched.Item) int32 {
	if p, ok := it.(Partitioned); ok {
		return p.Partition()
	}
	return -1
}

// Check lets it go and takes its pair's slot, or holds it until its pair
// is free. It never blocks.
func (g *Gate) Check(it sched.Item, now time.Time) sched.Verdict {
	until, ok := g.Take(PairOf(it), PartitionOf(it), now)
	if ok {
		return sched.Verdict{Kind: sched.Go}
	}
	return sched.Verdict{Kind: sched.Wait, Until: until}
}

// Release gives back the slot Check took for it.
func (g *Gate) Release(it sched.Item) { g.Give(PairOf(it)) }

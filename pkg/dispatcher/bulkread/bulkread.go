// Package bulkread decides which of a dispatcher's bulk-lane partitions
// are read, so that a campaign of any size costs the dispatcher about the
// same memory.
//
// Two bounds work together. Each bulk partition holds at most its share of
// the lane's bound (WANOTIFY_DISPATCHER_MAX_BULK_BUFFERED): the dispatcher
// cuts a fetch there, sets the partition back to the first record it did
// not take and pauses it (Full) until it is down to half of it. That
// bounds what is kept, not what is fetched: Kafka's fetch limits count
// compressed bytes and a partition answers with at least one whole
// producer batch, so a partition with a backlog returns thousands of
// records however small its share. Were every bulk partition read at once,
// the client would decode one such fetch for each of them before any is
// cut.
//
// So partitions with a backlog (more records behind them than their share)
// are read a few at a time, Rule.Readers of them, hungriest first, and a
// partition that was read most recently waits behind those that were not.
// Partitions near their end are read freely: a fetch of theirs is small,
// and a new bulk notification on them is read at once. A partition whose
// position is unknown (just assigned, set back, resumed) counts as having
// a backlog until a fetch tells, or until Rule.Settle passes without one,
// which means it is at its end.
package bulkread

import (
	"slices"
	"time"
)

// Part is one bulk partition as the dispatcher sees it.
type Part struct {
	// Unfinished counts its records taken from Kafka and not finished.
	Unfinished int
	// Full is set when a fetch was cut at the partition's share: it is
	// not read until it is down to half of the share: each fetch of a
	// backlog brings thousands, so a refill should take more than a few.
	Full bool
	// Lag is how many records the last fetch left behind its end, -1
	// while unknown.
	Lag int64
	// Since is when it was last resumed or last brought records while
	// read; zero while paused.
	Since time.Time
	// Turn is when it was last resumed to read a backlog: the least
	// recent goes first among equally hungry partitions.
	Turn time.Time
}

// Fetched notes a fetch that brought records up to last (inclusive) of a
// partition whose end was hwm.
func (p *Part) Fetched(last, hwm int64, now time.Time) {
	p.Lag = max(0, hwm-last-1)
	p.Since = now
}

// Cut notes a fetch cut at off (the first record not taken) because the
// partition holds its share.
func (p *Part) Cut(off, hwm int64) {
	p.Full = true
	p.Lag = max(0, hwm-off)
	p.Since = time.Time{}
}

// Reset forgets the partition's position (it was set back elsewhere).
func (p *Part) Reset() {
	p.Lag = -1
	p.Since = time.Time{}
}

// Rule is how much is read.
type Rule struct {
	// Share is how many records each partition may hold.
	Share int
	// Readers is how many partitions with a backlog are read at once.
	Readers int
	// Settle is how long a resumed partition whose position is unknown
	// may bring nothing before it is taken to be at its end.
	Settle time.Duration
}

// Plan updates each part (Full, Lag, Since, Turn) and reports which are
// read now; the rest are paused. blocked parts are paused whatever their
// state (the dispatcher paused everything it reads).
func (r Rule) Plan(parts []*Part, blocked bool, now time.Time) []bool {
	read := make([]bool, len(parts))
	var waiting, reading []int
	for i, p := range parts {
		if p.Full && p.Unfinished <= r.Share/2 {
			p.Full = false
		}
		if p.Full || blocked {
			p.Since = time.Time{}
			continue
		}
		if !p.Since.IsZero() && now.Sub(p.Since) >= r.Settle {
			if p.Lag < 0 {
				// Nothing came since it was resumed: it is at its end.
				p.Lag = 0
			} else if p.Lag >= int64(r.Share) {
				// A backlog that brought nothing (its leader is away,
				// say) yields its turn to the others.
				p.Since = time.Time{}
			}
		}
		if p.Lag >= 0 && p.Lag < int64(r.Share) {
			read[i] = true
			if p.Since.IsZero() {
				p.Since = now
			}
			continue
		}
		if !p.Since.IsZero() {
			reading = append(reading, i)
		} else {
			waiting = append(waiting, i)
		}
	}
	slices.SortStableFunc(waiting, func(a, b int) int {
		pa, pb := parts[a], parts[b]
		if c := pa.Unfinished - pb.Unfinished; c != 0 {
			return c
		}
		return pa.Turn.Compare(pb.Turn)
	})
	slots := max(r.Readers, 1)
	for _, i := range append(reading, waiting...) {
		p := parts[i]
		if slots == 0 {
			p.Since = time.Time{}
			continue
		}
		slots--
		read[i] = true
		if p.Since.IsZero() {
			p.Since, p.Turn = now, now
		}
	}
	return read
}

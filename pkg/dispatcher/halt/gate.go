package halt

import (
	"reflect"
	"sync"
	"time"

	"github.com/wanotify/wanotify/pkg/dispatcher/sched"
)

// Gate is the halt's rule in a sender's scheduler (package sched): a
// running sender's items go; a halted sender's items are diverted, with a
// *HaltedError as the reason (the dispatcher hands them back to Kafka,
// no attempt spent), except one probe item per probe interval, which
// goes. The probe's call reports its answer through Store.Outcome: an
// account fault keeps the sender halted (and moves the next probe one
// interval on), a success resumes it everywhere.
//
// Release gives the probe back when its item did not start after all (a
// later gate held it, its partition was revoked): the next item of the
// sender may probe at once. Release must not be called for an item whose
// call was made; report that call with Outcome, which settles the probe.
type Gate struct {
	s *Store

	mu     sync.Mutex
	probes map[string]heldProbe // by sender: the item holding the probe
}

type heldProbe struct {
	it   sched.Item
	prev time.Time // the probe time before the item took it
}

var _ sched.Gate = (*Gate)(nil)

// Gate returns the store's gate; one serves every sender of the instance.
func (s *Store) Gate() *Gate {
	s.gateOnce.Do(func() { s.gate = &Gate{s: s, probes: map[string]heldProbe{}} })
	return s.gate
}

// Check lets it go unless its sender is halted; of a halted sender's
// items, the first asked once a probe is due goes.
func (g *Gate) Check(it sched.Item, now time.Time) sched.Verdict {
	sender := it.Sender()
	why, since, halted := g.s.Halted(sender)
	if !halted {
		return sched.Verdict{Kind: sched.Go}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.s.ProbeDue(sender, now) {
		g.probes[sender] = heldProbe{it: it, prev: g.s.probeAfter(sender)}
		g.s.ProbeTaken(sender, now)
		g.s.log.Info("halted sender probed", "sender", sender, "code", why.Code)
		return sched.Verdict{Kind: sched.Go}
	}
	return sched.Verdict{Kind: sched.Divert, Why: &HaltedError{Sender: sender, Reason: why, Since: since}}
}

// Release gives back the probe it took, if it holds one.
func (g *Gate) Release(it sched.Item) {
	sender := it.Sender()
	g.mu.Lock()
	p, ok := g.probes[sender]
	if !ok || !sameItem(p.it, it) {
		g.mu.Unlock()
		return
	}
	delete(g.probes, sender)
	g.mu.Unlock()
	g.s.setProbe(sender, p.prev)
}

// settled forgets sender's probe: its call was made.
func (g *Gate) settled(sender string) {
	g.mu.Lock()
	delete(g.probes, sender)
	g.mu.Unlock()
}

// sameItem compares items without panicking on a type that is not
// comparable (such items never match).
func sameItem(a, b sched.Item) bool {
	if a == nil || b == nil {
		return false
	}
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb || !ta.Comparable() {
		return false
	}
	return a == b
}

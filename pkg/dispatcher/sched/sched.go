// Package sched is one sender's scheduler: the records of a sender that
// passed the admit stage wait here for their turn, and every rule that
// decides when a sender may call the provider is a Gate of it (the
// breaker, a halt, pair-rate pacing; later lanes and tenant shares).
//
// A Scheduler does not call the provider and does not take rate-limit
// tokens: it only answers "which record may start next". Gates are asked
// before any token is taken or dedupe marker written, so a record a gate
// holds back has spent nothing:
//
//   - Go: every gate lets the record start now;
//   - Wait: a gate holds this record until a time; it is set aside and
//     the records behind it go on (waiting for one recipient never delays
//     another);
//   - Divert: a gate takes the record out of the queue (the breaker parks
//     it, a halt hands it back to Kafka); the caller does that.
//
// The ready records are queued by lane and tenant (fair.go): the critical
// lane first, always; the others by weight; within a lane, tenants by
// weighted fair queuing. One tenant's records of one lane leave first-in
// first-out, with a front for records handed back (a breaker's parked
// records, a call that could not start); records set aside come back at
// the front when their time comes.
package sched

import (
	"container/heap"
	"sync"
	"time"
)

// Item is one record waiting for its sender's scheduler.
type Item interface {
	Sender() string
	// Recipient is the E.164 number the record goes to.
	Recipient() string
	Tenant() string
}

// Laned is an Item that knows its lane (0 the most urgent, below Lanes);
// an Item that is not Laned is in lane 1.
type Laned interface {
	Lane() int
}

// Kind is what a gate decides for an item.
type Kind int

// The verdicts of a gate.
const (
	// Go lets the item start now, as far as the gate goes.
	Go Kind = iota
	// Wait holds the item aside until Verdict.Until; other items go on.
	Wait
	// Divert takes the item out of the scheduler; the caller hands it
	// elsewhere.
	Divert
)

// Verdict is a gate's answer for one item.
type Verdict struct {
	Kind Kind
	// Until is when a waiting item may be asked about again.
	Until time.Time
	// Why is the reason for a Divert.
	Why error
}

// Gate is one rule of a sender's scheduler. Check is asked for the item at
// the head of the queue; it must not block and must be safe for concurrent
// use. A gate that says Go may reserve something for the item (a pair-rate
// slot, a half-open breaker's probe); Release gives the reservation back
// when the item did not start after all (a later gate held it back, its
// partition was revoked, no token could be had).
type Gate interface {
	Check(it Item, now time.Time) Verdict
	Release(it Item)
}

// Step is what Next hands out: an item that may start (Kind Go) or one a
// gate diverted (Kind Divert, with Gate the index of the gate and Why its
// reason).
type Step struct {
	Item Item
	Kind Kind
	Gate int
	Why  error
}

// Scheduler holds one sender's items. It is safe for concurrent use.
type Scheduler struct {
	sender string
	gates  []Gate
	// ready is called (without the scheduler's lock) when items set
	// aside become ready again, so the caller runs its pacer.
	ready func()
	now   func() time.Time

	mu      sync.Mutex
	queue   fairQueue
	waiting waitHeap
	seq     uint64
	timer   *time.Timer
}

// New returns the scheduler of sender with gates asked in order. ready is
// called when items set aside are ready again (it must not call back into
// the scheduler synchronously with a lock the scheduler's caller holds
// while calling Next; a goroutine is fine).
func New(sender string, gates []Gate, ready func()) *Scheduler {
	if ready == nil {
		ready = func() {}
	}
	return &Scheduler{sender: sender, gates: gates, ready: ready, now: time.Now}
}

// SetWeights sets how the lanes and tenants share the sender; call it
// before the first Push.
func (s *Scheduler) SetWeights(w Weights) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue.w = w
}

// Counts reports the items ready per lane and tenant (not those set
// aside).
func (s *Scheduler) Counts(f func(lane int, tenant string, n int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue.counts(f)
}

// Sender is the sender this scheduler serves.
func (s *Scheduler) Sender() string { return s.sender }

// Push queues items behind the ready ones, or at the front (in their
// order) for items handed back.
func (s *Scheduler) Push(items []Item, front bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if front {
		for i := len(items) - 1; i >= 0; i-- {
			s.queue.push(items[i], true)
		}
		return
	}
	for _, it := range items {
		s.queue.push(it, false)
	}
}

// Len is the number of items held: ready and set aside.
func (s *Scheduler) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue.n + len(s.waiting)
}

// Next returns the next step: the first ready item every gate lets go, or
// an item a gate diverted. Items a gate holds are set aside until their
// time. ok is false when no item is ready now (items may still be set
// aside; ready is called when they are due).
func (s *Scheduler) Next() (Step, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.promoteLocked(now)
	for {
		it, ok := s.queue.pop()
		if !ok {
			break
		}
		st, decided := s.checkLocked(it, now)
		if decided {
			return st, true
		}
	}
	s.armLocked(now)
	return Step{}, false
}

// checkLocked asks the gates in order about it. A Wait sets it aside and
// reports decided false.
func (s *Scheduler) checkLocked(it Item, now time.Time) (Step, bool) {
	for i, g := range s.gates {
		v := g.Check(it, now)
		switch v.Kind {
		case Go:
			continue
		case Wait:
			s.releaseLocked(it, i)
			heap.Push(&s.waiting, waiting{it: it, until: v.Until, seq: s.seq})
			s.seq++
			return Step{}, false
		default:
			s.releaseLocked(it, i)
			return Step{Item: it, Kind: Divert, Gate: i, Why: v.Why}, true
		}
	}
	return Step{Item: it, Kind: Go}, true
}

// releaseLocked gives back the reservations of the gates before gate n.
func (s *Scheduler) releaseLocked(it Item, n int) {
	for i := 0; i < n; i++ {
		s.gates[i].Release(it)
	}
}

// Release gives back every gate's reservation for an item Next let go
// that did not start after all.
func (s *Scheduler) Release(it Item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(it, len(s.gates))
}

// promoteLocked moves items whose wait is over to the front of the queue,
// in the order they were set aside.
func (s *Scheduler) promoteLocked(now time.Time) {
	var due []Item
	for len(s.waiting) > 0 && !s.waiting[0].until.After(now) {
		due = append(due, heap.Pop(&s.waiting).(waiting).it)
	}
	for i := len(due) - 1; i >= 0; i-- {
		s.queue.push(due[i], true)
	}
}

// armLocked sets the timer for the earliest item set aside.
func (s *Scheduler) armLocked(now time.Time) {
	if len(s.waiting) == 0 {
		return
	}
	wait := s.waiting[0].until.Sub(now)
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timer = time.AfterFunc(max(wait, 0)+time.Millisecond, s.ready)
}

// Drop removes the items dead reports (a revoked partition's), from the
// queue and from those set aside, and returns them.
func (s *Scheduler) Drop(dead func(Item) bool) []Item {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.queue.filter(dead)
	w := s.waiting[:0]
	for _, x := range s.waiting {
		if dead(x.it) {
			out = append(out, x.it)
		} else {
			w = append(w, x)
		}
	}
	clear(s.waiting[len(w):])
	s.waiting = w
	heap.Init(&s.waiting)
	return out
}

// Stop stops the timer of items set aside.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
	}
}

type waiting struct {
	it    Item
	until time.Time
	seq   uint64
}

// waitHeap orders items set aside by time, then by when they were set
// aside.
type waitHeap []waiting

func (h waitHeap) Len() int { return len(h) }
func (h waitHeap) Less(i, j int) bool {
	if !h[i].until.Equal(h[j].until) {
		return h[i].until.Before(h[j].until)
	}
	return h[i].seq < h[j].seq
}
func (h waitHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *waitHeap) Push(x any)   { *h = append(*h, x.(waiting)) }
func (h *waitHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = waiting{}
	*h = old[:len(old)-1]
	return x
}

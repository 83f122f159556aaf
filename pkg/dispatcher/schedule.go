package dispatcher

import (
	"errors"
	"math"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/wanotify/wanotify/pkg/dispatcher/sched"
)

// The second stage: a record the admit stage let through waits in its
// sender's scheduler (package sched) until every gate of that sender lets
// it start. One pacer goroutine per sender asks the scheduler for the next
// record, and starts its call (call.go) while the sender has room ahead of
// its rate limiter and the global concurrency allows. Only this sender
// waits for its gates and tokens.
//
// The gates, in the order they are asked:
//
//   - the sender's halt (package halt, halts.go): a sender halted by an
//     account fault sends nothing; its records go to notifications.held,
//     except one probe per interval;
//   - the circuit breaker of the provider and sender (breakerGate): open,
//     it parks the record on the breaker without spending an attempt
//     (breaker.go); half-open, it lets the allowed probes through.
//   - pair-rate pacing (package pairrate, pacing.go): a record whose
//     recipient had a message from this sender less than the pair
//     interval ago waits aside until the pair is free.

// senderQueue is one sender's scheduler and its pacer's state.
type senderQueue struct {
	sender  string
	s       *sched.Scheduler
	running bool // guarded by Dispatcher.mu
	// ahead bounds the sender's calls that wrote their pending marker and
	// wait for a token (about 100 ms of the sender's rate). Taking the
	// token after the marker keeps the marker's latency out of the pacing
	// (a burst of late markers would otherwise bunch calls up at the
	// provider); the bound keeps one sender from occupying the shared
	// concurrency, and keeps the records a crash leaves pending, and so
	// reported outcome_unknown, to the calls in flight plus about 100 ms
	// of the sender's traffic.
	ahead chan struct{}
}

// The scheduler's view of a record.
func (rc *rec) Sender() string    { return rc.n.Sender }
func (rc *rec) Recipient() string { return rc.n.Recipient }
func (rc *rec) Tenant() string    { return rc.n.Tenant }
func (rc *rec) Lane() int         { return rc.lane.Index() }

// senderLocked returns sender's queue, made on first use (d.mu held).
func (d *Dispatcher) senderLocked(sender string) *senderQueue {
	sq := d.senders[sender]
	if sq != nil {
		return sq
	}
	r := d.cfg.Limits.Rate
	if v, ok := d.cfg.Limits.PerSender[sender]; ok {
		r = v
	}
	sq = &senderQueue{sender: sender, ahead: make(chan struct{}, max(4, int(math.Ceil(r/10))))}
	sq.s = sched.New(sender, d.gates(sender), func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.kickLocked(sq)
	})
	sq.s.SetWeights(d.cfg.Weights)
	d.senders[sender] = sq
	return sq
}

// gates are the rules of sender's scheduler, in the order they are asked.
func (d *Dispatcher) gates(sender string) []sched.Gate {
	gs := []sched.Gate{&breakerGate{d: d, sender: sender}, d.pairs}
	if d.halts != nil {
		gs = append([]sched.Gate{d.halts.Gate()}, gs...)
	}
	if r := d.routes(); r != nil && r.HasFailover(sender) {
		// The primary's gates, with the failover route where they would
		// hold a record back (failover_stage.go).
		return []sched.Gate{&failoverGate{d: d, primary: gs}}
	}
	return gs
}

// enqueueLocked queues records for their sender's pacer (d.mu held):
// behind the sender's other records, or at the front for records handed
// back.
func (d *Dispatcher) enqueueLocked(sender string, rcs []*rec, front bool) {
	sq := d.senderLocked(sender)
	items := make([]sched.Item, len(rcs))
	now := time.Now()
	for i, rc := range rcs {
		items[i] = rc
		if rc.queued.IsZero() {
			rc.queued = now
		}
	}
	sq.s.Push(items, front)
	d.kickLocked(sq)
}

// kickLocked runs sq's pacer unless it runs (d.mu held).
func (d *Dispatcher) kickLocked(sq *senderQueue) {
	if !sq.running && !d.stopping.Load() {
		sq.running = true
		go d.pace(sq)
	}
}

// retryLater puts rc back in its sender queue after a pause, for a marker
// that could not be written (Kafka unavailable).
func (d *Dispatcher) retryLater(rc *rec, err error) {
	d.log.Warn("dedupe marker not written; will retry", "notification_id", rc.n.ID, "err", err)
	d.requeueAfter(rc, time.Second)
}

// requeueAfter hands rc, whose call did not start, back to the front of
// its sender's queue after wait; its gates' reservations are given back.
func (d *Dispatcher) requeueAfter(rc *rec, wait time.Duration) {
	d.unreserve(rc)
	time.AfterFunc(wait, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if !rc.part.dead.Load() {
			d.enqueueLocked(rc.n.Sender, []*rec{rc}, true)
		}
	})
}

// unreserve gives back what rc's gates reserved for a call that did not
// happen.
func (d *Dispatcher) unreserve(rc *rec) {
	d.mu.Lock()
	sq := d.senders[rc.n.Sender]
	d.mu.Unlock()
	if sq != nil {
		sq.s.Release(rc)
	}
}

// pace runs one sender's scheduler, starting calls while the sender has
// room ahead of its rate limiter.
func (d *Dispatcher) pace(sq *senderQueue) {
	for {
		d.mu.Lock()
		if d.stopping.Load() {
			sq.running = false
			d.mu.Unlock()
			return
		}
		st, ok := sq.s.Next()
		if !ok {
			sq.running = false
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
		rc := st.Item.(*rec)
		if st.Kind == sched.Divert {
			d.divert(rc, st)
			continue
		}
		if rc.part.dead.Load() {
			sq.s.Release(rc)
			continue
		}
		select {
		case sq.ahead <- struct{}{}:
		case <-rc.part.ctx.Done():
			sq.s.Release(rc)
			continue
		}
		select {
		case d.sem <- struct{}{}:
		case <-rc.part.ctx.Done():
			<-sq.ahead
			sq.s.Release(rc)
			continue
		}
		d.mu.Lock()
		if rc.part.dead.Load() {
			d.mu.Unlock()
			<-d.sem
			<-sq.ahead
			sq.s.Release(rc)
			continue
		}
		rc.part.wg.Add(1)
		d.work.Add(1)
		d.mu.Unlock()
		d.inflight.Add(1)
		go d.send(rc, sq)
	}
}

// divert hands a record a gate took out of its scheduler to where that
// gate says it waits.
func (d *Dispatcher) divert(rc *rec, st sched.Step) {
	if rc.part.dead.Load() {
		return
	}
	var open *errBreakerOpen
	if h, ok := asHalted(st.Why); ok {
		d.hold(rc, h)
		return
	}
	switch {
	case errors.As(st.Why, &open):
		d.park(open.b, rc)
	default:
		d.log.Error("record diverted by an unknown gate; handed back to its queue", "notification_id", rc.n.ID, "err", st.Why)
		d.requeueAfter(rc, time.Second)
	}
}

// breakerGate is the breaker's rule in a sender's scheduler: no call while
// the breaker is open, and only the allowed probes while it is half-open.
// The probe a record holds is rc.probe; it is given back after the call
// (send) or by Release when the call does not start.
type breakerGate struct {
	d      *Dispatcher
	sender string
}

// errBreakerOpen is the reason a record is diverted to its breaker.
type errBreakerOpen struct{ b *breaker }

func (e *errBreakerOpen) Error() string { return "circuit breaker " + e.b.name + " is open" }

func (g *breakerGate) Check(it sched.Item, _ time.Time) sched.Verdict {
	rc := it.(*rec)
	b := g.d.brk.get(g.d.prov.Name(), g.sender)
	rc.brk = b
	switch b.cb.State() {
	case gobreaker.StateOpen:
		return sched.Verdict{Kind: sched.Divert, Why: &errBreakerOpen{b}}
	case gobreaker.StateHalfOpen:
		if int(b.probes.Add(1)) > g.d.cfg.Breaker.HalfOpenRequests {
			b.probes.Add(-1)
			return sched.Verdict{Kind: sched.Divert, Why: &errBreakerOpen{b}}
		}
		rc.probe = true
	}
	return sched.Verdict{Kind: sched.Go}
}

func (g *breakerGate) Release(it sched.Item) {
	it.(*rec).releaseProbe()
}

// releaseProbe gives back the half-open probe rc holds, once.
func (rc *rec) releaseProbe() {
	if rc.probe {
		rc.probe = false
		rc.brk.probes.Add(-1)
	}
}

package dispatcher

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/dispatcher/answer"
	"github.com/wanotify/wanotify/pkg/dispatcher/failover"
	"github.com/wanotify/wanotify/pkg/dispatcher/sched"
	"github.com/wanotify/wanotify/pkg/provider"
)

// A sender's failover route (docs/senders.md, package failover), as the
// stages use it:
//
//   - the scheduler's breaker gate lets a record go while the sender's
//     breaker is open when failover.Decide allows it (the primary has
//     provably not taken it), marked for the second route; a record
//     pinned to the second route always goes there;
//   - the call stage sends such a record through the router's second
//     route instead of the primary's breaker, and folds every call's
//     answer into the record's history; a record the answer would park
//     (the primary is down) goes back to its scheduler at once when it
//     may fail over;
//   - the settle stage names the route on the status event and keeps the
//     history on the retry record (failover.Header), bound to its attempt.

// routeState is a record's failover state (rec.fo).
type routeState struct {
	loaded bool
	h      failover.History
	// second: the scheduler let the record go through the second route.
	second bool
	// called is the attempt whose call this process made (and folded
	// into h): only then is h written on the record's retry record.
	called int
}

// routes is the provider as a router with second routes; nil when the
// provider has none (a single client).
func (d *Dispatcher) routes() failover.Routes {
	r, _ := d.prov.(failover.Routes)
	return r
}

// hasFailover reports whether rc's sender has a second route.
func (d *Dispatcher) hasFailover(rc *rec) bool {
	r := d.routes()
	return r != nil && r.HasFailover(rc.n.Sender)
}

// history is rc's failover history: what its retry record says, then
// what this process saw.
func (rc *rec) history() failover.History {
	if !rc.fo.loaded {
		switch {
		case rc.env != nil:
			rc.fo.h = failover.FromRecord(rc.r.Headers, true, rc.env.Attempt)
		case replayCount(rc.r.Headers) > 0:
			// Replayed from the DLQ: its earlier attempts still count.
			rc.fo.h = failover.FromReplay(rc.r.Headers)
		default:
			rc.fo.h = failover.History{}
		}
		rc.fo.loaded = true
	}
	return rc.fo.h
}

// mayFailover reports whether rc may go through its sender's second route
// now, the primary being down, after last (nil: no call this time).
func (d *Dispatcher) mayFailover(rc *rec, last error) bool {
	return d.hasFailover(rc) && failover.Decide(true, rc.history(), last).Failover
}

// pinnedToSecond reports whether rc must go through the second route
// whatever the primary's state.
func (d *Dispatcher) pinnedToSecond(rc *rec) bool {
	return d.hasFailover(rc) && rc.history().Pinned == failover.Second
}

// callRoute makes rc's call: through the second route when the
// scheduler chose it, else through the primary's breaker. The answer is
// folded into rc's history, except a breaker's refusal (nothing sent).
func (d *Dispatcher) callRoute(ctx context.Context, rc *rec, b *breaker) (string, error) {
	m := provider.FromNotification(rc.n)
	route := failover.Primary
	var (
		id  string
		err error
	)
	if rc.fo.second {
		route = failover.Second
		id, err = d.routes().SendFailover(ctx, m)
	} else {
		id, err = b.cb.Execute(func() (string, error) { return d.prov.Send(ctx, m) })
		if answer.BreakerRefused(err) {
			return id, err
		}
	}
	if d.hasFailover(rc) {
		rc.fo.h = rc.history().After(route, err)
		rc.fo.called = rc.attempt
		trace.SpanFromContext(ctx).SetAttributes(attribute.String("wanotify.route", string(route)),
			attribute.String("wanotify.route_pinned", string(rc.fo.h.Pinned)))
	}
	return id, err
}

// routeOf is the route a call outcome names on its status event: only
// for senders with a second route (events of the others stay as they
// were, and mean the primary).
func (d *Dispatcher) routeOf(rc *rec) string {
	switch {
	case !d.hasFailover(rc):
		return ""
	case rc.fo.second:
		return contract.RouteFailover
	}
	return contract.RoutePrimary
}

// providerOf is the provider a status event names for an outcome of route.
func (d *Dispatcher) providerOf(rc *rec, route string) string {
	if route == contract.RouteFailover {
		if r, ok := d.prov.(interface{ FailoverName(string) string }); ok {
			return r.FailoverName(rc.n.Sender)
		}
	}
	return d.prov.Name()
}

// withHistory returns the headers of rc's retry, held or DLQ record for
// attempt: the failover history when it is all known here (this process
// made that attempt's call, or the record goes back without spending an
// attempt: held, deferred), and none otherwise (a record parked after a
// crash interrupted its call); a reader then takes the record as maybe
// taken by the primary.
func (d *Dispatcher) withHistory(rc *rec, hs []kgo.RecordHeader, attempt int) []kgo.RecordHeader {
	if !d.hasFailover(rc) {
		return hs
	}
	if rc.fo.called == attempt || attempt == rc.attempt-1 {
		return failover.SetHeader(hs, rc.history(), attempt)
	}
	out := hs[:0:0]
	for _, h := range hs {
		if h.Key != failover.Header {
			out = append(out, h)
		}
	}
	return out
}

// sendsElsewhere reports whether b's sender has a failover route, so its
// open breaker need not pause fetching. A breaker is named
// "<provider>/<sender>" (breakers.get); sender names hold no '/'.
func (d *Dispatcher) sendsElsewhere(b *breaker) bool {
	r := d.routes()
	i := strings.LastIndexByte(b.name, '/')
	return r != nil && i >= 0 && r.HasFailover(b.name[i+1:])
}

// failoverGate stands for the primary's gates (the halt, the breaker) of
// a sender with a failover route. It asks them in order, as the
// scheduler would; where one of them diverts the record because the
// primary is down (the sender halted, its breaker open) and the record
// may fail over, the record goes through the second route instead. A
// record pinned to the second route goes there without asking them.
type failoverGate struct {
	d       *Dispatcher
	primary []sched.Gate
}

func (g *failoverGate) Check(it sched.Item, now time.Time) sched.Verdict {
	rc := it.(*rec)
	rc.fo.second = false
	// The call stage reads the sender's breaker whichever route goes.
	rc.brk = g.d.brk.get(g.d.prov.Name(), rc.n.Sender)
	if g.d.pinnedToSecond(rc) {
		rc.fo.second = true
		return sched.Verdict{Kind: sched.Go}
	}
	for i, pg := range g.primary {
		v := pg.Check(it, now)
		if v.Kind == sched.Go {
			continue
		}
		for _, done := range g.primary[:i] {
			done.Release(it)
		}
		if v.Kind == sched.Divert && primaryDown(v.Why) && g.d.mayFailover(rc, nil) {
			rc.fo.second = true
			return sched.Verdict{Kind: sched.Go}
		}
		return v
	}
	return sched.Verdict{Kind: sched.Go}
}

func (g *failoverGate) Release(it sched.Item) {
	if it.(*rec).fo.second {
		return // the primary's gates reserved nothing for it
	}
	for _, pg := range g.primary {
		pg.Release(it)
	}
}

// primaryDown reports whether a gate's reason to divert is the primary
// being down: its breaker open, or the sender halted.
func primaryDown(why error) bool {
	var open *errBreakerOpen
	_, halted := asHalted(why)
	return errors.As(why, &open) || halted
}

// mayFailoverNow reports whether rc, whose primary call just failed with
// err, may go through the second route now: the primary is down after
// it (the answer halted the sender or opened its breaker) and err proves
// nothing was taken.
func (d *Dispatcher) mayFailoverNow(rc *rec, b *breaker, err error) bool {
	if !d.hasFailover(rc) {
		return false
	}
	down := b.cb.State() != gobreaker.StateClosed
	if d.halts != nil {
		_, _, halted := d.halts.Halted(rc.n.Sender)
		down = down || halted
	}
	return down && d.mayFailover(rc, err)
}

// secondDown holds rc after its failover route failed it without an
// outcome (the second route is down too): on the sender's halt while it
// is halted, on its open breaker, or else for one breaker open timeout;
// then its scheduler decides again.
func (d *Dispatcher) secondDown(rc *rec, b *breaker) {
	if d.halts != nil {
		if _, _, halted := d.halts.Halted(rc.n.Sender); halted {
			d.hold(rc, d.haltedError(rc.n.Sender))
			return
		}
	}
	if b.cb.State() == gobreaker.StateOpen {
		d.park(b, rc)
		return
	}
	d.requeueAfter(rc, d.cfg.Breaker.OpenTimeout)
}

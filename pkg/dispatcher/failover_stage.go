package dispatcher

import (
	"context"
	"errors"
	"strings"

	"github.com/sony/gobreaker/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/dispatcher/failover"
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
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
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

// withHistory returns the headers of rc's retry record for attempt: the
// failover history when this process made that attempt's call, and none
// otherwise (a reader then takes the record as maybe taken by the
// primary).
func (d *Dispatcher) withHistory(rc *rec, hs []kgo.RecordHeader, attempt int) []kgo.RecordHeader {
	if !d.hasFailover(rc) {
		return hs
	}
	if rc.fo.called == attempt {
		return failover.SetHeader(hs, rc.fo.h, attempt)
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

package failover

import (
	"context"
	"errors"

	"github.com/wanotify/wanotify/pkg/provider"
)

// ErrNotCalled is what a primary send function returns (wrapped or not)
// when it refused the record before sending anything: the sender is
// halted, its breaker is open or refused a probe. It proves the primary
// did not take the record.
var ErrNotCalled = errors.New("primary route not called")

// Routes is what Call needs of the router (pkg/provider/route.Router).
type Routes interface {
	HasFailover(sender string) bool
	SendFailover(ctx context.Context, m provider.Message) (string, error)
}

// Result is one record's call.
type Result struct {
	// Route is the route whose answer ID and Err are; empty when no
	// route was called (the primary is down and the record may not go
	// through the second route, or the sender has none).
	Route Route
	ID    string
	Err   error
	// History is the record's history after this call, to keep with it.
	History History
	// Why explains a failover, or why there was none (logs, spans).
	Why string
}

// Call makes the call stage's call for one record m with history h:
//
//   - a record pinned to the second route goes there, whatever the
//     primary's state;
//   - while down() holds (the primary is halted or its breaker open)
//     the primary is not called, and the record goes through the second
//     route if Decide allows (otherwise Result.Route is empty and Err
//     wraps ErrNotCalled: the caller holds it, as it does without
//     failover);
//   - otherwise primary sends it (primary is the caller's send through
//     its breaker); if that fails and the primary is down after it (this
//     failure opened the breaker, or halted the sender), Decide says
//     whether the record may still go through the second route.
//
// down is asked before the call and again after a failure.
func Call(ctx context.Context, r Routes, m provider.Message, h History, down func() bool,
	primary func(context.Context, provider.Message) (string, error)) Result {
	has := r.HasFailover(m.Sender)
	second := func(why string) Result {
		id, err := r.SendFailover(ctx, m)
		return Result{Route: Second, ID: id, Err: err, History: h.After(Second, err), Why: why}
	}
	if h.Pinned == Second {
		return second("the second route may already have taken it: it stays there")
	}
	if down() {
		if !has {
			return Result{Err: ErrNotCalled, History: h, Why: "the primary is down and the sender has no failover"}
		}
		d := Decide(true, h, nil)
		if !d.Failover {
			return Result{Err: ErrNotCalled, History: h, Why: d.Why}
		}
		return second(d.Why)
	}
	id, err := primary(ctx, m)
	if errors.Is(err, ErrNotCalled) {
		// Refused before sending: nothing was taken.
		if has {
			if d := Decide(true, h, nil); d.Failover {
				return second(d.Why)
			}
		}
		return Result{Err: err, History: h, Why: "the primary refused it before sending"}
	}
	res := Result{Route: Primary, ID: id, Err: err, History: h.After(Primary, err)}
	if err == nil || !has {
		return res
	}
	d := Decide(down(), h, err)
	res.Why = d.Why
	if !d.Failover {
		return res
	}
	return second(d.Why)
}

package dispatcher

import (
	"context"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/wanotify/wanotify/pkg/dispatcher/answer"
	"github.com/wanotify/wanotify/pkg/dispatcher/dedupe"
	"github.com/wanotify/wanotify/pkg/phone"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// The call stage: marker, token, provider call, and the answer judged by
// package answer. See the package documentation, stage 4.

// send makes one provider attempt for rc: pending marker, token, call,
// done marker, outputs.
func (d *Dispatcher) send(rc *rec, sq *senderQueue) {
	b := rc.brk
	ahead := true
	releaseAhead := func() {
		if ahead {
			<-sq.ahead
			ahead = false
		}
	}
	defer func() {
		releaseAhead()
		d.inflight.Add(-1)
		<-d.sem
		rc.releaseProbe()
		rc.part.wg.Done()
		d.work.Done()
	}()
	n := rc.n
	if n.Expired(time.Now()) {
		d.unreserve(rc)
		d.settle(rc, outcome{state: dedupe.StateExpired, attempt: rc.attempt, at: time.Now()})
		return
	}
	if d.limits.Limiter(n.Sender).Limit() == 0 {
		// No budget right now (no notifications.requested partition
		// owned, e.g. mid-rebalance): look again shortly, before writing
		// any marker.
		d.requeueAfter(rc, 100*time.Millisecond)
		return
	}
	// The pending marker is written before the token is taken, not after
	// it: a record waiting for its token is then visible to a new owner
	// of the partition as pending (and resolved by the outcome-unknown
	// policy) rather than unmarked, so an instance that still sends
	// after losing the partition (a stall past the session timeout, a
	// coordinator that forgot the group) cannot make the new owner send
	// it a second time. The cost, more records left pending by a crash,
	// is what the verify policy resolves.
	if err := d.writeMarker(rc, outcome{state: dedupe.StatePending, attempt: rc.attempt, at: time.Now()}, 1); err != nil {
		d.retryLater(rc, err)
		return
	}
	waited, err := d.limits.Wait(rc.part.ctx, n.Sender)
	releaseAhead()
	if err != nil {
		// No call was made: undo the marker. A cancelled partition hands
		// the record back; no budget (no notifications.requested
		// partition owned at this moment) tries again shortly.
		d.revert(rc)
		if rc.part.ctx.Err() == nil {
			d.requeueAfter(rc, 100*time.Millisecond)
		}
		return
	}
	d.met.wait.Record(context.Background(), waited.Seconds())
	if !rc.probe && !rc.fo.second && b.cb.State() == gobreaker.StateOpen {
		d.revert(rc)
		d.unreserve(rc)
		d.park(b, rc)
		return
	}
	if !rc.due.IsZero() {
		d.met.lateness.Record(context.Background(), time.Since(rc.due).Seconds())
	}
	parent := rc.r.Context
	if parent == nil {
		parent = context.Background()
	}
	ctx, span := d.tracer.Start(parent, "send", trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		attribute.String("messaging.system", "kafka"),
		attribute.String("messaging.operation", "process"),
		attribute.String("messaging.destination.name", rc.r.Topic),
		attribute.Int("messaging.destination.partition.id", int(rc.r.Partition)),
		attribute.Int64("messaging.kafka.message.offset", rc.r.Offset),
		attribute.String("wanotify.notification_id", n.ID),
		attribute.String("wanotify.tenant", n.Tenant),
		attribute.String("wanotify.event_type", n.EventType),
		attribute.String("wanotify.sender", n.Sender),
		attribute.String("wanotify.recipient", phone.Mask(n.Recipient)),
		attribute.Int("wanotify.attempt", rc.attempt),
		attribute.String("wanotify.provider", d.prov.Name()),
	))
	rc.ctx = ctx
	started := time.Now()
	laneAttrs := metric.WithAttributes(attribute.String("lane", string(rc.lane)), attribute.String("tenant", n.Tenant))
	if !rc.queued.IsZero() {
		d.met.laneWait.Record(context.Background(), started.Sub(rc.queued).Seconds(), laneAttrs)
	}
	id, err := d.callRoute(ctx, rc, b)
	done := time.Now()
	if d.halts != nil && !rc.fo.second && !answer.BreakerRefused(err) {
		// The call was made: the state table hears its answer (an account
		// fault halts the sender, a probe's success resumes it).
		if herr := d.halts.Outcome(context.WithoutCancel(rc.part.ctx), n.Sender, started, err); herr != nil {
			d.log.Error("sender halt not written to the state table", "sender", n.Sender, "err", herr)
		}
	}
	call := answer.Call{Attempt: rc.attempt, Deferrals: rc.deferrals(), ID: id, Err: err, At: done, Breaker: b.cb.State()}
	if n.ExpiresAt != nil {
		call.Expires = *n.ExpiresAt
	}
	dec := d.answers.Judge(call)
	d.paced(rc, err, dec, done)
	switch {
	case err == nil:
		span.SetAttributes(attribute.String("wanotify.provider_message_id", id))
		d.met.laneSent.Add(context.Background(), 1, laneAttrs)
		d.met.sends.Add(context.Background(), 1, metric.WithAttributes(attribute.String("outcome", "accepted"), attribute.String("error_code", "")))
	case dec.Class == "":
		// The breaker refused: nothing was sent.
		span.SetAttributes(attribute.Bool("wanotify.breaker_rejected", true))
	default:
		d.met.sends.Add(context.Background(), 1, metric.WithAttributes(attribute.String("outcome", dec.Class), attribute.String("error_code", dec.Code)))
		span.RecordError(err)
		span.SetStatus(codes.Error, dec.Code)
	}
	if rc.fo.second && (dec.Action == answer.Halt || dec.Action == answer.Park) {
		// The failover route is down too: the record waits, its attempt
		// not spent, for either route (failover_stage.go).
		span.SetAttributes(attribute.Bool("wanotify.outage", true))
		span.End()
		d.revert(rc)
		d.unreserve(rc)
		d.secondDown(rc, b)
		return
	}
	if (dec.Action == answer.Halt || dec.Action == answer.Park) && d.mayFailoverNow(rc, b, err) {
		// The primary is down (this answer halted the sender or opened
		// its breaker) and provably did not take it: back to its
		// scheduler now, which sends it through the failover route.
		span.End()
		d.revert(rc)
		d.unreserve(rc)
		d.requeueAfter(rc, 0)
		return
	}
	if dec.Action == answer.Halt {
		// The sender's account is at fault: the sender is halted (above)
		// and this record waits on notifications.held like every other of
		// its records, with its attempt not spent.
		span.SetAttributes(attribute.Bool("wanotify.sender_halted", true))
		span.End()
		d.revert(rc)
		d.unreserve(rc)
		d.hold(rc, d.haltedError(n.Sender))
		return
	}
	if dec.Action == answer.Park {
		// No attempt is spent: the pending marker is undone and the
		// record waits on its breaker in its key's turn.
		if dec.Class != "" {
			span.SetAttributes(attribute.Bool("wanotify.outage", true))
		}
		span.End()
		d.revert(rc)
		d.unreserve(rc)
		d.park(b, rc)
		return
	}
	o := outcome{state: dec.State, attempt: rc.attempt, at: done, providerID: id, err: dec.Err, class: dec.Class, due: dec.Due, route: d.routeOf(rc)}
	if err != nil {
		o.providerID, o.failedAt = "", done
	}
	span.SetAttributes(attribute.String("wanotify.outcome", o.state.String()))
	span.End()
	if err := d.writeMarker(rc, o, 5); err != nil {
		// The outcome still goes out with the offset; only a restore
		// before that commit would see the pending marker and report
		// outcome_unknown instead of re-emitting it.
		d.log.Error("dedupe done marker not written", "notification_id", n.ID, "err", err)
	}
	d.finish(rc, d.outputs(rc, o))
}

package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/dispatcher/dedupe"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/phone"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/topics"
)

// maxAttempts is the first attempt plus one per retry tier.
var maxAttempts = 1 + len(topics.RetryTiers)

// outcome is one recorded result of a record, fresh or re-emitted from the
// dedupe state.
type outcome struct {
	state      dedupe.State
	attempt    int // the attempt the state belongs to
	at         time.Time
	providerID string
	err        *contract.ErrorInfo
	class      string
	failedAt   time.Time
	due        time.Time
}

// prepare decides what to do with the active record of a key: send it,
// or finish it at once (poison, duplicate, expired, outcome unknown, or an
// outcome already recorded before a crash or rebalance).
func (d *Dispatcher) prepare(rc *rec) {
	r := rc.r
	if rc.part.tier >= 0 && rc.envErr != nil {
		d.poison(rc, fmt.Errorf("failure headers: %w", rc.envErr))
		return
	}
	n, err := contract.DecodeNotification(r.Value)
	if err != nil {
		d.poison(rc, err)
		return
	}
	rc.n = n
	rc.hash = dedupe.HashKey(n.Tenant, n.IdempotencyKey)
	if rc.part.tier < 0 {
		rc.attempt = 1
		rc.origin = envelope.Origin{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
	} else {
		rc.attempt = rc.env.Attempt + 1
		rc.origin = rc.env.Origin
		if rc.origin.Partition != r.Partition {
			d.poison(rc, fmt.Errorf("origin partition %d differs from partition %d: the record was not produced co-partitioned", rc.origin.Partition, r.Partition))
			return
		}
	}
	e, det, ok := rc.part.store.Get(rc.hash)
	if ok {
		rc.prev, rc.hasPrev = dedupe.Record{Hash: rc.hash, Entry: e}, true
		if det != nil {
			rc.prev.Detail = *det
		}
		same := e.Origin == rc.origin.Offset
		switch {
		case !same && replayable(e.State) && replayCount(r.Headers) > 0:
			// An operator replays a notification that was not delivered
			// (dead-lettered, failed, expired or of unknown outcome): a
			// new delivery of the same key. An accepted one never is.
		case !same:
			// A duplicate, or a key reused for another message (dedupe.Reuse).
			o := outcome{state: dedupe.StateNone, at: time.Now(), err: dedupe.Reuse(e, contract.Fingerprint(n))}
			if o.err != nil {
				d.log.Warn("idempotency key reused for another message: not sent", "notification_id", n.ID, "tenant", n.Tenant,
					"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "first_offset", e.Origin)
				d.met.keyReused.Add(context.Background(), 1)
			}
			d.finish(rc, d.outputs(rc, o))
			return
		case e.State == dedupe.StateAccepted && int(e.Attempt) < rc.attempt && rc.env != nil && rc.env.Class == envelope.ClassOutcomeUnknown:
			// Parked as interrupted, but the call did finish: its instance
			// still sent after this partition had moved (its own outputs
			// were aborted with its transaction). Nothing is sent again;
			// the webhook, if it is there, gives the message id.
			d.confirmAccepted(rc)
			return
		case int(e.Attempt) > rc.attempt, int(e.Attempt) < rc.attempt && e.State.Terminal():
			// An older attempt's record seen again, or a retry record of
			// a notification already settled: nothing more to do.
			d.log.Warn("stale record skipped", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset,
				"notification_id", n.ID, "state", e.State.String(), "attempt", rc.attempt)
			d.finish(rc, nil)
			return
		case int(e.Attempt) == rc.attempt && e.State == dedupe.StatePending:
			// The dispatcher died during this attempt's provider call.
			switch {
			case d.cfg.OutcomeUnknownPolicy == PolicyResend:
				d.countUnknown("resent")
			case d.cfg.OutcomeUnknownPolicy == PolicyVerify && rc.attempt < maxAttempts && d.cfg.Unknown.Check(n, time.Now()):
				d.awaitEvidence(rc, det)
				return
			default:
				d.countUnknown("reported")
				d.settle(rc, outcome{state: dedupe.StateOutcomeUnknown, attempt: rc.attempt, at: time.Now(),
					err: &contract.ErrorInfo{Code: "outcome_unknown", Message: "the dispatcher stopped during the provider call", Retryable: false}})
				return
			}
		case int(e.Attempt) == rc.attempt:
			d.finish(rc, d.outputs(rc, recorded(e, det)))
			return
		}
	}
	if err := d.rules.Admit(n); err != nil {
		// Not the tenant's to send (another tenant's sender, an
		// unregistered one, a template off its list): failed, nothing
		// sent, and no sender state made for it.
		d.settle(rc, refusedOutcome(rc.attempt, err))
		return
	}
	if rc.env != nil && rc.env.Class == envelope.ClassOutcomeUnknown && d.resolveUnknown(rc) {
		return
	}
	if n.Expired(time.Now()) {
		d.settle(rc, outcome{state: dedupe.StateExpired, attempt: rc.attempt, at: time.Now()})
		return
	}
	d.mu.Lock()
	if !rc.part.dead.Load() {
		d.enqueueLocked(n.Sender, []*rec{rc}, false)
	}
	d.mu.Unlock()
}

// recorded rebuilds the outcome a dedupe entry describes.
func recorded(e dedupe.Entry, det *dedupe.Detail) outcome {
	o := outcome{state: e.State, attempt: int(e.Attempt)}
	if det == nil {
		// Kept until the record's offset is committed, so missing only
		// if the group's offsets were moved by hand: re-emit what is
		// known, due now.
		o.at, o.failedAt, o.due = time.Now(), time.Now(), time.Now()
		return o
	}
	o.at, o.providerID, o.class, o.failedAt, o.due = det.UpdatedAt, det.ProviderMessageID, det.ErrorClass, det.FailedAt, det.DueAt
	if o.at.IsZero() {
		o.at = time.Now()
	}
	if det.ErrorCode != "" {
		o.err = &contract.ErrorInfo{Code: det.ErrorCode, Message: det.ErrorMessage, Retryable: det.ErrorClass != envelope.ClassPermanent}
	}
	return o
}

// settle records a final outcome that needs no provider call and
// finishes. It keeps trying while Kafka is unavailable (never falling back
// to a send) until the partition is given up, which hands the record back.
func (d *Dispatcher) settle(rc *rec, o outcome) {
	for {
		err := d.writeMarker(rc, o, 3)
		if err == nil {
			break
		}
		d.log.Warn("dedupe marker not written; will retry", "notification_id", rc.n.ID, "state", o.state.String(), "err", err)
		select {
		case <-time.After(time.Second):
		case <-rc.part.ctx.Done():
			return
		}
	}
	d.finish(rc, d.outputs(rc, o))
}

func replayable(s dedupe.State) bool {
	switch s {
	case dedupe.StateDeadLettered, dedupe.StateFailed, dedupe.StateExpired, dedupe.StateOutcomeUnknown:
		return true
	}
	return false
}

func replayCount(hs []kgo.RecordHeader) int {
	n, _ := strconv.Atoi(envelope.Get(hs, envelope.HeaderReplayCount))
	return n
}

// enqueueLocked queues records for their sender's pacer (d.mu held).
func (d *Dispatcher) enqueueLocked(sender string, rcs []*rec, front bool) {
	sq := d.senders[sender]
	if sq == nil {
		r := d.cfg.Limits.Rate
		if v, ok := d.cfg.Limits.PerSender[sender]; ok {
			r = v
		}
		sq = &senderQueue{sender: sender, ahead: make(chan struct{}, max(4, int(math.Ceil(r/10))))}
		d.senders[sender] = sq
	}
	if front {
		sq.items = append(append(make([]*rec, 0, len(rcs)+len(sq.items)), rcs...), sq.items...)
	} else {
		sq.items = append(sq.items, rcs...)
	}
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

func (d *Dispatcher) requeueAfter(rc *rec, wait time.Duration) {
	time.AfterFunc(wait, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if !rc.part.dead.Load() {
			d.enqueueLocked(rc.n.Sender, []*rec{rc}, true)
		}
	})
}

// pace runs one sender's queue in order, starting calls while the sender
// has room ahead of its rate limiter. Only this sender waits for its
// tokens.
func (d *Dispatcher) pace(sq *senderQueue) {
	for {
		d.mu.Lock()
		if len(sq.items) == 0 || d.stopping.Load() {
			sq.running = false
			d.mu.Unlock()
			return
		}
		rc := sq.items[0]
		sq.items[0] = nil
		sq.items = sq.items[1:]
		d.mu.Unlock()
		if rc.part.dead.Load() {
			continue
		}
		b := d.brk.get(d.prov.Name(), sq.sender)
		probe, ok := d.admit(b)
		if !ok {
			d.park(b, rc)
			continue
		}
		unprobe := func() {
			if probe {
				b.probes.Add(-1)
			}
		}
		select {
		case sq.ahead <- struct{}{}:
		case <-rc.part.ctx.Done():
			unprobe()
			continue
		}
		select {
		case d.sem <- struct{}{}:
		case <-rc.part.ctx.Done():
			<-sq.ahead
			unprobe()
			continue
		}
		d.mu.Lock()
		if rc.part.dead.Load() {
			d.mu.Unlock()
			<-d.sem
			<-sq.ahead
			unprobe()
			continue
		}
		rc.part.wg.Add(1)
		d.work.Add(1)
		d.mu.Unlock()
		d.inflight.Add(1)
		go d.send(rc, sq, b, probe)
	}
}

// admit reports whether a call may go to the breaker now: not while it is
// open, and only the allowed number of probes while it is half-open.
func (d *Dispatcher) admit(b *breaker) (probe, ok bool) {
	switch b.cb.State() {
	case gobreaker.StateOpen:
		return false, false
	case gobreaker.StateHalfOpen:
		if int(b.probes.Add(1)) > d.cfg.Breaker.HalfOpenRequests {
			b.probes.Add(-1)
			return false, false
		}
		return true, true
	}
	return false, true
}

// send makes one provider attempt for rc: pending marker, token, call,
// done marker, outputs.
func (d *Dispatcher) send(rc *rec, sq *senderQueue, b *breaker, probe bool) {
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
		if probe {
			b.probes.Add(-1)
		}
		rc.part.wg.Done()
		d.work.Done()
	}()
	n := rc.n
	if n.Expired(time.Now()) {
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
	if !probe && b.cb.State() == gobreaker.StateOpen {
		d.revert(rc)
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
	id, err := b.cb.Execute(func() (string, error) { return d.prov.Send(ctx, provider.FromNotification(n)) })
	done := time.Now()
	var o outcome
	switch {
	case err == nil:
		o = outcome{state: dedupe.StateAccepted, attempt: rc.attempt, at: done, providerID: id}
		span.SetAttributes(attribute.String("wanotify.provider_message_id", id))
		d.met.sends.Add(context.Background(), 1, metric.WithAttributes(attribute.String("outcome", "accepted"), attribute.String("error_code", "")))
	case rejected(err):
		// The breaker refused: nothing was sent and no attempt is spent.
		span.SetAttributes(attribute.Bool("wanotify.breaker_rejected", true))
		span.End()
		d.revert(rc)
		d.park(b, rc)
		return
	default:
		pe := provider.AsError(err)
		info := pe.Info()
		d.met.sends.Add(context.Background(), 1, metric.WithAttributes(attribute.String("outcome", pe.Class.String()), attribute.String("error_code", pe.Code)))
		span.RecordError(err)
		span.SetStatus(codes.Error, pe.Code)
		o = outcome{attempt: rc.attempt, at: done, err: &info, class: pe.Class.String(), failedAt: done}
		switch {
		case pe.Ambiguous() && !provider.DeduplicatesByKey(d.prov) && d.cfg.OutcomeUnknownPolicy != PolicyResend:
			// No answer came back, so the provider may have sent the
			// message; without provider-side deduplication by key a
			// retry could send it twice (promise 2). Reported, not resent.
			o.state = dedupe.StateOutcomeUnknown
			o.err = &contract.ErrorInfo{Code: pe.Code, Retryable: false,
				Message: "no answer from the provider, which may have sent the message: " + info.Message}
		case pe.Class == provider.Permanent:
			o.state = dedupe.StateFailed
		case pe.Class == provider.Deferred && rc.attempt < maxAttempts:
			// The recipient cannot get this now (131049, marketing cap):
			// the short tiers would only fail again, so it goes to the
			// last tier. Interim: the ~24 h deferral the table's
			// RetryAfter asks for comes with the scheduling work (issue
			// 19); held here, it would pause a retry partition for a day.
			o.state = dedupe.StateRetrying
			o.due = done.Add(d.cfg.RetryDelays[len(d.cfg.RetryDelays)-1])
		case pe.Class == provider.AccountFault, b.cb.State() != gobreaker.StateClosed:
			// The provider is down (this failure opened the breaker, or
			// came in while it was open), or the sender's account is
			// (token, payment, policy block: counted against the sender's
			// breaker, so it opens after a few): an outage, not this
			// notification's fault. The attempt is not counted and
			// nothing is failed or dead-lettered. Interim for account
			// faults until the sender halt of issue 19 replaces it.
			span.SetAttributes(attribute.Bool("wanotify.outage", true))
			span.End()
			d.revert(rc)
			d.park(b, rc)
			return
		case rc.attempt < maxAttempts:
			o.state = dedupe.StateRetrying
			delay := d.cfg.RetryDelays[rc.attempt-1]
			if pe.RetryAfter > delay {
				delay = pe.RetryAfter
			}
			o.due = done.Add(delay)
		default:
			o.state = dedupe.StateDeadLettered
		}
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

// revert undoes rc's pending marker after a call that did not happen.
func (d *Dispatcher) revert(rc *rec) {
	var rec *kgo.Record
	if rc.hasPrev {
		rec = &kgo.Record{Topic: topics.Dedupe, Partition: rc.r.Partition, Key: rc.hash.RecordKey(), Value: dedupe.Encode(rc.prev)}
	} else {
		rec = &kgo.Record{Topic: topics.Dedupe, Partition: rc.r.Partition, Key: rc.hash.RecordKey()}
	}
	if err := d.produceMarker(rec, 5); err != nil {
		d.log.Error("dedupe marker not reverted", "notification_id", rc.n.ID, "err", err)
	}
	if rc.hasPrev {
		rc.part.store.Put(rc.prev, true)
	} else {
		rc.part.store.Delete(rc.hash)
	}
}

// writeMarker writes rc's dedupe state synchronously (acks=all, outside
// any transaction: an aborted transaction must not take it along) and
// then records it in memory.
func (d *Dispatcher) writeMarker(rc *rec, o outcome, tries int) error {
	created := uint32(time.Now().Unix())
	if rc.hasPrev && rc.prev.Origin == rc.origin.Offset && rc.prev.Created != 0 {
		created = rc.prev.Created
	}
	r := dedupe.Record{
		Hash:  rc.hash,
		Entry: dedupe.Entry{Origin: rc.origin.Offset, Fingerprint: dedupe.Fold(contract.Fingerprint(rc.n)), Created: created, State: o.state, Attempt: uint8(rc.attempt)},
		Detail: dedupe.Detail{NotificationID: rc.n.ID, ProviderMessageID: o.providerID, ErrorClass: o.class,
			FailedAt: o.failedAt, DueAt: o.due, UpdatedAt: o.at, SourceTopic: rc.r.Topic, SourceOffset: rc.r.Offset},
	}
	if o.err != nil {
		r.ErrorCode, r.ErrorMessage = o.err.Code, truncate(o.err.Message, 512)
	}
	err := d.produceMarker(&kgo.Record{Topic: topics.Dedupe, Partition: rc.r.Partition, Key: rc.hash.RecordKey(), Value: dedupe.Encode(r)}, tries)
	if err != nil {
		return err
	}
	rc.part.store.Put(r, true)
	return nil
}

func (d *Dispatcher) produceMarker(r *kgo.Record, tries int) error {
	var err error
	for i := 0; i < tries; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), d.cfg.MarkerTimeout)
		err = d.clog.ProduceSync(ctx, r).FirstErr()
		cancel()
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("write dedupe marker: %w", err)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// tierFor picks the retry topic after a failed attempt: tier n after
// attempt n, or a later tier when the wait is longer than the tier's delay
// (a Retry-After), so the records of one retry partition become due in
// about the order they were written and a long wait does not hold up the
// shorter ones behind it.
func (d *Dispatcher) tierFor(attempt int, wait time.Duration) int {
	tier := min(max(attempt-1, 0), len(d.cfg.RetryDelays)-1)
	for tier < len(d.cfg.RetryDelays)-1 && d.cfg.RetryDelays[tier] < wait {
		tier++
	}
	return tier
}

// outputs renders the records an outcome produces: the status event and,
// for a retry or a dead letter, the original record on the retry or DLQ
// topic with its failure context. State none stands for a duplicate.
func (d *Dispatcher) outputs(rc *rec, o outcome) []*kgo.Record {
	n := rc.n
	ctx := rc.ctx
	if ctx == nil {
		ctx = rc.r.Context
	}
	ev := contract.StatusEvent{
		NotificationID: n.ID, Provider: d.prov.Name(), Tenant: n.Tenant, EventType: n.EventType, Sender: n.Sender,
		Recipient: n.Recipient, Attempt: o.attempt, Error: o.err, OccurredAt: o.at.UTC(), Emitter: contract.EmitterDispatcher,
	}
	var out []*kgo.Record
	switch o.state {
	case dedupe.StateNone:
		ev.Status, ev.Attempt = contract.StatusDuplicate, 0
		// One event per duplicate request, so each is counted downstream.
		ev.EventID = contract.DispatcherEventID(n.ID, ev.Status, 0) + "@" + shortTopic(rc.r.Topic) + "-" +
			strconv.Itoa(int(rc.r.Partition)) + "-" + strconv.FormatInt(rc.r.Offset, 10)
	case dedupe.StateAccepted:
		ev.Status, ev.ProviderMessageID = contract.StatusAccepted, o.providerID
	case dedupe.StateFailed:
		ev.Status = contract.StatusFailed
	case dedupe.StateOutcomeUnknown:
		ev.Status = contract.StatusOutcomeUnknown
	case dedupe.StateExpired:
		ev.Status, ev.Attempt = contract.StatusExpired, o.attempt-1
	case dedupe.StateRetrying:
		tier := topics.RetryTiers[d.tierFor(o.attempt, o.due.Sub(o.failedAt))]
		out = append(out, d.failureRecord(rc, tier, o, ""))
		if o.class == envelope.ClassOutcomeUnknown {
			// Parked while a webhook may still tell what happened
			// (unknown.go): to everyone else the outcome is unknown.
			ev.Status = contract.StatusOutcomeUnknown
			break
		}
		ev.Status = contract.StatusRetryScheduled
		due := o.due.UTC()
		ev.RetryTier, ev.DueAt = tier, &due
		d.met.retries.Add(context.Background(), 1, metric.WithAttributes(attribute.String("tier", tier)))
	case dedupe.StateDeadLettered:
		ev.Status = contract.StatusDeadLettered
		out = append(out, d.failureRecord(rc, topics.DLQ, o, envelope.ReasonExhausted))
		d.met.dlq.Add(context.Background(), 1, metric.WithAttributes(attribute.String("reason", envelope.ReasonExhausted)))
	default:
		d.log.Error("no outputs for state", "state", o.state.String(), "notification_id", n.ID)
		return nil
	}
	if ev.EventID == "" {
		ev.EventID = contract.DispatcherEventID(n.ID, ev.Status, ev.Attempt)
	}
	v, err := ev.Encode()
	if err != nil {
		// Every field comes from a validated notification; a failure
		// here is a bug, and the record must not vanish silently.
		d.log.Error("status event invalid", "notification_id", n.ID, "err", err)
	} else {
		out = append(out, &kgo.Record{Topic: topics.Status, Partition: rc.r.Partition, Key: []byte(n.Recipient), Value: v, Context: ctx})
		d.met.statuses.Add(context.Background(), 1, metric.WithAttributes(attribute.String("status", string(ev.Status))))
	}
	return out
}

func shortTopic(t string) string {
	switch t {
	case topics.Requested:
		return "req"
	case topics.Retry5s:
		return "r1"
	case topics.Retry15s:
		return "r2"
	case topics.Retry45s:
		return "r3"
	}
	return t
}

// failureRecord is rc's original record on topic with its failure
// context in headers.
func (d *Dispatcher) failureRecord(rc *rec, topic string, o outcome, reason string) *kgo.Record {
	f := envelope.Failure{
		Attempt: o.attempt, Origin: rc.origin, Class: o.class, FailedAt: o.failedAt, DLQReason: reason,
		NotificationID: rc.n.ID, Tenant: rc.n.Tenant, EventType: rc.n.EventType, ReplayedFrom: -1,
	}
	if reason == "" {
		f.DueAt = o.due
	}
	if f.FailedAt.IsZero() {
		f.FailedAt = o.at
	}
	if o.err != nil {
		f.Error = *o.err
	} else {
		f.Error = contract.ErrorInfo{Code: "unknown", Retryable: true}
	}
	f.FirstFailedAt = f.FailedAt
	if rc.env != nil {
		if !rc.env.FirstFailedAt.IsZero() {
			f.FirstFailedAt = rc.env.FirstFailedAt
		} else if !rc.env.FailedAt.IsZero() {
			f.FirstFailedAt = rc.env.FailedAt
		}
		f.ReplayCount = rc.env.ReplayCount
	}
	return d.envelopeRecord(rc, topic, &f)
}

func (d *Dispatcher) envelopeRecord(rc *rec, topic string, f *envelope.Failure) *kgo.Record {
	hs, err := f.Headers()
	if err != nil {
		// The headers failed their schema (a value out of range): keep
		// the record flowing with the error recorded, never drop it.
		d.log.Error("failure headers invalid", "topic", topic, "err", err)
		f.Error.Message = truncate(f.Error.Message, 200)
		f.NotificationID, f.Tenant, f.EventType = truncate(f.NotificationID, 64), truncate(f.Tenant, 64), truncate(f.EventType, 64)
		hs, _ = f.Headers()
	}
	ctx := rc.ctx
	if ctx == nil {
		ctx = rc.r.Context
	}
	return &kgo.Record{Topic: topic, Partition: rc.r.Partition, Key: rc.r.Key, Value: rc.r.Value,
		Headers: append(envelope.Strip(rc.r.Headers), hs...), Context: ctx}
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// poison sends an undecodable or invalid record to the DLQ at once, with
// the reason; its partition keeps flowing.
func (d *Dispatcher) poison(rc *rec, cause error) {
	r := rc.r
	var loose struct {
		ID        string `json:"notification_id"`
		Tenant    string `json:"tenant"`
		EventType string `json:"event_type"`
		Recipient string `json:"recipient"`
		Sender    string `json:"sender"`
	}
	_ = json.Unmarshal(r.Value, &loose)
	now := time.Now().UTC()
	f := envelope.Failure{
		Origin: envelope.Origin{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset},
		Error:  contract.ErrorInfo{Code: "invalid_record", Message: truncate(cause.Error(), 2048), Retryable: false},
		Class:  envelope.ClassPoison, FailedAt: now, FirstFailedAt: now, DLQReason: envelope.ReasonPoison,
		NotificationID: truncate(loose.ID, 64), Tenant: truncate(loose.Tenant, 64), EventType: truncate(loose.EventType, 64),
		ReplayedFrom: -1,
	}
	if rc.env != nil {
		f.Attempt, f.Origin = rc.env.Attempt, rc.env.Origin
	}
	rc.n = &contract.Notification{ID: f.NotificationID, Tenant: f.Tenant, EventType: f.EventType, Recipient: loose.Recipient, Sender: truncate(loose.Sender, 64)}
	out := []*kgo.Record{d.envelopeRecord(rc, topics.DLQ, &f)}
	d.met.dlq.Add(context.Background(), 1, metric.WithAttributes(attribute.String("reason", envelope.ReasonPoison)))
	recipient := loose.Recipient
	if !e164.MatchString(recipient) {
		recipient = string(r.Key)
	}
	if f.NotificationID != "" && e164.MatchString(recipient) {
		ev := contract.StatusEvent{
			EventID:        contract.DispatcherEventID(f.NotificationID, contract.StatusDeadLettered, 0) + "@" + shortTopic(r.Topic) + "-" + strconv.Itoa(int(r.Partition)) + "-" + strconv.FormatInt(r.Offset, 10),
			NotificationID: f.NotificationID, Tenant: f.Tenant, EventType: f.EventType, Recipient: recipient,
			Status: contract.StatusDeadLettered, Error: &f.Error, OccurredAt: now, Emitter: contract.EmitterDispatcher,
		}
		if v, err := ev.Encode(); err == nil {
			out = append(out, &kgo.Record{Topic: topics.Status, Partition: r.Partition, Key: []byte(recipient), Value: v, Context: r.Context})
		}
	}
	d.log.Warn("poison record dead-lettered", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "reason", truncate(cause.Error(), 300))
	d.finish(rc, out)
}

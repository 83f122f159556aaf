package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/dispatcher/dedupe"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/topics"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The settle stage: markers in the dedupe changelog, and the records an
// outcome produces (status events, retry and DLQ records). See the package
// documentation, stage 5.

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
	if rc.hasPrev && rc.prev.Origin == originKey(rc.origin) && rc.prev.Created != 0 {
		created = rc.prev.Created
	}
	r := dedupe.Record{
		Hash:  rc.hash,
		Entry: dedupe.Entry{Origin: originKey(rc.origin), Fingerprint: dedupe.Fold(contract.Fingerprint(rc.n)), Created: created, State: o.state, Attempt: uint8(rc.attempt)},
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
		NotificationID: n.ID, Provider: d.providerOf(rc, o.route), Tenant: n.Tenant, EventType: n.EventType, Sender: n.Sender,
		Recipient: n.Recipient, Attempt: o.attempt, Error: o.err, OccurredAt: o.at.UTC(), Emitter: contract.EmitterDispatcher,
		Route: o.route,
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
		tier := d.retryTopic(rc, o)
		out = append(out, d.failureRecord(rc, tier, o, ""))
		if o.class == envelope.ClassOutcomeUnknown {
			// Parked while a webhook may still tell what happened
			// (unknown.go): to everyone else the outcome is unknown.
			ev.Status = contract.StatusOutcomeUnknown
			break
		}
		if tier == topics.Held {
			// Its sender is halted (halts.go): one event per notification
			// the halt touches, not one per move within notifications.held.
			if rc.r.Topic == topics.Held {
				return out
			}
			ev.Status, ev.RetryTier = contract.StatusRetryScheduled, tier
			ev.EventID = contract.DispatcherEventID(n.ID, ev.Status, ev.Attempt) + "@held"
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
		f.Deferrals = rc.env.Deferrals
	}
	if topic == topics.Deferred {
		f.Deferrals++
	}
	r := d.envelopeRecord(rc, topic, &f)
	r.Headers = d.withHistory(rc, r.Headers, o.attempt)
	return r
}

// retryTopic is where a retrying outcome waits: notifications.deferred for
// a long deferral (the recipient cannot get it now), else the retry tier
// for its attempt and wait (tierFor).
func (d *Dispatcher) retryTopic(rc *rec, o outcome) string {
	switch {
	case o.class == envelope.ClassDeferred && d.cfg.DeferMax > 0:
		return topics.Deferred
	case o.class == envelope.ClassAccountFault:
		return topics.Held
	}
	return topics.RetryTiers[d.tierFor(o.attempt-rc.deferrals(), o.due.Sub(o.failedAt))]
}

// deferrals is how often rc's notification was deferred before.
func (rc *rec) deferrals() int {
	if rc.env == nil {
		return 0
	}
	return rc.env.Deferrals
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

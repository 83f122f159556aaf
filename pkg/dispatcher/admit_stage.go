package dispatcher

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/dispatcher/dedupe"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/topics"
)

// The admit stage: what a record is (poison, duplicate, re-consumed,
// interrupted, refused, expired) is decided here, before it reaches its
// sender's scheduler (schedule.go). See the package documentation, stage 2.

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
	route      string // the route that made the call (contract.Route*), for senders with a failover
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
		same := e.Origin == originKey(rc.origin)
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
			case d.cfg.OutcomeUnknownPolicy == PolicyVerify && rc.attempt-rc.deferrals() < maxAttempts && d.cfg.Unknown.Check(n, time.Now()):
				d.awaitEvidence(rc, det)
				return
			default:
				d.countUnknown("reported")
				d.settle(rc, outcome{state: dedupe.StateOutcomeUnknown, attempt: rc.attempt, at: time.Now(),
					err: &contract.ErrorInfo{Code: "outcome_unknown", Message: "the dispatcher stopped during the provider call", Retryable: false}})
				return
			}
		case int(e.Attempt) == rc.attempt:
			d.rederived.Add(1)
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
	rc.lane = laneOf(n, rc.origin.Topic)
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

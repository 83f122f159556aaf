package dispatcher

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/dispatcher/dedupe"
	"github.com/wanotify/wanotify/pkg/envelope"
)

// How the verify policy (package unknown) joins a record's way:
//
//  1. admit: a record found with a pending marker for its own attempt
//     whose notification the policy would resend is not settled
//     outcome_unknown; awaitEvidence parks it on the last retry tier,
//     due when the window has passed, with status outcome_unknown
//     meanwhile (the same attempt is not spent again: the parked record
//     asks for the next one).
//  2. When it falls due, resolveUnknown reads the notification's status
//     partition for a webhook naming it. One settles the notification as
//     accepted with the provider's message id, sending nothing. None lets
//     it go on to its sender's scheduler as the next attempt. A partition
//     that cannot be read is reported outcome_unknown: no evidence is
//     never taken for evidence of absence.

// scanTimeout bounds one read of a status partition; scanTries is how
// often it is tried before the notification is reported.
const (
	scanTimeout = 30 * time.Second
	scanTries   = 3
)

// awaitEvidence parks rc, whose call was interrupted, until the window
// for its webhook has passed. det is the pending marker's detail (its
// time is when the call started).
func (d *Dispatcher) awaitEvidence(rc *rec, det *dedupe.Detail) {
	now := time.Now()
	since := now
	if det != nil && !det.UpdatedAt.IsZero() && det.UpdatedAt.Before(now) {
		since = det.UpdatedAt
	}
	d.countUnknown("checked")
	d.log.Info("interrupted provider call: waiting for a webhook before resending",
		"notification_id", rc.n.ID, "attempt", rc.attempt, "window", d.cfg.Unknown.Window.String())
	d.settle(rc, outcome{state: dedupe.StateRetrying, attempt: rc.attempt, at: now, class: envelope.ClassOutcomeUnknown,
		err:      &contract.ErrorInfo{Code: "outcome_unknown", Message: "the dispatcher stopped during the provider call; waiting for a status webhook before resending", Retryable: true},
		failedAt: since, due: since.Add(d.cfg.Unknown.Window)})
}

// resolveUnknown handles a parked record that fell due. It reports
// whether rc is finished; false sends it.
func (d *Dispatcher) resolveUnknown(rc *rec) bool {
	since := rc.env.FailedAt
	var err error
	for try := 0; try < scanTries; try++ {
		if try > 0 {
			select {
			case <-time.After(time.Duration(try) * time.Second):
			case <-rc.part.ctx.Done():
				return true // handed back with its partition
			}
		}
		ctx, cancel := context.WithTimeout(rc.part.ctx, scanTimeout)
		ev, found, ferr := d.finder.Find(ctx, rc.r.Partition, since, rc.n.ID)
		cancel()
		if rc.part.ctx.Err() != nil {
			return true
		}
		if ferr == nil && found {
			d.countUnknown("webhook")
			d.log.Info("interrupted provider call: a webhook shows the provider took it",
				"notification_id", rc.n.ID, "status", string(ev.Status), "provider_message_id", ev.ProviderMessageID)
			d.settle(rc, outcome{state: dedupe.StateAccepted, attempt: rc.attempt, at: time.Now(), providerID: ev.ProviderMessageID})
			return true
		}
		if ferr == nil {
			if rc.n.Expired(time.Now()) {
				// Too late to be of use, and not known to be unsent.
				break
			}
			d.countUnknown("resent")
			d.log.Info("interrupted provider call: no webhook within the window; sending again",
				"notification_id", rc.n.ID, "attempt", rc.attempt)
			return false
		}
		err = ferr
		d.log.Warn("status partition not read; cannot tell whether an interrupted call went out",
			"notification_id", rc.n.ID, "partition", rc.r.Partition, "err", err)
	}
	d.countUnknown("reported")
	msg := "the dispatcher stopped during the provider call, and no webhook came within the window"
	if err != nil {
		msg = "the dispatcher stopped during the provider call, and the status topic could not be read: " + err.Error()
	}
	d.settle(rc, outcome{state: dedupe.StateOutcomeUnknown, attempt: rc.attempt, at: time.Now(),
		err: &contract.ErrorInfo{Code: "outcome_unknown", Message: truncate(msg, 512), Retryable: false}})
	return true
}

// confirmAccepted settles a parked record whose interrupted call is known
// (from the changelog) to have been accepted after all: with the message
// id of its webhook when there is one, else it is left as it is (its
// status outcome_unknown gives way to the webhook in ClickHouse when that
// arrives). It never sends.
func (d *Dispatcher) confirmAccepted(rc *rec) {
	ctx, cancel := context.WithTimeout(rc.part.ctx, scanTimeout)
	ev, found, err := d.finder.Find(ctx, rc.r.Partition, rc.env.FailedAt, rc.n.ID)
	cancel()
	if rc.part.ctx.Err() != nil {
		return
	}
	if err == nil && found {
		d.countUnknown("webhook")
		d.settle(rc, outcome{state: dedupe.StateAccepted, attempt: rc.attempt, at: time.Now(), providerID: ev.ProviderMessageID})
		return
	}
	d.log.Info("interrupted provider call was accepted by another instance; no webhook yet",
		"notification_id", rc.n.ID, "attempt", rc.attempt)
	d.finish(rc, nil)
}

func (d *Dispatcher) countUnknown(result string) {
	if d.met != nil {
		d.met.unknown.Add(context.Background(), 1, metric.WithAttributes(attribute.String("result", result)))
	}
}

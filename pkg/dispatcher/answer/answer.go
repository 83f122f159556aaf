// Package answer decides what a provider's answer means for a record: the
// rule between the call and the settle stage. It is pure: the dispatcher
// makes the call, asks Judge, and carries out the decision (records the
// outcome, or parks the record without spending its attempt).
package answer

import (
	"errors"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/dispatcher/dedupe"
	"github.com/wanotify/wanotify/pkg/provider"
)

// Action is what the dispatcher does with the record.
type Action int

const (
	// Settle records State: accepted, failed, retrying (Due), dead-lettered
	// or outcome unknown.
	Settle Action = iota
	// Park keeps the record, with its attempt not spent, until the
	// sender's breaker lets calls through again: nothing was sent, or the
	// provider (or the sender's account) is down, which is not this
	// notification's fault.
	Park
	// Halt halts the sender: its account is at fault (token, payment,
	// policy block). The record waits with its attempt not spent, and so
	// does every other record of the sender until it runs again.
	Halt
)

func (a Action) String() string {
	switch a {
	case Park:
		return "park"
	case Halt:
		return "halt"
	}
	return "settle"
}

// Policy is what the answers are judged against.
type Policy struct {
	// Delays are the retry tiers' delays; attempt n failing goes to tier
	// n (1-based), so the last attempt is len(Delays)+1.
	Delays []time.Duration
	// Keyed reports that the provider deduplicates by the request's
	// idempotency key, so a call without an answer may be retried.
	Keyed bool
	// Resend retries a call without an answer even when the provider does
	// not deduplicate (outcome-unknown policy "resend").
	Resend bool
	// DeferDelay is how long a notification the recipient cannot get now
	// (class Deferred: 131049) waits on notifications.deferred before it
	// is tried again, without spending an attempt; DeferMax is how often
	// (then it is dead-lettered). DeferMax 0 sends such a notification to
	// the last retry tier instead.
	DeferDelay time.Duration
	DeferMax   int
}

// MaxAttempts is the first attempt plus one per retry tier.
func (p Policy) MaxAttempts() int { return 1 + len(p.Delays) }

// Call is one provider call's result.
type Call struct {
	Attempt int
	// Deferrals is how often the notification was deferred before: those
	// attempts are not counted as spent.
	Deferrals int
	// Expires is the notification's expiry (zero: none).
	Expires time.Time
	// ID is the provider's message id of an accepted call.
	ID  string
	Err error
	// At is when the answer came.
	At time.Time
	// Breaker is the sender's breaker state after the call.
	Breaker gobreaker.State
}

// Decision is what to do with the record.
type Decision struct {
	Action Action
	State  dedupe.State
	// Due is when a retrying record is due.
	Due time.Time
	// Err is the status event's error (nil for accepted).
	Err *contract.ErrorInfo
	// Class is the error's class name (provider.Class.String()).
	Class string
	// Code is the provider's error code ("" for accepted).
	Code string
	// Deferred reports a retry on notifications.deferred (Due is after
	// DeferDelay) rather than on a retry tier.
	Deferred bool
}

// BreakerRefused reports whether err is the sender's breaker refusing the
// call: nothing reached the provider.
func BreakerRefused(err error) bool {
	return errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)
}

// Judge decides what c means for its record.
func (p Policy) Judge(c Call) Decision {
	if c.Err == nil {
		return Decision{Action: Settle, State: dedupe.StateAccepted}
	}
	if BreakerRefused(c.Err) {
		// The breaker refused: nothing was sent.
		return Decision{Action: Park}
	}
	pe := provider.AsError(c.Err)
	info := pe.Info()
	d := Decision{Err: &info, Class: pe.Class.String(), Code: pe.Code}
	last := c.Attempt-c.Deferrals >= p.MaxAttempts()
	switch {
	case pe.Ambiguous() && !p.Keyed && !p.Resend:
		// No answer came back, so the provider may have sent the
		// message; without provider-side deduplication by key a retry
		// could send it twice (promise 2). Reported, not resent.
		d.State = dedupe.StateOutcomeUnknown
		d.Err = &contract.ErrorInfo{Code: pe.Code, Retryable: false,
			Message: "no answer from the provider, which may have sent the message: " + info.Message}
	case pe.Class == provider.Permanent:
		d.State = dedupe.StateFailed
	case pe.Class == provider.Deferred && p.DeferMax > 0 && c.Deferrals < p.DeferMax:
		// The recipient cannot get this now (131049, marketing cap): the
		// short tiers would only fail again. It waits a long time on
		// notifications.deferred, in Kafka, and the attempt is not
		// counted; a notification that expires before then is expired.
		d.Due = c.At.Add(p.DeferDelay)
		if !c.Expires.IsZero() && c.Expires.Before(d.Due) {
			d.State, d.Due = dedupe.StateExpired, time.Time{}
			break
		}
		d.State, d.Deferred = dedupe.StateRetrying, true
	case pe.Class == provider.Deferred && p.DeferMax > 0:
		// Deferred as often as allowed: the short tiers would only fail
		// again. Dead-lettered, so it can be replayed.
		d.State = dedupe.StateDeadLettered
	case pe.Class == provider.Deferred && !last:
		// Without long deferrals: the last tier, the longest wait there is.
		d.State = dedupe.StateRetrying
		d.Due = c.At.Add(p.Delays[len(p.Delays)-1])
	case pe.Class == provider.AccountFault:
		// The sender's account is at fault (token, payment, policy
		// block): the sender is halted, not this notification failed.
		d.Action = Halt
	case c.Breaker != gobreaker.StateClosed:
		// The provider is down (this failure opened the breaker, or came
		// in while it was open): an outage, not this notification's
		// fault. The attempt is not counted and nothing is failed or
		// dead-lettered.
		d.Action = Park
	case !last:
		d.State = dedupe.StateRetrying
		delay := p.Delays[c.Attempt-c.Deferrals-1]
		if pe.RetryAfter > delay {
			delay = pe.RetryAfter
		}
		d.Due = c.At.Add(delay)
	default:
		d.State = dedupe.StateDeadLettered
	}
	return d
}

// Package unknown resolves notifications whose provider call was
// interrupted: the dispatcher died after it wrote the call's pending marker
// and before it learnt the answer, so the provider may or may not have
// taken the message.
//
// Two facts can settle such a notification without guessing:
//
//   - a status webhook that names it (the dispatcher sends the
//     notification id as biz_opaque_callback_data, and the webhook
//     receiver writes every status to notifications.status, keyed and so
//     partitioned by recipient like the notification itself): the
//     provider took the message;
//   - no such webhook within a window long enough for the provider's
//     "sent" status to have arrived: the provider very probably did not.
//
// Policy says which notifications may be sent again on the second fact
// (by default OTPs, whose loss costs a user a login while a second copy
// costs nothing, and only while their ttl is still ahead); Finder looks for
// the first. Everything else is reported outcome_unknown, as before, and a
// late webhook still shows in ClickHouse, where any evidence of a send
// outranks outcome_unknown.
package unknown

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
)

// Policy decides which interrupted notifications are checked and resent.
type Policy struct {
	// Window is how long after the interrupted call the dispatcher waits
	// for a status webhook before it resends. It must cover the
	// provider's usual delay to "sent" plus the webhook's own retries
	// through a short outage of the receiver or Kafka.
	Window time.Duration
	// ResendEventTypes are event type patterns (path.Match syntax, e.g.
	// "otp" or "auth.*") of notifications that are resent when no webhook
	// came within Window. Empty: none is, every interrupted call is
	// reported outcome_unknown.
	ResendEventTypes []string
}

// DefaultWindow is Policy.Window's default: Meta's "sent" status usually
// follows within seconds, and 45 s also covers the webhook's redelivery
// across a short outage of the receiver or Kafka. It equals the last retry
// tier's delay, the topic the check waits on, so a check never holds up
// that tier's other records.
const DefaultWindow = 45 * time.Second

// DefaultResendEventTypes is Policy.ResendEventTypes' default.
var DefaultResendEventTypes = []string{"otp", "otp.*", "auth.*", "authentication"}

// Validate names the first bad field.
func (p Policy) Validate() error {
	var errs []error
	if p.Window <= 0 {
		errs = append(errs, errors.New("window must be positive"))
	}
	for _, pat := range p.ResendEventTypes {
		if strings.TrimSpace(pat) == "" {
			errs = append(errs, errors.New("an event type pattern is empty"))
			continue
		}
		if _, err := path.Match(pat, ""); err != nil {
			errs = append(errs, fmt.Errorf("event type pattern %q: %w", pat, err))
		}
	}
	return errors.Join(errs...)
}

// Resendable reports whether notifications of eventType may be resent when
// no webhook shows that their interrupted call went out.
func (p Policy) Resendable(eventType string) bool {
	for _, pat := range p.ResendEventTypes {
		if ok, _ := path.Match(pat, eventType); ok {
			return true
		}
	}
	return false
}

// Check reports whether n, interrupted at now, is worth checking: its
// event type may be resent, and it is still useful once the window has
// passed (no expiry, or an expiry after the check).
func (p Policy) Check(n *contract.Notification, now time.Time) bool {
	if !p.Resendable(n.EventType) {
		return false
	}
	return n.ExpiresAt == nil || n.ExpiresAt.After(now.Add(p.Window))
}

// Evidence is what a status webhook told of a notification.
type Evidence struct {
	Status            contract.Status
	ProviderMessageID string
	OccurredAt        time.Time
}

// Finder looks for a status webhook naming a notification.
//
// Find reads the given partition of notifications.status from the first
// record written at or after since up to the end the partition had when
// Find was called, and returns the first webhook status event (emitter
// "webhook") whose notification id is notificationID. found is false when
// there is none. An error means the partition could not be read to its
// end: the caller must not conclude that no webhook came.
type Finder interface {
	Find(ctx context.Context, partition int32, since time.Time, notificationID string) (ev Evidence, found bool, err error)
}

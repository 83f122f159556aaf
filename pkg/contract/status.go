package contract

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/wanotify/wanotify/schemas"
)

// Status is a notification's state as recorded on notifications.status.
type Status string

// Dispatcher-emitted statuses.
const (
	StatusAccepted       Status = "accepted"        // provider took the message and returned its id
	StatusRetryScheduled Status = "retry_scheduled" // a transient failure; waiting on a retry topic
	StatusFailed         Status = "failed"          // permanent error; terminal
	StatusDeadLettered   Status = "dead_lettered"   // attempts exhausted or poison; terminal
	StatusDuplicate      Status = "duplicate"       // idempotency key seen before; not sent; terminal
	StatusOutcomeUnknown Status = "outcome_unknown" // a crash interrupted the provider call; terminal under the default policy
	StatusExpired        Status = "expired"         // past expires_at; not sent; terminal
)

// Webhook-emitted statuses.
const (
	StatusSent      Status = "sent"
	StatusDelivered Status = "delivered"
	StatusRead      Status = "read"
)

// Statuses lists every status in progress order.
var Statuses = []Status{StatusDuplicate, StatusRetryScheduled, StatusOutcomeUnknown, StatusExpired, StatusAccepted,
	StatusSent, StatusDelivered, StatusRead, StatusDeadLettered, StatusFailed}

// Rank orders statuses by progress; it is the one ordering of the
// pipeline (the sink stores it as notification_events.status_rank, so the
// numbers must not change). A later event only replaces the current state
// if its rank is higher, because webhooks arrive out of order and
// "delivered" may be skipped. Failure states outrank delivery progress:
// they are final. Three statuses rank below any evidence of a send,
// because they do not describe this notification's progress: a suppressed
// duplicate publish never hides what happened to the first one, an expiry
// only shows when no send happened, and outcome_unknown gives way to any
// evidence of a send. Unknown statuses rank 0.
func (s Status) Rank() int {
	switch s {
	case StatusDuplicate:
		return 5
	case StatusRetryScheduled:
		return 10
	case StatusOutcomeUnknown:
		return 15
	case StatusExpired:
		return 17
	case StatusAccepted:
		return 20
	case StatusSent:
		return 30
	case StatusDelivered:
		return 40
	case StatusRead:
		return 50
	case StatusDeadLettered:
		return 90
	case StatusFailed:
		return 100
	}
	return 0
}

// Terminal reports whether no further dispatcher work follows s.
func (s Status) Terminal() bool {
	switch s {
	case StatusAccepted, StatusSent, StatusDelivered, StatusRead, StatusFailed, StatusDeadLettered,
		StatusDuplicate, StatusOutcomeUnknown, StatusExpired:
		return true
	}
	return false
}

// Routes a StatusEvent may name.
const (
	RoutePrimary  = "primary"  // the sender's own route
	RouteFailover = "failover" // the sender's failover route (sender registry)
)

// Emitters.
const (
	EmitterDispatcher = "dispatcher"
	EmitterWebhook    = "webhook"
	EmitterIngest     = "ingest"
	EmitterNotifyctl  = "notifyctl"
)

// ErrorInfo describes why an attempt failed.
type ErrorInfo struct {
	Code      string `json:"code"`
	Message   string `json:"message,omitempty"`
	Retryable bool   `json:"retryable"`
}

// StatusEvent is the value of a notifications.status record.
type StatusEvent struct {
	SchemaVersion     int        `json:"schema_version"`
	EventID           string     `json:"event_id"`
	NotificationID    string     `json:"notification_id,omitempty"`
	ProviderMessageID string     `json:"provider_message_id,omitempty"`
	Provider          string     `json:"provider,omitempty"`
	Tenant            string     `json:"tenant,omitempty"`
	EventType         string     `json:"event_type,omitempty"`
	Sender            string     `json:"sender,omitempty"`
	Recipient         string     `json:"recipient"`
	Status            Status     `json:"status"`
	Attempt           int        `json:"attempt,omitempty"`
	RetryTier         string     `json:"retry_tier,omitempty"`
	DueAt             *time.Time `json:"due_at,omitempty"`
	Error             *ErrorInfo `json:"error,omitempty"`
	OccurredAt        time.Time  `json:"occurred_at"`
	Emitter           string     `json:"emitter"`
	Route             string     `json:"route,omitempty"` // RoutePrimary or RouteFailover: which of the sender's routes sent it; optional (empty: no send, or written before routes were recorded, which means the primary)
}

// Key is the record key: the recipient.
func (e *StatusEvent) Key() []byte { return []byte(e.Recipient) }

// DispatcherEventID is deterministic per notification, status and attempt,
// so a re-emitted event deduplicates downstream.
func DispatcherEventID(notificationID string, s Status, attempt int) string {
	return notificationID + "/" + string(s) + "/" + strconv.Itoa(attempt)
}

// WebhookEventID is deterministic per provider message and status, so a
// webhook the provider resends deduplicates downstream.
func WebhookEventID(providerMessageID string, s Status) string {
	return "wh/" + providerMessageID + "/" + string(s)
}

// Encode validates e against the schema and returns its JSON.
func (e *StatusEvent) Encode() ([]byte, error) {
	if e.SchemaVersion == 0 {
		e.SchemaVersion = SchemaVersion
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode status event: %w", err)
	}
	if statusFastPath && statusEventValid(e, encodedStatusEvent(e)) {
		return b, nil
	}
	if err := ValidateJSON(schemas.NotificationStatusV1, b); err != nil {
		return nil, err
	}
	return b, nil
}

// DecodeStatusEvent validates raw against the status schema and decodes it.
func DecodeStatusEvent(raw []byte) (*StatusEvent, error) {
	if statusFastPath {
		if e, ok := fastDecodeStatusEvent(raw); ok {
			return e, nil
		}
	}
	if err := ValidateJSON(schemas.NotificationStatusV1, raw); err != nil {
		return nil, err
	}
	var e StatusEvent
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, &ValidationError{Schema: schemas.NotificationStatusV1, Fields: []FieldError{{Reason: jsonErrorReason(err)}}}
	}
	if err := checkDecoded(schemas.NotificationStatusV1, &e, statusFastPath && statusEventValid(&e, encodedStatusEvent(&e))); err != nil {
		return nil, err
	}
	return &e, nil
}

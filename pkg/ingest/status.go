package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
)

// ErrNotFound is returned (or wrapped) by a StatusReader that has no
// notification with the id for the tenant.
var ErrNotFound = errors.New("notification not found")

// StatusReader reads a notification's current state and timeline from the
// communication logs.
//
// Notification must return only a notification of tenant: an id of
// another tenant is ErrNotFound, exactly like an unknown id, so one tenant
// cannot learn which ids another has. Any other error means the store
// could not answer (the caller answers 503). It must be safe for
// concurrent use.
type StatusReader interface {
	Notification(ctx context.Context, tenant, id string) (*View, error)
}

// StatusReaderFunc adapts a function to StatusReader.
type StatusReaderFunc func(ctx context.Context, tenant, id string) (*View, error)

// Notification calls f.
func (f StatusReaderFunc) Notification(ctx context.Context, tenant, id string) (*View, error) {
	return f(ctx, tenant, id)
}

// View is a notification as GET /v1/notifications/{id} shows it: the
// current state (the highest-ranked status so far, see
// contract.Status.Rank) and every status event in the order it occurred.
// The stored payload and the DLQ records' coordinates stay out of it: the
// first holds the unmasked number, the second is operators' business
// (notifyctl shows both).
type View struct {
	NotificationID    string              `json:"notification_id"`
	Tenant            string              `json:"tenant"`
	SourceService     string              `json:"source_service,omitempty"`
	EventType         string              `json:"event_type,omitempty"`
	IdempotencyKey    string              `json:"idempotency_key,omitempty"`
	Recipient         string              `json:"recipient,omitempty"` // masked in the answer
	Sender            string              `json:"sender,omitempty"`
	Template          string              `json:"template,omitempty"`
	TemplateLanguage  string              `json:"template_language,omitempty"`
	Status            string              `json:"status"`
	Provider          string              `json:"provider,omitempty"`
	ProviderMessageID string              `json:"provider_message_id,omitempty"`
	Attempts          int                 `json:"attempts"`
	Retries           int                 `json:"retries"`
	Duplicates        int                 `json:"duplicates"`
	Error             *contract.ErrorInfo `json:"error,omitempty"`
	CreatedAt         time.Time           `json:"created_at"`
	UpdatedAt         time.Time           `json:"updated_at"`
	ExpiresAt         *time.Time          `json:"expires_at,omitempty"`
	AcceptedAt        *time.Time          `json:"accepted_at,omitempty"`
	SentAt            *time.Time          `json:"sent_at,omitempty"`
	DeliveredAt       *time.Time          `json:"delivered_at,omitempty"`
	ReadAt            *time.Time          `json:"read_at,omitempty"`
	FailedAt          *time.Time          `json:"failed_at,omitempty"`
	DeadLetteredAt    *time.Time          `json:"dead_lettered_at,omitempty"`
	ExpiredAt         *time.Time          `json:"expired_at,omitempty"`
	Timeline          []TimelineEvent     `json:"timeline"`
}

// TimelineEvent is one status change of a notification.
type TimelineEvent struct {
	Status            string              `json:"status"`
	OccurredAt        time.Time           `json:"occurred_at"`
	Emitter           string              `json:"emitter,omitempty"`
	Attempt           int                 `json:"attempt,omitempty"`
	RetryTier         string              `json:"retry_tier,omitempty"`
	ProviderMessageID string              `json:"provider_message_id,omitempty"`
	Error             *contract.ErrorInfo `json:"error,omitempty"`
}

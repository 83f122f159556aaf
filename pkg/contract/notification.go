// Package contract defines the messages wanotify moves through Kafka: the
// requested notification, the status event and the failure envelope that
// travels in record headers on the retry and DLQ topics. The JSON Schema
// files in /schemas are the single source of truth; every decoder and
// encoder here returns only values those schemas accept. A fast path in Go
// (fastpath.go) accepts the documents it can prove valid without running
// the schema validator; everything else is judged by the validator.
package contract

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/wanotify/wanotify/schemas"
)

// SchemaVersion is the version of every payload this package writes.
const SchemaVersion = 1

// Template is a pre-approved WhatsApp message template.
type Template struct {
	Name       string   `json:"name"`
	Language   string   `json:"language"`
	Parameters []string `json:"parameters,omitempty"`
}

// Text is a free-form message body (only deliverable inside the 24 h
// customer service window).
type Text struct {
	Body       string `json:"body"`
	PreviewURL bool   `json:"preview_url,omitempty"`
}

// Notification is the value of a notifications.requested record.
type Notification struct {
	SchemaVersion  int        `json:"schema_version"`
	ID             string     `json:"notification_id"`
	IdempotencyKey string     `json:"idempotency_key"`
	Tenant         string     `json:"tenant"`
	SourceService  string     `json:"source_service"`
	EventType      string     `json:"event_type"`
	UserID         string     `json:"user_id,omitempty"`
	EventTime      *time.Time `json:"event_time,omitempty"`
	Recipient      string     `json:"recipient"`
	Sender         string     `json:"sender"`
	// Lane is the priority lane (package lanes: critical, transactional
	// or bulk); empty in records of producers that know no lanes, whose
	// lane consumers derive from the event type (lanes.Derive).
	Lane      string            `json:"lane,omitempty"`
	Template  *Template         `json:"template,omitempty"`
	Text      *Text             `json:"text,omitempty"`
	ExpiresAt *time.Time        `json:"expires_at,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// Key is the Kafka record key: the recipient, so one recipient's traffic
// stays in one partition number on every topic.
func (n *Notification) Key() []byte { return []byte(n.Recipient) }

// Expired reports whether the notification must no longer be sent at now.
func (n *Notification) Expired(now time.Time) bool {
	return n.ExpiresAt != nil && !now.Before(*n.ExpiresAt)
}

// Encode validates n against the schema and returns its JSON. The error
// is a *ValidationError naming each bad field.
func (n *Notification) Encode() ([]byte, error) {
	if n.SchemaVersion == 0 {
		n.SchemaVersion = SchemaVersion
	}
	b, err := json.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("encode notification: %w", err)
	}
	if notificationFastPath && notificationValid(n, encodedNotification(n)) {
		return b, nil
	}
	if err := ValidateJSON(schemas.NotificationRequestedV1, b); err != nil {
		return nil, err
	}
	return b, nil
}

// DecodeNotification validates raw against the notification schema and
// decodes it. The error is a *ValidationError naming each bad field.
func DecodeNotification(raw []byte) (*Notification, error) {
	if notificationFastPath {
		if n, ok := fastDecodeNotification(raw); ok {
			return n, nil
		}
	}
	if err := ValidateJSON(schemas.NotificationRequestedV1, raw); err != nil {
		return nil, err
	}
	var n Notification
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, &ValidationError{Schema: schemas.NotificationRequestedV1, Fields: []FieldError{{Reason: jsonErrorReason(err)}}}
	}
	if err := checkDecoded(schemas.NotificationRequestedV1, &n, notificationFastPath && notificationValid(&n, encodedNotification(&n))); err != nil {
		return nil, err
	}
	return &n, nil
}

// idNamespace scopes notification ids derived from idempotency keys.
var idNamespace = uuid.MustParse("3b0d6c2e-7f1a-4c39-9a55-1f0e5b8d2c41")

// NotificationID derives the notification id from the tenant and the
// idempotency key (UUIDv5), so the same request always gets the same id.
func NotificationID(tenant, idempotencyKey string) string {
	return uuid.NewSHA1(idNamespace, []byte(tenant+"\x00"+idempotencyKey)).String()
}

// DefaultIdempotencyKey is the key used when a caller supplies none: user
// id + event type + event timestamp.
func DefaultIdempotencyKey(userID, eventType string, eventTime time.Time) string {
	return userID + ":" + eventType + ":" + eventTime.UTC().Format(time.RFC3339Nano)
}

// IsText reports whether s may reach WhatsApp (or a log line, or an
// analyst's query) as it is: valid UTF-8, and no control character but
// newline and tab. Refused: NUL and the other C0 controls (carriage
// return too: WhatsApp breaks lines with newline), DEL and the C1
// controls (U+0080 to U+009F), none of which is meant to be seen, and
// invalid UTF-8, which would be sent as U+FFFD. It is the "text" rule of
// schemas/notification-requested.v1.json, which every free-form string
// of a notification follows.
func IsText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x20 && c < 0x7f, c == '\n', c == '\t':
			continue
		case c < 0x80:
			return false // C0 or DEL
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r >= 0x80 && r <= 0x9f {
			return false
		}
		i += size - 1
	}
	return true
}

// Package logstore reads the communication logs and delivery analytics the
// sink writes to ClickHouse (see pkg/sink/migrations for the model): one
// notification's current state with its timeline, for the ingest API's
// GET endpoint and the operator CLI, and delivery statistics over a time
// range. It only reads the views, never the sink's internal state tables,
// so what it answers is what an analyst querying ClickHouse sees.
package logstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/wanotify/wanotify/pkg/contract"
)

// ErrNotFound is returned when no notification matches (including one that
// exists for another tenant: its existence is not revealed).
var ErrNotFound = errors.New("logstore: notification not found")

// ErrInvalid is matched by errors about the caller's arguments.
var ErrInvalid = errors.New("logstore: invalid argument")

// Limits on what one View carries.
const (
	MaxTimeline    = 1000
	MaxDeadLetters = 100
)

// Store reads one database.
type Store struct {
	conn driver.Conn
	db   string
}

// New reads database over conn.
func New(conn driver.Conn, database string) *Store {
	return &Store{conn: conn, db: "`" + strings.NewReplacer("\\", "\\\\", "`", "\\`").Replace(database) + "`"}
}

// View is one notification as communication_logs has it, with its events.
type View struct {
	NotificationID    string              `json:"notification_id"`
	Tenant            string              `json:"tenant"`
	SourceService     string              `json:"source_service,omitempty"`
	EventType         string              `json:"event_type,omitempty"`
	Template          string              `json:"template,omitempty"`
	TemplateLanguage  string              `json:"template_language,omitempty"`
	Recipient         string              `json:"recipient"`
	Sender            string              `json:"sender,omitempty"`
	Provider          string              `json:"provider,omitempty"`
	ProviderMessageID string              `json:"provider_message_id,omitempty"`
	IdempotencyKey    string              `json:"idempotency_key,omitempty"`
	Status            string              `json:"status"`
	Error             *contract.ErrorInfo `json:"error,omitempty"`
	Payload           json.RawMessage     `json:"payload,omitempty"`
	Attempts          int                 `json:"attempts"`
	Retries           int                 `json:"retries"`
	Duplicates        int                 `json:"duplicates"`
	// Reattempted is true when the dispatcher worked on the notification
	// again after it had failed (a DLQ replay): Status and Error describe
	// that latest run.
	Reattempted      bool       `json:"reattempted,omitempty"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	RequestedAt      *time.Time `json:"requested_at,omitempty"`
	AcceptedAt       *time.Time `json:"accepted_at,omitempty"`
	SentAt           *time.Time `json:"sent_at,omitempty"`
	DeliveredAt      *time.Time `json:"delivered_at,omitempty"`
	ReadAt           *time.Time `json:"read_at,omitempty"`
	FailedAt         *time.Time `json:"failed_at,omitempty"`
	DeadLetteredAt   *time.Time `json:"dead_lettered_at,omitempty"`
	ExpiredAt        *time.Time `json:"expired_at,omitempty"`
	OutcomeUnknownAt *time.Time `json:"outcome_unknown_at,omitempty"`
	ExpiresAt        *time.Time `json:"expires_at,omitempty"`
	// Timeline is every distinct event, oldest first (at most MaxTimeline).
	// An event the dispatcher reported again in a later run (after a DLQ
	// replay) appears once per run.
	Timeline []Event `json:"timeline"`
	// DeadLetters are the notification's records in the DLQ topic.
	DeadLetters []DeadLetter `json:"dead_letters,omitempty"`
}

// Event is one entry of a notification's timeline.
type Event struct {
	EventID           string              `json:"event_id"`
	Status            string              `json:"status"`
	OccurredAt        time.Time           `json:"occurred_at"`
	Emitter           string              `json:"emitter,omitempty"`
	Attempt           int                 `json:"attempt,omitempty"`
	RetryTier         string              `json:"retry_tier,omitempty"`
	ProviderMessageID string              `json:"provider_message_id,omitempty"`
	Error             *contract.ErrorInfo `json:"error,omitempty"`
	Source            Source              `json:"source"`
}

// Source is where the sink read a record.
type Source struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// DeadLetter is a DLQ record of the notification.
type DeadLetter struct {
	Source      Source             `json:"source"`
	Reason      string             `json:"reason"`
	ErrorClass  string             `json:"error_class,omitempty"`
	Error       contract.ErrorInfo `json:"error"`
	Attempt     int                `json:"attempt"`
	Origin      Source             `json:"origin"`
	FailedAt    time.Time          `json:"failed_at"`
	ReplayCount int                `json:"replay_count,omitempty"`
}

// Notification returns notification id's current state and timeline.
// tenant limits the answer to that tenant's notifications; "" means any
// tenant (operators). It returns ErrNotFound when there is no such
// notification (for that tenant).
func (s *Store) Notification(ctx context.Context, tenant, id string) (*View, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: notification id is empty", ErrInvalid)
	}
	v, err := s.current(withParams(ctx, "id", id, "tenant", tenant))
	if err != nil {
		return nil, err
	}
	if v.Timeline, err = s.timeline(withParams(ctx, "id", id, "pmid", v.ProviderMessageID)); err != nil {
		return nil, err
	}
	if v.DeadLetters, err = s.deadLetters(withParams(ctx, "id", id)); err != nil {
		return nil, err
	}
	return v, nil
}

// withParams binds query parameters (name, value pairs); a query's
// parameters must all be bound by one call.
func withParams(ctx context.Context, kv ...string) context.Context {
	p := clickhouse.Parameters{}
	for i := 0; i+1 < len(kv); i += 2 {
		p[kv[i]] = kv[i+1]
	}
	return clickhouse.Context(ctx, clickhouse.WithParameters(p))
}

func (s *Store) current(ctx context.Context) (*View, error) {
	q := `SELECT notification_id, tenant, source_service, event_type, template, template_language, toString(recipient),
		sender, provider, provider_message_id, toString(idempotency_key), status, error_code, error_message, error_retryable,
		payload, toUInt64(attempts), toUInt64(retries), toUInt64(duplicates), created_at, updated_at,
		requested_at, accepted_at, sent_at, delivered_at, read_at, failed_at, dead_lettered_at, expired_at,
		outcome_unknown_at, expires_at, reattempted
	FROM ` + s.db + `.communication_logs
	WHERE notification_id = {id:String} AND ({tenant:String} = '' OR tenant = {tenant:String})`
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("logstore: read communication_logs: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("logstore: read communication_logs: %w", err)
		}
		return nil, ErrNotFound
	}
	var (
		v                        View
		code, msg, payload       string
		retryable                bool
		attempts, retries, dupes uint64
	)
	if err := rows.Scan(&v.NotificationID, &v.Tenant, &v.SourceService, &v.EventType, &v.Template, &v.TemplateLanguage,
		&v.Recipient, &v.Sender, &v.Provider, &v.ProviderMessageID, &v.IdempotencyKey, &v.Status, &code, &msg, &retryable,
		&payload, &attempts, &retries, &dupes, &v.CreatedAt, &v.UpdatedAt,
		&v.RequestedAt, &v.AcceptedAt, &v.SentAt, &v.DeliveredAt, &v.ReadAt, &v.FailedAt, &v.DeadLetteredAt, &v.ExpiredAt,
		&v.OutcomeUnknownAt, &v.ExpiresAt, &v.Reattempted); err != nil {
		return nil, fmt.Errorf("logstore: read communication_logs: %w", err)
	}
	v.Attempts, v.Retries, v.Duplicates = int(attempts), int(retries), int(dupes)
	if code != "" {
		v.Error = &contract.ErrorInfo{Code: code, Message: msg, Retryable: retryable}
	}
	if payload != "" && json.Valid([]byte(payload)) {
		v.Payload = json.RawMessage(payload)
	}
	return &v, nil
}

// timeline reads the events of the notification, and those of webhooks that
// named only its provider message id.
func (s *Store) timeline(ctx context.Context) ([]Event, error) {
	q := `SELECT event_id, status, occurred_at, emitter, attempt, retry_tier, provider_message_id,
		error_code, error_message, error_retryable, topic, partition, offset
	FROM ` + s.db + `.notification_events
	WHERE notification_id = {id:String}
	   OR ({pmid:String} != '' AND notification_id = '' AND provider_message_id = {pmid:String})
	ORDER BY occurred_at, status_rank, event_id
	LIMIT 1 BY event_id, occurred_at
	LIMIT ` + fmt.Sprint(MaxTimeline)
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("logstore: read notification_events: %w", err)
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var (
			e         Event
			attempt   uint16
			code, msg string
			retryable bool
		)
		if err := rows.Scan(&e.EventID, &e.Status, &e.OccurredAt, &e.Emitter, &attempt, &e.RetryTier, &e.ProviderMessageID,
			&code, &msg, &retryable, &e.Source.Topic, &e.Source.Partition, &e.Source.Offset); err != nil {
			return nil, fmt.Errorf("logstore: read notification_events: %w", err)
		}
		e.Attempt = int(attempt)
		if code != "" {
			e.Error = &contract.ErrorInfo{Code: code, Message: msg, Retryable: retryable}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("logstore: read notification_events: %w", err)
	}
	return out, nil
}

func (s *Store) deadLetters(ctx context.Context) ([]DeadLetter, error) {
	q := `SELECT topic, partition, offset, reason, error_class, error_code, error_message, error_retryable, attempt,
		origin_topic, origin_partition, origin_offset, failed_at, replay_count
	FROM ` + s.db + `.dead_letters
	WHERE notification_id = {id:String}
	ORDER BY failed_at, partition, offset
	LIMIT 1 BY topic, partition, offset
	LIMIT ` + fmt.Sprint(MaxDeadLetters)
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("logstore: read dead_letters: %w", err)
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		var (
			d        DeadLetter
			attempt  uint16
			replayed uint32
		)
		if err := rows.Scan(&d.Source.Topic, &d.Source.Partition, &d.Source.Offset, &d.Reason, &d.ErrorClass,
			&d.Error.Code, &d.Error.Message, &d.Error.Retryable, &attempt,
			&d.Origin.Topic, &d.Origin.Partition, &d.Origin.Offset, &d.FailedAt, &replayed); err != nil {
			return nil, fmt.Errorf("logstore: read dead_letters: %w", err)
		}
		d.Attempt, d.ReplayCount = int(attempt), int(replayed)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("logstore: read dead_letters: %w", err)
	}
	return out, nil
}

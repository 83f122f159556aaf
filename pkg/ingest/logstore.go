package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/wanotify/wanotify/pkg/chconf"
	"github.com/wanotify/wanotify/pkg/logstore"
)

// LogstoreReader reads notification states from the ClickHouse
// communication logs the sink writes, through package logstore.
type LogstoreReader struct{ store *logstore.Store }

var _ StatusReader = LogstoreReader{}

// NewLogstoreReader reads through s.
func NewLogstoreReader(s *logstore.Store) LogstoreReader { return LogstoreReader{store: s} }

// Notification implements StatusReader.
func (r LogstoreReader) Notification(ctx context.Context, tenant, id string) (*View, error) {
	if tenant == "" {
		// logstore reads every tenant for an empty one (operators); the API
		// never may.
		return nil, ErrNotFound
	}
	v, err := r.store.Notification(ctx, tenant, id)
	switch {
	case errors.Is(err, logstore.ErrNotFound), errors.Is(err, logstore.ErrInvalid):
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	case err != nil:
		return nil, err
	}
	return viewFromLogstore(v), nil
}

func viewFromLogstore(v *logstore.View) *View {
	out := &View{
		NotificationID:    v.NotificationID,
		Tenant:            v.Tenant,
		SourceService:     v.SourceService,
		EventType:         v.EventType,
		IdempotencyKey:    v.IdempotencyKey,
		Recipient:         v.Recipient,
		Sender:            v.Sender,
		Template:          v.Template,
		TemplateLanguage:  v.TemplateLanguage,
		Status:            v.Status,
		Provider:          v.Provider,
		ProviderMessageID: v.ProviderMessageID,
		Attempts:          v.Attempts,
		Retries:           v.Retries,
		Duplicates:        v.Duplicates,
		Error:             v.Error,
		CreatedAt:         v.CreatedAt,
		UpdatedAt:         v.UpdatedAt,
		ExpiresAt:         v.ExpiresAt,
		AcceptedAt:        v.AcceptedAt,
		SentAt:            v.SentAt,
		DeliveredAt:       v.DeliveredAt,
		ReadAt:            v.ReadAt,
		FailedAt:          v.FailedAt,
		DeadLetteredAt:    v.DeadLetteredAt,
		ExpiredAt:         v.ExpiredAt,
		Timeline:          make([]TimelineEvent, 0, len(v.Timeline)),
	}
	for _, e := range v.Timeline {
		out.Timeline = append(out.Timeline, TimelineEvent{
			Status:            e.Status,
			OccurredAt:        e.OccurredAt,
			Emitter:           e.Emitter,
			Attempt:           e.Attempt,
			RetryTier:         e.RetryTier,
			ProviderMessageID: e.ProviderMessageID,
			Error:             e.Error,
		})
	}
	return out
}

// OpenLogstoreReader connects to ClickHouse as c says and returns a reader
// of its communication logs, with the function that closes the
// connection. The connection is made lazily: ClickHouse being down at
// start costs the GET route 503s, not the service its start.
func OpenLogstoreReader(c chconf.Config) (LogstoreReader, func() error, error) {
	conn, err := openReadOnly(c)
	if err != nil {
		return LogstoreReader{}, nil, err
	}
	return NewLogstoreReader(logstore.New(conn, c.Database)), conn.Close, nil
}

// openReadOnly connects with readonly=2 on every query: ClickHouse then
// refuses any write or DDL through this connection, whatever the user
// may do, so a bug (or an injected query) in the API's read path cannot
// change the communication logs. Deployments also give ingest a user of
// its own with only SELECT (docs/deployment.md); 2 rather than 1 lets
// the client still send its per-query settings.
func openReadOnly(c chconf.Config) (clickhouse.Conn, error) {
	opts, err := c.Options()
	if err != nil {
		return nil, err
	}
	if opts.Settings == nil {
		opts.Settings = clickhouse.Settings{}
	}
	opts.Settings["readonly"] = 2
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	return conn, nil
}

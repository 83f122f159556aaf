package sink

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/wanotify/wanotify/pkg/chmigrate"
)

// Writer stores batches.
//
// Write must be idempotent: the sink calls it again with the same batch
// after any error (including a timeout after which the first call may
// have succeeded), and after a crash it consumes and writes records it
// had already written, in differently cut batches. It returns nil only
// once every row of b is durably stored.
type Writer interface {
	Write(ctx context.Context, b *Batch) error
}

// ClickHouseWriter writes batches with column-wise native inserts, one per
// table, each carrying an insert_deduplication_token derived from the
// batch's token.
type ClickHouseWriter struct {
	conn     driver.Conn
	database string
}

var _ Writer = (*ClickHouseWriter)(nil)

// NewClickHouseWriter writes into database over conn.
func NewClickHouseWriter(conn driver.Conn, database string) *ClickHouseWriter {
	return &ClickHouseWriter{conn: conn, database: database}
}

// Table names.
const (
	TableEvents      = "notification_events"
	TableErrors      = "ingest_errors"
	TableDeadLetters = "dead_letters"
)

// Write inserts b's rows. Tables are written in a fixed order; when one
// insert fails, the next call writes them all again and deduplication
// drops what already landed.
func (w *ClickHouseWriter) Write(ctx context.Context, b *Batch) error {
	if len(b.Events) > 0 {
		if err := w.insert(ctx, TableEvents, b.Token, eventColumns, len(b.Events), func(cols []driver.BatchColumn) error { return appendEvents(cols, b.Events) }); err != nil {
			return err
		}
	}
	if len(b.DeadLetters) > 0 {
		if err := w.insert(ctx, TableDeadLetters, b.Token, deadLetterColumns, len(b.DeadLetters), func(cols []driver.BatchColumn) error { return appendDeadLetters(cols, b.DeadLetters) }); err != nil {
			return err
		}
	}
	if len(b.Errors) > 0 {
		if err := w.insert(ctx, TableErrors, b.Token, errorColumns, len(b.Errors), func(cols []driver.BatchColumn) error { return appendErrors(cols, b.Errors) }); err != nil {
			return err
		}
	}
	return nil
}

func (w *ClickHouseWriter) insert(ctx context.Context, table, token string, columns []string, rows int, fill func([]driver.BatchColumn) error) error {
	settings := clickhouse.Settings{
		// The sink batches itself; server-side buffering would add latency
		// and bypass the deduplication token.
		"async_insert":       0,
		"insert_deduplicate": 1,
		"deduplicate_blocks_in_dependent_materialized_views": 1,
		// Events are partitioned by month of occurred_at; a batch spanning
		// many months (a replay of old data, odd producer clocks) must not
		// be refused, or it would be retried forever.
		"max_partitions_per_insert_block": 0,
	}
	if token != "" {
		settings["insert_deduplication_token"] = table + ":" + token
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(settings))
	query := fmt.Sprintf("INSERT INTO %s.%s (%s)", chmigrate.QuoteIdent(w.database), chmigrate.QuoteIdent(table), strings.Join(columns, ", "))
	batch, err := w.conn.PrepareBatch(ctx, query)
	if err != nil {
		return fmt.Errorf("insert into %s: prepare: %w", table, err)
	}
	defer batch.Close()
	cols := make([]driver.BatchColumn, len(columns))
	for i := range cols {
		cols[i] = batch.Column(i)
	}
	if err := fill(cols); err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d rows into %s: %w", rows, table, err)
	}
	return nil
}

var eventColumns = []string{
	"event_id", "notification_id", "provider_message_id", "status", "status_rank", "tenant", "source_service",
	"event_type", "template", "template_language", "sender", "recipient", "provider", "emitter", "attempt",
	"retry_tier", "route", "due_at", "error_code", "error_message", "error_retryable", "idempotency_key", "expires_at",
	"payload", "occurred_at", "topic", "partition", "offset", "lane",
}

func appendEvents(cols []driver.BatchColumn, rows []EventRow) error {
	n := len(rows)
	str := func(f func(*EventRow) string) []string {
		out := make([]string, n)
		for i := range rows {
			out[i] = f(&rows[i])
		}
		return out
	}
	times := func(f func(*EventRow) *time.Time) []*time.Time {
		out := make([]*time.Time, n)
		for i := range rows {
			out[i] = f(&rows[i])
		}
		return out
	}
	ranks, attempts, retryable := make([]uint8, n), make([]uint16, n), make([]bool, n)
	occurred, partitions, offsets := make([]time.Time, n), make([]int32, n), make([]int64, n)
	for i := range rows {
		r := &rows[i]
		ranks[i], attempts[i], retryable[i] = r.StatusRank, r.Attempt, r.ErrorRetryable
		occurred[i], partitions[i], offsets[i] = r.OccurredAt, r.Partition, r.Offset
	}
	values := []any{
		str(func(r *EventRow) string { return r.EventID }),
		str(func(r *EventRow) string { return r.NotificationID }),
		str(func(r *EventRow) string { return r.ProviderMessageID }),
		str(func(r *EventRow) string { return r.Status }),
		ranks,
		str(func(r *EventRow) string { return r.Tenant }),
		str(func(r *EventRow) string { return r.SourceService }),
		str(func(r *EventRow) string { return r.EventType }),
		str(func(r *EventRow) string { return r.Template }),
		str(func(r *EventRow) string { return r.TemplateLanguage }),
		str(func(r *EventRow) string { return r.Sender }),
		str(func(r *EventRow) string { return r.Recipient }),
		str(func(r *EventRow) string { return r.Provider }),
		str(func(r *EventRow) string { return r.Emitter }),
		attempts,
		str(func(r *EventRow) string { return r.RetryTier }),
		str(func(r *EventRow) string { return r.Route }),
		times(func(r *EventRow) *time.Time { return r.DueAt }),
		str(func(r *EventRow) string { return r.ErrorCode }),
		str(func(r *EventRow) string { return r.ErrorMessage }),
		retryable,
		str(func(r *EventRow) string { return r.IdempotencyKey }),
		times(func(r *EventRow) *time.Time { return r.ExpiresAt }),
		str(func(r *EventRow) string { return r.Payload }),
		occurred,
		str(func(r *EventRow) string { return r.Topic }),
		partitions,
		offsets,
		str(func(r *EventRow) string { return r.Lane }),
	}
	return appendAll(cols, eventColumns, values)
}

var errorColumns = []string{"topic", "partition", "offset", "record_time", "key", "reason", "value", "value_size"}

func appendErrors(cols []driver.BatchColumn, rows []ErrorRow) error {
	n := len(rows)
	topics, keys, reasons, values := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	partitions, offsets, times, sizes := make([]int32, n), make([]int64, n), make([]time.Time, n), make([]uint32, n)
	for i := range rows {
		r := &rows[i]
		topics[i], partitions[i], offsets[i], times[i] = r.Topic, r.Partition, r.Offset, r.RecordTime
		keys[i], reasons[i], values[i], sizes[i] = r.Key, r.Reason, r.Value, r.ValueSize
	}
	return appendAll(cols, errorColumns, []any{topics, partitions, offsets, times, keys, reasons, values, sizes})
}

var deadLetterColumns = []string{
	"topic", "partition", "offset", "record_time", "notification_id", "tenant", "event_type", "template",
	"recipient", "reason", "error_class", "error_code", "error_message", "error_retryable", "attempt",
	"origin_topic", "origin_partition", "origin_offset", "failed_at", "first_failed_at", "replay_count",
	"replayed_from_offset", "value", "value_size", "value_valid", "value_error",
}

func appendDeadLetters(cols []driver.BatchColumn, rows []DeadLetterRow) error {
	n := len(rows)
	str := func(f func(*DeadLetterRow) string) []string {
		out := make([]string, n)
		for i := range rows {
			out[i] = f(&rows[i])
		}
		return out
	}
	partitions, offsets, recTimes := make([]int32, n), make([]int64, n), make([]time.Time, n)
	retryable, attempts, originParts, originOffs := make([]bool, n), make([]uint16, n), make([]int32, n), make([]int64, n)
	failedAt, firstFailed, replays, replayedFrom := make([]time.Time, n), make([]*time.Time, n), make([]uint32, n), make([]*int64, n)
	sizes, valid := make([]uint32, n), make([]bool, n)
	for i := range rows {
		r := &rows[i]
		partitions[i], offsets[i], recTimes[i] = r.Partition, r.Offset, r.RecordTime
		retryable[i], attempts[i], originParts[i], originOffs[i] = r.ErrorRetryable, r.Attempt, r.OriginPartition, r.OriginOffset
		failedAt[i], firstFailed[i], replays[i], replayedFrom[i] = r.FailedAt, r.FirstFailedAt, r.ReplayCount, r.ReplayedFromOffset
		sizes[i], valid[i] = r.ValueSize, r.ValueValid
	}
	values := []any{
		str(func(r *DeadLetterRow) string { return r.Topic }),
		partitions, offsets, recTimes,
		str(func(r *DeadLetterRow) string { return r.NotificationID }),
		str(func(r *DeadLetterRow) string { return r.Tenant }),
		str(func(r *DeadLetterRow) string { return r.EventType }),
		str(func(r *DeadLetterRow) string { return r.Template }),
		str(func(r *DeadLetterRow) string { return r.Recipient }),
		str(func(r *DeadLetterRow) string { return r.Reason }),
		str(func(r *DeadLetterRow) string { return r.ErrorClass }),
		str(func(r *DeadLetterRow) string { return r.ErrorCode }),
		str(func(r *DeadLetterRow) string { return r.ErrorMessage }),
		retryable, attempts,
		str(func(r *DeadLetterRow) string { return r.OriginTopic }),
		originParts, originOffs, failedAt, firstFailed, replays, replayedFrom,
		str(func(r *DeadLetterRow) string { return r.Value }),
		sizes, valid,
		str(func(r *DeadLetterRow) string { return r.ValueError }),
	}
	return appendAll(cols, deadLetterColumns, values)
}

func appendAll(cols []driver.BatchColumn, names []string, values []any) error {
	if len(values) != len(cols) {
		return fmt.Errorf("%d column values for %d columns", len(values), len(cols))
	}
	for i, v := range values {
		if err := cols[i].Append(v); err != nil {
			return fmt.Errorf("column %s: %w", names[i], err)
		}
	}
	return nil
}

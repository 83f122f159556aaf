-- The wanotify ClickHouse model
-- =============================
--
-- The sink (services/sink) consumes notifications.requested,
-- notifications.status and notifications.dlq and writes:
--
--   notification_events      append-only log: one row per event (this file)
--   ingest_errors            records the sink could not decode (0002)
--   dead_letters             every record of the DLQ topic, with its failure context (0002)
--   notification_state       latest state per notification, folded from the events by a
--                            materialized view into an AggregatingMergeTree (0003)
--   provider_message_state   the same state for webhook events that named only the
--                            provider's message id (0003)
--   provider_message_map     provider message id -> notification id (0003)
--   communication_logs       VIEW: one row per notification, the state analysts read (0004)
--   delivery_funnel_hourly, failures_by_code, step_durations, step_latency,
--   retry_dlq_rates, retry_errors_by_code, dead_letters_hourly
--                            VIEWs: analytics (0005-0009)
--
-- Replays never double count. Kafka delivers at least once: a batch the sink
-- inserted but did not commit is consumed again after a crash or rebalance,
-- usually with different batch boundaries. Three things make that harmless:
--   1. Every event has a deterministic event_id (requested: notification id +
--      "/requested"; status events: the producer's event_id, itself
--      deterministic), and notification_events is a ReplacingMergeTree on
--      (notification_id, event_id, occurred_at): duplicate rows collapse on
--      merge. occurred_at is part of the key because the dispatcher's ids
--      repeat when a notification is replayed from the DLQ (attempt 1
--      again): both runs' events are kept.
--   2. Every aggregate the materialized views keep is idempotent (min, max,
--      argMin, uniqExact of event ids): folding an event twice gives the same
--      state as folding it once, before or after merges. Nothing is a count().
--   3. An insert the sink retries after an ambiguous failure carries the same
--      insert_deduplication_token (a hash of the batch's records), and every
--      table keeps a deduplication window, so the retry is dropped at once.
-- Analysts therefore read communication_logs and the analytics views (which
-- aggregate idempotently) and never need FINAL; anyone counting rows of
-- notification_events directly should use FINAL, or uniqExact(event_id) to
-- count logical events.
--
-- Every statement is idempotent (IF NOT EXISTS / OR REPLACE): a migration
-- that failed half way is simply run again.

-- One row per event. Columns that do not apply to an event are empty
-- (strings), 0 (numbers) or NULL (times).
--   status       'requested' for a notifications.requested record, else the
--                status of the notifications.status event
--   status_rank  precedence of the status in communication_logs (see 0003),
--                written by the sink (pkg/sink.Precedence)
--   occurred_at  when it happened: created_at for 'requested', the event's
--                occurred_at otherwise (UTC, millisecond precision)
--   payload      the notifications.requested value as received (JSON)
--   topic, partition, offset   where the sink read it
CREATE TABLE IF NOT EXISTS notification_events
(
    event_id            String,
    notification_id     String,
    provider_message_id String,
    status              LowCardinality(String),
    status_rank         UInt8,
    tenant              LowCardinality(String),
    source_service      LowCardinality(String),
    event_type          LowCardinality(String),
    template            LowCardinality(String),
    template_language   LowCardinality(String),
    sender              LowCardinality(String),
    recipient           String,
    provider            LowCardinality(String),
    emitter             LowCardinality(String),
    attempt             UInt16,
    retry_tier          LowCardinality(String),
    due_at              Nullable(DateTime64(3, 'UTC')),
    error_code          LowCardinality(String),
    error_message       String,
    error_retryable     Bool,
    idempotency_key     String,
    expires_at          Nullable(DateTime64(3, 'UTC')),
    payload             String CODEC(ZSTD(3)),
    occurred_at         DateTime64(3, 'UTC'),
    topic               LowCardinality(String),
    partition           Int32,
    offset              Int64,
    inserted_at         DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_provider_message_id provider_message_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (notification_id, event_id, occurred_at)
SETTINGS non_replicated_deduplication_window = 1000;

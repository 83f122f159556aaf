-- Records the sink could not use: not JSON, failing their schema, a DLQ
-- record without a valid failure envelope, or a time outside what
-- DateTime64 stores. They are written here in the same batch as the good
-- records and their offsets are committed with them, so a poison record
-- never stalls its partition. One row per record: (topic, partition,
-- offset) identifies it, so a replay collapses on merge.
--   record_time  the Kafka record timestamp
--   key          the record key (the recipient, E.164)
--   reason       why it was rejected (decoder or schema message)
--   value        the value bytes, cut to the sink's limit (value_size is the full length)
CREATE TABLE IF NOT EXISTS ingest_errors
(
    topic       LowCardinality(String),
    partition   Int32,
    offset      Int64,
    record_time DateTime64(3, 'UTC'),
    key         String,
    reason      String,
    value       String CODEC(ZSTD(3)),
    value_size  UInt32,
    seen_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(record_time)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 1000;

-- Every record of notifications.dlq with its failure context (the
-- wanotify-* headers, see pkg/envelope). The dispatcher also emits a
-- 'dead_lettered' status event for each notification it parks, which is
-- what communication_logs shows; this table keeps the full context
-- (reason, error class, origin, replays) and the records that have no
-- notification at all (poison values: value_valid = false, value_error
-- says why).
CREATE TABLE IF NOT EXISTS dead_letters
(
    topic                LowCardinality(String),
    partition            Int32,
    offset               Int64,
    record_time          DateTime64(3, 'UTC'),
    notification_id      String,
    tenant               LowCardinality(String),
    event_type           LowCardinality(String),
    template             LowCardinality(String),
    recipient            String,
    reason               LowCardinality(String),
    error_class          LowCardinality(String),
    error_code           LowCardinality(String),
    error_message        String,
    error_retryable      Bool,
    attempt              UInt16,
    origin_topic         LowCardinality(String),
    origin_partition     Int32,
    origin_offset        Int64,
    failed_at            DateTime64(3, 'UTC'),
    first_failed_at      Nullable(DateTime64(3, 'UTC')),
    replay_count         UInt32,
    replayed_from_offset Nullable(Int64),
    value                String CODEC(ZSTD(3)),
    value_size           UInt32,
    value_valid          Bool,
    value_error          String,
    inserted_at          DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_notification_id notification_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(record_time)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 1000;

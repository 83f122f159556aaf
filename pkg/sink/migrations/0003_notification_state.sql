-- Latest state per notification
-- =============================
--
-- Materialized views fold each inserted block of notification_events into
-- AggregatingMergeTree tables keyed by notification. Every column is an
-- idempotent aggregate, so the order events arrive in, duplicates and
-- replays do not change the result:
--
--   history     groupUniqArray((occurred_at, status_rank, status, error_code,
--               error_message, error_retryable)): the set of distinct status
--               changes, from which communication_logs (0004) derives the
--               current status and error.
--   *_at        min(occurred_at) of the first event with that status.
--   attempts    max(attempt) reported by the dispatcher.
--   retry_events, duplicate_events, events
--               uniqExact(event_id): distinct events, never a row count.
--   request_payload  the payload of the earliest notifications.requested record.
--
-- Status precedence (status_rank, written by the sink, pkg/sink.Precedence):
--
--   failed           100  final: a permanent error, or the provider reported
--                          the message failed
--   dead_lettered     90  final: retries exhausted or unprocessable
--   read              50  a late 'delivered' never replaces 'read'
--   delivered         40  may be skipped: 'read' implies it
--   sent              30
--   accepted          20  the provider took the message
--   expired           17  past expires_at, not sent; any evidence of a send wins
--   outcome_unknown   15  a crash interrupted the provider call; any later
--                          evidence (accepted, a webhook) wins
--   retry_scheduled   10  a transient failure, waiting on a retry topic
--   duplicate          5  a second publish of the same idempotency key was
--                          suppressed: it never hides what happened to the
--                          first one, and shows only when nothing else did
--   requested          1
--
-- This differs from contract.Status.Rank() for duplicate, expired and
-- outcome_unknown, which describe a second copy or missing knowledge rather
-- than this notification's progress.
--
-- The status is the highest precedence reached in the notification's
-- current run; among equal statuses the latest. A run ends with failed or
-- dead_lettered, and a new one starts only when the dispatcher works on the
-- notification again after that (an operator replayed it from the DLQ, see
-- pkg/cli/dlq): an accepted, retry_scheduled, outcome_unknown or expired
-- event that occurred after the last failure. Events that occurred before
-- it, however late they arrive, belong to the ended run, so failure stays
-- final for them. The error shown is the most significant one of the
-- current run (its failure's, else its latest transient error).
--
-- Webhooks that arrive before the dispatcher's record
-- ---------------------------------------------------
-- A webhook status event normally carries notification_id (from the
-- provider's callback data). One that carries only provider_message_id is
-- folded into provider_message_state, keyed by that id, and
-- provider_message_map records provider_message_id -> notification_id from
-- every event that names both (the dispatcher's 'accepted', webhooks with
-- callback data). communication_logs (0004) merges the two at query time,
-- so such a webhook joins its notification as soon as the mapping exists,
-- whichever arrived first. Webhooks whose provider id is never mapped stay
-- visible in the unmatched_webhooks view.
--
-- Naming rule for the views below: an output column may share its name with
-- an input column only if that input column is used nowhere else in the same
-- SELECT (ClickHouse resolves an alias before a column of the same name).

CREATE TABLE IF NOT EXISTS notification_state
(
    notification_id     String,
    tenant              SimpleAggregateFunction(max, LowCardinality(String)),
    source_service      SimpleAggregateFunction(max, LowCardinality(String)),
    event_type          SimpleAggregateFunction(max, LowCardinality(String)),
    template            SimpleAggregateFunction(max, LowCardinality(String)),
    template_language   SimpleAggregateFunction(max, LowCardinality(String)),
    sender              SimpleAggregateFunction(max, LowCardinality(String)),
    recipient           SimpleAggregateFunction(max, String),
    provider            SimpleAggregateFunction(max, LowCardinality(String)),
    provider_message_id SimpleAggregateFunction(max, String),
    idempotency_key     SimpleAggregateFunction(max, String),
    request_payload     AggregateFunction(argMinIf, String, DateTime64(3, 'UTC'), UInt8),
    requested_at        SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    expires_at          SimpleAggregateFunction(max, Nullable(DateTime64(3, 'UTC'))),
    first_event_at      SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_event_at       SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    history             AggregateFunction(groupUniqArray, Tuple(DateTime64(3, 'UTC'), UInt8, String, String, String, Bool)),
    accepted_at         SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    sent_at             SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    delivered_at        SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    read_at             SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    failed_at           SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    dead_lettered_at    SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    expired_at          SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    outcome_unknown_at  SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    first_retry_at      SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    attempts            SimpleAggregateFunction(max, UInt16),
    retry_events        AggregateFunction(uniqExactIf, String, UInt8),
    duplicate_events    AggregateFunction(uniqExactIf, String, UInt8),
    events              AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
ORDER BY notification_id
SETTINGS non_replicated_deduplication_window = 1000;

-- Same columns, keyed by provider message id, for webhook events without a
-- notification id.
CREATE TABLE IF NOT EXISTS provider_message_state
(
    provider_message_id String,
    tenant              SimpleAggregateFunction(max, LowCardinality(String)),
    source_service      SimpleAggregateFunction(max, LowCardinality(String)),
    event_type          SimpleAggregateFunction(max, LowCardinality(String)),
    template            SimpleAggregateFunction(max, LowCardinality(String)),
    template_language   SimpleAggregateFunction(max, LowCardinality(String)),
    sender              SimpleAggregateFunction(max, LowCardinality(String)),
    recipient           SimpleAggregateFunction(max, String),
    provider            SimpleAggregateFunction(max, LowCardinality(String)),
    idempotency_key     SimpleAggregateFunction(max, String),
    request_payload     AggregateFunction(argMinIf, String, DateTime64(3, 'UTC'), UInt8),
    requested_at        SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    expires_at          SimpleAggregateFunction(max, Nullable(DateTime64(3, 'UTC'))),
    first_event_at      SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_event_at       SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    history             AggregateFunction(groupUniqArray, Tuple(DateTime64(3, 'UTC'), UInt8, String, String, String, Bool)),
    accepted_at         SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    sent_at             SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    delivered_at        SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    read_at             SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    failed_at           SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    dead_lettered_at    SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    expired_at          SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    outcome_unknown_at  SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    first_retry_at      SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    attempts            SimpleAggregateFunction(max, UInt16),
    retry_events        AggregateFunction(uniqExactIf, String, UInt8),
    duplicate_events    AggregateFunction(uniqExactIf, String, UInt8),
    events              AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
ORDER BY provider_message_id
SETTINGS non_replicated_deduplication_window = 1000;

-- provider message id -> notification id. One provider id belongs to one
-- notification; the views take min(notification_id) should two ever
-- disagree, so the answer is deterministic.
CREATE TABLE IF NOT EXISTS provider_message_map
(
    provider_message_id String,
    notification_id     String,
    seen_at             DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (provider_message_id, notification_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS notification_state_mv TO notification_state AS
SELECT
    notification_id,
    max(tenant)                                                  AS tenant,
    max(source_service)                                          AS source_service,
    max(event_type)                                              AS event_type,
    max(template)                                                AS template,
    max(template_language)                                       AS template_language,
    max(sender)                                                  AS sender,
    max(recipient)                                               AS recipient,
    max(provider)                                                AS provider,
    max(provider_message_id)                                     AS provider_message_id,
    max(idempotency_key)                                         AS idempotency_key,
    argMinIfState(payload, occurred_at, status = 'requested')    AS request_payload,
    min(if(status = 'requested', occurred_at, NULL))             AS requested_at,
    max(expires_at)                                              AS expires_at,
    min(occurred_at)                                             AS first_event_at,
    max(occurred_at)                                             AS last_event_at,
    groupUniqArrayState((occurred_at, status_rank, toString(status),
                         toString(error_code), error_message, error_retryable)) AS history,
    min(if(status = 'accepted', occurred_at, NULL))              AS accepted_at,
    min(if(status = 'sent', occurred_at, NULL))                  AS sent_at,
    min(if(status = 'delivered', occurred_at, NULL))             AS delivered_at,
    min(if(status = 'read', occurred_at, NULL))                  AS read_at,
    min(if(status = 'failed', occurred_at, NULL))                AS failed_at,
    min(if(status = 'dead_lettered', occurred_at, NULL))         AS dead_lettered_at,
    min(if(status = 'expired', occurred_at, NULL))               AS expired_at,
    min(if(status = 'outcome_unknown', occurred_at, NULL))       AS outcome_unknown_at,
    min(if(status = 'retry_scheduled', occurred_at, NULL))       AS first_retry_at,
    max(attempt)                                                 AS attempts,
    uniqExactIfState(event_id, status = 'retry_scheduled')       AS retry_events,
    uniqExactIfState(event_id, status = 'duplicate')             AS duplicate_events,
    uniqExactState(event_id)                                     AS events
FROM notification_events
WHERE notification_id != ''
GROUP BY notification_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS provider_message_state_mv TO provider_message_state AS
SELECT
    provider_message_id,
    max(tenant)                                                  AS tenant,
    max(source_service)                                          AS source_service,
    max(event_type)                                              AS event_type,
    max(template)                                                AS template,
    max(template_language)                                       AS template_language,
    max(sender)                                                  AS sender,
    max(recipient)                                               AS recipient,
    max(provider)                                                AS provider,
    max(idempotency_key)                                         AS idempotency_key,
    argMinIfState(payload, occurred_at, status = 'requested')    AS request_payload,
    min(if(status = 'requested', occurred_at, NULL))             AS requested_at,
    max(expires_at)                                              AS expires_at,
    min(occurred_at)                                             AS first_event_at,
    max(occurred_at)                                             AS last_event_at,
    groupUniqArrayState((occurred_at, status_rank, toString(status),
                         toString(error_code), error_message, error_retryable)) AS history,
    min(if(status = 'accepted', occurred_at, NULL))              AS accepted_at,
    min(if(status = 'sent', occurred_at, NULL))                  AS sent_at,
    min(if(status = 'delivered', occurred_at, NULL))             AS delivered_at,
    min(if(status = 'read', occurred_at, NULL))                  AS read_at,
    min(if(status = 'failed', occurred_at, NULL))                AS failed_at,
    min(if(status = 'dead_lettered', occurred_at, NULL))         AS dead_lettered_at,
    min(if(status = 'expired', occurred_at, NULL))               AS expired_at,
    min(if(status = 'outcome_unknown', occurred_at, NULL))       AS outcome_unknown_at,
    min(if(status = 'retry_scheduled', occurred_at, NULL))       AS first_retry_at,
    max(attempt)                                                 AS attempts,
    uniqExactIfState(event_id, status = 'retry_scheduled')       AS retry_events,
    uniqExactIfState(event_id, status = 'duplicate')             AS duplicate_events,
    uniqExactState(event_id)                                     AS events
FROM notification_events
WHERE notification_id = '' AND provider_message_id != ''
GROUP BY provider_message_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS provider_message_map_mv TO provider_message_map AS
SELECT
    provider_message_id,
    notification_id,
    occurred_at AS seen_at
FROM notification_events
WHERE provider_message_id != '' AND notification_id != '';

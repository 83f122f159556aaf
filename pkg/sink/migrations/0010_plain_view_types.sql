-- Plain column types in every view analysts query.
--
-- communication_logs and unmatched_webhooks (0004) read the
-- SimpleAggregateFunction columns of notification_state and
-- provider_message_state, and max()/min() over such a column keeps its
-- type: recipient, idempotency_key and attempts came out as
-- SimpleAggregateFunction(max, …), first_event_at and last_event_at as
-- SimpleAggregateFunction(min/max, DateTime64). BI tools, older drivers and
-- older clients cannot read those types. The views below are 0004's with
-- each such aggregate cast to its plain type (0004 documents the
-- columns); names, values and order of the columns are unchanged. The
-- materialized views' target tables keep their aggregate types: they are
-- storage, not what analysts query.
--
-- Rule for any future view: cast what comes out of an aggregate over an
-- AggregatingMergeTree column (CAST(max(x) AS T)); the test
-- TestViewsExposePlainTypes fails on any view column whose type is an
-- AggregateFunction or SimpleAggregateFunction.

CREATE OR REPLACE VIEW communication_logs AS
SELECT
    notification_id,
    recipient,
    payload,
    progress.3                             AS status,
    last_error.3                           AS error_code,
    last_error.4                           AS error_message,
    last_error.5                           AS error_retryable,
    coalesce(requested_at, first_event_at) AS created_at,
    progress.2                             AS updated_at,
    tenant,
    source_service,
    event_type,
    template,
    template_language,
    sender,
    provider,
    provider_message_id,
    idempotency_key,
    attempts,
    retries,
    duplicates,
    requested_at,
    accepted_at,
    sent_at,
    delivered_at,
    read_at,
    failed_at,
    dead_lettered_at,
    expired_at,
    outcome_unknown_at,
    first_retry_at,
    expires_at,
    first_event_at,
    last_event_at,
    events,
    requested_at IS NOT NULL               AS requested,
    reattempted
FROM
(
    -- history entries: (1 occurred_at, 2 status_rank, 3 status, 4 error_code,
    -- 5 error_message, 6 error_retryable). The current run is what happened
    -- after the last failure when the dispatcher worked on the notification
    -- again since (see 0003); else everything.
    SELECT
        *,
        arrayMax(arrayMap(x -> x.1, arrayFilter(x -> x.3 IN ('failed', 'dead_lettered'), history))) AS last_failure_at,
        arrayExists(x -> x.3 IN ('failed', 'dead_lettered'), history)
            AND arrayExists(x -> x.3 IN ('accepted', 'retry_scheduled', 'outcome_unknown', 'expired') AND x.1 > last_failure_at, history)
                                                                              AS reattempted,
        if(reattempted, arrayFilter(x -> x.1 > last_failure_at, history), history) AS run,
        arrayReduce('max', arrayMap(x -> (x.2, x.1, x.3), run))                    AS progress,
        arrayReduce('max', arrayMap(x -> (x.2, x.1, x.4, x.5, x.6), arrayFilter(x -> x.4 != '', run))) AS last_error
    FROM
    (
        SELECT
            notification_id,
            max(tenant)                        AS tenant,
            max(source_service)                AS source_service,
            max(event_type)                    AS event_type,
            max(template)                      AS template,
            max(template_language)             AS template_language,
            max(sender)                        AS sender,
            CAST(max(recipient) AS String)     AS recipient,
            max(provider)                      AS provider,
            max(provider_message_id)           AS provider_message_id,
            CAST(max(idempotency_key) AS String) AS idempotency_key,
            argMinIfMerge(request_payload)     AS payload,
            min(requested_at)                  AS requested_at,
            max(expires_at)                    AS expires_at,
            CAST(min(first_event_at) AS DateTime64(3, 'UTC')) AS first_event_at,
            CAST(max(last_event_at) AS DateTime64(3, 'UTC'))  AS last_event_at,
            groupUniqArrayMerge(history)       AS history,
            min(accepted_at)                   AS accepted_at,
            min(sent_at)                       AS sent_at,
            min(delivered_at)                  AS delivered_at,
            min(read_at)                       AS read_at,
            min(failed_at)                     AS failed_at,
            min(dead_lettered_at)              AS dead_lettered_at,
            min(expired_at)                    AS expired_at,
            min(outcome_unknown_at)            AS outcome_unknown_at,
            min(first_retry_at)                AS first_retry_at,
            CAST(max(attempts) AS UInt16)      AS attempts,
            uniqExactIfMerge(retry_events)     AS retries,
            uniqExactIfMerge(duplicate_events) AS duplicates,
            uniqExactMerge(events)             AS events
        FROM
        (
            SELECT
                notification_id, tenant, source_service, event_type, template, template_language, sender,
                recipient, provider, toString(provider_message_id) AS provider_message_id, idempotency_key,
                request_payload, requested_at, expires_at, first_event_at, last_event_at, history,
                accepted_at, sent_at, delivered_at, read_at, failed_at, dead_lettered_at, expired_at,
                outcome_unknown_at, first_retry_at, attempts, retry_events, duplicate_events, events
            FROM notification_state
            UNION ALL
            SELECT
                m.notification_id AS notification_id, s.tenant, s.source_service, s.event_type, s.template,
                s.template_language, s.sender, s.recipient, s.provider, s.provider_message_id AS provider_message_id,
                s.idempotency_key, s.request_payload, s.requested_at, s.expires_at, s.first_event_at,
                s.last_event_at, s.history, s.accepted_at, s.sent_at, s.delivered_at, s.read_at,
                s.failed_at, s.dead_lettered_at, s.expired_at, s.outcome_unknown_at, s.first_retry_at,
                s.attempts, s.retry_events, s.duplicate_events, s.events
            FROM provider_message_state AS s
            INNER JOIN
            (
                SELECT provider_message_id, min(notification_id) AS notification_id
                FROM provider_message_map
                WHERE provider_message_id IN (SELECT provider_message_id FROM provider_message_state)
                GROUP BY provider_message_id
            ) AS m ON m.provider_message_id = s.provider_message_id
        )
        GROUP BY notification_id
    )
);

-- Webhook events whose provider message id no notification claims (yet):
-- normally empty or short-lived; a growing list means webhooks for messages
-- the dispatcher never recorded.
CREATE OR REPLACE VIEW unmatched_webhooks AS
SELECT
    provider_message_id,
    CAST(max(recipient) AS String)    AS recipient,
    arrayReduce('max', arrayMap(x -> (x.2, x.1, x.3), groupUniqArrayMerge(history))).3 AS status,
    CAST(min(first_event_at) AS DateTime64(3, 'UTC')) AS first_event_at,
    CAST(max(last_event_at) AS DateTime64(3, 'UTC'))  AS last_event_at,
    uniqExactMerge(events)            AS events
FROM provider_message_state
WHERE provider_message_id NOT IN (SELECT provider_message_id FROM provider_message_map)
GROUP BY provider_message_id;

-- failures_by_code: notifications that ended failed or dead-lettered, by the
-- error that ended them, per hour requested, tenant, event type and
-- template. error_code is the provider's code (Meta's numeric codes such as
-- 131026 undeliverable, 131047 outside the 24 h window) or the
-- dispatcher's classification; sample_message is one of the messages seen.
CREATE OR REPLACE VIEW failures_by_code AS
SELECT
    toStartOfHour(created_at) AS hour,
    tenant,
    event_type,
    template,
    status,
    error_code,
    error_retryable,
    count()                   AS notifications,
    min(error_message)        AS sample_message
FROM communication_logs
WHERE status IN ('failed', 'dead_lettered')
GROUP BY hour, tenant, event_type, template, status, error_code, error_retryable;

-- retry_errors_by_code: the transient errors behind retries, per hour they
-- happened (occurred_at), tenant, event type and error code. Every
-- retry_scheduled event counts once (by event id, at its first
-- occurrence), whatever its notification finally became.
CREATE OR REPLACE VIEW retry_errors_by_code AS
SELECT
    toStartOfHour(first_at)     AS hour,
    tenant,
    event_type,
    error_code,
    count()                     AS retry_events,
    uniqExact(notification_id)  AS notifications
FROM
(
    SELECT
        notification_id,
        event_id,
        min(occurred_at)                 AS first_at,
        argMin(tenant, occurred_at)      AS tenant,
        argMin(event_type, occurred_at)  AS event_type,
        argMin(error_code, occurred_at)  AS error_code
    FROM notification_events
    WHERE status = 'retry_scheduled'
    GROUP BY notification_id, event_id
)
GROUP BY hour, tenant, event_type, error_code;

-- retry_dlq_rates: how often notifications needed retries and how often they
-- ended in the dead-letter queue, per hour requested, tenant, event type and template.
--   retried        notifications with at least one retry
--   retry_events   retries in total (distinct retry_scheduled events)
--   dead_lettered  notifications whose status is dead_lettered
--   retry_rate     retried / requested
--   dlq_rate       dead_lettered / requested
--   avg_attempts   mean provider attempts of notifications that had any
CREATE OR REPLACE VIEW retry_dlq_rates AS
SELECT
    hour,
    tenant,
    event_type,
    template,
    requested,
    retried,
    retry_events,
    dead_lettered,
    round(if(requested = 0, 0, retried / requested), 4)       AS retry_rate,
    round(if(requested = 0, 0, dead_lettered / requested), 4) AS dlq_rate,
    avg_attempts
FROM
(
    SELECT
        toStartOfHour(created_at)               AS hour,
        tenant,
        event_type,
        template,
        countIf(requested)                      AS requested,
        countIf(retries > 0)                    AS retried,
        sum(retries)                            AS retry_events,
        countIf(status = 'dead_lettered')       AS dead_lettered,
        round(avgIf(attempts, attempts > 0), 3) AS avg_attempts
    FROM communication_logs
    GROUP BY hour, tenant, event_type, template
);

-- Rates over requested notifications only; orphans apart.
--
-- A status event can reach ClickHouse before (or without) the
-- notifications.requested record of its notification: an early webhook,
-- a dispatcher status the sink wrote first, a request record lost
-- upstream. communication_logs shows such a notification with requested =
-- false. 0005 and 0008 counted it in the steps of the funnel
-- (accepted, sent, delivered, …) and in retried, but not in requested,
-- so delivered / requested could read above 1.
--
-- From here on every count of delivery_funnel_hourly and retry_dlq_rates
-- covers only notifications whose request record the sink has seen, so
-- each step is a subset of requested and every rate stays within 0..1.
-- The others are counted apart, in the same row:
--
--   orphans            notifications with status events but no request
--                      record (yet), grouped by the hour of their first
--                      event; normally 0 or short-lived (they join the
--                      funnel once the request record arrives)
--   orphans_delivered  ... of which delivered or read
--
-- communication_logs WHERE NOT requested lists them one by one. The other
-- columns keep 0005's and 0008's meaning. (requested_at IS NOT NULL is
-- communication_logs.requested; the column name itself is taken by the
-- requested count, see the naming rule in 0003.)
CREATE OR REPLACE VIEW delivery_funnel_hourly AS
SELECT
    toStartOfHour(created_at)                                              AS hour,
    tenant,
    event_type,
    template,
    countIf(requested_at IS NOT NULL)                                      AS requested,
    countIf(requested_at IS NOT NULL
            AND (accepted_at IS NOT NULL OR sent_at IS NOT NULL
                 OR delivered_at IS NOT NULL OR read_at IS NOT NULL))      AS accepted,
    countIf(requested_at IS NOT NULL
            AND (sent_at IS NOT NULL OR delivered_at IS NOT NULL
                 OR read_at IS NOT NULL))                                  AS sent,
    countIf(requested_at IS NOT NULL
            AND (delivered_at IS NOT NULL OR read_at IS NOT NULL))         AS delivered,
    countIf(requested_at IS NOT NULL AND read_at IS NOT NULL)              AS read,
    countIf(requested_at IS NOT NULL AND status = 'failed')                AS failed,
    countIf(requested_at IS NOT NULL AND status = 'dead_lettered')         AS dead_lettered,
    countIf(requested_at IS NOT NULL AND status = 'expired')               AS expired,
    countIf(requested_at IS NOT NULL AND status = 'outcome_unknown')       AS outcome_unknown,
    countIf(requested_at IS NOT NULL
            AND status IN ('requested', 'retry_scheduled'))                AS pending,
    countIf(requested_at IS NOT NULL AND duplicates > 0)                   AS duplicates,
    countIf(requested_at IS NULL)                                          AS orphans,
    countIf(requested_at IS NULL
            AND (delivered_at IS NOT NULL OR read_at IS NOT NULL))         AS orphans_delivered
FROM communication_logs
GROUP BY hour, tenant, event_type, template;

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
    avg_attempts,
    orphans
FROM
(
    SELECT
        toStartOfHour(created_at)                                             AS hour,
        tenant,
        event_type,
        template,
        countIf(requested_at IS NOT NULL)                                     AS requested,
        countIf(requested_at IS NOT NULL AND retries > 0)                     AS retried,
        sumIf(retries, requested_at IS NOT NULL)                              AS retry_events,
        countIf(requested_at IS NOT NULL AND status = 'dead_lettered')        AS dead_lettered,
        round(avgIf(attempts, requested_at IS NOT NULL AND attempts > 0), 3)  AS avg_attempts,
        countIf(requested_at IS NULL)                                         AS orphans
    FROM communication_logs
    GROUP BY hour, tenant, event_type, template
);

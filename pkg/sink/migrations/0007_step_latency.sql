-- step_durations: one row per notification and step it completed, with the
-- time the step took. Steps:
--   requested_to_accepted   ingest accepted the request -> provider accepted it
--                           (includes queueing, rate limiting and retries)
--   accepted_to_sent        provider accepted -> provider reported sent
--   sent_to_delivered       sent -> delivered to the phone
--   delivered_to_read       delivered -> read
--   requested_to_delivered  end to end
-- A step is present only when both ends were reported and in order (the
-- provider may skip delivered, and provider clocks differ from ours).
CREATE OR REPLACE VIEW step_durations AS
SELECT
    notification_id,
    tenant,
    event_type,
    template,
    created_at,
    tupleElement(s, 1)                                                    AS step,
    dateDiff('millisecond', tupleElement(s, 2), tupleElement(s, 3)) / 1000 AS seconds
FROM communication_logs
ARRAY JOIN [
    ('requested_to_accepted', requested_at, accepted_at),
    ('accepted_to_sent', accepted_at, sent_at),
    ('sent_to_delivered', sent_at, delivered_at),
    ('delivered_to_read', delivered_at, read_at),
    ('requested_to_delivered', requested_at, delivered_at)
] AS s
WHERE tupleElement(s, 2) IS NOT NULL
  AND tupleElement(s, 3) IS NOT NULL
  AND tupleElement(s, 3) >= tupleElement(s, 2);

-- step_latency: percentiles (seconds) of each step per hour requested,
-- tenant and event type. Percentiles are exact, so the same data always
-- gives the same numbers; they cannot be averaged across rows: for other
-- groupings query step_durations directly (see docs/analytics.md).
CREATE OR REPLACE VIEW step_latency AS
SELECT
    toStartOfHour(created_at)          AS hour,
    tenant,
    event_type,
    step,
    count()                            AS samples,
    round(quantileExact(0.5)(seconds), 3)  AS p50,
    round(quantileExact(0.9)(seconds), 3)  AS p90,
    round(quantileExact(0.99)(seconds), 3) AS p99,
    round(max(seconds), 3)             AS max
FROM step_durations
GROUP BY hour, tenant, event_type, step;

-- lane_notifications: one row per notification of lane_state, folded
-- (lane_state is an AggregatingMergeTree: a notification may still have
-- several unmerged rows). lane_flow and lane_flow_minutely (0017) each
-- folded it in a subquery of their own; they now read this view.
--   r_at, a_at, l_at   requested_at, accepted_at, left_at
--   wait_ms            requested -> accepted, milliseconds (NULL until
--                      accepted)
CREATE OR REPLACE VIEW lane_notifications AS
SELECT
    notification_id,
    CAST(max(tenant) AS String)                      AS tenant,
    CAST(max(lane) AS String)                        AS lane,
    min(requested_at)                                AS r_at,
    min(accepted_at)                                 AS a_at,
    min(left_at)                                     AS l_at,
    CAST(dateDiff('millisecond', r_at, a_at) AS Nullable(Int64))    AS wait_ms
FROM lane_state
GROUP BY notification_id
HAVING r_at IS NOT NULL;

CREATE OR REPLACE VIEW lane_flow AS
SELECT
    lane,
    tenant,
    countIf(l_at IS NULL)                                                    AS queued,
    round(if(queued = 0, 0, dateDiff('millisecond', minIf(r_at, l_at IS NULL), now64(3)) / 1000), 3) AS oldest_queued_s,
    countIf(a_at >= now64(3) - INTERVAL 1 MINUTE)                        AS accepted_last_minute,
    round(accepted_last_minute / 60, 3)                                         AS sent_per_second,
    countIf(a_at >= now64(3) - INTERVAL 1 HOUR)                          AS accepted_last_hour,
    round(if(accepted_last_hour = 0, 0, quantileExactIf(0.5)(ifNull(wait_ms, 0), a_at >= now64(3) - INTERVAL 1 HOUR) / 1000), 3)  AS wait_p50_s,
    round(if(accepted_last_hour = 0, 0, quantileExactIf(0.95)(ifNull(wait_ms, 0), a_at >= now64(3) - INTERVAL 1 HOUR) / 1000), 3) AS wait_p95_s,
    round(if(accepted_last_hour = 0, 0, quantileExactIf(0.99)(ifNull(wait_ms, 0), a_at >= now64(3) - INTERVAL 1 HOUR) / 1000), 3) AS wait_p99_s,
    round(if(accepted_last_hour = 0, 0, maxIf(ifNull(wait_ms, 0), a_at >= now64(3) - INTERVAL 1 HOUR) / 1000), 3)                 AS wait_max_s
FROM lane_notifications
GROUP BY lane, tenant;

CREATE OR REPLACE VIEW lane_flow_minutely AS
SELECT
    toStartOfMinute(assumeNotNull(a_at))            AS minute,
    lane,
    tenant,
    count()                                         AS accepted,
    round(accepted / 60, 3)                         AS sent_per_second,
    round(quantileExact(0.5)(assumeNotNull(wait_ms)) / 1000, 3)    AS wait_p50_s,
    round(quantileExact(0.95)(assumeNotNull(wait_ms)) / 1000, 3)   AS wait_p95_s,
    round(quantileExact(0.99)(assumeNotNull(wait_ms)) / 1000, 3)   AS wait_p99_s,
    round(max(assumeNotNull(wait_ms)) / 1000, 3)                   AS wait_max_s
FROM lane_notifications
WHERE a_at IS NOT NULL
GROUP BY minute, lane, tenant;

-- Priority lanes (package lanes): every notification travels in one lane,
-- critical (authentication: OTPs), transactional (utility) or bulk
-- (marketing), each a topic of its own (notifications.critical,
-- notifications.requested, notifications.bulk). The sink reads all three.
--
-- notification_events.lane is the lane of a 'requested' row: the lane in
-- the record (ingest and the SDK always set it), or for a record of a
-- producer that knows no lanes the lane of the topic it is on
-- (notifications.critical, notifications.bulk), and on
-- notifications.requested the one its event type derives (lanes.Derive),
-- as the dispatcher serves it. Status rows leave
-- it empty: a notification keeps its lane through retries and the DLQ.
-- Rows written before this migration have an empty lane.
ALTER TABLE notification_events ADD COLUMN IF NOT EXISTS lane LowCardinality(String) DEFAULT '' AFTER sender;

-- lane_state: per notification, what the lane views need, folded from
-- notification_events like notification_state (0003): every column is an
-- idempotent aggregate, so duplicates, replays and arrival order do not
-- change it. It covers notifications requested after this migration.
--   lane, tenant   from the notification's events (lane from 'requested')
--   requested_at   created_at of the request
--   accepted_at    first time the provider took it
--   left_at        first time it left the queue: accepted by the provider,
--                  or ended without a send (failed, dead_lettered, expired);
--                  sent/delivered/read imply accepted. A retry_scheduled
--                  notification is still queued. A notification replayed
--                  from the DLQ keeps the left_at of its first run.
CREATE TABLE IF NOT EXISTS lane_state
(
    notification_id String,
    tenant          SimpleAggregateFunction(max, LowCardinality(String)),
    lane            SimpleAggregateFunction(max, LowCardinality(String)),
    requested_at    SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    accepted_at     SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    left_at         SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    last_event_at   SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY notification_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS lane_state_mv TO lane_state AS
SELECT
    notification_id,
    max(tenant)                                                  AS tenant,
    max(lane)                                                    AS lane,
    min(if(status = 'requested', occurred_at, NULL))             AS requested_at,
    min(if(status = 'accepted', occurred_at, NULL))              AS accepted_at,
    min(if(status IN ('accepted', 'sent', 'delivered', 'read', 'failed', 'dead_lettered', 'expired'),
           occurred_at, NULL))                                   AS left_at,
    max(occurred_at)                                             AS last_event_at
FROM notification_events
WHERE notification_id != ''
GROUP BY notification_id;

-- lane_flow: per lane and tenant, now.
--   queued               requested and not yet left the queue (see left_at)
--   oldest_queued_s      how long the oldest of them has waited, seconds
--   accepted_last_minute accepted by the provider in the last 60 seconds
--   sent_per_second      accepted_last_minute / 60
--   wait_p50_s, wait_p95_s, wait_p99_s, wait_max_s
--                        waiting time (requested -> accepted by the provider),
--                        seconds, of the notifications accepted in the last
--                        hour (0 when there were none)
--   accepted_last_hour   how many that is
CREATE OR REPLACE VIEW lane_flow AS
SELECT
    lane,
    tenant,
    countIf(l_at IS NULL)                                                    AS queued,
    round(if(queued = 0, 0, dateDiff('millisecond', minIf(r_at, l_at IS NULL), now64(3)) / 1000), 3) AS oldest_queued_s,
    countIf(a_at >= now64(3) - INTERVAL 1 MINUTE)                        AS accepted_last_minute,
    round(accepted_last_minute / 60, 3)                                         AS sent_per_second,
    countIf(a_at >= now64(3) - INTERVAL 1 HOUR)                          AS accepted_last_hour,
    round(if(accepted_last_hour = 0, 0, quantileExactIf(0.5)(wait_ms, a_at >= now64(3) - INTERVAL 1 HOUR) / 1000), 3)  AS wait_p50_s,
    round(if(accepted_last_hour = 0, 0, quantileExactIf(0.95)(wait_ms, a_at >= now64(3) - INTERVAL 1 HOUR) / 1000), 3) AS wait_p95_s,
    round(if(accepted_last_hour = 0, 0, quantileExactIf(0.99)(wait_ms, a_at >= now64(3) - INTERVAL 1 HOUR) / 1000), 3) AS wait_p99_s,
    round(if(accepted_last_hour = 0, 0, maxIf(wait_ms, a_at >= now64(3) - INTERVAL 1 HOUR) / 1000), 3)                 AS wait_max_s
FROM
(
    SELECT
        notification_id,
        CAST(max(tenant) AS String)                                     AS tenant,
        CAST(max(lane) AS String)                                       AS lane,
        min(requested_at)                                               AS r_at,
        min(accepted_at)                                                AS a_at,
        min(left_at)                                                    AS l_at,
        toInt64(ifNull(dateDiff('millisecond', r_at, a_at), 0))         AS wait_ms
    FROM lane_state
    GROUP BY notification_id
    HAVING r_at IS NOT NULL
)
GROUP BY lane, tenant;

-- lane_flow_minutely: per minute (of acceptance by the provider), lane and
-- tenant: accepted, sent_per_second (accepted / 60) and the waiting time
-- (requested -> accepted) quantiles of the notifications accepted in that
-- minute, seconds.
CREATE OR REPLACE VIEW lane_flow_minutely AS
SELECT
    toStartOfMinute(assumeNotNull(a_at))                    AS minute,
    lane,
    tenant,
    count()                                         AS accepted,
    round(accepted / 60, 3)                         AS sent_per_second,
    round(quantileExact(0.5)(wait_ms) / 1000, 3)    AS wait_p50_s,
    round(quantileExact(0.95)(wait_ms) / 1000, 3)   AS wait_p95_s,
    round(quantileExact(0.99)(wait_ms) / 1000, 3)   AS wait_p99_s,
    round(max(wait_ms) / 1000, 3)                   AS wait_max_s
FROM
(
    SELECT
        notification_id,
        CAST(max(tenant) AS String)                                     AS tenant,
        CAST(max(lane) AS String)                                       AS lane,
        min(requested_at)                                               AS r_at,
        min(accepted_at)                                                AS a_at,
        toInt64(assumeNotNull(dateDiff('millisecond', r_at, a_at)))     AS wait_ms
    FROM lane_state
    GROUP BY notification_id
    HAVING r_at IS NOT NULL AND a_at IS NOT NULL
)
GROUP BY minute, lane, tenant;

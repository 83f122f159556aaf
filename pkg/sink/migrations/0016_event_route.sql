-- route: which of the sender's routes the dispatcher sent a notification
-- through (notifications.status "route"): 'primary' (the sender's own) or
-- 'failover' (its failover route in the sender registry, docs/senders.md).
-- Empty on events that involve no send, on webhook events, and on events
-- written before the column existed: those read as the primary.
--
--   SELECT route, uniqExact(notification_id) FROM notification_events
--   WHERE status = 'accepted' GROUP BY route
ALTER TABLE notification_events ADD COLUMN IF NOT EXISTS route LowCardinality(String) DEFAULT '' AFTER retry_tier;

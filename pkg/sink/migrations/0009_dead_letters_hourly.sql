-- dead_letters_hourly: records parked in notifications.dlq per hour they
-- failed, tenant, event type, template, reason (exhausted, permanent, poison), error
-- class and code. records counts distinct Kafka records, so a replayed
-- range never inflates it; poison counts records whose value is not a
-- valid notification; replayed counts records that had been replayed
-- from the DLQ before and failed again.
CREATE OR REPLACE VIEW dead_letters_hourly AS
SELECT
    toStartOfHour(failed_at)                                           AS hour,
    tenant,
    event_type,
    template,
    reason,
    error_class,
    error_code,
    uniqExact(topic, partition, offset)                                AS records,
    uniqExactIf(notification_id, notification_id != '')                AS notifications,
    uniqExactIf((topic, partition, offset), NOT value_valid)           AS poison,
    uniqExactIf((topic, partition, offset), replay_count > 0)          AS replayed
FROM dead_letters
GROUP BY hour, tenant, event_type, template, reason, error_class, error_code;

-- delivery_funnel_hourly: what became of the notifications requested in each
-- hour, per tenant, event type and template.
--
--   hour            hour the notification was requested (created_at), UTC
--   requested       notifications whose request record the sink has seen
--   accepted        ... that the provider accepted
--   sent            ... that the provider reported sent
--   delivered       ... delivered
--   read            ... read
--   failed          current status failed (permanent error or provider failure)
--   dead_lettered   current status dead_lettered (retries exhausted)
--   expired         current status expired (not sent: past expires_at)
--   outcome_unknown current status outcome_unknown
--   pending         still requested or waiting on a retry
--   duplicates      notifications for which a second publish was suppressed
--
-- Each step counts the notifications that reached it or any later one, so
-- the funnel never narrows wrongly when the provider skips a status: a
-- message reported read without delivered counts as delivered, one with a
-- webhook but no dispatcher record yet counts as accepted. Counts come from
-- communication_logs (one row per notification), so replays and duplicate
-- events never inflate them.
CREATE OR REPLACE VIEW delivery_funnel_hourly AS
SELECT
    toStartOfHour(created_at)                                                       AS hour,
    tenant,
    event_type,
    template,
    countIf(requested)                                                              AS requested,
    countIf(accepted_at IS NOT NULL OR sent_at IS NOT NULL
            OR delivered_at IS NOT NULL OR read_at IS NOT NULL)                     AS accepted,
    countIf(sent_at IS NOT NULL OR delivered_at IS NOT NULL OR read_at IS NOT NULL) AS sent,
    countIf(delivered_at IS NOT NULL OR read_at IS NOT NULL)                        AS delivered,
    countIf(read_at IS NOT NULL)                                                    AS read,
    countIf(status = 'failed')                                                      AS failed,
    countIf(status = 'dead_lettered')                                               AS dead_lettered,
    countIf(status = 'expired')                                                     AS expired,
    countIf(status = 'outcome_unknown')                                             AS outcome_unknown,
    countIf(status IN ('requested', 'retry_scheduled'))                             AS pending,
    countIf(duplicates > 0)                                                         AS duplicates
FROM communication_logs
GROUP BY hour, tenant, event_type, template;

// Package dlq is where the dead-letter queue is investigated and
// reprocessed: it reads notifications.dlq (list, show, the error history
// of one notification), replays records to their lane's topic and purges
// old records. notifyctl's `dlq` commands are thin wrappers over it.
//
// # What a DLQ record is
//
// The dispatcher parks a record on notifications.dlq when its attempts
// are exhausted, when the provider answered with a permanent error, or
// when the record could not be decoded at all (poison). The record keeps
// the original value bytes and the original key (the recipient) and lands
// in the same partition number it came from; the failure context travels
// in headers (package envelope). A record is named either by its
// notification id or, for poison records that have none, by
// partition/offset ("3/1042"; "3@1042" and "notifications.dlq-3@1042"
// are read too).
//
// # The replay contract
//
// A replay produces, for each DLQ record:
//
//   - the original value bytes, unchanged, to the topic of the
//     notification's lane (Store.ReplayTopic): notifications.critical,
//     notifications.requested (transactional, and values that are no
//     notification) or notifications.bulk; the lane is the value's lane
//     field, else the one its event type derives, as ingest routes it, so
//     a replayed OTP keeps the critical lane;
//   - with the same key (the recipient) and explicitly to the SAME
//     partition number as the DLQ record, so co-partitioning holds and the
//     replay queues behind the recipient's other traffic;
//   - with the headers of the DLQ record minus every wanotify failure
//     header (envelope.Strip: attempt, due-at, origin, error, dlq-reason,
//     ...), so the trace context and foreign headers stay;
//   - plus wanotify-replay-count = previous + 1 (previous: the DLQ record's
//     own wanotify-replay-count, or the highest count an earlier replay of
//     the same DLQ offset carried when --again replays it once more),
//     wanotify-replayed-from-offset = the DLQ offset (the partition is the
//     record's own), wanotify-notification-id and wanotify-tenant.
//
// The dispatcher treats such a record as a fresh first attempt. Its
// idempotency store lets a replayed notification (one carrying
// wanotify-replay-count) be attempted again only when the last recorded
// outcome was dead-lettered; when the provider had already accepted it,
// for example because the same DLQ record was replayed twice, or it is
// still in flight, the dispatcher records "duplicate" and sends nothing.
// That is the hard guarantee against double sends.
//
// This package adds a cheap guard in front of it: before replaying, it
// scans the lanes' topics (only the partitions involved, only from
// the time the oldest selected record landed in the DLQ) for records whose
// wanotify-replayed-from-offset names a selected DLQ offset, and skips
// those as already replayed unless Again is set. Within one replay, only
// the newest DLQ record of a notification is replayed; older ones are
// superseded. The guard needs the earlier replay to still be within
// the lane topic's retention; the dispatcher's guarantee does not.
//
// Records whose last error was permanent (wanotify-error-retryable=false
// or reason permanent) are refused unless Force is set: replaying them
// unchanged fails the same way unless the cause (the template, the
// number, the 24 h window) was fixed. Poison records, and records whose
// failure headers are missing or invalid, are refused unless Force is set
// too: the dispatcher will dead-letter a poison record again.
//
// # Purge
//
// Kafka cannot delete single records. Purge moves the log start offset
// forward (DeleteRecords): every record of a partition before an offset
// goes, either all of them or those that landed before a time.
package dlq

// Package dispatcher delivers notifications: it consumes
// notifications.requested and the retry topics in one consumer group and
// sends each notification through a provider.Provider at most once per
// idempotency key, paced below the provider's rate limit, behind a circuit
// breaker, with retries through delay topics and a dead-letter topic.
//
// # Flow of one record
//
// A record's way reads as five stages, each in a file of its own, with
// each rule it applies in a package of its own:
//
//		poll (dispatcher.go) → admit (admit_stage.go) → its sender's scheduler
//		(schedule.go, package sched) → the call (call.go, package answer) →
//		settle (settle.go) → commit (commit.go)
//
//	 1. Poll. The poll loop (the only goroutine that polls, begins and ends
//	    transactions) adds each record to its partition's order.Partition
//	    and queues it behind its key (the recipient). Records of a retry
//	    topic that are not yet due are held instead, and their partition is
//	    paused (PauseFetchPartitions) until a timer releases the earliest
//	    one at its due time (held.go); nothing sleeps in the poll loop and
//	    nothing is released before the clock reaches its due time. The
//	    bulk lane's partitions are read only to their share of
//	    MaxBulkBuffered, a few with a backlog at a time (package
//	    bulkread), so a campaign's backlog stays in Kafka.
//	 2. Admit. When a record becomes its key's active record, it is decoded
//	    and checked against the dedupe state (package dedupe): a poison
//	    record goes to the DLQ at once; a second request with the same
//	    tenant and idempotency key (a different origin offset) gets status
//	    duplicate; an outcome already recorded for this very record and
//	    attempt (the record is consumed again after a crash, rebalance or
//	    aborted transaction) is re-emitted from the recorded state without
//	    calling the provider; a pending marker for this attempt means the
//	    process died during the call. Under the default policy "verify"
//	    (package unknown, outcome_unknown.go) a notification of a
//	    resendable event type (OTPs) whose expiry is still ahead is parked
//	    on the last retry tier with status outcome_unknown until a window
//	    has passed; then a status webhook naming it on its
//	    notifications.status partition settles it as accepted, and without
//	    one it is sent again. Any other is reported outcome_unknown
//	    ("report" always does that, "resend" always sends again). Then the
//	    admit rules (package admit: the sender registry's ownership) refuse
//	    what the tenant may not send, and an expired notification gets
//	    status expired.
//	 3. Schedule. Everything else goes to its sender's scheduler (package
//	    sched): its gates decide which record may start next, before any
//	    token is taken or marker written. A gate lets a record go, sets it
//	    aside until a time while the records behind it go on, or diverts it
//	    (the breaker gate parks it on an open breaker, breaker.go). One
//	    pacer goroutine per sender starts the calls, so waiting holds up
//	    neither other senders nor the group's heartbeats, and a global
//	    semaphore bounds the calls in flight
//	    (WANOTIFY_DISPATCHER_CONCURRENCY).
//	 4. The call. A pending marker is written synchronously to the
//	    changelog (before the token is taken, so a record waiting for its
//	    token is pending to any new owner of the partition: see send), a
//	    token is taken from the sender's rate.Limiter (package ratelimit),
//	    the provider is called through the sender's circuit breaker, and
//	    package answer judges the answer: settle it, or park the record
//	    without spending its attempt (the breaker refused, the provider or
//	    the sender's account is down). A call that timed out may have been
//	    sent: it is retried only when the provider deduplicates by the
//	    idempotency key the request carries (provider.KeyedProvider;
//	    Xpressbot by default, WANOTIFY_XPRESSBOT_IDEMPOTENCY_KEYS),
//	    otherwise it is settled as outcome_unknown, never resent (unless the
//	    policy is "resend"). A throttled failure waits at least its
//	    Retry-After: it is due that much later and goes to the first tier
//	    whose delay covers the wait, so one retry partition's records fall
//	    due in about the order they were written. Permanent errors end in
//	    status failed. A sender with a failover route (the registry's
//	    failover:, package failover, failover_stage.go) keeps sending while
//	    its breaker is open: the breaker gate lets a record the primary
//	    provably did not take go through the second route, and a record
//	    the primary may have taken never does.
//	 5. Settle. The outcome is written as a done marker, and the record is
//	    finished with its outputs: a status event, and a retry record (tier
//	    n after attempt n, due at failure time plus the tier delay) or a DLQ
//	    record after the last attempt.
//	 6. Commit. Every FlushInterval the poll loop drains, per partition, the
//	    finished records below the lowest unfinished one, and in a single
//	    transaction produces their outputs and commits the offset after
//	    them. Outputs and offsets therefore commit together: a crash loses
//	    or duplicates neither.
//
// # Transactions and offsets
//
// The group runs in a kgo.GroupTransactSession, which aborts a
// transaction that spans a rebalance. By itself the session commits every
// polled offset; with records in flight out of order that would skip
// unfinished ones, so the commit request is rewritten (kgo's
// PreTxnCommitFnContext) to the per-partition offsets drained in that
// transaction. When a transaction aborts, the session rewinds fetching to
// the last commit; the affected partitions are restarted after their
// provider calls in flight finished, and their records come again and are
// re-derived from the dedupe state, never sent twice.
//
// All outputs are produced to the partition number their input came from
// (kgo.ManualPartitioner), which keeps co-partitioning exact. The range
// balancer gives a member the same partition numbers of every input topic,
// so one instance owns a recipient's requested records, its retry records
// and its dedupe partition.
//
// # Dedupe state
//
// The changelog (notifications.dedupe, compacted, co-partitioned) is
// written outside the transactions, synchronously with acks=all: an
// aborted transaction must not take a pending marker with it. On
// assignment each partition's changelog is read to its end before any of
// its inputs is fetched (OnPartitionsAssigned runs before fetching
// starts); on revocation the calls in flight finish and write their
// markers before the partition is released, so the next owner's state is
// complete. Keys older than WANOTIFY_DISPATCHER_DEDUPE_WINDOW are
// forgotten and tombstoned. Because the eager protocol revokes every
// partition on every rebalance, a rebalance re-reads the changelog of the
// partitions assigned; its size is bounded by the window (the topic is
// compacted).
//
// A record's idempotency key is the notification's idempotency_key, which
// the publisher fills (contract.DefaultIdempotencyKey: user id + event type
// + event time, unless the caller supplied one). A key that was not
// delivered (dead-lettered, failed, expired, outcome unknown) may be
// delivered again only by an operator's replay, recognised by a positive
// wanotify-replay-count header; an accepted key never is.
//
// # Rate limit across instances
//
// Each instance spends the configured rate times its share of the
// notifications.requested partitions, recomputed on every assignment and
// revocation. The range balancer with the classic (eager) protocol revokes
// everything before assigning, so shares never overlap. The one overlap
// left is a live member expelled for missing heartbeats (a stall longer
// than the session timeout): it keeps its share until it notices, within
// a heartbeat interval of resuming. Keep WANOTIFY_DISPATCHER_SESSION_TIMEOUT
// well above the longest stall expected, and the configured rate a little
// below the provider's limit.
//
// # Circuit breaker
//
// One gobreaker per provider and sender counts retryable and throttled
// failures (not permanent ones). While any breaker is not closed, fetching
// pauses; records that meet an open breaker are parked in their key's turn
// without spending an attempt, and so is a failure that opened the breaker
// or arrived while it was open: an outage sends nothing to the DLQ. After
// the open timeout one probe goes through; success closes the breaker and
// the parked records drain at the rate limit.
//
// # Shutdown
//
// Run returns after its context is cancelled and it stopped fetching and
// starting calls, waited for calls in flight (WANOTIFY_DISPATCHER_DRAIN_TIMEOUT),
// committed what finished and left the group; unfinished records are
// handed back uncommitted.
//
// # Deviations from the sketch it was built from
//
// Records waiting for a token are queued per sender rather than held by
// workers of one shared pool, so a saturated sender cannot occupy every
// worker. Detail needed to re-emit an outcome (provider message id, error,
// times) is kept in memory only for records whose offset is not committed,
// to stay far below 100 bytes per remembered key.
package dispatcher

// Package chaos is the reliability scenario behind `make chaos` and the
// short version that runs inside `make test`: the whole pipeline as
// separate OS processes (the broker with a persistent data directory, a
// real ClickHouse server, the provider simulator, the webhook receiver,
// the sink and three dispatchers), a stream of notifications published
// through pkg/sdk with provider errors injected, and faults on a seeded
// schedule while it flows: dispatchers killed with SIGKILL and restarted,
// a provider outage, ClickHouse killed and restarted, one sender's access
// token revoked for a while (an account fault: the dispatchers halt that
// sender, hold its notifications on notifications.held and probe until it
// works again), the broker killed and restarted.
//
// When everything has settled, the evidence is read back from three
// independent places (the simulator's ledger of what the provider
// accepted, the Kafka topics, and ClickHouse) and checked against the
// promises the pipeline makes: every accepted notification reached
// exactly one terminal state, no message was sent twice, the provider
// never answered 429, the dead-letter topic holds exactly the exhausted
// and poison records, communication_logs agrees with the ledger
// notification by notification, and the account fault held only its
// sender's notifications and failed none of them. Report prints them as a table; a failed
// invariant lists the first offending notifications.
//
// Every random choice (the workload, which dispatcher dies when, the
// simulator's failures) comes from Config.Seed. Timing still varies from
// run to run, so the counts per terminal state vary; the invariants hold
// exactly, not approximately, or the run fails.
//
// # Three brokers
//
// With Config.Kafka "apache-cluster" the broker is a cluster of three
// Apache Kafka nodes with production's replication (factor 3,
// min.insync.replicas 2), and the broker fault kills the node that leads
// the most partitions of notifications.requested and __transaction_state:
// the report adds who led what before, during and after, and checks that
// the dead node's partitions moved to the survivors.
//
// # What the local broker cannot take
//
// The broker is franz-go's kfake, a stand-in for Apache Kafka, and two of
// its gaps shape the scenario. A broker killed with SIGKILL may duplicate
// an idempotent producer's records in its log, so the checks count
// distinct notification ids, never records. And kfake arms a classic group
// member's session timer only once it has delivered the member's JoinGroup
// answer: a process killed while its JoinGroup waits would stay in the
// group, with its partitions, for good (Apache Kafka expires it after the
// session timeout). Dispatchers are therefore killed only while their
// group is stable; a kill whose turn comes during a rebalance is skipped
// and counted in the report.
package chaos

package sink

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/wanotify/wanotify/pkg/testinfra"
)

// TestSinkMatchesModelAndReplayDoesNotDoubleCount is the sink's main
// proof: 100,000 records of messy traffic (webhooks before the
// dispatcher's record, late delivered after read, skipped statuses,
// webhooks without notification ids, duplicated records, poison on every
// topic) end in communication_logs exactly as an independent model says,
// notification by notification; then the same Kafka range consumed again
// by a second group, cut into different batches, leaves every analytics
// view with the same numbers.
func TestSinkMatchesModelAndReplayDoesNotDoubleCount(t *testing.T) {
	db := testinfra.ClickHouseDatabase(t)
	brokers := testinfra.KafkaWithTopics(t, 6)
	base := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	begin := time.Now()
	d := simulateTraffic(t, 42, 100_000, base)
	t.Logf("traffic built in %s", time.Since(begin).Round(time.Millisecond))
	t.Logf("%d records for %d notifications (%d distinct events, %d poison, %d dead letters); final statuses %v",
		d.records(), len(d.notifications), len(d.eventIDs), d.ingestErrors, d.deadLetters, d.statusCounts())

	cl := testinfra.Client(t, brokers)
	adm := kadm.NewClient(cl)
	begin = time.Now()
	produce(t, cl, d.all())
	t.Logf("produced in %s", time.Since(begin).Round(time.Millisecond))

	begin = time.Now()
	first := startSink(t, Config{Group: "sink-a", BatchRows: 5000, BatchInterval: 200 * time.Millisecond}, db.Options(), brokers)
	waitConsumed(t, adm, "sink-a", 2*time.Minute)
	t.Logf("first consumption in %s", time.Since(begin).Round(time.Millisecond))
	if !first.Ready() {
		t.Error("sink not ready while consuming")
	}
	first.stop()
	if first.Ready() {
		t.Error("sink still ready after it stopped")
	}

	begin = time.Now()
	compareLogs(t, d, queryLogs(t, db.Conn))
	checkTables(t, d, db.Conn)
	checkFunnel(t, d, db.Conn)
	before := snapshotViews(t, db.Conn)
	t.Logf("checked in %s", time.Since(begin).Round(time.Millisecond))

	// The same range again, by another group, in smaller batches: every
	// row is written a second time with different batch boundaries (so no
	// insert deduplication token matches).
	begin = time.Now()
	second := startSink(t, Config{Group: "sink-b", BatchRows: 3000, BatchInterval: 100 * time.Millisecond}, db.Options(), brokers)
	waitConsumed(t, adm, "sink-b", 2*time.Minute)
	second.stop()
	t.Logf("second consumption in %s", time.Since(begin).Round(time.Millisecond))
	after := snapshotViews(t, db.Conn)
	if diff := diffSnapshots(before, after); diff != "" {
		t.Errorf("analytics views changed after consuming the same range twice:\n%s", diff)
	}
	compareLogs(t, d, queryLogs(t, db.Conn))
	checkTables(t, d, db.Conn)

	// Merging everything must not change the answers either.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, table := range []string{"notification_events", "notification_state", "provider_message_state", "provider_message_map", "ingest_errors", "dead_letters"} {
		if err := db.Conn.Exec(ctx, "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
			t.Fatalf("optimize %s: %v", table, err)
		}
	}
	if got := queryUint(t, db.Conn, "SELECT count() FROM notification_events"); got != uint64(d.occurrences()) {
		t.Errorf("notification_events has %d rows after merges, want %d distinct events", got, d.occurrences())
	}
	if diff := diffSnapshots(before, snapshotViews(t, db.Conn)); diff != "" {
		t.Errorf("analytics views changed after merges:\n%s", diff)
	}
}

// TestRebalanceLosesNothing moves partitions between sinks of one group
// while records stream in: a second sink joins, then the first leaves.
// Batches held during the handovers are written before their partitions
// move (or consumed again by the new owner), so every notification ends
// as the model says.
func TestRebalanceLosesNothing(t *testing.T) {
	db := testinfra.ClickHouseDatabase(t)
	brokers := testinfra.KafkaWithTopics(t, 6)
	d := simulateTraffic(t, 11, 20_000, time.Date(2026, 5, 3, 7, 0, 0, 0, time.UTC))
	cl := testinfra.Client(t, brokers)
	adm := kadm.NewClient(cl)
	cfg := Config{Group: "sink-rebalance", BatchRows: 500, BatchInterval: 50 * time.Millisecond}

	a := startSink(t, cfg, db.Options(), brokers)
	all := d.all()
	progress := stream(t, cl, all)
	waitProduced(progress, len(all)/4)
	b := startSink(t, cfg, db.Options(), brokers)
	waitProduced(progress, len(all)/2)
	a.stop()
	waitProduced(progress, len(all))
	waitConsumed(t, adm, cfg.Group, 2*time.Minute)
	if !b.Ready() {
		t.Error("remaining sink not ready")
	}
	b.stop()
	compareLogs(t, d, queryLogs(t, db.Conn))
	checkTables(t, d, db.Conn)
}

// checkTables verifies the raw tables against the model: every distinct
// event once, every poison record in ingest_errors with its position and
// reason, every DLQ record in dead_letters, the orphan webhooks unmatched.
func checkTables(t testing.TB, d *dataset, conn driver.Conn) {
	t.Helper()
	if got := queryUint(t, conn, "SELECT uniqExact(event_id) FROM notification_events"); got != uint64(len(d.eventIDs)) {
		t.Errorf("notification_events has %d distinct events, want %d", got, len(d.eventIDs))
	}
	if got := queryUint(t, conn, "SELECT count() FROM notification_events FINAL"); got != uint64(d.occurrences()) {
		t.Errorf("notification_events FINAL has %d rows, want %d (one per event id and time)", got, d.occurrences())
	}
	if got := queryUint(t, conn, "SELECT count() FROM ingest_errors FINAL"); got != uint64(d.ingestErrors) {
		t.Errorf("ingest_errors has %d records, want %d", got, d.ingestErrors)
	}
	if got := queryUint(t, conn, "SELECT count() FROM ingest_errors FINAL WHERE reason = '' OR topic = '' OR value_size = 0"); got != 0 {
		t.Errorf("%d ingest_errors rows lack a reason, topic or value", got)
	}
	for _, topic := range sinkTopics {
		if got := queryUint(t, conn, "SELECT uniqExact(partition, offset) FROM ingest_errors WHERE topic = ?", topic); got == 0 {
			t.Errorf("no ingest_errors recorded for %s", topic)
		}
	}
	if got := queryUint(t, conn, "SELECT count() FROM dead_letters FINAL"); got != uint64(d.deadLetters) {
		t.Errorf("dead_letters has %d records, want %d", got, d.deadLetters)
	}
	if got := queryUint(t, conn, "SELECT count() FROM dead_letters FINAL WHERE NOT value_valid"); got != uint64(d.poisonDeadLetters) {
		t.Errorf("dead_letters has %d poison values, want %d", got, d.poisonDeadLetters)
	}
	if got := queryUint(t, conn, "SELECT count() FROM dead_letters FINAL WHERE value_valid AND (notification_id = '' OR tenant = '' OR reason != 'exhausted')"); got != 0 {
		t.Errorf("%d dead letters lack their notification context", got)
	}
	if got := queryUint(t, conn, "SELECT count() FROM unmatched_webhooks"); got != uint64(len(d.orphanWebhooks)) {
		t.Errorf("unmatched_webhooks has %d rows, want %d", got, len(d.orphanWebhooks))
	}
}

// checkFunnel compares delivery_funnel_hourly, summed, with the model.
func checkFunnel(t testing.TB, d *dataset, conn driver.Conn) {
	t.Helper()
	want := d.funnelTotals()
	cols := []string{"requested", "accepted", "sent", "delivered", "read", "failed", "dead_lettered", "expired", "outcome_unknown", "pending", "duplicates",
		"orphans", "orphans_delivered"}
	sums := make([]string, len(cols))
	got := make([]uint64, len(cols))
	dest := make([]any, len(cols))
	for i, c := range cols {
		sums[i] = fmt.Sprintf("toUInt64(sum(%s))", c)
		dest[i] = &got[i]
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := conn.QueryRow(ctx, "SELECT "+strings.Join(sums, ", ")+" FROM delivery_funnel_hourly").Scan(dest...); err != nil {
		t.Fatal(err)
	}
	for i, c := range cols {
		if got[i] != want[c] {
			t.Errorf("delivery_funnel_hourly %s = %d, model says %d", c, got[i], want[c])
		}
	}
	if got := queryUint(t, conn, "SELECT uniqExact(hour) FROM delivery_funnel_hourly"); got < 2 {
		t.Errorf("funnel covers %d hours; the data spans more", got)
	}
	failed := uint64(d.statusCounts()["failed"] + d.statusCounts()["dead_lettered"])
	if got := queryUint(t, conn, "SELECT toUInt64(sum(notifications)) FROM failures_by_code"); got != failed {
		t.Errorf("failures_by_code counts %d notifications, want %d", got, failed)
	}
	if got := queryUint(t, conn, "SELECT toUInt64(sum(dead_lettered)) FROM retry_dlq_rates"); got != want["dead_lettered"] {
		t.Errorf("retry_dlq_rates counts %d dead-lettered, want %d", got, want["dead_lettered"])
	}
	if got := queryUint(t, conn, "SELECT count() FROM step_latency WHERE p50 > p90 OR p90 > p99 OR p99 > max OR samples = 0"); got != 0 {
		t.Errorf("%d step_latency rows have unordered percentiles", got)
	}
}

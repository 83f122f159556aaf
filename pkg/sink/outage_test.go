package sink

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/testinfra"
)

// TestClickHouseKilledMidStreamLosesNothing kills ClickHouse (SIGKILL)
// while records stream in and the sink is writing, keeps producing while
// it is down, and restarts it: while it is down the sink is not ready and
// commits nothing; once it is back every notification is in
// communication_logs exactly once and as the model says, every event is
// stored once, nothing is lost.
func TestClickHouseKilledMidStreamLosesNothing(t *testing.T) {
	ch := startOwnClickHouse(t)
	brokers := testinfra.KafkaWithTopics(t, 6)
	d := simulateTraffic(t, 7, 20_000, time.Date(2026, 4, 2, 9, 0, 0, 0, time.UTC))
	cl := testinfra.Client(t, brokers)
	adm := kadm.NewClient(cl)
	m := collectMetrics(t)

	const group = "sink-outage"
	s := startSink(t, Config{Group: group, BatchRows: 1000, BatchInterval: 50 * time.Millisecond,
		RetryInitialBackoff: 50 * time.Millisecond, RetryMaxBackoff: 400 * time.Millisecond}, ch.options("wanotify_outage"), brokers)
	waitFor(t, 60*time.Second, "sink ready", s.Ready)

	all := d.all()
	progress := stream(t, cl, all)
	// Kill ClickHouse once a third of the stream is out and the sink has
	// committed some of it.
	waitProduced(progress, len(all)/3)
	waitFor(t, 30*time.Second, "first commits", func() bool {
		n, err := committedTotal(context.Background(), adm, group)
		return err == nil && n > 0
	})
	ch.kill()
	killedAt := time.Now()

	waitFor(t, 10*time.Second, "sink not ready while ClickHouse is down", func() bool { return !s.Ready() })
	c1, err := committedTotal(context.Background(), adm, group)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	c2, err := committedTotal(context.Background(), adm, group)
	if err != nil {
		t.Fatal(err)
	}
	if c2 != c1 {
		t.Errorf("offsets were committed while ClickHouse was down: %d then %d", c1, c2)
	}
	if lag, ok := m.gauge(t, "wanotify.sink.lag"); !ok || lag <= 0 {
		t.Errorf("lag gauge = %d (observed %v) while ClickHouse is down and records wait", lag, ok)
	}
	if errs := m.counter(t, "wanotify.sink.insert.errors"); errs < 2 {
		t.Errorf("insert.errors = %d after %s of outage; the sink should be retrying", errs, time.Since(killedAt).Round(time.Millisecond))
	}

	if err := ch.start(); err != nil {
		t.Fatalf("restart ClickHouse: %v", err)
	}
	ch.waitUp(t)
	t.Logf("ClickHouse was down for %s", time.Since(killedAt).Round(time.Millisecond))
	waitProduced(progress, len(all))
	waitConsumed(t, adm, group, 2*time.Minute)
	waitFor(t, 10*time.Second, "sink ready again", s.Ready)
	waitFor(t, 10*time.Second, "lag gauge back to 0", func() bool { lag, ok := m.gauge(t, "wanotify.sink.lag"); return ok && lag == 0 })
	s.stop()

	conn, err := clickhouse.Open(ch.options("wanotify_outage"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	compareLogs(t, d, queryLogs(t, conn))
	checkTables(t, d, conn)

	if rows := m.counter(t, "wanotify.sink.rows"); rows < int64(d.records()-d.ingestErrors-d.deadLetters) {
		t.Errorf("rows metric %d below the %d events written", rows, d.records()-d.ingestErrors-d.deadLetters)
	}
	if n := m.histogramCount(t, "wanotify.sink.batch.size"); n == 0 {
		t.Error("batch.size never recorded")
	}
	if n := m.histogramCount(t, "wanotify.sink.batch.duration"); n == 0 {
		t.Error("batch.duration never recorded")
	}
	if n := m.histogramCount(t, "wanotify.sink.freshness"); n == 0 {
		t.Error("freshness never recorded")
	}
	if errs := m.counter(t, "wanotify.sink.decode.errors"); errs < int64(d.ingestErrors) {
		t.Errorf("decode.errors = %d, want at least %d", errs, d.ingestErrors)
	}
}

// stream produces rs in chunks of 500 about 20 times a second (10k
// records/s) in the background; the channel reports how many are out and
// closes at the end.
func stream(t testing.TB, cl *kgo.Client, rs []*kgo.Record) <-chan int {
	progress := make(chan int, len(rs)/500+1)
	go func() {
		defer close(progress)
		for lo := 0; lo < len(rs); lo += 500 {
			hi := min(lo+500, len(rs))
			if err := produceErr(cl, rs[lo:hi]); err != nil {
				t.Error(err)
				return
			}
			progress <- hi
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return progress
}

// waitProduced waits until at least n records of a stream are out (or the
// stream ended).
func waitProduced(progress <-chan int, n int) {
	for out := range progress {
		if out >= n {
			return
		}
	}
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

package sink

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/chmigrate"
	"github.com/wanotify/wanotify/pkg/sink/migrations"
	"github.com/wanotify/wanotify/pkg/testinfra"

	"github.com/wanotify/wanotify/bench"
)

// lifecycles returns the records of n notifications' lives as the pipeline
// writes them (the request, the dispatcher's accepted event, the webhook's
// sent and delivered events): what the sink reads most of the time.
func lifecycles(tb testing.TB, prefix string, n int, at time.Time) []*kgo.Record {
	tb.Helper()
	out := make([]*kgo.Record, 0, 4*n)
	for i := range n {
		rs, err := bench.Lifecycle(prefix, i, at)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, rs...)
	}
	return out
}

// positioned gives rs the positions a consumer would see: partition by
// index, increasing offsets.
func positioned(rs []*kgo.Record, partitions int32) []*kgo.Record {
	next := map[topicPartition]int64{}
	for i, r := range rs {
		r.Partition = int32(i) % partitions
		tp := topicPartition{r.Topic, r.Partition}
		r.Offset = next[tp]
		next[tp]++
		r.Timestamp = time.Now()
	}
	return rs
}

// BenchmarkDecode decodes one default-sized batch of lifecycle records and
// puts the rows into a batch, as the poll loop does.
func BenchmarkDecode(b *testing.B) {
	recs := positioned(lifecycles(b, "dec", DefaultBatchRows/4, time.Now()), 12)
	d := testDecoder()
	b.ReportAllocs()
	cpu0 := testinfra.CPUTime(b)
	b.ResetTimer()
	for b.Loop() {
		bt := newBatch()
		d.decodeInto(bt, recs)
		bt.seal()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
	// CPU time, unlike wall time, does not grow when other processes
	// share the machine.
	b.ReportMetric(float64((testinfra.CPUTime(b)-cpu0).Nanoseconds())/float64(b.N*len(recs)), "cpu-ns/record")
}

// prepared applies the sink's migrations to the database of opts and
// returns a connection to it.
func prepared(tb testing.TB, opts *clickhouse.Options) driver.Conn {
	tb.Helper()
	ms, err := chmigrate.Load(migrations.FS, migrations.Dir)
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := chmigrate.Apply(ctx, conn, ms, nil); err != nil {
		tb.Fatal(err)
	}
	return conn
}

// BenchmarkWrite inserts one default-sized batch into ClickHouse per
// iteration (each with its own token, so none is deduplicated away).
func BenchmarkWrite(b *testing.B) {
	db := testinfra.ClickHouseDatabase(b)
	conn := prepared(b, db.Options())
	defer conn.Close()
	recs := positioned(lifecycles(b, "wr", DefaultBatchRows/4, time.Now()), 12)
	d := testDecoder()
	bt := newBatch()
	d.decodeInto(bt, recs)
	w := NewClickHouseWriter(conn, db.Name)
	b.ReportAllocs()
	cpu0 := testinfra.CPUTime(b)
	b.ResetTimer()
	n := 0
	for b.Loop() {
		n++
		bt.Token = fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), n)
		if err := w.Write(context.Background(), bt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "rows/s")
	// This process's share: building the columns and sending them.
	b.ReportMetric(float64((testinfra.CPUTime(b)-cpu0).Nanoseconds())/float64(b.N*len(recs)), "cpu-ns/row")
}

// BenchmarkSinkBacklog runs a sink with its default settings over a backlog
// of 80,000 lifecycle records in an in-process broker and the real
// ClickHouse, and reports the rate from its first offset commit to the
// commit that covers the whole backlog (the harness's sink row, in
// process). Each iteration is a fresh database and consumer group.
func BenchmarkSinkBacklog(b *testing.B) {
	srv := testinfra.ClickHouse(b)
	brokers := testinfra.KafkaWithTopics(b, 12)
	cl := testinfra.Client(b, brokers)
	adm := kadm.NewClient(cl)
	recs := lifecycles(b, "backlog", 20000, time.Now())
	produce(b, cl, recs)
	total := int64(len(recs))
	var (
		elapsed time.Duration
		rows    int64
	)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db := srv.NewDatabase(b)
		group := fmt.Sprintf("bench-backlog-%d-%d", time.Now().UnixNano(), i)
		s := startSink(b, Config{Group: group}, db.Options(), brokers)
		var t0 time.Time
		awaitCommitted(b, adm, group, total, func(c int64) {
			// The group exists once the sink joined; until then there is
			// nothing committed.
			if c > 0 && t0.IsZero() {
				t0 = time.Now()
				rows += total - c
				b.StartTimer()
			}
		})
		b.StopTimer()
		elapsed += time.Since(t0)
		s.stop()
	}
	b.ReportMetric(float64(rows)/elapsed.Seconds(), "rows/s")
}

// BenchmarkPipeline runs the poll loop over a backlog of 80,000 lifecycle
// records in an in-process broker with a writer that takes a fixed 40 ms
// per batch (an insert whose time does not depend on this process's CPU),
// and reports the rate from the first write to the commit covering the
// backlog. Decoding a batch while the previous one is written makes the
// rate approach BatchRows per 40 ms; decoding and writing in turn adds the
// decode time to every batch.
func BenchmarkPipeline(b *testing.B) {
	brokers := testinfra.KafkaWithTopics(b, 12)
	cl := testinfra.Client(b, brokers)
	adm := kadm.NewClient(cl)
	recs := lifecycles(b, "pipeline", 20000, time.Now())
	produce(b, cl, recs)
	total := int64(len(recs))
	var (
		elapsed time.Duration
		rows    int64
	)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		group := fmt.Sprintf("bench-pipeline-%d-%d", time.Now().UnixNano(), i)
		var t0 atomic.Pointer[time.Time]
		w := writerFunc(func(_ context.Context, bt *Batch) error {
			now := time.Now()
			t0.CompareAndSwap(nil, &now)
			time.Sleep(40 * time.Millisecond)
			return nil
		})
		p := startPipeline(b, Config{Group: group}, brokers, w)
		awaitCommitted(b, adm, group, total, func(int64) {})
		elapsed += time.Since(*t0.Load())
		rows += total
		p.stop()
	}
	b.ReportMetric(float64(rows)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(0, "ns/op")
}

// awaitCommitted polls group's committed offsets until they cover total
// records, handing each reading to seen.
func awaitCommitted(b *testing.B, adm *kadm.Client, group string, total int64, seen func(committed int64)) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		c, _ := committedTotal(context.Background(), adm, group)
		seen(c)
		if c >= total {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("committed %d of %d records in 5 minutes", c, total)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

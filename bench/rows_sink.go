package bench

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/chmigrate"
	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/sdk"
	"github.com/wanotify/wanotify/pkg/sink/migrations"
	"github.com/wanotify/wanotify/pkg/topics"
)

const sinkBatchRows = 5000 // WANOTIFY_SINK_BATCH_ROWS' default; the raw baseline inserts batches of the same size

// Lifecycle returns the records of one notification's life as the
// pipeline writes them: the request, the dispatcher's accepted event and
// the webhook's sent and delivered events. pkg/sink's benchmarks use it too.
func Lifecycle(prefix string, i int, at time.Time) ([]*kgo.Record, error) {
	req := sdk.Request{
		IdempotencyKey: fmt.Sprintf("%s-%d", prefix, i), EventType: "invoice.reminder", UserID: fmt.Sprintf("user-%d", i),
		Recipient: fmt.Sprintf("+4471%08d", i%100000000), Sender: benchSender,
		Template: &contract.Template{Name: "invoice_due", Language: "en_US", Parameters: []string{fmt.Sprintf("INV-%d", i), "49.00"}},
		Metadata: map[string]string{"invoice": fmt.Sprint(i), "channel": "billing"},
	}
	rec, n, err := sdk.BuildRecord(ingestTenant, &req, sdk.BuildOptions{SourceService: "billing", Sender: benchSender}, at, "")
	if err != nil {
		return nil, err
	}
	out := []*kgo.Record{rec}
	wamid := fmt.Sprintf("wamid.bench.%s.%d", prefix, i)
	for k, st := range []contract.Status{contract.StatusAccepted, contract.StatusSent, contract.StatusDelivered} {
		ev := contract.StatusEvent{NotificationID: n.ID, ProviderMessageID: wamid, Provider: "xpressbot", Tenant: n.Tenant,
			EventType: n.EventType, Sender: n.Sender, Recipient: n.Recipient, Status: st, Attempt: 1,
			OccurredAt: at.Add(time.Duration(k+1) * 100 * time.Millisecond).UTC(), Emitter: contract.EmitterWebhook}
		if st == contract.StatusAccepted {
			ev.EventID, ev.Emitter = contract.DispatcherEventID(n.ID, st, 1), contract.EmitterDispatcher
		} else {
			ev.EventID, ev.Attempt = contract.WebhookEventID(wamid, st), 0
		}
		v, err := ev.Encode()
		if err != nil {
			return nil, err
		}
		out = append(out, &kgo.Record{Topic: topics.Status, Key: ev.Key(), Value: v})
	}
	return out, nil
}

// committed is the sum of a group's committed offsets.
func committed(ctx context.Context, adm *kadm.Client, group string) int64 {
	resp, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return -1
	}
	var n int64
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.At > 0 {
			n += o.At
		}
	})
	return n
}

func (b *Bench) sink(ctx context.Context) ([]Row, error) {
	if b.cfg.CH == nil {
		return []Row{{What: "ClickHouse sink", Figure: "no ClickHouse configured", Verdict: NotRun}}, nil
	}
	var tput pair
	var fresh Latencies
	var freshRuns []string
	notifications := b.size(20000, 6000)
	freshRate, freshFor := 2000.0, b.dur(10*time.Second, 4*time.Second)
	for run := range b.cfg.Runs {
		err := func() error {
			cl, err := b.cfg.NewCluster(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			prefix := runID("sink", run)
			db := "wanotify_bench_" + strings.ReplaceAll(prefix, "-", "_")
			rawDB := db + "_raw"
			defer b.dropDatabases(db, rawDB)

			now := time.Now()
			var recs []*kgo.Record
			for i := range notifications {
				rs, err := Lifecycle(prefix, i, now)
				if err != nil {
					return err
				}
				recs = append(recs, rs...)
			}
			if err := cl.Produce(ctx, recs); err != nil {
				return err
			}
			total := int64(len(recs))
			group := "wanotify-bench-sink-" + prefix
			admin, _ := FreeAddr()
			sk, err := b.service(cl, "sink", "sink", fmt.Sprint(run), "",
				"WANOTIFY_CLICKHOUSE_ADDR="+b.cfg.CHAddr, "WANOTIFY_CLICKHOUSE_DATABASE="+db, "WANOTIFY_SINK_GROUP="+group,
				"WANOTIFY_ADMIN_ADDR="+admin)
			if err != nil {
				return err
			}
			defer b.stop("a backlog, then a steady 2,000 records/s", sk)
			// Commits advance by whole batches; the rate runs from the first
			// commit to the one that covers everything, so the sink's start
			// (migrations, group join) is not in it.
			var c0 int64
			var t0, t1 time.Time
			deadline := time.Now().Add(5 * time.Minute)
			for {
				if done, _ := sk.Exited(); done {
					return fmt.Errorf("sink exited:\n%s", sk.LogTail(20))
				}
				c := committed(ctx, cl.Adm, group)
				if c > 0 && t0.IsZero() {
					c0, t0 = c, time.Now()
				}
				if c >= total {
					t1 = time.Now()
					break
				}
				if time.Now().After(deadline) || ctx.Err() != nil {
					return fmt.Errorf("sink committed %d of %d records in 5 minutes", c, total)
				}
				time.Sleep(20 * time.Millisecond)
			}
			sinkRate := float64(total-c0) / t1.Sub(t0).Seconds()
			if t1.Sub(t0) < 100*time.Millisecond {
				return fmt.Errorf("the sink finished %d records within one poll: raise the backlog", total)
			}

			b.cfg.logf("  run %d: sink took the backlog at %s rows/s; measuring freshness", run+1, rate(sinkRate, ""))
			lat, err := b.freshness(ctx, cl, db, prefix, freshRate, freshFor)
			if err != nil {
				return err
			}
			b.stop("a backlog, then a steady 2,000 records/s", sk)

			b.cfg.logf("  run %d: freshness p99 %s; raw inserts of the same rows", run+1, ms(lat.Quantile(0.99)))
			rawRate, rows, err := b.rawInsert(ctx, db, rawDB)
			if err != nil {
				return err
			}
			b.cfg.logf("  run %d: sink %s rows/s, raw inserts %s rows/s (%d rows); freshness p50 %s p99 %s max %s (%d events)", run+1,
				rate(sinkRate, ""), rate(rawRate, ""), rows, ms(lat.Quantile(0.5)), ms(lat.Quantile(0.99)), ms(lat.Max()), lat.Len())
			tput.add(sinkRate, rawRate)
			fresh.Merge(lat)
			freshRuns = append(freshRuns, "p99 "+ms(lat.Quantile(0.99)))
			b.rep.NoteRSS("broker", "the sink's backlog", cl.BrokerRSS())
			return nil
		}()
		if err != nil {
			return nil, err
		}
	}
	s, base := tput.medians()
	p99 := fresh.Quantile(0.99)
	return []Row{
		{What: "ClickHouse sink: rows/s", Figure: rate(s, "/s"), Value: s, ValueName: "rows/s,", Baseline: rate(base, "/s") + " (raw column-wise inserts)",
			Ratio: pct(tput.ratio()), Target: "≥ 70% of baseline", Verdict: verdict(tput.ratio() >= 0.7),
			Runs: tput.ratioRuns(func(v float64) string { return rate(v, "/s") }),
			Note: fmt.Sprintf("A backlog of %d records (%d notifications: the request, the dispatcher's accepted event, the webhook's sent and delivered events) is produced first; the sink (services/sink, its own process, default settings: batches of %d rows or 1 s) consumes it into ClickHouse, and the rate runs from its first offset commit to the commit covering the whole backlog (commits follow ClickHouse's acknowledgement). Baseline: the very rows the sink wrote, read back and inserted with clickhouse-go column-wise batches of %d rows, one connection, into notification_events of a fresh database with the same migrations (materialized views included); only the inserts are timed.", 4*notifications, notifications, sinkBatchRows, sinkBatchRows)},
		{What: "ClickHouse sink: event → queryable p50 / p99 / max", Figure: ms(fresh.Quantile(0.5)) + " / " + ms(p99) + " / " + ms(fresh.Max()),
			Target: "p99 ≤ 2 s", Verdict: verdict(p99 <= 2*time.Second && fresh.Len() > 0), Runs: freshRuns,
			Value: p99.Seconds(), ValueName: "p99,", LowerIsBetter: true,
			Note: fmt.Sprintf("With the backlog done, the harness produces %.0f records/s for %s and polls notification_events every 50 ms for the highest offset per partition; an event counts as queryable at the first poll that covers its offset, and its latency runs from its produce call (so the figure includes up to one poll interval and the poll's own query time).", freshRate, freshFor)},
	}, nil
}

// freshness produces at perSecond for d while polling ClickHouse, and
// returns produce → queryable per event.
func (b *Bench) freshness(ctx context.Context, cl *Cluster, db, prefix string, perSecond float64, d time.Duration) (*Latencies, error) {
	conn, err := b.chConn(db)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	type pos struct {
		topic string
		part  int32
	}
	type sent struct {
		at     time.Time
		offset int64
	}
	var mu sync.Mutex
	pending := map[pos][]sent{}
	var produceErr error
	n := int(perSecond * d.Seconds() / 4)
	interval := time.Duration(float64(time.Second) * 4 / perSecond)
	start := time.Now()
	producing := make(chan struct{})
	go func() {
		defer close(producing)
		for i := 0; i < n && ctx.Err() == nil; i++ {
			if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
				time.Sleep(wait)
			}
			rs, err := Lifecycle(prefix+"f", i, time.Now())
			if err != nil {
				produceErr = err
				return
			}
			at := time.Now()
			for _, r := range rs {
				cl.Client.Produce(ctx, r, func(r *kgo.Record, err error) {
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						produceErr = err
						return
					}
					k := pos{r.Topic, r.Partition}
					pending[k] = append(pending[k], sent{at, r.Offset})
				})
			}
		}
	}()
	lat := &Latencies{}
	expect := 4 * n
	deadline := start.Add(d + 60*time.Second)
	for lat.Len() < expect {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("freshness: %d of %d events queryable within %s", lat.Len(), expect, time.Since(start).Round(time.Second))
		}
		time.Sleep(50 * time.Millisecond)
		rows, err := conn.Query(ctx, "SELECT topic, partition, max(offset) FROM notification_events GROUP BY topic, partition")
		if err != nil {
			return nil, fmt.Errorf("freshness poll: %w", err)
		}
		now := time.Now()
		mu.Lock()
		for rows.Next() {
			var k pos
			var off int64
			if err := rows.Scan(&k.topic, &k.part, &off); err != nil {
				mu.Unlock()
				rows.Close()
				return nil, err
			}
			list := pending[k]
			j := 0
			for j < len(list) && list[j].offset <= off {
				lat.Add(now.Sub(list[j].at))
				j++
			}
			pending[k] = list[j:]
		}
		mu.Unlock()
		rows.Close()
		if produceErr != nil {
			return nil, produceErr
		}
	}
	<-producing
	return lat, nil
}

func (b *Bench) chConn(db string) (driver.Conn, error) {
	opts := *b.cfg.CH
	opts.Auth.Database = db
	return clickhouse.Open(&opts)
}

func (b *Bench) dropDatabases(dbs ...string) {
	conn, err := b.chConn("default")
	if err != nil {
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, db := range dbs {
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+chmigrate.QuoteIdent(db)+" SYNC")
	}
}

// rawInsert reads every row the sink wrote to src.notification_events and
// inserts them into a fresh database with the same schema in batches of
// sinkBatchRows, timing only the inserts.
func (b *Bench) rawInsert(ctx context.Context, src, dst string) (float64, int, error) {
	opts := *b.cfg.CH
	opts.Auth.Database = dst
	if err := chmigrate.EnsureDatabase(ctx, &opts); err != nil {
		return 0, 0, err
	}
	ms, err := chmigrate.Load(migrations.FS, migrations.Dir)
	if err != nil {
		return 0, 0, err
	}
	conn, err := clickhouse.Open(&opts)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	if _, err := chmigrate.Apply(ctx, conn, ms, nil); err != nil {
		return 0, 0, fmt.Errorf("baseline schema: %w", err)
	}
	srcConn, err := b.chConn(src)
	if err != nil {
		return 0, 0, err
	}
	defer srcConn.Close()
	rows, err := srcConn.Query(ctx, "SELECT * FROM notification_events")
	if err != nil {
		return 0, 0, err
	}
	names := rows.Columns()
	types := rows.ColumnTypes()
	cols := make([]reflect.Value, len(names))
	dest := make([]any, len(names))
	for i, t := range types {
		cols[i] = reflect.MakeSlice(reflect.SliceOf(t.ScanType()), 0, 1024)
		dest[i] = reflect.New(t.ScanType()).Interface()
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return 0, 0, err
		}
		for i := range cols {
			cols[i] = reflect.Append(cols[i], reflect.ValueOf(dest[i]).Elem())
		}
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("the sink wrote no rows to %s.notification_events", src)
	}
	query := fmt.Sprintf("INSERT INTO notification_events (%s)", strings.Join(names, ", "))
	var elapsed time.Duration
	for lo := 0; lo < n; lo += sinkBatchRows {
		hi := min(lo+sinkBatchRows, n)
		t0 := time.Now()
		batch, err := conn.PrepareBatch(ctx, query)
		if err != nil {
			return 0, 0, err
		}
		for i := range cols {
			if err := batch.Column(i).Append(cols[i].Slice(lo, hi).Interface()); err != nil {
				batch.Close()
				return 0, 0, fmt.Errorf("column %s: %w", names[i], err)
			}
		}
		if err := batch.Send(); err != nil {
			return 0, 0, err
		}
		elapsed += time.Since(t0)
	}
	return float64(n) / elapsed.Seconds(), n, nil
}

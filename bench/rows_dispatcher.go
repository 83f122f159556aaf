package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/provider/xpressbot"
	"github.com/wanotify/wanotify/pkg/sdk"
	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/topics"
)

// unlimited is a dispatcher rate no benchmark reaches: the rows that
// measure the dispatcher's own speed must not be paced.
var unlimited = []string{"WANOTIFY_DISPATCHER_RATE=1000000000", "WANOTIFY_DISPATCHER_RATE_BURST=1000000"}

// requests builds n records with distinct recipients, as ingest or the
// SDK would write them (OTPs: on notifications.critical).
func requests(prefix string, n int, params ...string) ([]*kgo.Record, error) {
	if len(params) == 0 {
		params = []string{"482913"}
	}
	now := time.Now()
	out := make([]*kgo.Record, n)
	for i := range out {
		req := sdk.Request{IdempotencyKey: fmt.Sprintf("%s-%d", prefix, i), EventType: "otp", UserID: fmt.Sprintf("user-%d", i),
			Recipient: fmt.Sprintf("+4471%08d", i%100000000), Sender: benchSender,
			Template: &contract.Template{Name: "otp_code", Language: "en_US", Parameters: params}}
		rec, _, err := sdk.BuildRecord(ingestTenant, &req, sdk.BuildOptions{SourceService: "bench", Sender: benchSender}, now, "")
		if err != nil {
			return nil, err
		}
		out[i] = rec
	}
	return out, nil
}

// startDispatcher starts one dispatcher instance against the simulator.
func (b *Bench) startDispatcher(cl *Cluster, simURL, instance, group, tag string, env ...string) (*Proc, error) {
	admin, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	base := []string{"WANOTIFY_ADMIN_ADDR=" + admin, "WANOTIFY_XPRESSBOT_BASE_URL=" + simURL, "WANOTIFY_XPRESSBOT_API_KEY=" + providerKey,
		"WANOTIFY_DISPATCHER_TRANSACTIONAL_ID=wanotify-bench-" + instance + "-" + tag, "WANOTIFY_DISPATCHER_GROUP=" + group,
		fmt.Sprintf("WANOTIFY_DISPATCHER_CONCURRENCY=%d", dispatcherConc)}
	return b.service(cl, "dispatcher", instance, tag, "http://"+admin+"/readyz", append(base, env...)...)
}

// statusTimes consumes notifications.status from its current end until
// want records arrived (or timeout) and returns their timestamps.
func (cl *Cluster) statusTimes(ctx context.Context, start map[int32]kgo.Offset, want int, timeout time.Duration, alive func() error) ([]time.Time, error) {
	c, err := cl.NewClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topics.Status: start}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ts := make([]time.Time, 0, want)
	for len(ts) < want {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		fs := c.PollFetches(pctx)
		pcancel()
		if ctx.Err() != nil {
			return ts, fmt.Errorf("%d of %d status events within %s", len(ts), want, timeout)
		}
		if err := alive(); err != nil {
			return ts, err
		}
		fs.EachRecord(func(r *kgo.Record) { ts = append(ts, r.Timestamp) })
	}
	return ts, nil
}

// statusEnd is where notifications.status ends now, per partition.
func (cl *Cluster) statusEnd(ctx context.Context) (map[int32]kgo.Offset, error) {
	ends, err := cl.Adm.ListEndOffsets(ctx, topics.Status)
	if err != nil {
		return nil, err
	}
	out := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = kgo.NewOffset().At(o.Offset) })
	return out, nil
}

func exitedErr(p *Proc) func() error {
	return func() error {
		if done, err := p.Exited(); done {
			return fmt.Errorf("%s exited (%v):\n%s", p.Name, err, p.LogTail(20))
		}
		return nil
	}
}

// ledger reads the simulator's ledger.
func ledger(url string, entries bool) (*simulator.Snapshot, error) {
	u := url + "/admin/ledger"
	if entries {
		u += "?entries=1"
	}
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var s simulator.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	return &s, nil
}

// waitAccepted polls the ledger until it holds want accepted sends.
func waitAccepted(ctx context.Context, url string, want int, timeout time.Duration, alive func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		s, err := ledger(url, false)
		if err != nil {
			return err
		}
		if s.Accepted >= want {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the provider accepted %d of %d sends within %s", s.Accepted, want, timeout)
		}
		if err := alive(); err != nil {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (b *Bench) dispatcher(ctx context.Context) ([]Row, error) {
	var tput pair
	n := b.size(25000, 8000)
	names := []string{"dispatcher", "bare relay"}
	// measure runs one of the three on a broker, simulator and backlog of
	// its own: a dispatcher restores the dedupe changelog, so one that ran
	// before on the same topics would find every notification settled.
	measure := func(run, k int) (float64, error) {
		cl, err := b.cfg.NewCluster(ctx)
		if err != nil {
			return 0, err
		}
		defer cl.Close()
		sim, simURL, err := b.simulator(cl, "WANOTIFY_SIM_RATE_LIMIT=0")
		if err != nil {
			return 0, err
		}
		defer b.stop("the dispatcher's zero-latency backlog", sim)
		prefix := runID("disp", run) + fmt.Sprintf("k%d", k)
		recs, err := requests(prefix, n)
		if err != nil {
			return 0, err
		}
		if err := cl.Produce(ctx, recs); err != nil {
			return 0, err
		}
		start, err := cl.statusEnd(ctx)
		if err != nil {
			return 0, err
		}
		var p *Proc
		switch k {
		case 0:
			p, err = b.startDispatcher(cl, simURL, "dispatcher", "wanotify-bench-dispatcher-"+prefix, prefix, unlimited...)
		default:
			p, err = b.bare(cl, "bare-relay", "", []string{xpressbot.EnvAPIKey + "=" + providerKey}, "-send-url", simURL+providerPath,
				"-concurrency", fmt.Sprint(dispatcherConc))
		}
		if err != nil {
			return 0, err
		}
		ts, err := cl.statusTimes(ctx, start, n, 5*time.Minute, exitedErr(p))
		if k == 1 {
			p.Stop(10 * time.Second)
		} else {
			b.stop("a zero-latency backlog", p)
		}
		if err != nil {
			return 0, fmt.Errorf("%s: %w", names[k], err)
		}
		b.rep.NoteRSS("broker", "the dispatcher's backlog", cl.BrokerRSS())
		return RateBetween(ts, 0.05, 0.95), nil
	}
	for run := range b.cfg.Runs {
		var got [2]float64
		for _, k := range order(run) {
			v, err := measure(run, k)
			if err != nil {
				return nil, err
			}
			got[k] = v
			b.cfg.logf("  run %d %s: %s notifications/s", run+1, names[k], rate(v, ""))
		}
		tput.add(got[0], got[1])
	}
	s, base := tput.medians()
	return []Row{{What: "dispatcher, zero provider latency, no limit: notifications/s", Figure: rate(s, "/s"), Value: s, ValueName: "notifications/s,",
		Baseline: rate(base, "/s") + " (bare consume → POST → produce loop)", Ratio: pct(tput.ratio()), Target: "≥ 60% of baseline",
		Verdict: verdict(tput.ratio() >= 0.6), Runs: tput.ratioRuns(func(v float64) string { return rate(v, "/s") }),
		Note: fmt.Sprintf("A backlog of %d notifications (distinct recipients, 12 partitions) is produced first, on a fresh broker for each measurement; the dispatcher (services/dispatcher, its own process, default settings but an unreachable rate limit) sends each to the provider simulator (services/simulator, no latency, no limit) and emits its status event; the figure is the rate of status events on notifications.status between the 5th and 95th percentile of their timestamps (no group-join ramp, no tail). Baseline: bench.RunBareRelay, its own process, the same %d calls in flight: consume, one HTTP POST per record to the same simulator, produce a status record, autocommit; no transactions, dedupe markers, ordering or breaker.", n, dispatcherConc)}}, nil
}

func (b *Bench) slowProvider(ctx context.Context) ([]Row, error) {
	const limit = 1000.0
	latency := 250 * time.Millisecond
	var figs []float64
	var runs []string
	var throttled int
	n := b.size(15000, 4000)
	for run := range b.cfg.Runs {
		err := func() error {
			cl, err := b.cfg.NewCluster(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			sim, simURL, err := b.simulator(cl, "WANOTIFY_SIM_RATE_LIMIT=0", "WANOTIFY_SIM_LATENCY="+latency.String())
			if err != nil {
				return err
			}
			defer b.stop("a 250 ms provider at 1,000/s", sim)
			prefix := runID("slow", run)
			recs, err := requests(prefix, n)
			if err != nil {
				return err
			}
			if err := cl.Produce(ctx, recs); err != nil {
				return err
			}
			d, err := b.startDispatcher(cl, simURL, "dispatcher", "wanotify-bench-dispatcher-"+prefix, prefix,
				fmt.Sprintf("WANOTIFY_DISPATCHER_RATE=%.0f", limit))
			if err != nil {
				return err
			}
			defer b.stop("a 250 ms provider at 1,000/s", d)
			if err := waitAccepted(ctx, simURL, n, 5*time.Minute, exitedErr(d)); err != nil {
				return err
			}
			s, err := ledger(simURL, true)
			if err != nil {
				return err
			}
			ts := make([]time.Time, len(s.Entries))
			for i, e := range s.Entries {
				ts[i] = e.Time
			}
			v := RateBetween(ts, 0.1, 0.9)
			throttled += s.Throttled
			b.cfg.logf("  run %d: %s calls/s against a limit of %.0f/s (%d throttled)", run+1, rate(v, ""), limit, s.Throttled)
			figs = append(figs, v)
			runs = append(runs, rate(v, "/s"))
			return nil
		}()
		if err != nil {
			return nil, err
		}
	}
	v := Median(figs)
	seq := 12 / latency.Seconds()
	return []Row{{What: "dispatcher, provider latency 250 ms, limit 1,000/s, 12 partitions: achieved / limit",
		Figure: fmt.Sprintf("%s = %s", rate(v, "/s"), pct(v/limit)), Baseline: fmt.Sprintf("%.0f/s (partitions ÷ latency, computed)", seq),
		Ratio: fmt.Sprintf("%.0f×", v/seq), Target: "≥ 95% of limit", Verdict: verdict(v >= 0.95*limit), Runs: runs,
		Note: fmt.Sprintf("A backlog of %d notifications over 12 partitions; the simulator answers each send after 250 ms and has no limit of its own; the dispatcher is configured to 1,000/s (WANOTIFY_DISPATCHER_RATE). The figure is the rate at which the simulator received sends between the 10th and 90th percentile of their arrival times. The baseline is computed, not measured: a consumer that handles one record per partition at a time gets 12 ÷ 0.25 s = 48/s. Throttled answers over all runs: %d.", n, throttled)}}, nil
}

func (b *Bench) accuracy(ctx context.Context) ([]Row, error) {
	const providerLimit, configured = 50, 45.0
	window := b.dur(30*time.Second, 10*time.Second)
	var figs []float64
	var runs []string
	throttled := 0
	maxPerSecond := 0
	runCount := min(b.cfg.Runs, 2)
	for run := range runCount {
		err := func() error {
			cl, err := b.cfg.NewCluster(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			sim, simURL, err := b.simulator(cl, fmt.Sprintf("WANOTIFY_SIM_RATE_LIMIT=%d", providerLimit))
			if err != nil {
				return err
			}
			defer b.stop("three dispatchers at 45/s", sim)
			prefix := runID("acc", run)
			recs, err := requests(prefix, int(configured*(window.Seconds()+60)))
			if err != nil {
				return err
			}
			if err := cl.Produce(ctx, recs); err != nil {
				return err
			}
			group := "wanotify-bench-dispatcher-" + prefix
			var ds []*Proc
			defer func() { b.stop("three dispatchers at 45/s", ds...) }()
			for i := range 3 {
				d, err := b.startDispatcher(cl, simURL, fmt.Sprintf("dispatcher-%d", i+1), group, prefix,
					fmt.Sprintf("WANOTIFY_DISPATCHER_RATE=%.0f", configured))
				if err != nil {
					return err
				}
				ds = append(ds, d)
			}
			if err := cl.waitGroupStable(ctx, group, 3, 90*time.Second); err != nil {
				return err
			}
			t0 := time.Now().Add(3 * time.Second)
			time.Sleep(time.Until(t0.Add(window)))
			for _, d := range ds {
				if err := exitedErr(d)(); err != nil {
					return err
				}
			}
			s, err := ledger(simURL, true)
			if err != nil {
				return err
			}
			in, throttledIn := 0, 0
			inWindow := func(t time.Time) bool { return !t.Before(t0) && t.Before(t0.Add(window)) }
			for _, e := range s.Entries {
				if inWindow(e.Time) {
					in++
				}
			}
			for _, r := range s.Rejections {
				if r.Code == "meta_130429" && inWindow(r.Time) {
					throttledIn++
				}
			}
			v := float64(in) / window.Seconds()
			throttled += s.Throttled
			for _, m := range s.MaxPerSecond {
				maxPerSecond = max(maxPerSecond, m)
			}
			b.cfg.logf("  run %d: %.2f sends/s against 45/s configured (%d throttled, %d of them in the window; busiest second %d; load average %s)",
				run+1, v, s.Throttled, throttledIn, maxPerSecond, loadAvg())
			figs = append(figs, v)
			runs = append(runs, fmt.Sprintf("%.2f/s, %d × 429 (%d inside the window), load average %s", v, s.Throttled, throttledIn, loadAvg()))
			return nil
		}()
		if err != nil {
			return nil, err
		}
	}
	v := Median(figs)
	ok := v >= 0.98*configured && throttled == 0
	return []Row{{What: "rate-limit accuracy, 3 dispatchers, provider 50/s, configured 45/s: achieved / configured; 429s",
		Figure: fmt.Sprintf("%.2f/s = %s; %d × 429", v, pct(v/configured), throttled), Target: "≥ 98%; zero 429s", Verdict: verdict(ok), Runs: runs,
		Note: fmt.Sprintf("Three dispatcher processes in one group (WANOTIFY_DISPATCHER_RATE=45, default burst) drain a backlog of one sender's notifications to the simulator, which allows 50/s per sender (bucket of 10) and answers 429 above it. Once the group is stable with three members, sends the simulator accepted are counted over %s; 429s are counted over the whole run (including the group's joins). Busiest one-second window seen by the simulator: %d sends. %d run(s): the window is long, so fewer runs than the other rows.", window, maxPerSecond, runCount)}}, nil
}

// waitGroupStable waits until group is Stable with members members.
func (cl *Cluster) waitGroupStable(ctx context.Context, group string, members int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) && ctx.Err() == nil {
		gs, err := cl.Adm.DescribeGroups(ctx, group)
		if err == nil {
			g := gs[group]
			last = fmt.Sprintf("%s with %d members", g.State, len(g.Members))
			if g.Err == nil && g.State == "Stable" && len(g.Members) == members {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("group %s not stable with %d members within %s (last: %s)", group, members, timeout, last)
}

func (b *Bench) retry(ctx context.Context) ([]Row, error) {
	n := b.size(300, 60)
	spread := b.dur(10*time.Second, 3*time.Second)
	delays := []time.Duration{5 * time.Second, 15 * time.Second, 45 * time.Second}
	env := append([]string{}, unlimited...)
	// The breaker would open on a run of failures and park the retries,
	// which is what it is for, but not what this row measures.
	env = append(env, "WANOTIFY_DISPATCHER_BREAKER_CONSECUTIVE_FAILURES=1000000", "WANOTIFY_DISPATCHER_BREAKER_MIN_REQUESTS=1000000")
	if b.cfg.Quick {
		delays = []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}
		env = append(env, "WANOTIFY_DISPATCHER_RETRY_DELAYS=1s,2s,3s")
	}
	lateness := make([]Latencies, len(topics.RetryTiers))
	var early int
	err := func() error {
		cl, err := b.cfg.NewCluster(ctx)
		if err != nil {
			return err
		}
		defer cl.Close()
		sim, simURL, err := b.simulator(cl, "WANOTIFY_SIM_RATE_LIMIT=0")
		if err != nil {
			return err
		}
		defer b.stop("retries", sim)
		prefix := runID("retry", 0)
		d, err := b.startDispatcher(cl, simURL, "dispatcher", "wanotify-bench-dispatcher-"+prefix, prefix, env...)
		if err != nil {
			return err
		}
		defer b.stop("retries", d)
		// Every attempt of these fails with a 503 (the simulator's forced
		// outcome), so each goes through every tier to the DLQ.
		recs, err := requests(prefix, n, "[sim:http_503]")
		if err != nil {
			return err
		}
		per := spread / time.Duration(n)
		for i, r := range recs {
			time.Sleep(time.Until(time.Now().Add(per)))
			if err := cl.Client.ProduceSync(ctx, r).FirstErr(); err != nil {
				return fmt.Errorf("produce %d: %w", i, err)
			}
		}
		var total time.Duration
		for _, dl := range delays {
			total += dl
		}
		if err := cl.waitDLQ(ctx, n, total+2*time.Minute, exitedErr(d)); err != nil {
			return err
		}
		s, err := ledger(simURL, true)
		if err != nil {
			return err
		}
		calls := map[string][]time.Time{}
		for _, r := range s.Rejections {
			calls[r.NotificationID] = append(calls[r.NotificationID], r.Time)
		}
		for _, ts := range calls {
			slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
		}
		recsByTier, err := cl.retryRecords(ctx, n)
		if err != nil {
			return err
		}
		for tier, rs := range recsByTier {
			for _, f := range rs {
				ts := calls[f.NotificationID]
				if len(ts) < tier+2 {
					return fmt.Errorf("notification %s: %d provider calls recorded, want at least %d", f.NotificationID, len(ts), tier+2)
				}
				l := ts[tier+1].Sub(f.DueAt)
				if l < 0 {
					early++
				}
				lateness[tier].Add(l)
			}
		}
		return nil
	}()
	if err != nil {
		return nil, err
	}
	var rows []Row
	for tier, name := range topics.RetryTiers {
		l := &lateness[tier]
		ok := early == 0 && l.Min() >= 0 && l.Quantile(0.99) <= 250*time.Millisecond && l.Len() == n
		tierName := strings.TrimPrefix(name, "notifications.")
		if b.cfg.Quick {
			tierName += fmt.Sprintf(" (delay shortened to %s)", delays[tier])
		}
		rows = append(rows, Row{What: "retry lateness, " + tierName + ": p50 / p99 / max beyond due (min)",
			Figure: fmt.Sprintf("%s / %s / %s (min %s, %d retries)", ms(l.Quantile(0.5)), ms(l.Quantile(0.99)), ms(l.Max()), ms(l.Min()), l.Len()),
			Target: "never early; p99 ≤ 250 ms", Verdict: verdict(ok)})
	}
	rows[0].Note = fmt.Sprintf("%d notifications whose every provider call fails with 503 (the simulator's forced outcome) are published over %s to one dispatcher; each goes through retry-5s, retry-15s and retry-45s to the DLQ. For every retry record, its due time (header wanotify-due-at) is compared with the moment the simulator received the next call of the same notification, so the figure includes the dispatcher's release of the held record and the HTTP call. The breaker's thresholds are raised for this row (WANOTIFY_DISPATCHER_BREAKER_*), since an open breaker parks retries on purpose. One run: the row takes over a minute by its nature. Calls before their due time: %d.", n, spread, early)
	return rows, nil
}

// waitDLQ waits until notifications.dlq holds n records.
func (cl *Cluster) waitDLQ(ctx context.Context, n int, timeout time.Duration, alive func() error) error {
	deadline := time.Now().Add(timeout)
	var sum int64
	got := 0
	for {
		ends, err := cl.Adm.ListEndOffsets(ctx, topics.DLQ)
		if err == nil {
			sum = 0
			ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
			// Transaction markers take offsets too: count records instead
			// once the end offsets say enough could be there.
			if sum >= int64(n) {
				got, err = cl.countRecords(ctx, topics.DLQ)
				if err == nil && got >= n {
					return nil
				}
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the DLQ did not receive %d records within %s (end offsets add up to %d, %d records read)", n, timeout, sum, got)
		}
		if err := alive(); err != nil {
			return err
		}
		time.Sleep(time.Second)
	}
}

// countRecords counts the committed records of topic.
func (cl *Cluster) countRecords(ctx context.Context, topic string) (int, error) {
	c, err := cl.NewClient(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	n := 0
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := c.PollFetches(pctx)
		idle := pctx.Err() != nil // nothing more came within the wait
		cancel()
		n += fs.NumRecords()
		if idle {
			return n, nil
		}
	}
}

// retryRecords reads every committed retry record, per tier.
func (cl *Cluster) retryRecords(ctx context.Context, perTier int) ([][]*envelope.Failure, error) {
	c, err := cl.NewClient(kgo.ConsumeTopics(topics.RetryTiers...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	out := make([][]*envelope.Failure, len(topics.RetryTiers))
	got := 0
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for got < perTier*len(topics.RetryTiers) {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read %d of %d retry records", got, perTier*len(topics.RetryTiers))
		}
		var perr error
		fs.EachRecord(func(r *kgo.Record) {
			f, err := envelope.Parse(r.Headers)
			if err != nil {
				perr = err
				return
			}
			out[slices.Index(topics.RetryTiers, r.Topic)] = append(out[slices.Index(topics.RetryTiers, r.Topic)], f)
			got++
		})
		if perr != nil {
			return nil, fmt.Errorf("retry record headers: %w", perr)
		}
	}
	return out, nil
}

func (b *Bench) endToEnd(ctx context.Context) ([]Row, error) {
	const perSecond = 1000.0
	d := b.dur(12*time.Second, 4*time.Second)
	var all, answered Latencies
	var runs []string
	missing := 0
	for run := range b.cfg.Runs {
		err := func() error {
			cl, err := b.cfg.NewCluster(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			sim, simURL, err := b.simulator(cl, "WANOTIFY_SIM_RATE_LIMIT=0")
			if err != nil {
				return err
			}
			defer b.stop("end to end at 1,000/s", sim)
			prefix := runID("e2e", run)
			disp, err := b.startDispatcher(cl, simURL, "dispatcher", "wanotify-bench-dispatcher-"+prefix, prefix, unlimited...)
			if err != nil {
				return err
			}
			defer b.stop("end to end at 1,000/s", disp)
			addr, _ := FreeAddr()
			addrAdmin, _ := FreeAddr()
			ing, err := b.service(cl, "ingest", "ingest", fmt.Sprintf("e2e-%d", run), "http://"+addrAdmin+"/readyz",
				"WANOTIFY_INGEST_ADDR="+addr, "WANOTIFY_ADMIN_ADDR="+addrAdmin, "WANOTIFY_INGEST_API_KEYS="+ingestKeys())
			if err != nil {
				return err
			}
			defer b.stop("end to end at 1,000/s", ing)
			url := "http://" + addr
			// Warm-up: the dispatcher has joined its group and sends.
			// The warm-up writes to other recipients than the run: the
			// run follows it within the pair interval.
			warm := OpenLoop(ctx, 50, 2*time.Second, 16, publishRequestFrom(url, prefix+"w", 50_000_000))
			if warm.Accepted != warm.Sent {
				return fmt.Errorf("warm-up: %d of %d accepted (%v)", warm.Accepted, warm.Sent, warm.FirstErr)
			}
			if err := waitAccepted(ctx, simURL, warm.Sent, 90*time.Second, exitedErr(disp)); err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
			res := OpenLoop(ctx, perSecond, d, fixedMaxConn, publishRequest(url, prefix))
			if err := waitAccepted(ctx, simURL, warm.Sent+res.Accepted, 2*time.Minute, exitedErr(disp)); err != nil {
				return err
			}
			s, err := ledger(simURL, true)
			if err != nil {
				return err
			}
			called := map[string]time.Time{}
			for _, e := range s.Entries {
				called[e.NotificationID] = e.Time
			}
			var lat Latencies
			for i := range res.Sent {
				at, ok := called[contract.NotificationID(ingestTenant, fmt.Sprintf("%s-%d", prefix, i))]
				if !ok {
					missing++
					continue
				}
				lat.Add(at.Sub(res.Due[i]))
			}
			b.cfg.logf("  run %d: ingest → provider p50 %s p99 %s max %s (%d sent, %d failed at ingest; the 202 took p50 %s p99 %s)", run+1,
				ms(lat.Quantile(0.5)), ms(lat.Quantile(0.99)), ms(lat.Max()), res.Sent, res.Errors,
				ms(res.Latency.Quantile(0.5)), ms(res.Latency.Quantile(0.99)))
			all.Merge(&lat)
			answered.Merge(&res.Latency)
			runs = append(runs, fmt.Sprintf("p50 %s p99 %s", ms(lat.Quantile(0.5)), ms(lat.Quantile(0.99))))
			return nil
		}()
		if err != nil {
			return nil, err
		}
	}
	p99 := all.Quantile(0.99)
	return []Row{{What: "end to end, provider with zero latency: ingest → provider call p50 / p99 at 1,000/s",
		Figure: fmt.Sprintf("%s / %s (max %s)", ms(all.Quantile(0.5)), ms(p99), ms(all.Max())), Target: "p99 ≤ 50 ms",
		Value: p99.Seconds(), ValueName: "p99,", LowerIsBetter: true,
		Verdict: verdict(p99 <= 50*time.Millisecond && all.Len() > 0), Runs: runs,
		Note: fmt.Sprintf("Ingest, the dispatcher and the simulator run as processes of their own on one broker; the open-loop generator publishes %.0f notifications/s for %s through POST /v1/notifications, and each one's latency runs from the moment its request was due to the moment the simulator received its send (one clock: same machine). Percentiles over all runs' samples; requests without a recorded send: %d. Of that, ingest's own answer (202, after Kafka's acknowledgement) took p50 %s / p99 %s.", perSecond, d, missing, ms(answered.Quantile(0.5)), ms(answered.Quantile(0.99)))}}, nil
}

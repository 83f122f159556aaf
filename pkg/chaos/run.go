package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/sdk"
	"github.com/wanotify/wanotify/pkg/topics"
)

// Run starts the stack, runs the scenario, checks the invariants and
// stops the stack. The report is returned whenever the checks ran; the
// error says why they could not (the stack did not start, the run was
// cancelled, the evidence could not be read).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	began := time.Now()
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(out, "chaos %7.1fs  %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
	logDir := filepath.Join(cfg.WorkDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	sup := newSupervisor(cfg.Launcher, logDir, say)
	st, err := newStack(cfg, sup)
	if err != nil {
		return nil, err
	}
	defer func() {
		say("stopping the stack")
		sup.stopAll(30 * time.Second)
	}()

	say("starting the stack in %s (logs in %s)", cfg.WorkDir, logDir)
	tf, err := topics.Load(cfg.TopicsFile)
	if err != nil {
		return nil, err
	}
	if cfg.Kafka == KafkaApache {
		// One broker: Apache Kafka enforces topics.yaml's
		// min.insync.replicas=2 (kfake ignores it), so the topics get
		// what deploy/compose/topics.yaml gives a one-broker cluster.
		for i := range tf.Topics {
			tf.Topics[i].ReplicationFactor = 1
			if _, ok := tf.Topics[i].Configs["min.insync.replicas"]; ok {
				tf.Topics[i].Configs["min.insync.replicas"] = "1"
			}
		}
	}
	if err := st.startAll(ctx, func(ctx context.Context) error { return createTopics(ctx, st.brokerAddr, tf) }); err != nil {
		return nil, err
	}
	if err := waitGroupMembers(ctx, st.brokerAddr, dispatcherGroup, cfg.Dispatchers, 2*time.Minute); err != nil {
		return nil, err
	}
	say("stack up in %s: broker %s, ClickHouse %s, simulator %s, webhook %s, %d dispatchers",
		time.Since(began).Round(100*time.Millisecond), st.brokerAddr, st.chTCP, st.simAddr, st.webhookAddr, cfg.Dispatchers)

	r, err := scenario(ctx, cfg, st, say)
	if r != nil {
		r.Elapsed = time.Since(began)
	}
	if err != nil || r == nil || !r.OK() {
		for _, p := range sup.procs {
			say("--- end of the %s log:\n%s", p.name, sup.logTail(p.name, 15))
		}
	}
	return r, err
}

func createTopics(ctx context.Context, broker string, f *topics.File) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds(broker)...))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := topics.Reconcile(ctx, kadm.NewClient(cl), f, false); err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	return nil
}

// waitGroupMembers waits until group is stable with n members.
func waitGroupMembers(ctx context.Context, broker, group string, n int, timeout time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds(broker)...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(timeout)
	for {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		gs, err := adm.DescribeGroups(dctx, group)
		cancel()
		if err == nil {
			if g, ok := gs[group]; ok && g.State == "Stable" && len(g.Members) == n {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("group %s not stable with %d members after %s", group, n, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// scenario publishes, runs the faults, waits for the pipeline to settle
// and checks.
func scenario(ctx context.Context, cfg Config, st *stack, say func(string, ...any)) (*Report, error) {
	items := workload(cfg)
	kinds := map[kind]int{}
	for _, it := range items {
		kinds[it.kind]++
	}
	pub, err := sdk.Connect(sdk.Options{Tenant: tenant, SourceService: "chaos", Timeout: 5 * time.Second},
		kgo.SeedBrokers(seeds(st.brokerAddr)...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer pub.Close()
	raw, err := kgo.NewClient(kgo.SeedBrokers(seeds(st.brokerAddr)...), kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return nil, err
	}
	defer raw.Close()

	say("publishing %d notifications over %s (%s); faults: SIGKILL a dispatcher every %s, provider outage %s, ClickHouse down %s, account fault of %s for %s, broker down %s",
		cfg.N, cfg.Duration, kindSummary(kinds), cfg.KillEvery, cfg.Outage, cfg.ClickHouseDown, faultedSender, cfg.AccountFault, cfg.BrokerDown)
	stats := &publishStats{acked: map[string]item{}, rejected: map[string]error{}}
	flog := &faultLog{}
	poison := map[origin]string{}
	var wg sync.WaitGroup
	var pubErr, poisonErr error
	wg.Add(3)
	go func() {
		defer wg.Done()
		pubErr = publish(ctx, pub, items, cfg.Duration, stats, say)
	}()
	go func() {
		defer wg.Done()
		faults(ctx, cfg, st, flog, say)
	}()
	go func() {
		defer wg.Done()
		// Early, while the broker is up: a broker killed with SIGKILL may
		// duplicate records in flight, and an injected record must land
		// exactly once for the DLQ check to be exact.
		if !sleepCtx(ctx, cfg.Duration/20) {
			return
		}
		recs, ids := poisonRecords(cfg.Poison, cfg.Seed)
		rrecs, rids := retryPoisonRecords(cfg.RetryPoison, cfg.Seed)
		ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		at, err := inject(ictx, raw, append(recs, rrecs...))
		if err != nil {
			poisonErr = err
			return
		}
		for i, o := range at {
			if i < len(recs) {
				poison[o] = ids[i]
			} else {
				poison[o] = rids[i-len(recs)]
			}
		}
		say("injected %d poison records into %s and %d into %s", len(recs), topics.Requested, len(rrecs), topics.Retry5s)
	}()
	wg.Wait()
	if err := errors.Join(pubErr, poisonErr); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	say("publishing done: %d acknowledged (%d publishes repeated after Kafka did not confirm them)", len(stats.acked), stats.retries)
	if !st.simulator.running() {
		return nil, errors.New("the simulator died: its ledger is gone")
	}

	conn, err := openClickHouse(st.chTCP)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	settleStart := time.Now()
	complete, settledOK, err := settle(ctx, cfg, st, conn, len(stats.acked)+countIDs(poison), say)
	if err != nil {
		return nil, err
	}
	settled := time.Since(settleStart)
	if !settledOK {
		settled = -1
	}

	say("reading the evidence: ledger, topics, ClickHouse")
	ev := &evidence{accepted: stats.ackedItems(), poison: poison}
	if flog.accountFaults > 0 {
		ev.faulted = faultedSender
	}
	if ev.ledger, err = fetchLedger(ctx, st.simAddr, true); err != nil {
		return nil, err
	}
	if err := readKafka(ctx, st.brokerAddr, ev); err != nil {
		return nil, err
	}
	if err := readClickHouse(ctx, conn, ev); err != nil {
		return nil, err
	}
	r := &Report{Invariants: check(ev, complete)}
	if !r.OK() {
		// The ledger lives only in the simulator's memory: keep it for
		// the post-mortem next to the data directories.
		if err := writeJSON(filepath.Join(cfg.WorkDir, "ledger.json"), ev.ledger); err != nil {
			say("keeping the ledger: %v", err)
		}
	}
	r.Facts = facts(cfg, kinds, stats, flog, st.sup, ev, settled)
	if cfg.Kafka == KafkaApacheCluster {
		end, err := leadership(ctx, st.brokerAddr)
		if err != nil {
			say("leadership at the end: %v", err)
		}
		flog.mu.Lock()
		k := flog.leader
		flog.mu.Unlock()
		clusterReport(r, k, end)
	}
	if len(stats.rejected) > 0 {
		r.Invariants[0].OK = false
		for id, err := range stats.rejected {
			r.Invariants[0].Problems = append(r.Invariants[0].Problems, fmt.Sprintf("%s: publish refused: %v", id, err))
			r.Invariants[0].Total++
		}
	}
	return r, nil
}

func settleText(d time.Duration) string {
	if d < 0 {
		return "did not settle within the settle timeout"
	}
	return d.Round(100 * time.Millisecond).String()
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func countIDs(m map[origin]string) int {
	n := 0
	for _, id := range m {
		if id != "" {
			n++
		}
	}
	return n
}

func kindSummary(kinds map[kind]int) string {
	var parts []string
	for k := kindNormal; k <= kindDuplicate; k++ {
		parts = append(parts, fmt.Sprintf("%s %d", k, kinds[k]))
	}
	return strings.Join(parts, ", ")
}

// settle waits until every notification reached a terminal status in
// ClickHouse, the simulator has no webhook left to deliver, and nothing
// changed in ClickHouse or at the end of the status and dead-letter topics
// for two polls in a row. complete reports whether every webhook was
// delivered (none given up or dropped); settled is false when
// cfg.SettleTimeout passed first (the checks then show what is stuck).
func settle(ctx context.Context, cfg Config, st *stack, conn driver.Conn, want int, say func(string, ...any)) (complete, settled bool, err error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds(st.brokerAddr)...))
	if err != nil {
		return false, false, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(cfg.SettleTimeout)
	type state struct {
		p    clickHouseProgress
		ends int64
	}
	var prev state
	stable := 0
	lastSay := time.Now()
	for {
		var cur state
		var problems []string
		p, perr := readProgress(ctx, conn)
		led, lerr := fetchLedger(ctx, st.simAddr, false)
		ends, eerr := adm.ListEndOffsets(ctx, topics.Status, topics.DLQ)
		if eerr == nil {
			eerr = ends.Error()
		}
		for _, e := range []error{perr, lerr, eerr} {
			if e != nil {
				problems = append(problems, e.Error())
			}
		}
		cur.p = p
		if eerr == nil {
			ends.Each(func(o kadm.ListedOffset) { cur.ends += o.Offset })
		}
		w := led.Webhooks
		pending := w.Scheduled - w.Delivered - w.GaveUp - w.Dropped
		if p.rows < uint64(want) || p.terminal < p.rows {
			problems = append(problems, fmt.Sprintf("%d of %d notifications in ClickHouse, %d terminal", p.rows, want, p.terminal))
		}
		if pending > 0 {
			problems = append(problems, fmt.Sprintf("%d webhooks to deliver", pending))
		}
		if len(problems) == 0 && cur == prev {
			stable++
		} else {
			stable = 0
		}
		prev = cur
		if stable >= 2 {
			say("settled: %d notifications terminal in ClickHouse, %d events, every webhook delivered or given up", p.rows, p.events)
			return w.GaveUp == 0 && w.Dropped == 0, true, nil
		}
		if ctx.Err() != nil {
			return false, false, ctx.Err()
		}
		if time.Now().After(deadline) {
			say("NOT settled after %s: %s", cfg.SettleTimeout, strings.Join(problems, "; "))
			return w.GaveUp == 0 && w.Dropped == 0, false, nil
		}
		if time.Since(lastSay) >= 10*time.Second {
			if len(problems) == 0 {
				problems = []string{"waiting for ClickHouse and the topics to stay still"}
			}
			say("settling: %s", strings.Join(problems, "; "))
			lastSay = time.Now()
		}
		sleepCtx(ctx, 2*time.Second)
	}
}

func facts(cfg Config, kinds map[kind]int, ps *publishStats, fl *faultLog, sup *supervisor, ev *evidence, settled time.Duration) []Fact {
	crashes := sup.crashes()
	var cs []string
	for name, n := range crashes {
		cs = append(cs, fmt.Sprintf("%s %d", name, n))
	}
	sort.Strings(cs)
	if len(cs) == 0 {
		cs = []string{"none"}
	}
	dupCopies := 0
	for _, n := range ev.requestedIDs {
		if n > 1 {
			dupCopies += n - 1
		}
	}
	wh := ev.ledger.Webhooks
	fs := []Fact{
		{"notifications published", fmt.Sprintf("%d (%s)", cfg.N, kindSummary(kinds))},
		{"acknowledged by Kafka", fmt.Sprintf("%d notifications, %d publishes; %d repeated after no confirmation", len(ps.acked), ps.copies, ps.retries)},
		{"lane topics", fmt.Sprintf("%d records, %d distinct notifications, %d extra copies (second publishes, repeated publishes)", ev.requestedRecords, len(ev.requestedIDs), dupCopies)},
		{"poison injected", fmt.Sprintf("%d into %s, %d into %s", cfg.Poison, topics.Requested, cfg.RetryPoison, topics.Retry5s)},
		{"faults", fmt.Sprintf("%d dispatcher SIGKILLs (%d skipped while the group rebalanced), %d provider outage(s) of %s, %d ClickHouse SIGKILL(s) (down %s), %d account fault(s) of %s (Meta %d for %s; probe every %s), %d broker SIGKILL(s) (down %s)",
			fl.dispatcherKill, fl.killSkipped, fl.outages, cfg.Outage, fl.clickhouseKill, cfg.ClickHouseDown, fl.accountFaults, faultedSender, provider.MetaAccessToken, cfg.AccountFault, cfg.HaltProbe, fl.brokerKill, cfg.BrokerDown)},
		{"exits nobody asked for (restarted)", strings.Join(cs, ", ")},
		{"status webhooks", fmt.Sprintf("%d scheduled, %d delivered, %d redelivered after a failure, %d given up, %d dropped", wh.Scheduled, wh.Delivered, wh.Retries, wh.GaveUp, wh.Dropped)},
		{"provider", "limit 50/s per sender, bucket of 25 (0.5 s); dispatchers pace 45/s per sender over all instances"},
		{"retry delays", durationList(cfg.RetryDelays)},
		{"settled after publishing in", settleText(settled)},
	}
	if len(fl.errors) > 0 {
		fs = append(fs, Fact{"fault errors", strings.Join(fl.errors, "; ")})
	}
	return fs
}

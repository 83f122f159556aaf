package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/topics"
)

// checkOneCapEach fails unless the provider answered each of ids 131049
// exactly once: an aborted or crashed deferral must not call again.
func checkOneCapEach(t *testing.T, led simulator.Snapshot, ids []string) {
	t.Helper()
	caps := map[string]int{}
	for _, rj := range led.Rejections {
		if rj.Code == "meta_131049" {
			caps[rj.NotificationID]++
		}
	}
	for _, id := range ids {
		if caps[id] != 1 {
			t.Errorf("%s answered 131049 %d times, want once", id, caps[id])
		}
	}
}

// checkRedoneOnce fails unless aborts made d consume records again (the
// aborts were exercised) and every committed output exists once.
func checkRedoneOnce(t *testing.T, d *Dispatcher, w *watcher) {
	t.Helper()
	if d.rederived.Load() == 0 {
		t.Fatal("no record was consumed again after an abort: the aborts were not exercised")
	}
	checkExactlyOnce(t, w)
}

// startAborting starts a dispatcher whose every n-th transaction aborts.
func startAborting(t *testing.T, e *env, cfg Config, n int64) *Dispatcher {
	t.Helper()
	d, err := New(cfg, e.provider(), e.kafkaOpts(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	d.abortEvery = n
	r := &running{d: d, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return d
}

// TestDeferralsAreExactlyOnceThroughAbortedTransactions aborts every other
// transaction (one each 50 ms, at 100 sends/s: a few records each) while capped recipients' notifications are deferred to
// notifications.deferred and sent again once due: an aborted deferral is
// invisible, the record is consumed again and its 131049 re-derived from
// the dedupe state (no second call), so each capped notification has one
// 131049 at the provider, one deferred record and one acceptance, and
// every committed output exists once.
func TestDeferralsAreExactlyOnceThroughAbortedTransactions(t *testing.T) {
	const capped, plain = 40, 200
	var tos []string
	for i := range capped {
		tos = append(tos, recipient(1+i))
	}
	e := newEnv(t, 4, simulator.Behavior{Latency: simulator.Uniform(2*time.Millisecond, 10*time.Millisecond),
		Rules: simulator.Rules{MarketingTemplates: []string{"promo"}, MarketingCapped: tos}})
	w := e.watch()
	cfg := testConfig("t-abort-deferred")
	cfg.Limits.Rate, cfg.Limits.Burst = 100, 5
	cfg.DeferDelay = 3 * time.Second
	d := startAborting(t, e, cfg, 2)

	var deferred, ids []string
	var ns []*contract.Notification
	for i, to := range tos {
		m := notification(idKey(i), to, "sender-1", "")
		m.Text, m.Template = nil, &contract.Template{Name: "promo", Language: "en", Parameters: []string{"x"}}
		deferred = append(deferred, m.ID)
		ns = append(ns, m)
	}
	ids = append(ids, deferred...)
	for i := range plain {
		m := notification(idKey(1000+i), recipient(1000+i), "sender-1", "hello")
		ids = append(ids, m.ID)
		ns = append(ns, m)
	}
	e.publish(ns...)
	// Every capped notification waits on notifications.deferred before
	// the cap lifts.
	waitDeferred(t, w, deferred, 60*time.Second)
	b := e.sim.Behavior()
	b.Rules.MarketingCapped = nil
	if err := e.sim.SetBehavior(b); err != nil {
		t.Fatal(err)
	}
	term := w.waitTerminal(t, ids, 90*time.Second)
	time.Sleep(300 * time.Millisecond) // let the watcher catch up
	for _, id := range ids {
		if term[id] != contract.StatusAccepted {
			t.Errorf("%s ended %s, want accepted", id, term[id])
		}
	}
	led := e.sim.Ledger()
	if led.DuplicateSends != 0 || led.Accepted != capped+plain {
		t.Fatalf("ledger: %d accepted, %d duplicates; want %d and 0", led.Accepted, led.DuplicateSends, capped+plain)
	}
	checkOneCapEach(t, led, deferred)
	_, retries, _ := w.snapshot()
	onDeferred := 0
	for _, rr := range retries {
		if rr.Topic == topics.Deferred {
			onDeferred++
		}
	}
	if len(retries) != capped || onDeferred != capped {
		t.Errorf("%d retry records committed, %d on %s; want %d, all there (one deferral per capped notification)", len(retries), onDeferred, topics.Deferred, capped)
	}
	t.Logf("%d transactions, every other aborted; %d outcomes re-emitted from the dedupe state; %d capped deferred once each and sent again; %d others sent once",
		d.flushes.Load(), d.rederived.Load(), capped, plain)
	checkRedoneOnce(t, d, w)
}

// TestHeldRecordsAreExactlyOnceThroughAbortedTransactions: one sender's
// account is broken from the start while every other transaction aborts.
// The halt is written to notifications.senders outside the transactions,
// so a record consumed again after an abort finds its sender halted and is
// held without another call; after the resume each notification of the
// halted sender has one held event and is delivered once, at attempt 1,
// and every committed output exists once.
func TestHeldRecordsAreExactlyOnceThroughAbortedTransactions(t *testing.T) {
	const n = 100
	e := newEnv(t, 4, simulator.Behavior{Latency: simulator.Uniform(2*time.Millisecond, 10*time.Millisecond)})
	w := e.watch()
	cfg := testConfig("t-abort-held")
	cfg.Limits.Rate, cfg.Limits.Burst = 100, 5
	cfg.HaltProbeInterval = time.Hour // only the resume lifts it here
	if err := e.sim.SetAccountFault("sender-bad", provider.MetaAccessToken); err != nil {
		t.Fatal(err)
	}
	d := startAborting(t, e, cfg, 2)
	var bad, good []string
	var ns []*contract.Notification
	for i := range n {
		m := notification(idKey(i), recipient(i), "sender-bad", "hello")
		bad = append(bad, m.ID)
		g := notification(idKey(1000+i), recipient(1000+i), "sender-good", "hello")
		good = append(good, g.ID)
		ns = append(ns, m, g)
	}
	e.publish(ns...)
	for id, st := range w.waitTerminal(t, good, 90*time.Second) {
		if st != contract.StatusAccepted {
			t.Fatalf("%s of the healthy sender ended %s", id, st)
		}
	}
	waitHeld(t, w, bad, 90*time.Second)
	calls := e.sim.Ledger().Failures["meta_190"]
	if limit := cfg.Concurrency + 20; calls > limit {
		t.Fatalf("%d calls answered 190, want at most %d: a record consumed again must find its sender halted", calls, limit)
	}
	if err := e.sim.SetAccountFault("sender-bad", 0); err != nil {
		t.Fatal(err)
	}
	dlq := resumeAndDeliver(t, e, w, "sender-bad", bad, 90*time.Second)
	led := e.sim.Ledger()
	if led.DuplicateSends != 0 || led.Accepted != 2*n || len(dlq) != 0 {
		t.Fatalf("ledger: %d accepted, %d duplicate sends, %d DLQ records; want %d, 0, 0", led.Accepted, led.DuplicateSends, len(dlq), 2*n)
	}
	t.Logf("%d transactions, every other aborted; %d outcomes re-emitted from the dedupe state; %d calls answered 190; %d held and delivered once after the resume",
		d.flushes.Load(), d.rederived.Load(), calls, n)
	checkRedoneOnce(t, d, w)
}

// TestKill9WhileRecordsAreParked kills a dispatcher process with SIGKILL
// while records wait on both parking topics (a halted sender's on
// notifications.held, capped recipients' on notifications.deferred) and
// starts it again: the halt holds, the deferrals come due on the new
// process, and after the resume every notification is delivered once,
// with one 131049 per capped notification and one held event per
// notification of the halted sender.
func TestKill9WhileRecordsAreParked(t *testing.T) {
	const n = 60
	var tos []string
	for i := range n {
		tos = append(tos, recipient(1+i))
	}
	e := newEnv(t, 4, simulator.Behavior{Rules: simulator.Rules{MarketingTemplates: []string{"promo"}, MarketingCapped: tos}})
	w := e.watch()
	if err := e.sim.SetAccountFault("sender-bad", provider.MetaAccessToken); err != nil {
		t.Fatal(err)
	}
	var deferred, bad, good []string
	var ns []*contract.Notification
	for i, to := range tos {
		m := notification(idKey(i), to, "sender-1", "")
		m.Text, m.Template = nil, &contract.Template{Name: "promo", Language: "en", Parameters: []string{"x"}}
		deferred = append(deferred, m.ID)
		b := notification(idKey(1000+i), recipient(1000+i), "sender-bad", "hello")
		bad = append(bad, b.ID)
		g := notification(idKey(2000+i), recipient(2000+i), "sender-good", "hello")
		good = append(good, g.ID)
		ns = append(ns, m, b, g)
	}
	e.publish(ns...)
	extra := []string{"WANOTIFY_DISPATCHER_RATE=200", "WANOTIFY_DISPATCHER_DEFER_DELAY=8s", "WANOTIFY_DISPATCHER_HALT_PROBE_INTERVAL=1h"}
	c := e.child(t, "kill-parked", extra...)
	w.waitTerminal(t, good, 60*time.Second)
	waitHeld(t, w, bad, 60*time.Second)
	waitDeferred(t, w, deferred, 60*time.Second)
	c.kill9(t)
	calls := e.sim.Ledger().Failures["meta_190"]

	// The cap lifts and the account is fixed while nothing runs; a new
	// process takes over, then an operator resumes the sender.
	b := e.sim.Behavior()
	b.Rules.MarketingCapped = nil
	if err := e.sim.SetBehavior(b); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetAccountFault("sender-bad", 0); err != nil {
		t.Fatal(err)
	}
	restarted := e.child(t, "kill-parked", extra...)
	for id, st := range w.waitTerminal(t, deferred, 90*time.Second) {
		if st != contract.StatusAccepted {
			t.Fatalf("capped notification %s ended %s, want accepted after its deferral", id, st)
		}
	}
	if got := e.sim.Ledger().Failures["meta_190"]; got != calls {
		t.Fatalf("%d calls answered 190 after the restart, %d before: the new process must know the halt", got, calls)
	}
	dlq := resumeAndDeliver(t, e, w, "sender-bad", bad, 90*time.Second)
	led := e.sim.Ledger()
	if led.DuplicateSends != 0 || led.Accepted != 3*n || len(dlq) != 0 {
		t.Fatalf("ledger: %d accepted, %d duplicate sends, %d DLQ records; want %d, 0, 0", led.Accepted, led.DuplicateSends, len(dlq), 3*n)
	}
	checkOneCapEach(t, led, deferred)
	t.Logf("killed with %d held and %d deferred; after the restart and the resume all %d delivered once; %d calls answered 190", n, n, 3*n, calls)
	checkExactlyOnce(t, w)
	restarted.terminate(t)
}

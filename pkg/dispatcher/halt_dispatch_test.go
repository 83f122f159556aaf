package dispatcher

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/dispatcher/halt"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/topics"
)

// haltN is how many notifications the halted sender has queued in
// TestAccountFaultHaltsOnlyThatSender (WANOTIFY_TEST_HALT_N; the closing
// figures were taken with 10000).
func haltN(t *testing.T) int {
	if v := os.Getenv("WANOTIFY_TEST_HALT_N"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("WANOTIFY_TEST_HALT_N=%q: want a positive count", v)
		}
		return n
	}
	return 2000
}

// heldEvents counts, per notification, the retry_scheduled events that
// put it on notifications.held.
func heldEvents(statuses map[string][]contract.StatusEvent, ids []string) (touched, maxPer int) {
	for _, id := range ids {
		c := 0
		for _, ev := range statuses[id] {
			if ev.Status == contract.StatusRetryScheduled && ev.RetryTier == topics.Held {
				c++
			}
		}
		if c > 0 {
			touched++
		}
		maxPer = max(maxPer, c)
	}
	return touched, maxPer
}

// waitHeld waits until every one of ids got its held event.
func waitHeld(t *testing.T, w *watcher, ids []string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		statuses, _, _ := w.snapshot()
		touched, _ := heldEvents(statuses, ids)
		if touched == len(ids) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d notifications of the halted sender got their held event within %s", touched, len(ids), timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitDeferred waits until every one of ids got its retry_scheduled
// event onto notifications.deferred.
func waitDeferred(t *testing.T, w *watcher, ids []string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		statuses, _, _ := w.snapshot()
		waiting := 0
		for _, id := range ids {
			for _, ev := range statuses[id] {
				if ev.Status == contract.StatusRetryScheduled && ev.RetryTier == topics.Deferred {
					waiting++
					break
				}
			}
		}
		if waiting == len(ids) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d capped notifications deferred within %s", waiting, len(ids), timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// resumeSender resumes a halted sender as notifyctl sender resume does,
// and fails unless the state table showed it halted.
func resumeSender(t *testing.T, e *env, sender string) {
	t.Helper()
	ctl, err := halt.New(halt.Config{Opts: e.kafkaOpts(), Instance: "notifyctl"})
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ctl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, halted := ctl.Halted(sender); !halted {
		t.Fatalf("the state table does not show %s halted", sender)
	}
	if err := ctl.Resume(ctx, sender, "test"); err != nil {
		t.Fatal(err)
	}
}

// resumeAndDeliver resumes a halted sender and fails unless each of its
// notifications ids is then accepted, at attempt 1 (the halt spends no
// attempt), with exactly one held event. It returns the DLQ records.
func resumeAndDeliver(t *testing.T, e *env, w *watcher, sender string, ids []string, timeout time.Duration) []*kgo.Record {
	t.Helper()
	resumeSender(t, e, sender)
	for id, st := range w.waitTerminal(t, ids, timeout) {
		if st != contract.StatusAccepted {
			t.Fatalf("%s ended %s after the resume, want accepted", id, st)
		}
	}
	time.Sleep(300 * time.Millisecond) // let the watcher catch up
	statuses, _, dlq := w.snapshot()
	for _, id := range ids {
		for _, ev := range statuses[id] {
			if ev.Status == contract.StatusAccepted && ev.Attempt != 1 {
				t.Errorf("%s accepted at attempt %d, want 1: the halt spends no attempt", id, ev.Attempt)
			}
		}
	}
	if _, maxPer := heldEvents(statuses, ids); maxPer != 1 {
		t.Errorf("a notification got %d held events, want exactly one", maxPer)
	}
	return dlq
}

// waitParked waits until r holds nothing and at least one partition of
// the parking topic is stopped and paused: what waits there waits in
// Kafka, not in memory.
func waitParked(t *testing.T, r *running, topic string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r.d.mu.Lock()
		buffered, stopped := r.d.buffered, 0
		for k, p := range r.d.parts {
			if k.topic == topic && p.stopped && r.d.paused[k] {
				stopped++
			}
		}
		r.d.mu.Unlock()
		if buffered == 0 && stopped > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records buffered, %d partitions of %s stopped: what waits there is held in memory", buffered, stopped, topic)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAccountFaultHaltsOnlyThatSender: the token of one sender is revoked
// mid-run with thousands of its notifications queued. The sender is
// halted: nothing of it is failed or dead-lettered, each notification gets
// one status event naming the fault, its records wait in Kafka
// (notifications.held, read no further than the halted sender's first
// record, paused), and the halt holds across a dispatcher restart. The
// other sender keeps sending throughout. After notifyctl's resume (the
// token fixed) every notification is delivered exactly once, at its
// first attempt.
func TestAccountFaultHaltsOnlyThatSender(t *testing.T) {
	n := haltN(t)
	e := newEnv(t, 4, simulator.Behavior{})
	w := e.watch()
	cfg := testConfig("t-halt-1")
	cfg.HaltProbeInterval = time.Hour // only the resume lifts it here
	r := e.start(cfg)

	// Before the fault: the sender works.
	var first []string
	var ns []*contract.Notification
	for i := range 50 {
		m := notification(idKey(i), recipient(i), "sender-bad", "hello")
		first = append(first, m.ID)
		ns = append(ns, m)
	}
	e.publish(ns...)
	w.waitTerminal(t, first, 60*time.Second)

	// The token is revoked; the queue fills.
	if err := e.sim.SetAccountFault("sender-bad", provider.MetaAccessToken); err != nil {
		t.Fatal(err)
	}
	var bad, good []string
	ns = ns[:0]
	for i := range n {
		m := notification(idKey(1000+i), recipient(1000+i), "sender-bad", "hello")
		bad = append(bad, m.ID)
		ns = append(ns, m)
		if i%4 == 0 {
			g := notification(idKey(1_000_000+i), recipient(1_000_000+i), "sender-good", "hello")
			good = append(good, g.ID)
			ns = append(ns, g)
		}
	}
	e.publish(ns...)

	// The other sender is not held up.
	for id, st := range w.waitTerminal(t, good, 120*time.Second) {
		if st != contract.StatusAccepted {
			t.Fatalf("%s of the healthy sender ended %s", id, st)
		}
	}
	// Every notification of the halted sender is touched once: one
	// retry_scheduled on notifications.held naming the fault.
	waitHeld(t, w, bad, 120*time.Second)
	calls := e.sim.Ledger().Failures["meta_190"]
	if limit := cfg.Concurrency + 20; calls > limit {
		t.Fatalf("%d calls answered 190, want at most %d: the halt must stop the sender at once", calls, limit)
	}
	// They wait in Kafka: nothing buffered, the held partitions stopped.
	waitParked(t, r, topics.Held)

	// The halt holds across a restart: a new instance sends nothing of
	// the sender either.
	r.stop(t)
	cfg2 := testConfig("t-halt-2")
	cfg2.HaltProbeInterval = time.Hour
	r2 := e.start(cfg2)
	var late []string
	ns = ns[:0]
	for i := range 20 {
		m := notification(idKey(2_000_000+i), recipient(2_000_000+i), "sender-bad", "hello")
		late = append(late, m.ID)
		ns = append(ns, m)
	}
	e.publish(ns...)
	waitHeld(t, w, late, 60*time.Second)
	if got := e.sim.Ledger().Failures["meta_190"]; got != calls {
		t.Fatalf("%d calls answered 190 after the restart, %d before: the restarted instance must know the halt", got, calls)
	}
	waitParked(t, r2, topics.Held)
	statuses, retries, dlq := w.snapshot()
	for _, id := range append(append([]string{}, bad...), late...) {
		for _, ev := range statuses[id] {
			if ev.Status.Terminal() {
				t.Fatalf("%s of the halted sender ended %s during the halt", id, ev.Status)
			}
		}
	}
	if len(dlq) != 0 {
		t.Fatalf("%d DLQ records during the halt", len(dlq))
	}
	for _, rec := range retries {
		if rec.Topic != topics.Held {
			t.Fatalf("a retry record on %s during the halt", rec.Topic)
		}
	}

	// The token is fixed; an operator resumes the sender.
	if err := e.sim.SetAccountFault("sender-bad", 0); err != nil {
		t.Fatal(err)
	}
	all := append(append([]string{}, bad...), late...)
	dlq = resumeAndDeliver(t, e, w, "sender-bad", all, 180*time.Second)
	led := e.sim.Ledger()
	if led.DuplicateSends != 0 || led.Accepted != len(first)+len(all)+len(good) {
		t.Fatalf("ledger: %d accepted, %d duplicate sends; want %d and 0", led.Accepted, led.DuplicateSends, len(first)+len(all)+len(good))
	}
	if len(dlq) != 0 {
		t.Fatalf("%d DLQ records", len(dlq))
	}
	t.Logf("halted sender: %d notifications held and delivered once after the resume; %d calls answered 190", len(all), calls)
}

// TestHaltedSenderResumesOnItsProbe: without an operator, one probe per
// interval finds out when the account works again, and the sender's held
// notifications are then all delivered.
func TestHaltedSenderResumesOnItsProbe(t *testing.T) {
	e := newEnv(t, 4, simulator.Behavior{Rules: simulator.Rules{
		AccountFaults: map[string]int{"sender-bad": provider.MetaAccountLocked}}})
	w := e.watch()
	cfg := testConfig("t-halt-probe")
	cfg.HaltProbeInterval = 2 * time.Second
	e.start(cfg)
	var bad []string
	var ns []*contract.Notification
	for i := range 200 {
		m := notification(idKey(i), recipient(i), "sender-bad", "hello")
		bad = append(bad, m.ID)
		ns = append(ns, m)
	}
	e.publish(ns...)
	waitHeld(t, w, bad, 60*time.Second)
	// A few probe intervals of the fault: about one call each.
	before := e.sim.Ledger().Failures["meta_131031"]
	time.Sleep(3 * cfg.HaltProbeInterval)
	probes := e.sim.Ledger().Failures["meta_131031"] - before
	if probes < 1 || probes > 5 {
		t.Fatalf("%d probe calls in %s with a probe interval of %s, want about 3", probes, 3*cfg.HaltProbeInterval, cfg.HaltProbeInterval)
	}
	if err := e.sim.SetAccountFault("sender-bad", 0); err != nil {
		t.Fatal(err)
	}
	for id, st := range w.waitTerminal(t, bad, 120*time.Second) {
		if st != contract.StatusAccepted {
			t.Fatalf("%s ended %s, want accepted after the probe found the account working", id, st)
		}
	}
	if led := e.sim.Ledger(); led.DuplicateSends != 0 || led.Accepted != len(bad) {
		t.Fatalf("ledger: %d accepted, %d duplicate sends; want %d and 0", led.Accepted, led.DuplicateSends, len(bad))
	}
}

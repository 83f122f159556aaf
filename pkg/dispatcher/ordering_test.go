package dispatcher

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/simulator"
)

// TestOneRecipientInOrderOthersConcurrently: in a single partition, with a
// slow provider, one recipient's messages go out in publish order and
// never overlap, while different recipients' calls do run concurrently.
func TestOneRecipientInOrderOthersConcurrently(t *testing.T) {
	const lat = 100 * time.Millisecond
	e := newEnv(t, 1, simulator.Behavior{Latency: simulator.Fixed(lat)})
	w := e.watch()
	e.start(testConfig("t-order"))
	const recipients, per = 40, 8
	var ids []string
	var ns []*contract.Notification
	for j := 0; j < per; j++ {
		for i := 0; i < recipients; i++ {
			n := notification(fmt.Sprintf("order-%d-%d", i, j), recipient(i), "sender-1", fmt.Sprintf("seq %d", j))
			ids = append(ids, n.ID)
			ns = append(ns, n)
		}
	}
	e.publish(ns...)
	start := time.Now()
	w.waitTerminal(t, ids, 60*time.Second)
	took := time.Since(start)
	led := e.sim.Ledger()
	last := map[string]simulator.Entry{}
	for _, en := range led.Entries { // ledger order is acceptance order
		seq, _ := strconv.Atoi(strings.TrimPrefix(en.Text, "seq "))
		if prev, ok := last[en.Recipient]; ok {
			pseq, _ := strconv.Atoi(strings.TrimPrefix(prev.Text, "seq "))
			if seq != pseq+1 {
				t.Fatalf("recipient %s got seq %d after %d", en.Recipient, seq, pseq)
			}
			if gap := en.Time.Sub(prev.Time); gap < lat-5*time.Millisecond {
				t.Fatalf("recipient %s: two calls %s apart, the first was still in flight", en.Recipient, gap)
			}
		} else if seq != 0 {
			t.Fatalf("recipient %s started with seq %d", en.Recipient, seq)
		}
		last[en.Recipient] = en
	}
	// One call at a time for the whole partition would take
	// recipients*per*lat = 32s.
	span := led.Entries[len(led.Entries)-1].Time.Sub(led.Entries[0].Time)
	t.Logf("%d sends through one partition in %s (provider saw them over %s)", len(led.Entries), took.Round(time.Millisecond), span.Round(time.Millisecond))
	if serial := time.Duration(recipients*per) * lat; span > serial/4 {
		t.Fatalf("sends spanned %s: recipients were not processed concurrently (serial: %s)", span, serial)
	}
}

// TestThrottledRetryWaitsForRetryAfter: a 429 with Retry-After 2s is
// retried no earlier than 2s later, although the tier delay is 200ms.
func TestThrottledRetryWaitsForRetryAfter(t *testing.T) {
	// Mostly waiting on the clock: runs next to the other waiting tests.
	t.Parallel()
	e := newEnv(t, 1, simulator.Behavior{})
	w := e.watch()
	e.start(testConfig("t-retry-after"))
	n := notification("throttled-1", recipient(1), "sender-1", "[sim:meta_130429:2]")
	e.publish(n)
	term := w.waitTerminal(t, []string{n.ID}, 30*time.Second)
	if term[n.ID] != contract.StatusDeadLettered {
		t.Fatalf("status %s, want dead_lettered after four throttled attempts", term[n.ID])
	}
	led := e.sim.Ledger()
	var ts []time.Time
	for _, r := range led.Rejections {
		if r.NotificationID == n.ID {
			ts = append(ts, r.Time)
		}
	}
	if len(ts) != 4 {
		t.Fatalf("%d attempts, want 4", len(ts))
	}
	for i := 1; i < len(ts); i++ {
		if gap := ts[i].Sub(ts[i-1]); gap < 2*time.Second {
			t.Fatalf("attempt %d came %s after the previous one, before Retry-After (2s)", i+1, gap)
		}
	}
	_, retries, dlq := w.snapshot()
	if checkRetriesNotEarly(t, e.sim, retries) != 3 {
		t.Fatalf("want 3 retries checked against their due time")
	}
	if len(dlq) != 1 {
		t.Fatalf("DLQ holds %d records, want 1", len(dlq))
	}
	f, err := envelope.Parse(dlq[0].Headers)
	if err != nil || f.Class != "throttled" || f.Attempt != 4 || f.Error.Code != "meta_130429" {
		t.Fatalf("DLQ context %+v %v", f, err)
	}
}

// TestRebalanceUnderLoad: a second dispatcher joins mid-load, then the
// first leaves. Partitions move twice while calls are in flight; nothing
// is lost or sent twice, and no outcome is unknown (clean hand-overs).
func TestRebalanceUnderLoad(t *testing.T) {
	e := newEnv(t, 6, simulator.Behavior{Latency: simulator.Uniform(20*time.Millisecond, 80*time.Millisecond), RetryableRate: 0.1})
	w := e.watch()
	cfg := testConfig("t-reb-a")
	cfg.Limits.Rate, cfg.Limits.Burst = 400, 10
	a := e.start(cfg)
	const n = 3000
	var ids []string
	var ns []*contract.Notification
	for i := 0; i < n; i++ {
		nt := notification(idKey(i), recipient(i%700), "sender-1", "hello")
		ids = append(ids, nt.ID)
		ns = append(ns, nt)
	}
	e.publish(ns...)
	waitAccepted := func(k int) {
		deadline := time.Now().Add(30 * time.Second)
		for e.sim.Ledger().Accepted < k {
			if time.Now().After(deadline) {
				t.Fatalf("stuck below %d accepted", k)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitAccepted(n / 5)
	cfgB := cfg
	cfgB.TransactionalID = "t-reb-b"
	e.start(cfgB)
	waitAccepted(n / 2)
	a.stop(t)
	term := w.waitTerminal(t, ids, 120*time.Second)
	led := e.sim.Ledger()
	for id, s := range term {
		if s == contract.StatusOutcomeUnknown {
			t.Errorf("%s: outcome unknown after clean rebalances", id)
		}
	}
	if led.DuplicateSends != 0 || led.Throttled != 0 {
		t.Fatalf("duplicate sends %d, throttled %d", led.DuplicateSends, led.Throttled)
	}
	time.Sleep(300 * time.Millisecond)
	_, retries, _ := w.snapshot()
	checkRetriesNotEarly(t, e.sim, retries)
	checkExactlyOnce(t, w)
}

// TestAbortedTransactionsAreRedoneExactlyOnce aborts every third
// transaction under load with retryable failures: the aborted outputs are
// invisible, the records are consumed again and their outcomes re-emitted
// from the dedupe state, so every committed output exists exactly once and
// no provider call is repeated.
func TestAbortedTransactionsAreRedoneExactlyOnce(t *testing.T) {
	e := newEnv(t, 4, simulator.Behavior{Latency: simulator.Uniform(5*time.Millisecond, 30*time.Millisecond), RetryableRate: 0.2})
	w := e.watch()
	cfg := testConfig("t-abort")
	cfg.Limits.Rate, cfg.Limits.Burst = 1000, 20
	d, err := New(cfg, e.provider(), e.kafkaOpts(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	d.abortEvery = 3
	r := &running{d: d, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	const n = 1500
	var ids []string
	var ns []*contract.Notification
	for i := 0; i < n; i++ {
		nt := notification(idKey(i), recipient(i%300), "sender-1", "hello")
		ids = append(ids, nt.ID)
		ns = append(ns, nt)
	}
	e.publish(ns...)
	w.waitTerminal(t, ids, 90*time.Second)
	time.Sleep(300 * time.Millisecond)
	led := e.sim.Ledger()
	if led.DuplicateSends != 0 {
		t.Fatalf("%d duplicate sends", led.DuplicateSends)
	}
	t.Logf("%d transactions, every third aborted; provider accepted %d, rejected %d; commits of partitions not listed by the session: %d",
		d.flushes.Load(), led.Accepted, len(led.Rejections), d.missingCommits.Load())
	if d.flushes.Load() < 9 {
		t.Fatalf("only %d transactions: the aborts were not exercised", d.flushes.Load())
	}
	checkExactlyOnce(t, w)
	_, retries, _ := w.snapshot()
	checkRetriesNotEarly(t, e.sim, retries)
}

package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/topics"
)

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
	d, err := New(cfg, e.provider(), e.kafkaOpts(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	d.abortEvery = 2
	r := &running{d: d, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })

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
	deadline := time.Now().Add(60 * time.Second)
	for {
		statuses, _, _ := w.snapshot()
		waiting := 0
		for _, id := range deferred {
			for _, ev := range statuses[id] {
				if ev.Status == contract.StatusRetryScheduled && ev.RetryTier == topics.Deferred {
					waiting++
					break
				}
			}
		}
		if waiting == capped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d capped notifications deferred within 60 s", waiting, capped)
		}
		time.Sleep(100 * time.Millisecond)
	}
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
	caps := map[string]int{}
	for _, rj := range led.Rejections {
		if rj.Code == "meta_131049" {
			caps[rj.NotificationID]++
		}
	}
	for _, id := range deferred {
		if caps[id] != 1 {
			t.Errorf("%s answered 131049 %d times, want once (an aborted deferral must not call again)", id, caps[id])
		}
	}
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
	t.Logf("%d transactions, every other aborted; %d capped deferred once each and sent again; %d others sent once",
		d.flushes.Load(), capped, plain)
	if d.flushes.Load() < 20 {
		t.Fatalf("only %d transactions: the aborts were not exercised", d.flushes.Load())
	}
	checkExactlyOnce(t, w)
}

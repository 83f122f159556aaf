package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/dispatcher/dedupe"
	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

func statusCount(w *watcher, id string, s contract.Status) int {
	st, _, _ := w.snapshot()
	c := 0
	for _, ev := range st[id] {
		if ev.Status == s {
			c++
		}
	}
	return c
}

func waitStatusCount(t *testing.T, w *watcher, id string, s contract.Status, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for statusCount(w, id, s) < want {
		if time.Now().After(deadline) {
			st, _, _ := w.snapshot()
			t.Fatalf("%s: want %d %s statuses, have %+v", id, want, s, st[id])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDedupeSurvivesRestart: the idempotency state lives in Kafka only; a
// fresh dispatcher (new process state) still recognises a key it never
// saw itself.
func TestDedupeSurvivesRestart(t *testing.T) {
	e := newEnv(t, 3, simulator.Behavior{})
	w := e.watch()
	cfg := testConfig("t-restart")
	first := e.start(cfg)
	n := notification("restart-key", recipient(5), "sender-1", "hello")
	e.publish(n)
	waitStatusCount(t, w, n.ID, contract.StatusAccepted, 1)
	first.stop(t)
	e.start(cfg)
	e.publish(n)
	waitStatusCount(t, w, n.ID, contract.StatusDuplicate, 1)
	if got := e.sim.Ledger().Accepted; got != 1 {
		t.Fatalf("%d sends, want 1", got)
	}
}

// TestDedupeWindowExpires: a key older than the window is forgotten and
// tombstoned in the changelog; the same key is then a new request.
func TestDedupeWindowExpires(t *testing.T) {
	// Mostly waiting on the clock: runs next to the other waiting tests.
	t.Parallel()
	e := newEnv(t, 1, simulator.Behavior{})
	w := e.watch()
	cfg := testConfig("t-window")
	cfg.DedupeWindow = time.Second
	cfg.DedupeSweepInterval = 200 * time.Millisecond
	e.start(cfg)
	n := notification("window-key", recipient(6), "sender-1", "hello")
	e.publish(n)
	waitStatusCount(t, w, n.ID, contract.StatusAccepted, 1)
	e.publish(n)
	waitStatusCount(t, w, n.ID, contract.StatusDuplicate, 1)

	// Wait for the tombstone of the key in the changelog.
	h := dedupe.HashKey(n.Tenant, n.IdempotencyKey)
	cl := testinfra.Client(t, e.brokers, kgo.ConsumeTopics(topics.Dedupe), kgo.FetchMaxWait(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for found := false; !found; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("no tombstone for the expired key")
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) == string(h.RecordKey()) && r.Value == nil {
				found = true
			}
		})
	}
	e.publish(n)
	waitStatusCount(t, w, n.ID, contract.StatusAccepted, 2)
	if got := e.sim.Ledger().Accepted; got != 2 {
		t.Fatalf("%d sends, want 2 (the key expired in between)", got)
	}
}

// TestReplayOfDeadLetteredNotification: a dead-lettered notification
// replayed by an operator (wanotify-replay-count header) is delivered; the
// same record without the header is a duplicate, and an accepted
// notification is never delivered again even when replayed.
func TestReplayOfDeadLetteredNotification(t *testing.T) {
	e := newEnv(t, 1, simulator.Behavior{RetryableRate: 1})
	w := e.watch()
	e.start(testConfig("t-replay"))
	n := notification("replay-key", recipient(8), "sender-1", "hello")
	e.publish(n)
	waitStatusCount(t, w, n.ID, contract.StatusDeadLettered, 1)
	b := e.sim.Behavior()
	b.RetryableRate = 0
	if err := e.sim.SetBehavior(b); err != nil {
		t.Fatal(err)
	}
	v, _ := n.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.publish(n) // not a replay: still a duplicate
	waitStatusCount(t, w, n.ID, contract.StatusDuplicate, 1)
	replay := func() {
		if err := e.prod.ProduceSync(ctx, &kgo.Record{Topic: topics.Requested, Key: n.Key(), Value: v,
			Headers: []kgo.RecordHeader{{Key: "wanotify-replay-count", Value: []byte("1")}}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	replay()
	waitStatusCount(t, w, n.ID, contract.StatusAccepted, 1)
	replay() // accepted now: a replay is a duplicate
	waitStatusCount(t, w, n.ID, contract.StatusDuplicate, 2)
	if got := e.sim.Ledger().Accepted; got != 1 {
		t.Fatalf("%d sends, want 1", got)
	}
}

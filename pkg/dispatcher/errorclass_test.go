package dispatcher

import (
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/topics"
)

// TestDeferredWaitsInKafkaAndIsSentAgain: Meta's marketing cap (131049)
// is not retried on the short tiers. Each of 50 capped recipients'
// notifications waits on notifications.deferred for the (here shortened)
// deferral without spending an attempt and without counting against the
// sender's breaker, so the sender's other messages go out at their first
// attempt; once the cap has lifted, each is sent again after its deferral,
// once: none is dead-lettered.
func TestDeferredWaitsInKafkaAndIsSentAgain(t *testing.T) {
	const n = 50
	var capped []string
	for i := 0; i < n; i++ {
		capped = append(capped, recipient(1+i))
	}
	e := newEnv(t, 4, simulator.Behavior{Rules: simulator.Rules{
		MarketingTemplates: []string{"promo"}, MarketingCapped: capped}})
	w := e.watch()
	cfg := testConfig("t-deferred")
	cfg.Breaker.ConsecutiveFailures = 2 // a deferral that counted would open it at once
	cfg.DeferDelay = 4 * time.Second
	r := e.start(cfg)
	promo := func(i int, to string) *contract.Notification {
		m := notification(idKey(i), to, "sender-1", "")
		m.Text, m.Template = nil, &contract.Template{Name: "promo", Language: "en", Parameters: []string{"x"}}
		return m
	}
	var deferred, others []string
	var ns []*contract.Notification
	for i, to := range capped {
		m := promo(i, to)
		deferred = append(deferred, m.ID)
		ns = append(ns, m)
	}
	for i := 0; i < 10; i++ {
		m := promo(1000+i, recipient(1000+i))
		others = append(others, m.ID)
		ns = append(ns, m)
	}
	e.publish(ns...)
	// Every capped notification is deferred: retry_scheduled on
	// notifications.deferred, due a deferral after its failure.
	waitDeferred(t, w, deferred, 60*time.Second)
	// They wait in Kafka, not in memory: nothing is buffered, and the
	// deferred partitions that hold them are stopped at them, paused.
	waitParked(t, r, topics.Deferred)
	// The cap lifts (a day passes, in the test a few seconds).
	b := e.sim.Behavior()
	b.Rules.MarketingCapped = nil
	if err := e.sim.SetBehavior(b); err != nil {
		t.Fatal(err)
	}
	term := w.waitTerminal(t, append(append([]string{}, deferred...), others...), 90*time.Second)
	statuses, retries, _ := w.snapshot()
	for _, id := range others {
		if term[id] != contract.StatusAccepted {
			t.Errorf("%s ended %s, want accepted", id, term[id])
		}
		for _, ev := range statuses[id] {
			if ev.Status == contract.StatusAccepted && ev.Attempt != 1 {
				t.Errorf("%s accepted at attempt %d: a deferral held the sender back", id, ev.Attempt)
			}
		}
	}
	for _, id := range deferred {
		if term[id] != contract.StatusAccepted {
			t.Fatalf("capped notification %s ended %s, want accepted after its deferral", id, term[id])
		}
		var sched, acc *contract.StatusEvent
		for i, ev := range statuses[id] {
			switch ev.Status {
			case contract.StatusRetryScheduled:
				sched = &statuses[id][i]
			case contract.StatusAccepted:
				acc = &statuses[id][i]
			}
		}
		if sched == nil || acc == nil {
			t.Fatalf("%s: retry_scheduled %v accepted %v", id, sched, acc)
		}
		if sched.Error == nil || sched.Error.Code != "meta_131049" || !sched.Error.Retryable {
			t.Errorf("%s deferred with error %+v, want a retryable meta_131049", id, sched.Error)
		}
		if wait := sched.DueAt.Sub(sched.OccurredAt); wait < cfg.DeferDelay-time.Millisecond {
			t.Errorf("%s due %s after its failure, want the deferral %s", id, wait, cfg.DeferDelay)
		}
		if acc.OccurredAt.Before(*sched.DueAt) {
			t.Errorf("%s sent again at %s, before it was due at %s", id, acc.OccurredAt, sched.DueAt)
		}
		if acc.Attempt != 2 {
			t.Errorf("%s accepted at attempt %d, want 2", id, acc.Attempt)
		}
	}
	for _, r := range retries {
		if r.Topic != topics.Deferred {
			t.Errorf("retry record on %s, want every deferral on %s", r.Topic, topics.Deferred)
			continue
		}
		if f, err := envelope.Parse(r.Headers); err != nil || f.Class != provider.Deferred.String() || f.Deferrals != 1 {
			t.Errorf("deferred record class %q deferrals %d (%v), want %q and 1", f.Class, f.Deferrals, err, provider.Deferred)
		}
	}
	led := e.sim.Ledger()
	if led.DuplicateSends != 0 || led.Accepted != n+10 {
		t.Fatalf("ledger: %d accepted, %d duplicate sends; want %d and 0", led.Accepted, led.DuplicateSends, n+10)
	}
	if got := led.Failures["meta_131049"]; got != n {
		t.Fatalf("%d sends answered 131049, want %d (one per capped recipient: nothing retried on the short tiers)", got, n)
	}
}

// TestDeferralThatOutlivesTheNotificationExpires: a capped notification
// whose expiry comes before the deferral is over is expired at once, not
// parked for a day.
func TestDeferralThatOutlivesTheNotificationExpires(t *testing.T) {
	capped := recipient(7)
	e := newEnv(t, 2, simulator.Behavior{Rules: simulator.Rules{
		MarketingTemplates: []string{"promo"}, MarketingCapped: []string{capped}}})
	w := e.watch()
	e.start(testConfig("t-deferred-expiry")) // the default deferral: a day
	m := notification(idKey(1), capped, "sender-1", "")
	m.Text, m.Template = nil, &contract.Template{Name: "promo", Language: "en", Parameters: []string{"x"}}
	exp := time.Now().Add(2 * time.Hour).UTC()
	m.ExpiresAt = &exp
	e.publish(m)
	term := w.waitTerminal(t, []string{m.ID}, 60*time.Second)
	if term[m.ID] != contract.StatusExpired {
		t.Fatalf("ended %s, want expired: it expires before a day's deferral is over", term[m.ID])
	}
	if _, retries, _ := w.snapshot(); len(retries) != 0 {
		t.Fatalf("%d retry records, want none", len(retries))
	}
}

// TestProviderErrorClassesSetting: WANOTIFY_PROVIDER_ERROR_CLASSES is
// checked at start (an unknown code or class names the variable) and,
// once the client is built, decides the classes.
func TestProviderErrorClassesSetting(t *testing.T) {
	t.Cleanup(func() { provider.SetOverrides(nil) })
	for _, bad := range []string{"131048=fatal", "42=throttled", "131048"} {
		pc := LoadProvider(envOf(map[string]string{"WANOTIFY_XPRESSBOT_API_KEY": "k", "WANOTIFY_PROVIDER_ERROR_CLASSES": bad}))
		if err := pc.Validate(); err == nil || !strings.Contains(err.Error(), "WANOTIFY_PROVIDER_ERROR_CLASSES") {
			t.Fatalf("%q: err %v, want one naming WANOTIFY_PROVIDER_ERROR_CLASSES", bad, err)
		}
	}
	pc := LoadProvider(envOf(map[string]string{"WANOTIFY_XPRESSBOT_API_KEY": "k", "WANOTIFY_PROVIDER_ERROR_CLASSES": "131048=deferred"}))
	if err := pc.Validate(); err != nil {
		t.Fatal(err)
	}
	if c := provider.Classify(400, provider.MetaSpamRateLimit, 0, "").Class; c != provider.Throttled {
		t.Fatalf("before the client is built 131048 is %s", c)
	}
	_, closeFn, err := pc.New(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if c := provider.Classify(400, provider.MetaSpamRateLimit, 0, "").Class; c != provider.Deferred {
		t.Fatalf("with the override 131048 is %s, want deferred", c)
	}
}

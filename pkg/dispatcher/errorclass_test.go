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

// TestAccountFaultParksTheSenderWithoutFailing: a sender whose token the
// provider refuses (190) fails nothing and dead-letters nothing; its
// breaker opens, so few calls reach the provider; once the account is
// fixed everything of the sender goes out on its first attempt.
//
// While the breaker is open the dispatcher pauses every fetch (as for a
// provider outage), so another sender's records wait too: keeping other
// senders flowing is the sender halt's work, not this interim mapping's.
func TestAccountFaultParksTheSenderWithoutFailing(t *testing.T) {
	e := newEnv(t, 4, simulator.Behavior{Rules: simulator.Rules{
		AccountFaults: map[string]int{"sender-bad": provider.MetaAccessToken}}})
	w := e.watch()
	cfg := testConfig("t-account-fault")
	e.start(cfg)
	var bad, all []string
	var ns []*contract.Notification
	for i := range 30 {
		b := notification(idKey(i), recipient(i), "sender-bad", "hello")
		g := notification(idKey(100+i), recipient(100+i), "sender-good", "hello")
		bad, all = append(bad, b.ID), append(all, b.ID, g.ID)
		ns = append(ns, b, g)
	}
	e.publish(ns...)
	deadline := time.Now().Add(30 * time.Second)
	for e.sim.Ledger().Failures["meta_190"] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no send of the faulty sender reached the provider")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Let the faulty sender's breaker open and probe a few times.
	fault := 3 * time.Second
	time.Sleep(fault)
	statuses, retries, dlq := w.snapshot()
	for _, id := range bad {
		// Neither failed, nor retried, nor dead-lettered: parked.
		for _, ev := range statuses[id] {
			t.Fatalf("%s of the faulty sender got %s during the fault (%+v)", id, ev.Status, ev.Error)
		}
	}
	if len(retries) != 0 || len(dlq) != 0 {
		t.Fatalf("%d retry and %d DLQ records during an account fault, want none", len(retries), len(dlq))
	}
	calls := e.sim.Ledger().Failures["meta_190"]
	// The first call of each record (all may be in flight when the
	// breaker trips), then about one probe per open timeout; without the
	// breaker the rate limit would allow thousands.
	if limit := len(bad) + cfg.Breaker.ConsecutiveFailures + 2*int(fault/cfg.Breaker.OpenTimeout); calls > limit {
		t.Fatalf("%d calls refused with 190, want at most %d: the breaker must stop them", calls, limit)
	}
	t.Logf("%d calls refused with 190 during a %s fault", calls, fault)

	if err := e.sim.SetAccountFault("sender-bad", 0); err != nil {
		t.Fatal(err)
	}
	for id, st := range w.waitTerminal(t, all, 60*time.Second) {
		if st != contract.StatusAccepted {
			t.Errorf("%s ended %s, want accepted", id, st)
		}
	}
	statuses, _, dlq = w.snapshot()
	for _, id := range bad {
		var last contract.StatusEvent
		for _, ev := range statuses[id] {
			if ev.Status.Terminal() {
				last = ev
			}
		}
		if last.Status != contract.StatusAccepted || last.Attempt != 1 {
			t.Errorf("%s ended %s at attempt %d, want accepted at attempt 1 (the fault spent no attempt)", id, last.Status, last.Attempt)
		}
	}
	if len(dlq) != 0 {
		t.Fatalf("%d DLQ records", len(dlq))
	}
	if led := e.sim.Ledger(); led.Accepted != 60 || led.DuplicateSends != 0 {
		t.Fatalf("ledger accepted %d duplicates %d, want 60 and 0", led.Accepted, led.DuplicateSends)
	}
}

// TestDeferredSkipsTheShortRetries: Meta's marketing cap (131049) is not
// retried on the short tiers: every retry of it goes on the last tier,
// and it does not count against the sender's breaker, so the same
// sender's other messages go out at their first attempt.
func TestDeferredSkipsTheShortRetries(t *testing.T) {
	capped := recipient(1)
	e := newEnv(t, 4, simulator.Behavior{Rules: simulator.Rules{
		MarketingTemplates: []string{"promo"}, MarketingCapped: []string{capped}}})
	w := e.watch()
	cfg := testConfig("t-deferred")
	cfg.Breaker.ConsecutiveFailures = 2 // a deferral that counted would open it at once
	e.start(cfg)
	promo := func(i int, to string) *contract.Notification {
		n := notification(idKey(i), to, "sender-1", "")
		n.Text, n.Template = nil, &contract.Template{Name: "promo", Language: "en", Parameters: []string{"x"}}
		return n
	}
	deferred := promo(0, capped)
	var others []string
	ns := []*contract.Notification{deferred}
	for i := 1; i <= 10; i++ {
		n := promo(i, recipient(100+i))
		others = append(others, n.ID)
		ns = append(ns, n)
	}
	e.publish(ns...)
	term := w.waitTerminal(t, append([]string{deferred.ID}, others...), 60*time.Second)
	if s := term[deferred.ID]; s != contract.StatusDeadLettered {
		t.Fatalf("capped recipient's notification ended %s, want dead_lettered after its attempts", s)
	}
	statuses, retries, _ := w.snapshot()
	for _, id := range others {
		for _, ev := range statuses[id] {
			if ev.Status == contract.StatusAccepted && ev.Attempt != 1 {
				t.Errorf("%s accepted at attempt %d: a deferral held the sender back", id, ev.Attempt)
			}
		}
	}
	last := topics.RetryTiers[len(topics.RetryTiers)-1]
	scheduled := 0
	for _, ev := range statuses[deferred.ID] {
		if ev.Status != contract.StatusRetryScheduled {
			continue
		}
		scheduled++
		if ev.RetryTier != last || ev.Error == nil || ev.Error.Code != "meta_131049" || !ev.Error.Retryable {
			t.Errorf("retry %d: tier %s error %+v, want the last tier %s and a retryable meta_131049", ev.Attempt, ev.RetryTier, ev.Error, last)
		}
		if wait := ev.DueAt.Sub(ev.OccurredAt); wait < cfg.RetryDelays[len(cfg.RetryDelays)-1]-time.Millisecond {
			t.Errorf("retry %d due after %s, want the last tier's %s", ev.Attempt, wait, cfg.RetryDelays[len(cfg.RetryDelays)-1])
		}
	}
	if scheduled != maxAttempts-1 {
		for _, ev := range statuses[deferred.ID] {
			t.Logf("%s attempt %d tier %s err %+v", ev.Status, ev.Attempt, ev.RetryTier, ev.Error)
		}
		t.Fatalf("%d retries scheduled, want %d", scheduled, maxAttempts-1)
	}
	for _, r := range retries {
		if r.Topic != last {
			t.Errorf("retry record on %s, want every deferral on %s", r.Topic, last)
		}
		if f, err := envelope.Parse(r.Headers); err != nil || f.Class != provider.Deferred.String() {
			t.Errorf("retry record class %q (%v), want %q", f.Class, err, provider.Deferred)
		}
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

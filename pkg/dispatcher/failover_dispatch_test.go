package dispatcher

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/provider/cloudapi"
	"github.com/wanotify/wanotify/pkg/provider/providertest"
	"github.com/wanotify/wanotify/pkg/provider/route"
	"github.com/wanotify/wanotify/pkg/provider/xpressbot"
	"github.com/wanotify/wanotify/pkg/senders"
	"github.com/wanotify/wanotify/pkg/simulator"
)

const foNumber = "106540352242922"

// failoverRegistry: tenant acme's sender acme-otp sends from number
// foNumber through Xpressbot, with the same number straight through the
// Cloud API as its failover route.
func failoverRegistry(t *testing.T) *senders.Registry {
	t.Helper()
	r, err := senders.Parse([]byte(`
senders:
  - name: acme-otp
    tenants: [acme]
    provider: xpressbot
    number_id: "`+foNumber+`"
    failover: {provider: cloudapi, number_id: "`+foNumber+`"}
tenants:
  - {name: acme, default_sender: acme-otp, free_text: true}
`), "test")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// failoverRouter is the router the service builds from failoverRegistry:
// the primary at primaryURL (Xpressbot API), the failover at secondURL
// (Cloud API).
func failoverRouter(t *testing.T, primaryURL, secondURL string) *route.Router {
	t.Helper()
	xb, err := xpressbot.New(xpressbot.Options{BaseURL: primaryURL, APIKey: simKey, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(xb.Close)
	ca, err := cloudapi.New(cloudapi.Options{BaseURL: secondURL, AccessToken: simKey, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ca.Close)
	r, err := route.New(map[string]route.Target{
		"acme-otp": {Provider: xb, NumberID: foNumber, Failover: &route.Target{Provider: ca, NumberID: foNumber}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runFailover publishes n notifications of acme-otp and checks that every
// one ends accepted through the failover route, that the second route's
// ledger has each exactly once and the primary's none, and that the
// status events name the route and its provider.
func runFailover(t *testing.T, e *env, primaryURL string, n int) *running {
	t.Helper()
	simB, urlB := providertest.StartSimulator(t, simulator.Config{APIKey: simKey, Seed: 8})
	w := e.watch()
	cfg := testConfig("t-failover")
	cfg.Senders = failoverRegistry(t)
	r := e.startWith(cfg, failoverRouter(t, primaryURL, urlB))
	var ids []string
	for i := 0; i < n; i++ {
		m := notification(fmt.Sprintf("fo-%d", i), recipient(i%20), "acme-otp", "your code is 123456")
		ids = append(ids, m.ID)
		e.publish(m)
	}
	got := w.waitTerminal(t, ids, 60*time.Second)
	st, _, _ := w.snapshot()
	for _, id := range ids {
		if got[id] != contract.StatusAccepted {
			t.Fatalf("%s: %s, want accepted", id, got[id])
		}
		var acc *contract.StatusEvent
		for i := range st[id] {
			if st[id][i].Status == contract.StatusAccepted {
				acc = &st[id][i]
			}
		}
		if acc == nil || acc.Route != contract.RouteFailover || acc.Provider != cloudapi.Name {
			t.Fatalf("%s: accepted event %+v, want route failover through %s", id, acc, cloudapi.Name)
		}
	}
	la, lb := e.sim.Ledger(), simB.Ledger()
	sends, dup, err := simulator.SendsAcross(la, lb)
	if err != nil {
		t.Fatal(err)
	}
	if la.Accepted != 0 || lb.Accepted != n || len(sends) != n || dup != 0 {
		t.Fatalf("primary took %d, second %d (want 0 and %d), %d distinct, %d duplicate sends across both ledgers",
			la.Accepted, lb.Accepted, n, len(sends), dup)
	}
	for _, en := range lb.Entries {
		if en.API != simulator.APICloud || en.Sender != foNumber {
			t.Fatalf("second route's send %+v: want the Cloud API from %s", en, foNumber)
		}
	}
	return r
}

// TestPrimaryAccountFaultDeliversThroughFailover: the primary answers
// every send with 190 (token refused, provably not taken); the sender is
// halted and every record is delivered through its failover route instead
// of waiting on notifications.held, none twice across both routes' ledgers.
func TestPrimaryAccountFaultDeliversThroughFailover(t *testing.T) {
	e := newEnv(t, 4, simulator.Behavior{})
	if err := e.sim.SetAccountFault(foNumber, provider.MetaAccessToken); err != nil {
		t.Fatal(err)
	}
	r := runFailover(t, e, e.simURL, 200)
	if f := e.sim.Ledger().Failures["meta_190"]; f == 0 {
		t.Fatal("the primary never answered 190")
	}
	// The sender is halted by its own route's answer; the second route's
	// successes never resume it.
	if why, _, halted := r.d.halts.Halted("acme-otp"); !halted || why.Code != "meta_190" {
		t.Fatalf("acme-otp halted %v (%+v), want halted by meta_190", halted, why)
	}
}

// TestPrimaryRefusingConnectionsDeliversThroughFailover: nothing listens
// at the primary's address (connections refused: provably not taken).
func TestPrimaryRefusingConnectionsDeliversThroughFailover(t *testing.T) {
	e := newEnv(t, 4, simulator.Behavior{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	runFailover(t, e, down, 200)
}

// TestPrimaryTimeoutsNeverFailOver: the primary takes every message but
// its answers are lost (timeouts). The breaker opens; records never sent
// to the primary go through the failover route, but no record the
// primary may have taken ever does, even while the breaker is open: they
// wait for the primary, which (deduplicating by key) answers their
// retry without sending again. 0 duplicate sends across both ledgers.
func TestPrimaryTimeoutsNeverFailOver(t *testing.T) {
	e := newEnv(t, 4, simulator.Behavior{TimeoutRate: 1, TimeoutAccepts: true, IdempotencyKeys: true})
	simB, urlB := providertest.StartSimulator(t, simulator.Config{APIKey: simKey, Seed: 8})
	w := e.watch()
	cfg := testConfig("t-failover-timeouts")
	cfg.Senders = failoverRegistry(t)
	cfg.Breaker.ConsecutiveFailures = 3
	cfg.Concurrency = 4
	cfg.OutcomeUnknownPolicy = PolicyResend // a lost answer is retried (the primary deduplicates by key)
	xb, err := xpressbot.New(xpressbot.Options{BaseURL: e.simURL, APIKey: simKey, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(xb.Close)
	ca, err := cloudapi.New(cloudapi.Options{BaseURL: urlB, AccessToken: simKey, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ca.Close)
	r, err := route.New(map[string]route.Target{
		"acme-otp": {Provider: xb, NumberID: foNumber, Failover: &route.Target{Provider: ca, NumberID: foNumber}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.startWith(cfg, r)
	const n = 60
	var ids []string
	for i := 0; i < n; i++ {
		m := notification(fmt.Sprintf("fo-to-%d", i), recipient(i%20), "acme-otp", "your code is 123456")
		ids = append(ids, m.ID)
		e.publish(m)
	}
	// Once the failover route has taken something (the breaker is open),
	// the primary answers again.
	deadline := time.Now().Add(20 * time.Second)
	for simB.Ledger().Accepted == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	b := e.sim.Behavior()
	b.TimeoutRate = 0
	if err := e.sim.SetBehavior(b); err != nil {
		t.Fatal(err)
	}
	got := w.waitTerminal(t, ids, 60*time.Second)

	la, lb := e.sim.Ledger(), simB.Ledger()
	sends, dup, err := simulator.SendsAcross(la, lb)
	if err != nil {
		t.Fatal(err)
	}
	if dup != 0 {
		twice := map[string]int{}
		for id, k := range sends {
			if k > 1 {
				twice[id] = k
			}
		}
		t.Fatalf("%d duplicate sends across both ledgers: %v", dup, twice)
	}
	if la.Accepted == 0 || lb.Accepted == 0 {
		t.Fatalf("primary took %d, failover %d: the scenario needs both", la.Accepted, lb.Accepted)
	}
	onPrimary := map[string]bool{}
	for _, en := range la.Entries {
		onPrimary[en.NotificationID] = true
	}
	st, _, _ := w.snapshot()
	for _, id := range ids {
		if got[id] != contract.StatusAccepted {
			t.Errorf("%s: %s, want accepted", id, got[id])
			continue
		}
		want := contract.RouteFailover
		if onPrimary[id] {
			want = contract.RoutePrimary
		}
		for _, ev := range st[id] {
			if ev.Status == contract.StatusAccepted && ev.Route != want {
				t.Errorf("%s: accepted through %q, want %q", id, ev.Route, want)
			}
		}
	}
	t.Logf("primary took %d (%d answered from its idempotency keys), failover %d", la.Accepted, la.IdempotentReplays, lb.Accepted)
}

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
func runFailover(t *testing.T, e *env, primaryURL string, n int) {
	t.Helper()
	simB, urlB := providertest.StartSimulator(t, simulator.Config{APIKey: simKey, Seed: 8})
	w := e.watch()
	cfg := testConfig("t-failover")
	cfg.Senders = failoverRegistry(t)
	e.startWith(cfg, failoverRouter(t, primaryURL, urlB))
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
}

// TestPrimaryAccountFaultDeliversThroughFailover: the primary answers
// every send with 190 (token refused, provably not taken); the breaker
// opens and every record is delivered through the sender's failover route,
// none twice across both routes' ledgers.
func TestPrimaryAccountFaultDeliversThroughFailover(t *testing.T) {
	e := newEnv(t, 4, simulator.Behavior{})
	if err := e.sim.SetAccountFault(foNumber, provider.MetaAccessToken); err != nil {
		t.Fatal(err)
	}
	runFailover(t, e, e.simURL, 200)
	if f := e.sim.Ledger().Failures["meta_190"]; f == 0 {
		t.Fatal("the primary never answered 190")
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

package route_test

import (
	"context"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/provider/providertest"
	"github.com/wanotify/wanotify/pkg/provider/route"
	"github.com/wanotify/wanotify/pkg/provider/xpressbot"
	"github.com/wanotify/wanotify/pkg/simulator"
)

// Each sender's messages reach the provider from its own number id, with
// its own route's credentials; an unrouted sender is refused, not sent.
func TestRouterSendsFromEachSendersNumber(t *testing.T) {
	simA, urlA := providertest.StartSimulator(t, simulator.Config{APIKey: "key-a", Seed: 1})
	simB, urlB := providertest.StartSimulator(t, simulator.Config{APIKey: "key-b", Seed: 2})
	client := func(url, key string) provider.Provider {
		c, err := xpressbot.New(xpressbot.Options{BaseURL: url, APIKey: key, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	r, err := route.New(map[string]route.Target{
		"acme-otp":    {Provider: client(urlA, "key-a"), NumberID: "111"},
		"globex-main": {Provider: client(urlB, "key-b"), NumberID: "222"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Name() != xpressbot.Name || !r.DeduplicatesByKey() {
		t.Fatalf("name %q, keyed %v", r.Name(), r.DeduplicatesByKey())
	}
	for i, s := range []string{"acme-otp", "globex-main"} {
		m := providertest.TextMessage(i, "hi")
		m.Sender = s
		if _, err := r.Send(context.Background(), m); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	m := providertest.TextMessage(9, "hi")
	m.Sender = "sender-13"
	_, err = r.Send(context.Background(), m)
	if pe := provider.AsError(err); err == nil || pe.Class != provider.Permanent || pe.Code != "unknown_sender" {
		t.Fatalf("unrouted sender: %v", err)
	}
	la, lb := simA.Ledger(), simB.Ledger()
	if len(la.Entries) != 1 || la.Entries[0].Sender != "111" || len(lb.Entries) != 1 || lb.Entries[0].Sender != "222" {
		t.Fatalf("ledgers A %+v B %+v", la.Entries, lb.Entries)
	}
}

// A sender's second route sends from its own number through its own
// client, only when asked; a sender without one is refused, not sent.
func TestRouterSecondRoute(t *testing.T) {
	simA, urlA := providertest.StartSimulator(t, simulator.Config{APIKey: "key-a", Seed: 1})
	simB, urlB := providertest.StartSimulator(t, simulator.Config{APIKey: "key-b", Seed: 2})
	client := func(url, key string) provider.Provider {
		c, err := xpressbot.New(xpressbot.Options{BaseURL: url, APIKey: key, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	a, b := client(urlA, "key-a"), client(urlB, "key-b")
	r, err := route.New(map[string]route.Target{
		"acme-otp":    {Provider: a, NumberID: "111", Failover: &route.Target{Provider: b, NumberID: "999"}},
		"globex-main": {Provider: a, NumberID: "222"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !r.HasFailover("acme-otp") || r.HasFailover("globex-main") || r.HasFailover("nobody") || r.FailoverName("acme-otp") != xpressbot.Name {
		t.Fatal("HasFailover / FailoverName")
	}
	m := providertest.TextMessage(1, "hi")
	m.Sender = "acme-otp"
	if _, err := r.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	m = providertest.TextMessage(2, "hi")
	m.Sender = "acme-otp"
	if _, err := r.SendFailover(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	m.Sender = "globex-main"
	_, err = r.SendFailover(context.Background(), m)
	if pe := provider.AsError(err); err == nil || pe.Code != provider.CodeUnknownSender || !pe.NotAccepted() {
		t.Fatalf("no second route: %v", err)
	}
	la, lb := simA.Ledger(), simB.Ledger()
	if len(la.Entries) != 1 || la.Entries[0].Sender != "111" || len(lb.Entries) != 1 || lb.Entries[0].Sender != "999" {
		t.Fatalf("ledgers A %+v B %+v", la.Entries, lb.Entries)
	}
	// A failover that is the sender's own route is refused.
	if _, err := route.New(map[string]route.Target{"x": {Provider: a, NumberID: "1", Failover: &route.Target{Provider: a, NumberID: "1"}}}); err == nil {
		t.Fatal("a failover to the same route was accepted")
	}
}

package simulator_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/simulator"
)

const adminToken = "sim-admin-token-0123456789abcdef0123456789"

// TestAdminRequiresTheToken: with an admin token, every /admin/ endpoint
// answers 401 without it (or with a wrong one) and works with it, as
// Bearer or X-Admin-Token; sends and /healthz do not need it.
func TestAdminRequiresTheToken(t *testing.T) {
	_, url := newSim(t, func(c *simulator.Config) { c.AdminToken = adminToken })
	c := httpClient(t)
	if a := sendXB(t, c, url, "n1", "pn", "secret body"); a.status != 200 {
		t.Fatalf("send %d", a.status)
	}
	for _, ep := range []struct{ method, path string }{
		{http.MethodGet, "/admin/ledger?entries=1"}, {http.MethodPost, "/admin/reset"},
		{http.MethodGet, "/admin/config"}, {http.MethodPost, "/admin/outage"}, {http.MethodGet, "/admin/outage"},
	} {
		for name, hdr := range map[string]map[string]string{
			"none":  nil,
			"wrong": {"Authorization": "Bearer " + strings.Repeat("x", len(adminToken))},
			"key":   {"X-API-Key": key, "X-Admin-Token": key},
		} {
			a := do(t, c, ep.method, url+ep.path, hdr, nil)
			if a.status != http.StatusUnauthorized {
				t.Errorf("%s %s with %s token: %d, want 401", ep.method, ep.path, name, a.status)
			}
			if strings.Contains(string(a.raw), "secret body") {
				t.Errorf("%s %s with %s token shows a message body", ep.method, ep.path, name)
			}
		}
	}
	a := do(t, c, http.MethodGet, url+"/admin/ledger?entries=1", map[string]string{"Authorization": "Bearer " + adminToken}, nil)
	if a.status != 200 || a.body["accepted"] != 1.0 {
		t.Fatalf("ledger with the token: %d %s", a.status, a.raw)
	}
	if a := do(t, c, http.MethodGet, url+"/admin/config", map[string]string{simulator.AdminTokenHeader: adminToken}, nil); a.status != 200 {
		t.Fatalf("config with X-Admin-Token: %d", a.status)
	}
	if a := do(t, c, http.MethodGet, url+"/healthz", nil, nil); a.status != 200 {
		t.Fatalf("/healthz: %d", a.status)
	}
}

// TestOffLoopbackNeedsAdminTokenAndStrongCredentials: a simulator that
// other hosts can reach is refused without an admin token, with short or
// example credentials; on loopback the development setup still works.
func TestOffLoopbackNeedsAdminTokenAndStrongCredentials(t *testing.T) {
	strong := strings.Repeat("k", 40)
	base := func(mut func(map[string]string)) map[string]string {
		env := map[string]string{
			simulator.EnvAddr: "0.0.0.0:8090", simulator.EnvAPIKey: strong, simulator.EnvAdminToken: adminToken,
			simulator.EnvWebhookURL: "http://webhook:8081/v1/webhooks/whatsapp", simulator.EnvWebhookSecret: strong,
		}
		mut(env)
		return env
	}
	for name, c := range map[string]struct {
		env  map[string]string
		want string
	}{
		"no admin token":      {base(func(e map[string]string) { delete(e, simulator.EnvAdminToken) }), simulator.EnvAdminToken},
		"short admin token":   {base(func(e map[string]string) { e[simulator.EnvAdminToken] = "short" }), simulator.EnvAdminToken},
		"short API key":       {base(func(e map[string]string) { e[simulator.EnvAPIKey] = "short" }), simulator.EnvAPIKey},
		"no API key":          {base(func(e map[string]string) { delete(e, simulator.EnvAPIKey) }), simulator.EnvAPIKey},
		"example API key":     {base(func(e map[string]string) { e[simulator.EnvAPIKey] = "change-me-provider-key" }), simulator.EnvAPIKey},
		"short webhook":       {base(func(e map[string]string) { e[simulator.EnvWebhookSecret] = "short" }), simulator.EnvWebhookSecret},
		"example webhook":     {base(func(e map[string]string) { e[simulator.EnvWebhookSecret] = "change-me-webhook-secret" }), simulator.EnvWebhookSecret},
		"negative ledger max": {base(func(e map[string]string) { e[simulator.EnvLedgerMaxEntries] = "-1" }), simulator.EnvLedgerMaxEntries},
	} {
		_, err := simulator.ConfigFromEnv(func(k string) string { return c.env[k] })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %s", name, err, c.want)
		}
	}
	if _, err := simulator.ConfigFromEnv(func(k string) string { return base(func(map[string]string) {})[k] }); err != nil {
		t.Errorf("strong credentials off loopback: %v", err)
	}
	loop := map[string]string{simulator.EnvAddr: "127.0.0.1:8090", simulator.EnvAPIKey: "dev"}
	if _, err := simulator.ConfigFromEnv(func(k string) string { return loop[k] }); err != nil {
		t.Errorf("development setup on loopback: %v", err)
	}
}

// TestLedgerIsBoundedAndCountsStayExact: past LedgerMaxEntries the
// oldest entries and rejections are dropped, while every count still
// covers all sends.
func TestLedgerIsBoundedAndCountsStayExact(t *testing.T) {
	const limit, sends = 20, 95
	sim, url := newSim(t, func(c *simulator.Config) { c.LedgerMaxEntries = limit })
	c := httpClient(t)
	for i := range sends {
		nid := "n" + string(rune('A'+i%26)) + strings.Repeat("x", i/26)
		if a := sendXB(t, c, url, nid, "pn", "x"); a.status != 200 {
			t.Fatalf("send %d: %d", i, a.status)
		}
	}
	// A duplicate of the very first send, long dropped from the list.
	sendXB(t, c, url, "nA", "pn2", "x")
	b := sim.Behavior()
	b.RateLimit, b.Burst = 1e-9, 1
	if err := sim.SetBehavior(b); err != nil {
		t.Fatal(err)
	}
	accepted, throttled := sends+1, 0
	for range 3 * limit {
		switch a := sendXB(t, c, url, "t", "pn3", "x"); a.status {
		case 429:
			throttled++
		case 200:
			accepted++
		}
	}
	led := sim.Ledger()
	if led.Accepted != accepted {
		t.Fatalf("accepted %d, want %d", led.Accepted, accepted)
	}
	if len(led.Entries) > limit || len(led.Rejections) > limit {
		t.Fatalf("kept %d entries and %d rejections, bound %d", len(led.Entries), len(led.Rejections), limit)
	}
	if led.DroppedEntries != led.Accepted-len(led.Entries) {
		t.Fatalf("dropped %d, accepted %d, kept %d", led.DroppedEntries, led.Accepted, len(led.Entries))
	}
	if led.Duplicates["nA"] != 2 || led.DuplicateSends < 1 {
		t.Fatalf("the duplicate of a dropped entry is not counted: %+v", led.Duplicates)
	}
	if led.Throttled != throttled || led.ThrottledBySender["pn3"] != throttled || led.DroppedRejections != throttled-len(led.Rejections) {
		t.Fatalf("throttled %d (by sender %v, dropped %d, kept %d), want %d", led.Throttled, led.ThrottledBySender,
			led.DroppedRejections, len(led.Rejections), throttled)
	}
	if throttled <= limit {
		t.Fatalf("only %d throttled: the rejection bound was not exercised", throttled)
	}
	if led.MaxPerSecond["pn"] < 1 {
		t.Fatalf("max per second %v", led.MaxPerSecond)
	}
}

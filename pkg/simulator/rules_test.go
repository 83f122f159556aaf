package simulator_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/simulator"
)

func tmplBody(nid, sender, to, name string) map[string]any {
	return map[string]any{
		"phone_number_id": sender, "to": to, "type": "template",
		"template":                 map[string]any{"name": name, "language": "en", "parameters": []string{"x"}},
		"biz_opaque_callback_data": nid, "idempotency_key": "idem-" + nid,
	}
}

func sendTo(t *testing.T, c *http.Client, url string, body map[string]any) answer {
	t.Helper()
	return do(t, c, http.MethodPost, url+simulator.DefaultSendPath, map[string]string{"X-API-Key": key}, body)
}

func textTo(nid, sender, to string) map[string]any {
	b := xbBody(nid, sender, "hello")
	b["to"] = to
	return b
}

// wantCode checks an answer's HTTP status and Meta code (0: success).
func wantCode(t *testing.T, what string, a answer, status, code int) {
	t.Helper()
	if a.status != status || a.errorCode() != code {
		t.Fatalf("%s: HTTP %d code %d (%s), want HTTP %d code %d", what, a.status, a.errorCode(), a.raw, status, code)
	}
}

func TestPairRate(t *testing.T) {
	const alice, bob = "+447700900001", "+447700900002"
	sim, url := newSim(t, func(c *simulator.Config) { c.Behavior.PairRate, c.Behavior.PairBurst = 1.0/6, 2 })
	c := httpClient(t)
	wantCode(t, "first to alice", sendTo(t, c, url, textTo("p1", "snd", alice)), 200, 0)
	wantCode(t, "second to alice (burst)", sendTo(t, c, url, textTo("p2", "snd", alice)), 200, 0)
	a := sendTo(t, c, url, textTo("p3", "snd", alice))
	wantCode(t, "third to alice", a, http.StatusTooManyRequests, provider.MetaPairRate)
	if ra, _ := strconv.Atoi(a.header.Get("Retry-After")); ra < 1 || ra > 6 {
		t.Fatalf("Retry-After = %q, want 1..6 s", a.header.Get("Retry-After"))
	}
	// Other recipients of the same sender, and other senders to alice,
	// are not held back.
	wantCode(t, "bob", sendTo(t, c, url, textTo("p4", "snd", bob)), 200, 0)
	wantCode(t, "alice from another sender", sendTo(t, c, url, textTo("p5", "other", alice)), 200, 0)
	led := sim.Ledger()
	if led.Accepted != 4 || led.Failures[fmtCode(provider.MetaPairRate)] != 1 {
		t.Fatalf("ledger accepted %d, failures %v: want 4 and one 131056", led.Accepted, led.Failures)
	}
	// Reset gives every pair its allowance back.
	sim.Reset()
	wantCode(t, "alice after reset", sendTo(t, c, url, textTo("p6", "snd", alice)), 200, 0)
}

func TestPairRateOffByDefault(t *testing.T) {
	_, url := newSim(t, nil)
	c := httpClient(t)
	for i := range 5 {
		wantCode(t, "send "+strconv.Itoa(i), sendTo(t, c, url, textTo("d"+strconv.Itoa(i), "snd", "+447700900001")), 200, 0)
	}
}

func TestMarketingCapAndOptOut(t *testing.T) {
	const capped, stopped, fine = "+447700900011", "+447700900012", "+447700900013"
	_, url := newSim(t, func(c *simulator.Config) {
		c.Behavior.MarketingTemplates = []string{"promo"}
		c.Behavior.MarketingCapped = []string{capped}
		c.Behavior.OptedOut = []string{stopped}
	})
	c := httpClient(t)
	wantCode(t, "marketing to a capped recipient", sendTo(t, c, url, tmplBody("m1", "snd", capped, "promo")), 400, provider.MetaEcosystem)
	wantCode(t, "marketing to an opted-out recipient", sendTo(t, c, url, tmplBody("m2", "snd", stopped, "promo")), 400, provider.MetaUserStoppedMkt)
	wantCode(t, "marketing to anyone else", sendTo(t, c, url, tmplBody("m3", "snd", fine, "promo")), 200, 0)
	// Only marketing is capped: a utility template or a text goes through.
	wantCode(t, "utility to the capped recipient", sendTo(t, c, url, tmplBody("m4", "snd", capped, "otp")), 200, 0)
	wantCode(t, "utility to the opted-out recipient", sendTo(t, c, url, tmplBody("m5", "snd", stopped, "otp")), 200, 0)
	wantCode(t, "text to the capped recipient", sendTo(t, c, url, textTo("m6", "snd", capped)), 200, 0)
}

func TestTemplateErrors(t *testing.T) {
	_, url := newSim(t, func(c *simulator.Config) {
		c.Behavior.TemplateErrors = map[string]int{"paused": provider.MetaTemplatePaused, "gone": provider.MetaTemplateMissing,
			"off": provider.MetaTemplateDisabled, "params": provider.MetaTemplateParams}
	})
	c := httpClient(t)
	for name, code := range map[string]int{"paused": 132015, "gone": 132001, "off": 132016, "params": 132000} {
		a := sendTo(t, c, url, tmplBody("t-"+name, "snd", "+447700900021", name))
		wantCode(t, name, a, 400, code)
		if !strings.Contains(string(a.raw), "#"+strconv.Itoa(code)) {
			t.Fatalf("%s: answer %s does not carry Meta's wording", name, a.raw)
		}
	}
	wantCode(t, "another template", sendTo(t, c, url, tmplBody("t-ok", "snd", "+447700900021", "otp")), 200, 0)

	// Switched at runtime through /admin/config, like every rule.
	if a := do(t, c, http.MethodPost, url+"/admin/config", nil, map[string]any{"template_errors": map[string]int{"otp": 132016}}); a.status != 200 {
		t.Fatalf("POST /admin/config: %d %s", a.status, a.raw)
	}
	wantCode(t, "otp disabled at runtime", sendTo(t, c, url, tmplBody("t-off", "snd", "+447700900021", "otp")), 400, provider.MetaTemplateDisabled)
	wantCode(t, "paused is still configured", sendTo(t, c, url, tmplBody("t-p2", "snd", "+447700900021", "paused")), 400, provider.MetaTemplatePaused)
	if a := do(t, c, http.MethodPost, url+"/admin/config", nil, map[string]any{"pair_rate": -1}); a.status != http.StatusBadRequest || !strings.Contains(string(a.raw), simulator.EnvPairRate) {
		t.Fatalf("a negative pair rate: %d %s, want 400 naming %s", a.status, a.raw, simulator.EnvPairRate)
	}
}

func TestAccountFaults(t *testing.T) {
	sim, url := newSim(t, func(c *simulator.Config) {
		c.Behavior.AccountFaults = map[string]int{"snd-a": provider.MetaAccessToken}
		c.Behavior.RateLimit, c.Behavior.Burst = 1, 1
	})
	c := httpClient(t)
	// A faulty account answers before the throughput limit, and every
	// time: nothing of it is counted.
	for i := range 3 {
		wantCode(t, "token fault "+strconv.Itoa(i), sendTo(t, c, url, textTo("a"+strconv.Itoa(i), "snd-a", "+447700900031")), 401, provider.MetaAccessToken)
	}
	wantCode(t, "another sender", sendTo(t, c, url, textTo("b1", "snd-b", "+447700900031")), 200, 0)

	// Switched mid-run through the admin endpoint.
	admin := func(body map[string]any) answer {
		return do(t, c, http.MethodPost, url+"/admin/account-fault", nil, body)
	}
	if a := admin(map[string]any{"sender": "snd-b", "code": provider.MetaPolicyBlock}); a.status != 200 || a.body["snd-b"] != float64(368) {
		t.Fatalf("POST /admin/account-fault: %d %s", a.status, a.raw)
	}
	wantCode(t, "policy block", sendTo(t, c, url, textTo("b2", "snd-b", "+447700900031")), 400, provider.MetaPolicyBlock)
	if a := admin(map[string]any{"sender": "snd-a", "code": 0}); a.status != 200 || a.body["snd-a"] != nil {
		t.Fatalf("clearing snd-a: %d %s", a.status, a.raw)
	}
	wantCode(t, "snd-a fixed", sendTo(t, c, url, textTo("a9", "snd-a", "+447700900031")), 200, 0)

	if err := sim.SetAccountFault("snd-a", provider.MetaPayment); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "payment", sendTo(t, c, url, textTo("a10", "snd-a", "+447700900031")), 400, provider.MetaPayment)

	for _, bad := range []map[string]any{{"code": 190}, {"sender": "x", "code": -1}, {"sender": "x", "cod": 1}} {
		if a := admin(bad); a.status != http.StatusBadRequest {
			t.Fatalf("POST %v: %d, want 400", bad, a.status)
		}
	}
	if a := do(t, c, http.MethodGet, url+"/admin/account-fault", nil, nil); a.status != 200 || a.body["snd-a"] != float64(131042) || a.body["snd-b"] != float64(368) {
		t.Fatalf("GET /admin/account-fault: %s", a.raw)
	}
}

// TestThroughputLimitAnswer: over the sender's limit Meta answers 429 with
// 130429; the rules come after it, so an over-limit send is refused as
// throughput whatever its recipient.
func TestThroughputLimitAnswer(t *testing.T) {
	_, url := newSim(t, func(c *simulator.Config) {
		c.Behavior.RateLimit, c.Behavior.Burst = 1, 1
		c.Behavior.PairRate = 1.0 / 6
	})
	c := httpClient(t)
	wantCode(t, "first", sendTo(t, c, url, textTo("r1", "snd", "+447700900041")), 200, 0)
	wantCode(t, "second", sendTo(t, c, url, textTo("r2", "snd", "+447700900041")), http.StatusTooManyRequests, provider.MetaThroughput)
}

func TestRulesFromEnv(t *testing.T) {
	env := map[string]string{
		simulator.EnvPairRate:           "0.1666",
		simulator.EnvPairBurst:          "3",
		simulator.EnvMarketingTemplates: "promo, sale",
		simulator.EnvMarketingCapped:    "+447700900051",
		simulator.EnvOptedOut:           "+447700900052,+447700900053",
		simulator.EnvTemplateErrors:     "paused=132015,gone=132001",
		simulator.EnvAccountFaults:      "snd-a=190",
	}
	cfg, err := simulator.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Behavior.Rules
	if r.PairRate != 0.1666 || r.PairBurst != 3 || len(r.MarketingTemplates) != 2 || r.MarketingTemplates[1] != "sale" ||
		len(r.MarketingCapped) != 1 || len(r.OptedOut) != 2 || r.TemplateErrors["paused"] != 132015 || r.AccountFaults["snd-a"] != 190 {
		t.Fatalf("rules from env = %+v", r)
	}
	def, err := simulator.ConfigFromEnv(func(string) string { return "" })
	if err != nil || def.Behavior.PairRate != 0 || def.Behavior.AccountFaults != nil || def.Behavior.MarketingTemplates != nil {
		t.Fatalf("default rules = %+v, %v: every rule must be off", def.Behavior.Rules, err)
	}
	for envName, v := range map[string]string{
		simulator.EnvPairRate:       "-1",
		simulator.EnvPairBurst:      "x",
		simulator.EnvTemplateErrors: "paused",
		simulator.EnvAccountFaults:  "snd-a=token",
	} {
		_, err := simulator.ConfigFromEnv(func(k string) string {
			if k == envName {
				return v
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), envName) {
			t.Errorf("%s=%q: err %v, want one naming the variable", envName, v, err)
		}
	}
}

func fmtCode(c int) string { return "meta_" + strconv.Itoa(c) }

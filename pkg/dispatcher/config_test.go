package dispatcher

import (
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/config"
)

func envOf(m map[string]string) *config.Env {
	return config.New(func(k string) (string, bool) { v, ok := m[k]; return v, ok }, nil)
}

func TestLoadReadsTheEnvironment(t *testing.T) {
	e := envOf(map[string]string{
		"WANOTIFY_DISPATCHER_RATE": "30",
		"WANOTIFY_SENDERS": `{"senders":[{"name":"vip","tenants":["acme"],"number_id":"1","rate":10},` +
			`{"name":"bulk","tenants":["acme"],"number_id":"2","rate":2.5}],"tenants":[{"name":"acme","default_sender":"vip"}]}`,
		"WANOTIFY_DISPATCHER_RETRY_DELAYS":           "1s,2s,3s",
		"WANOTIFY_DISPATCHER_OUTCOME_UNKNOWN_POLICY": "resend",
		"WANOTIFY_DISPATCHER_TRANSACTIONAL_ID":       "disp-0",
	})
	c := Load(e)
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if r := c.Senders.Rates(); c.Limits.Rate != 30 || r["vip"] != 10 || r["bulk"] != 2.5 {
		t.Fatalf("limits %+v, sender rates %v", c.Limits, r)
	}
	if c.RetryDelays[2] != 3*time.Second || c.OutcomeUnknownPolicy != PolicyResend || c.TransactionalID != "disp-0" {
		t.Fatalf("config %+v", c)
	}
	d := DefaultConfig()
	if d.Limits.Rate != 45 || d.RetryDelays[0] != 5*time.Second || d.RetryDelays[2] != 45*time.Second ||
		d.OutcomeUnknownPolicy != PolicyVerify || d.Unknown.Window != 45*time.Second || d.DedupeWindow != 24*time.Hour || d.Group != "wanotify-dispatcher" {
		t.Fatalf("defaults %+v", d)
	}
}

func TestValidateNamesTheVariable(t *testing.T) {
	cases := map[string]func(*Config){
		"WANOTIFY_DISPATCHER_RETRY_DELAYS":           func(c *Config) { c.RetryDelays = c.RetryDelays[:2] },
		"WANOTIFY_DISPATCHER_OUTCOME_UNKNOWN_POLICY": func(c *Config) { c.OutcomeUnknownPolicy = "maybe" },
		"WANOTIFY_DISPATCHER_RATE":                   func(c *Config) { c.Limits.Rate = 0 },
		"WANOTIFY_DISPATCHER_CONCURRENCY":            func(c *Config) { c.Concurrency = 0 },
		"WANOTIFY_DISPATCHER_BREAKER_FAILURE_RATIO":  func(c *Config) { c.Breaker.FailureRatio = 2 },
		"WANOTIFY_DISPATCHER_TRANSACTIONAL_ID":       func(c *Config) { c.TransactionalID = "" },
		"WANOTIFY_DISPATCHER_PAIR_INTERVAL":          func(c *Config) { c.PairRate.Interval = -time.Second },
		"WANOTIFY_DISPATCHER_PAIR_BURST":             func(c *Config) { c.PairRate.Burst = 0 },
	}
	for name, mutate := range cases {
		c := DefaultConfig()
		mutate(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v does not name it", name, err)
		}
	}
}

func TestBadValuesAreReported(t *testing.T) {
	e := envOf(map[string]string{
		"WANOTIFY_DISPATCHER_SENDER_RATES": "vip=10",
		"WANOTIFY_DISPATCHER_RETRY_DELAYS": "5s,soon,45s",
		"WANOTIFY_SENDERS":                 `{"senders":[{"name":"vip","tenants":["acme"],"number_id":"1","rate":-1}]}`,
	})
	Load(e)
	err := e.Err()
	for _, want := range []string{"WANOTIFY_DISPATCHER_SENDER_RATES", "WANOTIFY_SENDERS_FILE", "WANOTIFY_DISPATCHER_RETRY_DELAYS",
		"WANOTIFY_SENDERS: senders[0] (vip).rate", "senders[0] (vip).tenants[0]: tenant \"acme\" is not listed"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestProviderConfig(t *testing.T) {
	pc := LoadProvider(envOf(map[string]string{"WANOTIFY_XPRESSBOT_API_KEY": "k"}))
	if pc.Kind != ProviderXpressbot || pc.Xpressbot.BaseURL != "http://127.0.0.1:8090" {
		t.Fatalf("%+v", pc)
	}
	if err := pc.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := LoadProvider(envOf(nil)).Validate(); err == nil || !strings.Contains(err.Error(), "WANOTIFY_XPRESSBOT_API_KEY") {
		t.Fatalf("missing key: %v", err)
	}
	if err := LoadProvider(envOf(map[string]string{"WANOTIFY_PROVIDER": "smoke"})).Validate(); err == nil || !strings.Contains(err.Error(), "WANOTIFY_PROVIDER") {
		t.Fatalf("bad kind: %v", err)
	}
	pc = LoadProvider(envOf(map[string]string{"WANOTIFY_PROVIDER": "cloudapi", "WANOTIFY_CLOUDAPI_ACCESS_TOKEN": "t"}))
	p, closeFn, err := pc.New(nil)
	if err != nil || p.Name() == "" {
		t.Fatalf("cloudapi: %v", err)
	}
	closeFn()
}

func TestTierFollowsAttemptAndRetryAfter(t *testing.T) {
	d := &Dispatcher{cfg: DefaultConfig()} // 5s, 15s, 45s
	cases := []struct {
		attempt int
		wait    time.Duration
		want    int
	}{
		{1, 5 * time.Second, 0}, {2, 15 * time.Second, 1}, {3, 45 * time.Second, 2},
		{1, 6 * time.Second, 1},   // Retry-After 6s: the 15s tier
		{1, 20 * time.Second, 2},  // the 45s tier
		{1, 120 * time.Second, 2}, // longer than every tier: the last
		{3, time.Second, 2},       // never an earlier tier than the attempt's
	}
	for _, c := range cases {
		if got := d.tierFor(c.attempt, c.wait); got != c.want {
			t.Errorf("tierFor(%d, %s) = %d, want %d", c.attempt, c.wait, got, c.want)
		}
	}
}

func TestProviderPoolFollowsConcurrencyUnlessSet(t *testing.T) {
	pc := LoadProvider(envOf(map[string]string{}))
	pc.SizePool(512)
	if pc.Xpressbot.MaxIdleConns != 512 || pc.CloudAPI.MaxIdleConns != 512 {
		t.Fatalf("pool not sized to the calls in flight: xpressbot %d, cloudapi %d", pc.Xpressbot.MaxIdleConns, pc.CloudAPI.MaxIdleConns)
	}
	pc = LoadProvider(envOf(map[string]string{"WANOTIFY_XPRESSBOT_MAX_IDLE_CONNS": "64"}))
	pc.SizePool(512)
	if pc.Xpressbot.MaxIdleConns != 64 {
		t.Fatalf("a configured pool was overridden: %d", pc.Xpressbot.MaxIdleConns)
	}
}

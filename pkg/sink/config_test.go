package sink

import (
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/wanotify/wanotify/pkg/config"
)

func TestLoadAndValidate(t *testing.T) {
	env := map[string]string{
		"WANOTIFY_SINK_GROUP":                 "g1",
		"WANOTIFY_SINK_BATCH_ROWS":            "2000",
		"WANOTIFY_SINK_BATCH_INTERVAL":        "250ms",
		"WANOTIFY_SINK_RETRY_MAX_BACKOFF":     "5s",
		"WANOTIFY_SINK_RETENTION_DAYS":        "120",
		"WANOTIFY_SINK_ERROR_RETENTION_DAYS":  "0",
		"WANOTIFY_SINK_STORE_CONTENT_TENANTS": "acme, globex",
		"WANOTIFY_PRIVACY_HASH_KEY":           "k3y",
		"WANOTIFY_SINK_INSERT_TIMEOUT":        "3s",
	}
	e := config.New(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	c := Load(e)
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	if c.Group != "g1" || c.BatchRows != 2000 || c.BatchInterval != 250*time.Millisecond || c.RetryMaxBackoff != 5*time.Second || c.RetentionDays != 120 ||
		c.ErrorRetentionDays != KeepForever || strings.Join(c.StoreContentTenants, "|") != "acme|globex" || string(c.ContentHashKey) != "k3y" ||
		c.InsertTimeout != 3*time.Second {
		t.Errorf("loaded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("valid config refused: %v", err)
	}

	d := Load(config.New(func(string) (string, bool) { return "", false }, nil)).withDefaults()
	if d.Group != DefaultGroup || d.BatchRows != DefaultBatchRows || d.BatchInterval != DefaultBatchInterval ||
		d.RetryMaxBackoff != DefaultRetryMaxBackoff || d.RetentionDays != DefaultRetentionDays || d.ErrorRetentionDays != DefaultErrorRetentionDays ||
		len(d.StoreContentTenants) != 0 || len(d.ContentHashKey) != 0 || d.RequestedTopic != "notifications.requested" ||
		d.InsertTimeout != 5*time.Second {
		t.Errorf("defaults %+v", d)
	}
}

func TestValidateNamesTheVariable(t *testing.T) {
	cases := []struct {
		c    Config
		want string
	}{
		{Config{BatchRows: -1}, "WANOTIFY_SINK_BATCH_ROWS"},
		{Config{BatchInterval: time.Microsecond}, "WANOTIFY_SINK_BATCH_INTERVAL"},
		{Config{RetryMaxBackoff: time.Millisecond, RetryInitialBackoff: time.Second}, "WANOTIFY_SINK_RETRY_MAX_BACKOFF"},
		{Config{RetentionDays: -3}, "WANOTIFY_SINK_RETENTION_DAYS"},
		{Config{ErrorRetentionDays: 40000}, "WANOTIFY_SINK_ERROR_RETENTION_DAYS"},
		{Config{StoreContentTenants: []string{"Acme Corp"}}, "WANOTIFY_SINK_STORE_CONTENT_TENANTS"},
		{Config{InsertTimeout: time.Millisecond}, "WANOTIFY_SINK_INSERT_TIMEOUT"},
		{Config{StatusTopic: "notifications.requested"}, "configured twice"},
	}
	for _, c := range cases {
		err := c.c.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want mention of %s", c.c, err, c.want)
		}
	}
}

func TestNewRefusesMissingDatabase(t *testing.T) {
	if _, err := New(Config{}, &clickhouse.Options{Addr: []string{"127.0.0.1:9000"}}, nil, nil); err == nil || !strings.Contains(err.Error(), "WANOTIFY_CLICKHOUSE_DATABASE") {
		t.Errorf("New without database: %v", err)
	}
	if _, err := New(Config{}, nil, nil, nil); err == nil {
		t.Error("New without ClickHouse options succeeded")
	}
}

func TestLoadRefusesZeroFromTheEnvironment(t *testing.T) {
	for name, v := range map[string]string{"WANOTIFY_SINK_BATCH_ROWS": "0", "WANOTIFY_SINK_BATCH_INTERVAL": "0s",
		"WANOTIFY_SINK_RETRY_MAX_BACKOFF": "-1s", "WANOTIFY_SINK_GROUP": "", "WANOTIFY_SINK_RETENTION_DAYS": "-1",
		"WANOTIFY_SINK_ERROR_RETENTION_DAYS": "-5", "WANOTIFY_SINK_INSERT_TIMEOUT": "0s"} {
		e := config.New(func(k string) (string, bool) {
			if k == name {
				return v, true
			}
			return "", false
		}, nil)
		Load(e)
		if err := e.Err(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: %v, want an error naming it", name, v, err)
		}
	}
}

func TestConfigureReadsEveryVariable(t *testing.T) {
	env := map[string]string{"WANOTIFY_SINK_BATCH_ROWS": "abc"}
	e := config.New(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	_, _ = Configure(e)
	if err := e.Err(); err == nil || !strings.Contains(err.Error(), "WANOTIFY_SINK_BATCH_ROWS") {
		t.Errorf("bad WANOTIFY_SINK_BATCH_ROWS not reported: %v", err)
	}
	names := map[string]bool{}
	for _, v := range config.Registered() {
		names[v.Name] = true
	}
	for _, n := range []string{"WANOTIFY_SINK_GROUP", "WANOTIFY_SINK_BATCH_ROWS", "WANOTIFY_SINK_BATCH_INTERVAL",
		"WANOTIFY_SINK_RETRY_MAX_BACKOFF", "WANOTIFY_SINK_RETENTION_DAYS", "WANOTIFY_SINK_ERROR_RETENTION_DAYS",
		"WANOTIFY_SINK_STORE_CONTENT_TENANTS", "WANOTIFY_PRIVACY_HASH_KEY", "WANOTIFY_KAFKA_BROKERS", "WANOTIFY_CLICKHOUSE_ADDR"} {
		if !names[n] {
			t.Errorf("%s is not registered", n)
		}
	}
}

func TestEraseAPIConfig(t *testing.T) {
	load := func(env map[string]string) (EraseAPIConfig, error) {
		e := config.New(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
		c := LoadEraseAPI(e, nil)
		if err := e.Err(); err != nil {
			return c, err
		}
		return c, c.Validate()
	}
	if c, err := load(nil); err != nil || c.Addr != "" {
		t.Errorf("default: %+v %v, want off", c, err)
	}
	for env, want := range map[string]string{
		"WANOTIFY_SINK_ERASE_ADDR=127.0.0.1:9470":                "WANOTIFY_SINK_ERASE_TOKENS",
		"WANOTIFY_SINK_ERASE_ADDR=nonsense":                      "WANOTIFY_SINK_ERASE_ADDR",
		"WANOTIFY_SINK_ERASE_TOKENS=dpo:abc":                     "WANOTIFY_SINK_ERASE_TOKENS",
		"WANOTIFY_SINK_ERASE_TOKENS=" + strings.Repeat("ab", 32): "WANOTIFY_SINK_ERASE_TOKENS",
	} {
		k, v, _ := strings.Cut(env, "=")
		if _, err := load(map[string]string{k: v, "WANOTIFY_SINK_ERASE_TOKENS_UNUSED": ""}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming %s", env, err, want)
		}
	}
	c, err := load(map[string]string{"WANOTIFY_SINK_ERASE_ADDR": "127.0.0.1:9470", "WANOTIFY_SINK_ERASE_TOKENS": "dpo:" + strings.Repeat("ab", 32)})
	if err != nil || len(c.Tokens) != 1 || c.Tokens[0].Name != "dpo" {
		t.Errorf("valid: %+v %v", c, err)
	}
}

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
		"WANOTIFY_SINK_GROUP":             "g1",
		"WANOTIFY_SINK_BATCH_ROWS":        "2000",
		"WANOTIFY_SINK_BATCH_INTERVAL":    "250ms",
		"WANOTIFY_SINK_RETRY_MAX_BACKOFF": "5s",
		"WANOTIFY_SINK_RETENTION_DAYS":    "90",
		"WANOTIFY_SINK_INSERT_TIMEOUT":    "3s",
	}
	e := config.New(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	c := Load(e)
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	if c.Group != "g1" || c.BatchRows != 2000 || c.BatchInterval != 250*time.Millisecond || c.RetryMaxBackoff != 5*time.Second || c.RetentionDays != 90 ||
		c.InsertTimeout != 3*time.Second {
		t.Errorf("loaded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("valid config refused: %v", err)
	}

	d := Load(config.New(func(string) (string, bool) { return "", false }, nil)).withDefaults()
	if d.Group != DefaultGroup || d.BatchRows != DefaultBatchRows || d.BatchInterval != DefaultBatchInterval ||
		d.RetryMaxBackoff != DefaultRetryMaxBackoff || d.RetentionDays != 0 || d.RequestedTopic != "notifications.requested" ||
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
		"WANOTIFY_SINK_RETRY_MAX_BACKOFF": "-1s", "WANOTIFY_SINK_GROUP": "", "WANOTIFY_SINK_INSERT_TIMEOUT": "0s"} {
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
		"WANOTIFY_SINK_RETRY_MAX_BACKOFF", "WANOTIFY_SINK_RETENTION_DAYS", "WANOTIFY_KAFKA_BROKERS", "WANOTIFY_CLICKHOUSE_ADDR"} {
		if !names[n] {
			t.Errorf("%s is not registered", n)
		}
	}
}

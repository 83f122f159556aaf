package secretcheck_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/chconf"
	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/ingest"
	"github.com/wanotify/wanotify/pkg/kafkaconf"
	"github.com/wanotify/wanotify/pkg/provider/xpressbot"
	"github.com/wanotify/wanotify/pkg/secretcheck"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/webhook"
)

// exampleEnv reads deploy/compose/example.env's assignments.
func exampleEnv(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(testinfra.RepoRoot(), "deploy", "compose", "example.env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			out[k] = v
		}
	}
	return out
}

// TestServicesRefuseTheExampleValues: a deployment that copied
// deploy/compose/example.env without replacing its secrets does not
// start; each service names the variable.
func TestServicesRefuseTheExampleValues(t *testing.T) {
	ex := exampleEnv(t)
	secrets := []string{"WANOTIFY_INGEST_API_KEYS", "WANOTIFY_XPRESSBOT_API_KEY", "WANOTIFY_WEBHOOK_SECRET", "WANOTIFY_CLICKHOUSE_PASSWORD",
		"CLICKHOUSE_READER_PASSWORD"}
	for _, name := range secrets {
		if ex[name] == "" {
			t.Errorf("example.env sets no %s: the check below would pass vacuously", name)
		}
	}
	with := func(vars map[string]string) *config.Env {
		return config.New(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, nil)
	}
	base := map[string]string{"WANOTIFY_KAFKA_BROKERS": "kafka:9092"}
	merge := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	checks := map[string]func() error{
		"ingest API keys": func() error {
			return ingest.Load(with(merge(map[string]string{"WANOTIFY_INGEST_API_KEYS": ex["WANOTIFY_INGEST_API_KEYS"], "WANOTIFY_INGEST_STATUS_READS": "false"}))).Validate()
		},
		"webhook secret": func() error {
			return webhook.Load(with(map[string]string{"WANOTIFY_WEBHOOK_SECRET": ex["WANOTIFY_WEBHOOK_SECRET"]})).Validate()
		},
		"provider key": func() error {
			return xpressbot.Load(with(map[string]string{"WANOTIFY_XPRESSBOT_API_KEY": ex["WANOTIFY_XPRESSBOT_API_KEY"]})).Validate()
		},
		"ClickHouse password": func() error {
			return chconf.Load(with(map[string]string{"WANOTIFY_CLICKHOUSE_PASSWORD": ex["WANOTIFY_CLICKHOUSE_PASSWORD"]})).Validate()
		},
		"ClickHouse reader password": func() error {
			return chconf.Load(with(map[string]string{"WANOTIFY_CLICKHOUSE_PASSWORD": ex["CLICKHOUSE_READER_PASSWORD"]})).Validate()
		},
		"Kafka SASL password": func() error {
			return kafkaconf.Load(with(merge(map[string]string{"WANOTIFY_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
				"WANOTIFY_KAFKA_SASL_USERNAME": "wanotify-ingest", "WANOTIFY_KAFKA_SASL_PASSWORD": "change-me-kafka-password"})), "x").Validate()
		},
	}
	for name, check := range checks {
		err := check()
		if err == nil || !strings.Contains(err.Error(), "example") {
			t.Errorf("%s: the example value is accepted (%v)", name, err)
		}
	}
	for name, v := range ex {
		if strings.Contains(name, "PASSWORD") || strings.Contains(name, "SECRET") || strings.HasSuffix(name, "_KEY") || strings.HasSuffix(name, "_KEYS") || strings.HasSuffix(name, "_TOKEN") {
			if v != "" && !secretcheck.IsExample(v) && !secretcheck.IsExample(v[strings.Index(v, ":")+1:]) {
				t.Errorf("example.env's %s is not recognised as an example value", name)
			}
		}
	}
}

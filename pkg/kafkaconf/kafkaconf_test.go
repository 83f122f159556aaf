package kafkaconf

import (
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/config"
)

func load(vars map[string]string) (Config, *config.Env) {
	e := config.New(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, nil)
	return Load(e, "test"), e
}

func plainSASL(brokers string, extra ...string) map[string]string {
	m := map[string]string{
		"WANOTIFY_KAFKA_BROKERS":        brokers,
		"WANOTIFY_KAFKA_SASL_MECHANISM": "plain",
		"WANOTIFY_KAFKA_SASL_USERNAME":  "wanotify",
		"WANOTIFY_KAFKA_SASL_PASSWORD":  "s3cret",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

func warned(e *config.Env, name string) bool {
	for _, w := range e.Warnings() {
		if w.Name == name {
			return true
		}
	}
	return false
}

// SASL PLAIN sends the password as it is: without TLS to a remote broker
// it is refused unless WANOTIFY_KAFKA_ALLOW_INSECURE_SASL says so, and
// then it is a start warning.
func TestSASLPlainWithoutTLSIsRefused(t *testing.T) {
	c, e := load(plainSASL("kafka-0.example:9092,kafka-1.example:9092"))
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "WANOTIFY_KAFKA_SASL_MECHANISM") || !strings.Contains(err.Error(), EnvAllowInsecureSASL) {
		t.Fatalf("PLAIN without TLS: Validate = %v, want a refusal naming the mechanism and %s", err, EnvAllowInsecureSASL)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatal("the error shows the password")
	}
	if _, err := c.Opts(); err == nil {
		t.Fatal("Opts built a client configuration Validate refuses")
	}
	if !warned(e, EnvAllowInsecureSASL) {
		t.Error("no start warning recorded")
	}

	c, e = load(plainSASL("kafka-0.example:9092", EnvAllowInsecureSASL, "true"))
	if err := c.Validate(); err != nil {
		t.Fatalf("explicitly allowed: %v", err)
	}
	if !warned(e, EnvAllowInsecureSASL) {
		t.Error("allowed PLAIN without TLS: no start warning")
	}

	for name, vars := range map[string]map[string]string{
		"with TLS":    plainSASL("kafka-0.example:9092", "WANOTIFY_KAFKA_TLS", "true"),
		"on loopback": plainSASL("127.0.0.1:9092,localhost:9093,[::1]:9094"),
		"SCRAM without TLS": {"WANOTIFY_KAFKA_BROKERS": "kafka-0.example:9092", "WANOTIFY_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
			"WANOTIFY_KAFKA_SASL_USERNAME": "u", "WANOTIFY_KAFKA_SASL_PASSWORD": "p"},
	} {
		c, e := load(vars)
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if len(e.Warnings()) != 0 {
			t.Errorf("%s: warnings %v", name, e.Warnings())
		}
	}
}

func TestUnverifiedTLSIsAStartWarning(t *testing.T) {
	c, e := load(map[string]string{"WANOTIFY_KAFKA_TLS": "true", "WANOTIFY_KAFKA_TLS_INSECURE_SKIP_VERIFY": "true"})
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !warned(e, "WANOTIFY_KAFKA_TLS_INSECURE_SKIP_VERIFY") {
		t.Fatalf("warnings %v, want one about WANOTIFY_KAFKA_TLS_INSECURE_SKIP_VERIFY", e.Warnings())
	}
	if _, e := load(map[string]string{"WANOTIFY_KAFKA_TLS": "true"}); len(e.Warnings()) != 0 {
		t.Errorf("verified TLS: warnings %v", e.Warnings())
	}
}

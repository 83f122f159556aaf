package ingest

import (
	"errors"
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/config"
)

func errorsJoin(errs ...error) error { return errors.Join(errs...) }

func loadWith(env map[string]string) (Config, error) {
	e := config.New(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	c := Load(e)
	return c, errors.Join(e.Err(), c.Validate())
}

func TestDefaultsRunLocallyWithTheDevKey(t *testing.T) {
	c, err := loadWith(nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKeys(c.APIKeys)
	if err != nil {
		t.Fatal(err)
	}
	if tenant, ok := k.Tenant(DevAPIKey); !ok || tenant != "demo" {
		t.Fatalf("dev key gives %q, %v", tenant, ok)
	}
	if c.Addr != "127.0.0.1:8080" || c.MaxBody != 64<<10 || c.MaxBatchBody != 2<<20 || c.ProduceTimeout.Seconds() != 5 {
		t.Fatalf("defaults %+v", c)
	}
}

func TestTheDevKeyIsRefusedOffLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8080", ":8080", "10.1.2.3:8080"} {
		_, err := loadWith(map[string]string{"WANOTIFY_INGEST_ADDR": addr})
		if err == nil || !strings.Contains(err.Error(), "WANOTIFY_INGEST_API_KEYS") {
			t.Fatalf("%s: err = %v", addr, err)
		}
	}
	if _, err := loadWith(map[string]string{"WANOTIFY_INGEST_ADDR": "0.0.0.0:8080", "WANOTIFY_INGEST_API_KEYS": "acme:" + HashKey("k")}); err != nil {
		t.Fatal(err)
	}
	if _, err := loadWith(map[string]string{"WANOTIFY_INGEST_ADDR": "[::1]:8080"}); err != nil {
		t.Fatal(err)
	}
}

func TestKeyConfigurationErrorsNameTheEntryNotTheSecret(t *testing.T) {
	for _, keys := range []string{
		"acme",
		"acme:abc",
		"Acme:" + HashKey("k"),
		"acme:" + HashKey("k") + ",globex:" + HashKey("k"),
		"acme:my-plain-secret-key",
		"",
	} {
		_, err := loadWith(map[string]string{"WANOTIFY_INGEST_API_KEYS": keys})
		if err == nil {
			t.Fatalf("%q accepted", keys)
		}
		if !strings.Contains(err.Error(), "WANOTIFY_INGEST_API_KEYS") {
			t.Fatalf("%q: error does not name the variable: %v", keys, err)
		}
		if strings.Contains(err.Error(), "my-plain-secret-key") {
			t.Fatalf("error echoes the value: %v", err)
		}
	}
}

func TestOtherSettingsAreValidated(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"WANOTIFY_INGEST_ADDR":            {"WANOTIFY_INGEST_ADDR": "nohost"},
		"WANOTIFY_INGEST_MAX_BODY":        {"WANOTIFY_INGEST_MAX_BODY": "10"},
		"WANOTIFY_INGEST_MAX_BATCH_BODY":  {"WANOTIFY_INGEST_MAX_BATCH_BODY": "2048"},
		"WANOTIFY_INGEST_PRODUCE_TIMEOUT": {"WANOTIFY_INGEST_PRODUCE_TIMEOUT": "0s"},
		"WANOTIFY_INGEST_RETRY_AFTER":     {"WANOTIFY_INGEST_RETRY_AFTER": "10ms"},
		"WANOTIFY_KAFKA_BROKERS":          {"WANOTIFY_KAFKA_BROKERS": "nope"},
	} {
		_, err := loadWith(env)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestKeyringMatchesOnlyConfiguredKeys(t *testing.T) {
	k, err := ParseKeys([]string{"acme:" + HashKey("a1"), "acme:" + strings.ToUpper(HashKey("a2")), "globex:" + HashKey("g1")})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"a1": "acme", "a2": "acme", "g1": "globex"} {
		if got, ok := k.Tenant(key); !ok || got != want {
			t.Errorf("%s: %q %v", key, got, ok)
		}
	}
	for _, bad := range []string{"", "a3", HashKey("a1"), "a1 "} {
		if _, ok := k.Tenant(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
	// The documented shell one-liner and HashKey agree.
	if HashKey(DevAPIKey) != strings.TrimPrefix(devKeyEntry, "demo:") {
		t.Fatal("devKeyEntry is not the hash of DevAPIKey")
	}
}

func TestSenderRegistryConfiguration(t *testing.T) {
	c, err := loadWith(nil)
	if err != nil || c.Senders.DefaultSender("demo") != "default" {
		t.Fatalf("the local registry: %v", err)
	}
	_, err = loadWith(map[string]string{"WANOTIFY_INGEST_DEFAULT_SENDER": "acme-main"})
	if err == nil || !strings.Contains(err.Error(), "WANOTIFY_INGEST_DEFAULT_SENDER") || !strings.Contains(err.Error(), "default_sender") {
		t.Fatalf("the removed default sender variable must be refused clearly: %v", err)
	}
	_, err = loadWith(map[string]string{"WANOTIFY_SENDERS": `{"senders":[{"name":"s","tenants":["acme"]}],"tenants":[{"name":"acme","default_sender":"s"}]}`})
	if err == nil || !strings.Contains(err.Error(), "WANOTIFY_SENDERS: senders[0] (s).number_id") {
		t.Fatalf("a bad registry must name the variable, sender and field: %v", err)
	}
}

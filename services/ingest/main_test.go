package main

import (
	"context"
	"testing"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/ingest"
	"github.com/wanotify/wanotify/pkg/service"
)

func run(env map[string]string, args ...string) int {
	e := config.New(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, args)
	return service.Run(context.Background(), "ingest", e, ingest.Configure, service.Options{}, nil)
}

func TestHelpListsTheSettings(t *testing.T) {
	if code := run(nil, "-help"); code != 0 {
		t.Fatalf("-help exited %d", code)
	}
	names := map[string]bool{}
	for _, v := range config.Registered() {
		names[v.Name] = true
	}
	for _, want := range []string{"WANOTIFY_INGEST_ADDR", "WANOTIFY_INGEST_API_KEYS", "WANOTIFY_INGEST_MAX_BODY",
		"WANOTIFY_INGEST_PRODUCE_TIMEOUT", "WANOTIFY_INGEST_STATUS_READS", "WANOTIFY_KAFKA_BROKERS", "WANOTIFY_CLICKHOUSE_ADDR"} {
		if !names[want] {
			t.Errorf("%s is not registered", want)
		}
	}
}

func TestBadConfigurationStopsBeforeAnythingStarts(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"dev key off loopback": {"WANOTIFY_INGEST_ADDR": "0.0.0.0:8080"},
		"bad keys":             {"WANOTIFY_INGEST_API_KEYS": "acme:not-a-hash"},
		"bad timeout":          {"WANOTIFY_INGEST_PRODUCE_TIMEOUT": "soon"},
	} {
		if code := run(env); code != 2 {
			t.Errorf("%s: exit %d, want 2", name, code)
		}
	}
}

package dispatcher

import (
	"strings"
	"testing"
	"time"
)

// The halt probe interval is read from the environment, defaults to five
// minutes, and a bad value names its variable.
func TestHaltProbeIntervalConfig(t *testing.T) {
	if d := DefaultConfig(); d.HaltProbeInterval != 5*time.Minute {
		t.Fatalf("default probe interval %s, want 5m", d.HaltProbeInterval)
	}
	e := envOf(map[string]string{"WANOTIFY_DISPATCHER_HALT_PROBE_INTERVAL": "90s"})
	c := Load(e)
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	if c.HaltProbeInterval != 90*time.Second {
		t.Fatalf("probe interval %s, want 90s", c.HaltProbeInterval)
	}
	c.HaltProbeInterval = 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "WANOTIFY_DISPATCHER_HALT_PROBE_INTERVAL") {
		t.Fatalf("zero interval: %v", err)
	}
	e = envOf(map[string]string{"WANOTIFY_DISPATCHER_HALT_PROBE_INTERVAL": "soon"})
	Load(e)
	if err := e.Err(); err == nil || !strings.Contains(err.Error(), "WANOTIFY_DISPATCHER_HALT_PROBE_INTERVAL") {
		t.Fatalf("bad interval: %v", err)
	}
}

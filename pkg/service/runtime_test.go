package service

import (
	"os"
	"runtime/debug"
	"testing"
)

// gcPercent reads the collector's target without changing it.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestRuntimeDefaultsApplyOnlyWhereTheEnvironmentIsSilent(t *testing.T) {
	prevGC, prevLimit := gcPercent(), debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(prevGC); debug.SetMemoryLimit(prevLimit) })
	debug.SetMemoryLimit(1 << 30) // reported at start when set

	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
	debug.SetGCPercent(100)
	ApplyRuntimeDefaults(250)
	if got := gcPercent(); got != 250 {
		t.Fatalf("GOGC unset: the collector's target is %d, want the service's 250", got)
	}

	debug.SetGCPercent(100)
	ApplyRuntimeDefaults(0)
	if got := gcPercent(); got != 100 {
		t.Fatalf("no service default: the collector's target is %d, want Go's 100", got)
	}

	t.Setenv("GOGC", "80")
	debug.SetGCPercent(80) // as the runtime read it at start
	ApplyRuntimeDefaults(250)
	if got := gcPercent(); got != 80 {
		t.Fatalf("GOGC=80 set: the collector's target is %d, want the operator's 80", got)
	}

	attrs := runtimeSettings()
	if len(attrs) != 4 || attrs[0] != "gogc" || attrs[1] != 80 || attrs[2] != "gomemlimit_bytes" || attrs[3] != int64(1<<30) {
		t.Fatalf("start-up settings %v, want gogc 80 and the 1 GiB limit", attrs)
	}
}

package service

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"
)

// ApplyRuntimeDefaults sets the garbage collector's target (GOGC) of a
// service process to gcPercent when it is positive and the environment
// sets no GOGC. A service whose live heap is a few megabytes while each
// request allocates kilobytes (ingest, the webhook receiver) otherwise
// collects dozens of times a second, spending a sizeable share of its CPU
// on it; a higher target trades some megabytes of memory for that CPU.
// GOMEMLIMIT still bounds the heap: the Helm chart sets it to the
// container's memory limit, and the collector runs harder as the heap
// nears it.
//
// Main calls it before anything else runs; tests that call Run do not.
func ApplyRuntimeDefaults(gcPercent int) {
	if _, set := os.LookupEnv("GOGC"); !set && gcPercent > 0 {
		debug.SetGCPercent(gcPercent)
	}
}

// runtimeSettings are the garbage collector's settings in force, for the
// start-up log line.
func runtimeSettings() []any {
	gc := debug.SetGCPercent(100)
	debug.SetGCPercent(gc)
	attrs := []any{"gogc", gc}
	if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64 {
		attrs = append(attrs, "gomemlimit_bytes", limit)
	}
	return attrs
}

// logRuntime writes the start-up line with the runtime settings.
func logRuntime(log *slog.Logger) {
	log.Info("runtime", runtimeSettings()...)
}

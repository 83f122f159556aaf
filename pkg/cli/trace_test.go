package cli_test

import (
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/cli"
	"github.com/wanotify/wanotify/pkg/testinfra"
)

// TestTraceWithoutTraceStoreSaysWhatIsMissing: on a database nothing
// exports spans into, notifyctl trace names the trace store instead of
// only ClickHouse's "unknown table".
func TestTraceWithoutTraceStoreSaysWhatIsMissing(t *testing.T) {
	db := testinfra.ClickHouseDatabase(t)
	t.Setenv("WANOTIFY_CLICKHOUSE_ADDR", db.Server.Addr)
	t.Setenv("WANOTIFY_CLICKHOUSE_DATABASE", db.Name)
	r := run(t, "", "trace", "3e8ffbaa-69ae-5e51-ac10-67b996f9bc26")
	if r.code != cli.ExitFailure || !strings.Contains(r.stderr, "services/traces") {
		t.Fatalf("trace without otel_traces: %s", r)
	}
	if r := run(t, "", "trace"); r.code != cli.ExitUsage {
		t.Fatalf("trace without an id: %s", r)
	}
}

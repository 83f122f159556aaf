package cli

import (
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/wanotify/wanotify/pkg/logstore"
)

// A notification the logs call dead_lettered whose DLQ record the sink has
// not written yet: status says so instead of showing no dead letters.
func TestStatusSaysWhenDeadLettersAreNotInClickHouseYet(t *testing.T) {
	v := &logstore.View{NotificationID: "n1", Status: "dead_lettered", Timeline: []logstore.Event{
		{Status: "accepted"}, {Status: "retry_scheduled"}, {Status: "dead_lettered"},
	}}
	if got := deadLettersPending(v); got != 1 {
		t.Fatalf("pending = %d, want 1", got)
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	printStatus(w, statusView{View: v, DeadLettersPending: deadLettersPending(v)})
	_ = w.Flush()
	if !strings.Contains(b.String(), "1 not in ClickHouse yet") {
		t.Fatalf("status table does not tell the gap:\n%s", b.String())
	}

	// Once the record is there, nothing is pending.
	v.DeadLetters = []logstore.DeadLetter{{Reason: "exhausted"}}
	if got := deadLettersPending(v); got != 0 {
		t.Fatalf("pending with the record there = %d, want 0", got)
	}
	b.Reset()
	printStatus(w, statusView{View: v, DeadLettersPending: deadLettersPending(v)})
	_ = w.Flush()
	if strings.Contains(b.String(), "not in ClickHouse yet") {
		t.Fatalf("status table claims a gap:\n%s", b.String())
	}
}

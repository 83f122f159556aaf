package cli_test

import (
	"strconv"
	"testing"

	"github.com/wanotify/wanotify/pkg/cli"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

// A replay goes to the topic of its notification's lane: the lane in
// the value, else the one its event type derives; a poison value (with
// --force) to notifications.requested. A second replay finds the first on
// the lane's topic and skips it.
func TestDLQReplayGoesToTheLanesTopic(t *testing.T) {
	brokers := cluster(t)
	cl := testinfra.Client(t, brokers)
	asked := note(t, "acme", "invoice.due", "+447100900401", "lane-1")
	asked.Lane = "critical"
	ds := []dead{
		{n: asked, reason: envelope.ReasonExhausted, code: "http_503", retryable: true},
		{n: note(t, "acme", "campaign.x", "+447100900402", "lane-2"), reason: envelope.ReasonExhausted, code: "http_503", retryable: true},
		{n: note(t, "acme", "invoice.due", "+447100900403", "lane-3"), reason: envelope.ReasonExhausted, code: "http_503", retryable: true},
		{n: note(t, "acme", "otp", "+447100900404", "lane-4"), reason: envelope.ReasonExhausted, code: "http_503", retryable: true},
		{raw: []byte(`{"tenant":"acme"}`), key: "+447100900405", reason: envelope.ReasonPoison, code: "poison"},
	}
	dl := writeDLQ(t, cl, ds...)
	var out replayOut
	runJSON(t, cli.ExitOK, &out, "dlq", "replay", "--all", "--force", "--rate", "1000")
	if out.Counts["replayed"] != len(ds) {
		t.Fatalf("replay: %+v", out)
	}
	want := []string{topics.Critical, topics.Bulk, topics.Requested, topics.Critical, topics.Requested}
	got := replays(t, brokers)
	for i, d := range dl {
		r, ok := replayOf(got, d)
		if !ok {
			t.Fatalf("DLQ record %d was not replayed", i)
		}
		if r.Topic != want[i] {
			t.Errorf("replay of DLQ record %d (offset %s) went to %s, want %s", i, strconv.FormatInt(d.Offset, 10), r.Topic, want[i])
		}
	}
	var again replayOut
	runJSON(t, cli.ExitOK, &again, "dlq", "replay", "--all", "--force", "--rate", "1000")
	if again.Counts["already_replayed"] != len(ds) || again.Counts["replayed"] != 0 {
		t.Fatalf("second replay: %+v", again)
	}
	if n := len(replays(t, brokers)); n != len(ds) {
		t.Fatalf("%d replays after the second run, want %d", n, len(ds))
	}
}

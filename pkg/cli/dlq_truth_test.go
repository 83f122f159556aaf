package cli_test

import (
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/cli"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/testinfra"
)

// TestDLQListShowsReplaysByDefault: a DLQ record replayed twice is listed
// with REPLAYS 2, where both replays went, and as replayable only with
// --again, without asking for it; the header-only view says it is partial.
func TestDLQListShowsReplaysByDefault(t *testing.T) {
	brokers := cluster(t)
	cl := testinfra.Client(t, brokers)
	dl := writeDLQ(t, cl,
		dead{n: note(t, "acme", "otp", "+447100900401", "twice"), reason: envelope.ReasonExhausted, code: "http_503", retryable: true},
		dead{n: note(t, "acme", "otp", "+447100900402", "never"), reason: envelope.ReasonExhausted, code: "http_503", retryable: true})
	id := mustHeader(t, dl[0], envelope.HeaderNotificationID)
	var out replayOut
	runJSON(t, cli.ExitOK, &out, "dlq", "replay", id, "--rate", "1000")
	runJSON(t, cli.ExitOK, &out, "dlq", "replay", id, "--again", "--rate", "1000")
	if out.Counts["replayed"] != 1 || out.Items[0].ReplayCount != 2 {
		t.Fatalf("second replay: %+v", out)
	}

	var l struct {
		Records []struct {
			ID          string `json:"id"`
			ReplayCount int    `json:"replay_count"`
			Replayable  string `json:"replayable"`
			Replays     []any  `json:"replays"`
		} `json:"records"`
	}
	runJSON(t, cli.ExitOK, &l, "dlq", "list")
	if len(l.Records) != 2 {
		t.Fatalf("list: %+v", l)
	}
	byID := map[string]int{}
	for i, r := range l.Records {
		byID[r.ID] = i
	}
	twice, never := l.Records[byID[ref(dl[0])]], l.Records[byID[ref(dl[1])]]
	if twice.ReplayCount != 2 || len(twice.Replays) != 2 || !strings.Contains(twice.Replayable, "--again") {
		t.Errorf("record replayed twice listed as %+v", twice)
	}
	if never.ReplayCount != 0 || len(never.Replays) != 0 || never.Replayable != "yes" {
		t.Errorf("record never replayed listed as %+v", never)
	}

	r := run(t, "", "dlq", "list")
	if r.code != cli.ExitOK {
		t.Fatal(r)
	}
	var line string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, ref(dl[0])+" ") {
			line = l
		}
	}
	f := strings.Fields(line)
	if len(f) < 11 || f[9] != "2" || !strings.Contains(line, "--again") || !strings.Contains(r.stdout, "REPLAYED TO") {
		t.Errorf("table row of the record replayed twice: %q\n%s", line, r.stdout)
	}

	r = run(t, "", "dlq", "list", "--no-replay-lookup")
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, " 0? ") {
		t.Errorf("--no-replay-lookup must mark REPLAYS as headers-only:\n%s", r)
	}

	var s struct {
		Record struct {
			ReplayCount int    `json:"replay_count"`
			Replayable  string `json:"replayable"`
		} `json:"record"`
	}
	runJSON(t, cli.ExitOK, &s, "dlq", "show", id)
	if s.Record.ReplayCount != 2 || !strings.Contains(s.Record.Replayable, "--again") {
		t.Errorf("show: %+v", s.Record)
	}
}

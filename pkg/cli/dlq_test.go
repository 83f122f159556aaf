package cli_test

import (
	"bytes"
	"context"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/cli"
	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

type listOut struct {
	Total    int `json:"total"`
	Page     int `json:"page"`
	Pages    int `json:"pages"`
	NextPage int `json:"next_page"`
	Records  []struct {
		ID             string `json:"id"`
		NotificationID string `json:"notification_id"`
		Tenant         string `json:"tenant"`
		ErrorCode      string `json:"error_code"`
		Reason         string `json:"reason"`
		Recipient      string `json:"recipient_masked"`
		Replayable     string `json:"replayable"`
		Replays        []struct {
			Partition int32 `json:"partition"`
			Offset    int64 `json:"offset"`
		} `json:"replays"`
	} `json:"records"`
}

func (l listOut) ids() []string {
	var out []string
	for _, r := range l.Records {
		out = append(out, r.ID)
	}
	sort.Strings(out)
	return out
}

func refs(recs ...*kgo.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, ref(r))
	}
	sort.Strings(out)
	return out
}

func TestDLQListFiltersAndPages(t *testing.T) {
	brokers := cluster(t)
	cl := testinfra.Client(t, brokers)
	recs := writeDLQ(t, cl,
		dead{n: note(t, "acme", "otp", "+447100900101", "a1"), reason: envelope.ReasonExhausted, code: "http_503", retryable: true},
		dead{n: note(t, "acme", "invoice.reminder", "+447100900102", "a2"), reason: envelope.ReasonPermanent, code: "meta_131026"},
		dead{n: note(t, "globex", "otp", "+447100900103", "g1"), reason: envelope.ReasonExhausted, code: "http_503", retryable: true},
		dead{raw: []byte("{not json"), key: "+447100900104", reason: envelope.ReasonPoison, code: "poison"},
	)

	var all listOut
	runJSON(t, cli.ExitOK, &all, "dlq", "list")
	if got, want := all.ids(), refs(recs...); !equal(got, want) {
		t.Fatalf("list: got %v, want %v", got, want)
	}
	for _, r := range all.Records {
		if strings.Contains(r.Recipient, "7700900") {
			t.Errorf("recipient %q is not masked in the list", r.Recipient)
		}
	}

	cases := []struct {
		args []string
		want []*kgo.Record
	}{
		{[]string{"--tenant", "acme"}, recs[:2]},
		{[]string{"--error-code", "http_503"}, []*kgo.Record{recs[0], recs[2]}},
		{[]string{"--tenant", "acme", "--error-code", "http_503"}, recs[:1]},
		{[]string{"--tenant", "acme,globex", "--event-type", "otp"}, []*kgo.Record{recs[0], recs[2]}},
		{[]string{"--reason", "poison"}, recs[3:]},
		{[]string{"--since", "1h"}, recs},
		{[]string{"--until", "1h"}, nil},
		{[]string{"--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, nil},
		{[]string{"--partition", strconv.Itoa(int(recs[0].Partition))}, samePartition(recs, recs[0].Partition)},
	}
	for _, c := range cases {
		var out listOut
		runJSON(t, cli.ExitOK, &out, append([]string{"dlq", "list"}, c.args...)...)
		if got, want := out.ids(), refs(c.want...); !equal(got, want) {
			t.Errorf("list %v: got %v, want %v", c.args, got, want)
		}
	}

	// Paging walks the same order without gaps or repeats.
	var seen []string
	for page := 1; ; page++ {
		var out listOut
		runJSON(t, cli.ExitOK, &out, "dlq", "list", "--limit", "3", "--page", strconv.Itoa(page))
		if out.Total != 4 || out.Pages != 2 {
			t.Fatalf("page %d: total %d pages %d, want 4 and 2", page, out.Total, out.Pages)
		}
		for _, r := range out.Records {
			seen = append(seen, r.ID)
		}
		if out.NextPage == 0 {
			break
		}
	}
	sort.Strings(seen)
	if !equal(seen, refs(recs...)) {
		t.Fatalf("paging saw %v, want %v", seen, refs(recs...))
	}

	// The table names the columns and every record.
	r := run(t, "", "dlq", "list", "--tenant", "acme")
	if r.code != 0 || !strings.Contains(r.stdout, "NOTIFICATION") || !strings.Contains(r.stdout, ref(recs[1])) ||
		!strings.Contains(r.stdout, "with --force (permanent error)") {
		t.Fatalf("table: %s", r)
	}
	if r := run(t, "", "dlq", "list", "--reason", "bogus"); r.code != cli.ExitUsage {
		t.Fatalf("bad --reason: %s", r)
	}
	if r := run(t, "", "dlq", "list", "--since", "yesterday-ish"); r.code != cli.ExitUsage {
		t.Fatalf("bad --since: %s", r)
	}
}

func samePartition(recs []*kgo.Record, p int32) []*kgo.Record {
	var out []*kgo.Record
	for _, r := range recs {
		if r.Partition == p {
			out = append(out, r)
		}
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDLQShowPayloadHeadersAndHistory(t *testing.T) {
	brokers := cluster(t)
	cl := testinfra.Client(t, brokers)
	n := note(t, "acme", "otp", "+447100900201", "s1")
	// The attempts before the DLQ: two records on retry topics, in the
	// recipient's partition as the dispatcher writes them.
	writeRetry(t, cl, topics.Retry5s, n, 1)
	writeRetry(t, cl, topics.Retry15s, n, 2)
	// Noise: another notification's retry must not appear.
	writeRetry(t, cl, topics.Retry5s, note(t, "acme", "otp", "+447100900201", "s2"), 1)
	recs := writeDLQ(t, cl,
		dead{n: n, reason: envelope.ReasonExhausted, code: "http_503", retryable: true},
		dead{raw: []byte{0xff, 0x00, 0x01}, key: "+447100900299", reason: envelope.ReasonPoison, code: "poison"},
	)

	var out struct {
		Record struct {
			ID             string `json:"id"`
			NotificationID string `json:"notification_id"`
			Key            string `json:"key"`
			Payload        struct {
				ID        string `json:"notification_id"`
				Recipient string `json:"recipient"`
			} `json:"payload"`
			PayloadB64   string `json:"payload_base64"`
			PayloadError string `json:"payload_error"`
			Headers      []struct{ Key, Value string }
			Replayable   string `json:"replayable"`
		} `json:"record"`
		History []struct {
			Kind      string `json:"kind"`
			Topic     string `json:"topic"`
			Attempt   int    `json:"attempt"`
			ErrorCode string `json:"error_code"`
		} `json:"history"`
	}
	runJSON(t, cli.ExitOK, &out, "dlq", "show", n.ID)
	if out.Record.ID != ref(recs[0]) || out.Record.Payload.ID != n.ID || out.Record.Payload.Recipient != n.Recipient || out.Record.Key != n.Recipient {
		t.Fatalf("show: %+v", out.Record)
	}
	if len(out.Record.Headers) != len(recs[0].Headers) {
		t.Fatalf("show lists %d headers, record has %d", len(out.Record.Headers), len(recs[0].Headers))
	}
	for i, h := range recs[0].Headers {
		if out.Record.Headers[i].Key != h.Key || out.Record.Headers[i].Value != string(h.Value) {
			t.Errorf("header %d: got %v, want %s=%s", i, out.Record.Headers[i], h.Key, h.Value)
		}
	}
	var kinds []string
	for _, h := range out.History {
		kinds = append(kinds, h.Kind+":"+h.Topic+":"+strconv.Itoa(h.Attempt))
	}
	want := []string{"retry_scheduled:" + topics.Retry5s + ":1", "retry_scheduled:" + topics.Retry15s + ":2", "dead_lettered:" + topics.DLQ + ":4"}
	if !equal(kinds, want) {
		t.Fatalf("history: got %v, want %v", kinds, want)
	}

	// The same record by partition/offset, in the table form.
	r := run(t, "", "dlq", "show", ref(recs[0]))
	for _, s := range []string{n.ID, "Headers:", "wanotify-error-code", "Payload:", "Error history:", "provider unavailable 2", topics.Retry15s} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("show table lacks %q:\n%s", s, r)
		}
	}

	// A poison record has no notification id: found by partition/offset,
	// its bytes shown as they are.
	runJSON(t, cli.ExitOK, &out, "dlq", "show", "notifications.dlq-"+strings.Replace(ref(recs[1]), "/", "@", 1))
	if out.Record.PayloadB64 != "/wAB" || out.Record.PayloadError == "" || !strings.Contains(out.Record.Replayable, "poison") {
		t.Fatalf("poison show: %+v", out.Record)
	}

	if r := run(t, "", "dlq", "show", "00000000-0000-5000-8000-000000000000"); r.code != cli.ExitNotFound {
		t.Fatalf("unknown id: %s", r)
	}
	if r := run(t, "", "dlq", "show", "3/99999"); r.code != cli.ExitNotFound {
		t.Fatalf("unknown offset: %s", r)
	}
	if r := run(t, "", "dlq", "show", "notifications.status-1@2"); r.code != cli.ExitUsage {
		t.Fatalf("other topic: %s", r)
	}
}

// writeRetry writes a failed attempt to a retry topic as the dispatcher
// does.
func writeRetry(t *testing.T, cl *kgo.Client, topic string, n *contract.Notification, attempt int) {
	t.Helper()
	value, err := n.Encode()
	if err != nil {
		t.Fatal(err)
	}
	f := envelope.Failure{Attempt: attempt, DueAt: time.Now().Add(5 * time.Second),
		Origin:         envelope.Origin{Topic: topics.Requested, Offset: 7},
		Error:          contract.ErrorInfo{Code: "http_503", Message: "provider unavailable " + strconv.Itoa(attempt), Retryable: true},
		FailedAt:       time.Now().Add(time.Duration(attempt-5) * time.Second).UTC(),
		NotificationID: n.ID, Tenant: n.Tenant, ReplayedFrom: -1}
	hs, err := f.Headers()
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Key: n.Key(), Value: value, Headers: hs}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

type replayOut struct {
	DryRun   bool           `json:"dry_run"`
	Selected int            `json:"selected"`
	Counts   map[string]int `json:"counts"`
	Items    []struct {
		ID             string `json:"id"`
		NotificationID string `json:"notification_id"`
		Decision       string `json:"decision"`
		Why            string `json:"why"`
		ReplayCount    int    `json:"replay_count"`
		ReplayedTo     *struct {
			Partition int32 `json:"partition"`
			Offset    int64 `json:"offset"`
		} `json:"replayed_to"`
	} `json:"items"`
}

// TestDLQReplayFilteredSetExactlyOnce is the operator's promise: a filtered
// replay delivers exactly the selected records to notifications.requested,
// with lineage headers and co-partitioned, and a second replay adds nothing.
func TestDLQReplayFilteredSetExactlyOnce(t *testing.T) {
	brokers := cluster(t)
	cl := testinfra.Client(t, brokers)
	// Records already on notifications.requested before the replay: they
	// must not confuse the already-replayed check.
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topics.Requested, Key: []byte("+447100900300"), Value: []byte("{}")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var ds []dead
	for i, tenant := range []string{"acme", "acme", "acme", "globex", "acme", "globex"} {
		code := []string{"http_503", "http_503", "timeout", "http_503", "http_503", "timeout"}[i]
		ds = append(ds, dead{n: note(t, tenant, "otp", "+4471009003"+strconv.Itoa(10+i), "r"+strconv.Itoa(i)),
			reason: envelope.ReasonExhausted, code: code, retryable: true,
			extra: []kgo.RecordHeader{{Key: "x-foreign", Value: []byte("kept")}}})
	}
	// A record of a notification already replayed once, dead-lettered again.
	ds[4].replays, ds[4].replayed = 1, 0
	dl := writeDLQ(t, cl, ds...)
	selected := []*kgo.Record{dl[0], dl[1], dl[4]} // acme + http_503

	var out replayOut
	runJSON(t, cli.ExitOK, &out, "dlq", "replay", "--tenant", "acme", "--error-code", "http_503", "--rate", "1000")
	if out.Selected != 3 || out.Counts["replayed"] != 3 {
		t.Fatalf("replay: %+v", out)
	}

	got := replays(t, brokers)
	if len(got) != 3 {
		t.Fatalf("notifications.requested holds %d replays, want 3", len(got))
	}
	for _, want := range selected {
		r, ok := replayOf(got, want)
		if !ok {
			t.Fatalf("DLQ record %s was not replayed", ref(want))
		}
		if r.Partition != want.Partition || !bytes.Equal(r.Key, want.Key) || !bytes.Equal(r.Value, want.Value) {
			t.Errorf("replay of %s: partition %d key %q, value changed %v", ref(want), r.Partition, r.Key, !bytes.Equal(r.Value, want.Value))
		}
		wantCount := "1"
		if want == dl[4] {
			wantCount = "2"
		}
		for k, v := range map[string]string{
			envelope.HeaderReplayCount:        wantCount,
			envelope.HeaderReplayedFromOffset: strconv.FormatInt(want.Offset, 10),
			envelope.HeaderNotificationID:     mustHeader(t, want, envelope.HeaderNotificationID),
			envelope.HeaderTenant:             "acme",
			"traceparent":                     mustHeader(t, want, "traceparent"),
			"x-foreign":                       "kept",
		} {
			if got, _ := header(r, k); got != v {
				t.Errorf("replay of %s: header %s = %q, want %q", ref(want), k, got, v)
			}
		}
		for _, k := range []string{envelope.HeaderAttempt, envelope.HeaderErrorCode, envelope.HeaderDLQReason, envelope.HeaderOriginOffset, envelope.HeaderFailedAt} {
			if _, ok := header(r, k); ok {
				t.Errorf("replay of %s still carries failure header %s", ref(want), k)
			}
		}
	}

	// Twice: nothing new, every record reported as already replayed.
	runJSON(t, cli.ExitOK, &out, "dlq", "replay", "--tenant", "acme", "--error-code", "http_503", "--rate", "1000")
	if out.Counts["already_replayed"] != 3 || out.Counts["replayed"] != 0 {
		t.Fatalf("second replay: %+v", out)
	}
	if n := len(replays(t, brokers)); n != 3 {
		t.Fatalf("after a second replay notifications.requested holds %d replays, want still 3", n)
	}
	// By id, too.
	id := mustHeader(t, dl[0], envelope.HeaderNotificationID)
	runJSON(t, cli.ExitOK, &out, "dlq", "replay", id)
	if out.Counts["already_replayed"] != 1 || !strings.Contains(out.Items[0].Why, "--again") {
		t.Fatalf("replay by id: %+v", out)
	}

	// --again replays once more, counting the earlier replay.
	runJSON(t, cli.ExitOK, &out, "dlq", "replay", id, "--again")
	if out.Counts["replayed"] != 1 || out.Items[0].ReplayCount != 2 {
		t.Fatalf("--again: %+v", out)
	}
	if n := len(replays(t, brokers)); n != 4 {
		t.Fatalf("after --again: %d replays, want 4", n)
	}

	// list --with-replays shows where each went.
	var l listOut
	runJSON(t, cli.ExitOK, &l, "dlq", "list", "--tenant", "acme", "--error-code", "http_503", "--with-replays")
	for _, r := range l.Records {
		want := 1
		if r.NotificationID == id {
			want = 2
		}
		if len(r.Replays) != want {
			t.Errorf("list --with-replays: %s has %d replays, want %d", r.ID, len(r.Replays), want)
		}
	}
}

// replays returns the records on the lanes' topics that carry a
// replayed-from header.
func replays(t *testing.T, brokers []string) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	for _, r := range readLanes(t, brokers) {
		if _, ok := header(r, envelope.HeaderReplayedFromOffset); ok {
			out = append(out, r)
		}
	}
	return out
}

// replayOf finds the replay of DLQ record d among rs.
func replayOf(rs []*kgo.Record, d *kgo.Record) (*kgo.Record, bool) {
	for _, r := range rs {
		if v, _ := header(r, envelope.HeaderReplayedFromOffset); v == strconv.FormatInt(d.Offset, 10) && r.Partition == d.Partition {
			return r, true
		}
	}
	return nil, false
}

func mustHeader(t *testing.T, r *kgo.Record, key string) string {
	t.Helper()
	v, ok := header(r, key)
	if !ok {
		t.Fatalf("record %s has no header %s", ref(r), key)
	}
	return v
}

func TestDLQReplayRefusesPermanentAndPoisonWithoutForce(t *testing.T) {
	brokers := cluster(t)
	cl := testinfra.Client(t, brokers)
	dl := writeDLQ(t, cl,
		dead{n: note(t, "acme", "otp", "+447100900401", "p1"), reason: envelope.ReasonPermanent, code: "meta_132001"},
		// Exhausted, but the last error was not retryable.
		dead{n: note(t, "acme", "otp", "+447100900402", "p2"), reason: envelope.ReasonExhausted, code: "meta_131026"},
		dead{raw: []byte("garbage"), key: "+447100900403", reason: envelope.ReasonPoison, code: "poison"},
	)
	id := mustHeader(t, dl[0], envelope.HeaderNotificationID)

	var out replayOut
	runJSON(t, cli.ExitFailure, &out, "dlq", "replay", id)
	if out.Items[0].Decision != "refused_permanent" || !strings.Contains(out.Items[0].Why, "--force") {
		t.Fatalf("permanent: %+v", out)
	}
	runJSON(t, cli.ExitFailure, &out, "dlq", "replay", "--all")
	if out.Counts["refused_permanent"] != 2 || out.Counts["refused_poison"] != 1 || out.Counts["replayed"] != 0 {
		t.Fatalf("--all without --force: %+v", out)
	}
	for _, it := range out.Items {
		if it.Decision == "refused_poison" && !strings.Contains(it.Why, "not a valid notification") {
			t.Errorf("poison refusal does not say why: %q", it.Why)
		}
	}
	if n := len(replays(t, brokers)); n != 0 {
		t.Fatalf("refused replays produced %d records", n)
	}
	r := run(t, "", "dlq", "replay", id)
	if !strings.Contains(r.stdout, "refused_permanent") || !strings.Contains(r.stderr, "refused") {
		t.Fatalf("table refusal: %s", r)
	}

	runJSON(t, cli.ExitOK, &out, "dlq", "replay", id, "--force")
	if out.Counts["replayed"] != 1 {
		t.Fatalf("--force: %+v", out)
	}
	runJSON(t, cli.ExitOK, &out, "dlq", "replay", ref(dl[2]), "--force")
	if out.Counts["replayed"] != 1 {
		t.Fatalf("--force poison: %+v", out)
	}
	got := replays(t, brokers)
	if len(got) != 2 {
		t.Fatalf("after --force: %d replays, want 2", len(got))
	}
	for _, r := range got {
		if string(r.Key) == "+447100900403" && (string(r.Value) != "garbage" || r.Partition != dl[2].Partition) {
			t.Errorf("poison replay changed the record: %q partition %d", r.Value, r.Partition)
		}
	}
}

func TestDLQReplayDryRunLimitAndRate(t *testing.T) {
	brokers := cluster(t)
	cl := testinfra.Client(t, brokers)
	var ds []dead
	for i := 0; i < 10; i++ {
		ds = append(ds, dead{n: note(t, "acme", "otp", "+4471009005"+strconv.Itoa(10+i), "d"+strconv.Itoa(i)),
			reason: envelope.ReasonExhausted, code: "http_503", retryable: true})
	}
	writeDLQ(t, cl, ds...)

	var out replayOut
	runJSON(t, cli.ExitOK, &out, "dlq", "replay", "--all", "--dry-run")
	if !out.DryRun || out.Counts["would_replay"] != 10 {
		t.Fatalf("dry run: %+v", out)
	}
	if n := len(replays(t, brokers)); n != 0 {
		t.Fatalf("dry run produced %d records", n)
	}

	runJSON(t, cli.ExitOK, &out, "dlq", "replay", "--all", "--limit", "3", "--rate", "1000")
	if out.Counts["replayed"] != 3 || out.Counts["not_selected"] != 7 {
		t.Fatalf("--limit 3: %+v", out)
	}

	// 7 remaining records at 20/s with a burst of one take at least 6/20 s.
	start := time.Now()
	runJSON(t, cli.ExitOK, &out, "dlq", "replay", "--all", "--rate", "20")
	if el := time.Since(start); out.Counts["replayed"] != 7 || el < 300*time.Millisecond {
		t.Fatalf("--rate 20: %+v in %v", out.Counts, el)
	}
	if n := len(replays(t, brokers)); n != 10 {
		t.Fatalf("%d replays, want 10", n)
	}
}

func TestDLQReplaySupersededAndUsage(t *testing.T) {
	brokers := cluster(t)
	cl := testinfra.Client(t, brokers)
	n := note(t, "acme", "otp", "+447100900601", "x1")
	// The same notification dead-lettered twice (no replay in between is
	// visible, e.g. it fell out of retention): only the newest goes.
	dl := writeDLQ(t, cl,
		dead{n: n, reason: envelope.ReasonExhausted, code: "http_503", retryable: true},
		dead{n: n, reason: envelope.ReasonExhausted, code: "timeout", retryable: true, replays: 1, replayed: 0},
	)
	var out replayOut
	runJSON(t, cli.ExitOK, &out, "dlq", "replay", n.ID)
	if out.Counts["superseded"] != 1 || out.Counts["replayed"] != 1 {
		t.Fatalf("superseded: %+v", out)
	}
	got := replays(t, brokers)
	if len(got) != 1 {
		t.Fatalf("%d replays, want 1", len(got))
	}
	for _, r := range got {
		if v, _ := header(r, envelope.HeaderReplayedFromOffset); v != strconv.FormatInt(dl[1].Offset, 10) {
			t.Fatalf("replayed from %s, want the newest %s", v, ref(dl[1]))
		}
	}

	for _, args := range [][]string{
		{"dlq", "replay"},                         // nothing selected
		{"dlq", "replay", "--all", n.ID},          // both
		{"dlq", "replay", "--all", "--rate", "0"}, // no rate
		{"dlq", "replay", "notifications.retry-5s/1/2"},
		{"dlq", "list", "-o", "yaml"},
		{"dlq", "list", "--bogus"},
		{"dlq", "show"},
	} {
		if r := run(t, "", args...); r.code != cli.ExitUsage {
			t.Errorf("%v: want exit %d, got %s", args, cli.ExitUsage, r)
		}
	}
	if r := run(t, "", "dlq", "replay", "00000000-0000-5000-8000-000000000000"); r.code != cli.ExitNotFound {
		t.Errorf("unknown id: %s", r)
	}
}

func TestDLQPurgeNeedsConfirmation(t *testing.T) {
	brokers := cluster(t)
	cl := testinfra.Client(t, brokers)
	var ds []dead
	for i := 0; i < 6; i++ {
		ds = append(ds, dead{n: note(t, "acme", "otp", "+4471009007"+strconv.Itoa(10+i), "u"+strconv.Itoa(i)),
			reason: envelope.ReasonExhausted, code: "http_503", retryable: true})
	}
	writeDLQ(t, cl, ds...)

	// No confirmation: nothing deleted, non-zero exit.
	for _, stdin := range []string{"", "no\n", "y\n", "YES please\n"} {
		r := run(t, stdin, "dlq", "purge")
		if r.code != cli.ExitFailure || !strings.Contains(r.stderr, "nothing deleted") || !strings.Contains(r.stdout, "6 records") {
			t.Fatalf("purge with answer %q: %s", stdin, r)
		}
		if n := len(readAll(t, brokers, topics.DLQ)); n != 6 {
			t.Fatalf("purge with answer %q deleted records: %d left", stdin, n)
		}
	}
	if r := run(t, "", "dlq", "purge", "--dry-run"); r.code != 0 || len(readAll(t, brokers, topics.DLQ)) != 6 {
		t.Fatalf("dry run: %s", r)
	}

	// --before keeps what landed later.
	time.Sleep(20 * time.Millisecond)
	cut := time.Now()
	time.Sleep(20 * time.Millisecond)
	later := writeDLQ(t, cl, dead{n: note(t, "acme", "otp", "+447100900799", "late"), reason: envelope.ReasonExhausted, code: "http_503", retryable: true})
	r := run(t, "yes\n", "dlq", "purge", "--before", cut.UTC().Format(time.RFC3339Nano))
	if r.code != 0 || !strings.Contains(r.stdout, "deleted 6 records") {
		t.Fatalf("confirmed purge: %s", r)
	}
	left := readAll(t, brokers, topics.DLQ)
	if len(left) != 1 || !bytes.Equal(left[0].Value, later[0].Value) {
		t.Fatalf("after purge --before: %d records left, want the later one", len(left))
	}

	// --yes purges without asking.
	var out struct {
		Purged bool `json:"purged"`
		Plan   struct {
			Records int64 `json:"records"`
		} `json:"plan"`
	}
	runJSON(t, cli.ExitOK, &out, "dlq", "purge", "--yes")
	if !out.Purged || out.Plan.Records != 1 {
		t.Fatalf("purge --yes: %+v", out)
	}
	if n := len(readAll(t, brokers, topics.DLQ)); n != 0 {
		t.Fatalf("after purge --yes: %d records left", n)
	}
	var l listOut
	runJSON(t, cli.ExitOK, &l, "dlq", "list")
	if l.Total != 0 {
		t.Fatalf("list after purge: %+v", l)
	}
}

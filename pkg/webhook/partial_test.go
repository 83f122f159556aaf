package webhook

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"

	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/sink"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
	"github.com/wanotify/wanotify/pkg/webhook/payload"
)

// rejectedHeader is the reason a status record carries when it keeps a
// rejected status ("" for a status event).
func rejectedHeader(r *kgo.Record) string {
	for _, h := range r.Headers {
		if h.Key == envelope.HeaderRejected {
			return string(h.Value)
		}
	}
	return ""
}

const partialNotificationID = "7d1f0c4e-1c2b-5a3d-8e9f-0a1b2c3d4e5f"

// partialBatch is a signed-webhook body with one good status, one without
// an id and one of a value the pipeline does not track.
var partialBatch = []byte(`{"object":"whatsapp_business_account","entry":[{"id":"w","changes":[{"field":"messages","value":{"statuses":[` +
	`{"id":"wamid.good","status":"delivered","timestamp":"1764324002","recipient_id":"447700900123","biz_opaque_callback_data":"` + partialNotificationID + `"},` +
	`{"status":"read","timestamp":"1764324003","recipient_id":"447700900124"},` +
	`{"id":"wamid.gone","status":"deleted","timestamp":"1764324004","recipient_id":"447700900125"}]}}]}]}`)

const (
	partialMalformedRaw = `{"status":"read","timestamp":"1764324003","recipient_id":"447700900124"}`
	partialUntrackedRaw = `{"id":"wamid.gone","status":"deleted","timestamp":"1764324004","recipient_id":"447700900125"}`
)

// TestPartlyMalformedBatchRecordsTheGoodStatusAndKeepsTheRest: a signed
// batch with a good status, one without an id and one of an untracked
// value is answered 200 (after Kafka acknowledged all three records):
// the good status is a status event, the other two are on
// notifications.status raw, keyed by their recipients and marked with
// their reason, and the malformed one is counted.
func TestPartlyMalformedBatchRecordsTheGoodStatusAndKeepsTheRest(t *testing.T) {
	h := newHarness(t, nil, nil)
	got := h.post(partialBatch)
	if got.status != http.StatusOK {
		t.Fatalf("status %d %s, want 200", got.status, got.body)
	}
	var answer map[string]int
	if err := json.Unmarshal(got.body, &answer); err != nil || answer["events"] != 1 || answer["rejected"] != 1 || answer["skipped"] != 1 {
		t.Errorf("answer %s (%v), want 1 event, 1 rejected, 1 skipped", got.body, err)
	}
	// Everything was in Kafka before the 200.
	if n := statusRecordCount(t, h.brokers); n != 3 {
		t.Fatalf("%d records on %s when the 200 was written, want 3", n, topics.Status)
	}
	byValue := map[string]*kgo.Record{}
	for _, r := range consumeStatus(t, h.brokers, 3) {
		byValue[string(r.Value)] = r
	}
	var event *kgo.Record
	for v, r := range byValue {
		if rejectedHeader(r) == "" {
			event = byValue[v]
		}
	}
	if event == nil {
		t.Fatal("no status event produced")
	}
	if ev := decodeEvent(t, event); ev.EventID != "wh/wamid.good/delivered" || ev.NotificationID != partialNotificationID {
		t.Errorf("event %+v, want the good delivered status", ev)
	}
	for _, c := range []struct{ raw, key, reason string }{
		{partialMalformedRaw, "+447700900124", payload.RejectedMalformed + ": /entry/0/changes/0/value/statuses/1/id: is required"},
		{partialUntrackedRaw, "+447700900125", payload.RejectedUntracked + `: /entry/0/changes/0/value/statuses/2/status: "deleted" is not a status the pipeline tracks`},
	} {
		r, ok := byValue[c.raw]
		if !ok {
			t.Errorf("status %s not kept; records: %v", c.raw, keys(byValue))
			continue
		}
		if string(r.Key) != c.key || rejectedHeader(r) != c.reason {
			t.Errorf("kept %s with key %q and reason %q; want %q and %q", c.raw, r.Key, rejectedHeader(r), c.key, c.reason)
		}
	}
	if n := counter(t, h.reader, "wanotify.webhook.statuses", attribute.String("status", "read"), attribute.String("result", "malformed")); n != 1 {
		t.Errorf("malformed statuses counted %d, want 1", n)
	}
	if n := counter(t, h.reader, "wanotify.webhook.statuses", attribute.String("status", "deleted"), attribute.String("result", "skipped")); n != 1 {
		t.Errorf("untracked statuses counted %d, want 1", n)
	}
	if n := counter(t, h.reader, "wanotify.webhook.requests", outcome(OutcomeAccepted)); n != 1 {
		t.Errorf("accepted requests %d, want 1", n)
	}
}

func keys(m map[string]*kgo.Record) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestPartlyMalformedBatchEndToEnd runs the same batch through the
// receiver and the real sink into ClickHouse: the good status lands on its
// notification in communication_logs, and the malformed and untracked
// statuses are in ingest_errors, raw, with the receiver's reason.
func TestPartlyMalformedBatchEndToEnd(t *testing.T) {
	db := testinfra.ClickHouseDatabase(t)
	h := newHarness(t, nil, nil)
	if got := h.post(partialBatch); got.status != http.StatusOK {
		t.Fatalf("status %d %s, want 200", got.status, got.body)
	}

	// The batch's timestamps are from 2025: keep them past the default
	// retention.
	s, err := sink.New(sink.Config{Group: "webhook-partial", BatchInterval: 50 * time.Millisecond, RetentionDays: sink.KeepForever, ErrorRetentionDays: sink.KeepForever}, db.Options(),
		[]kgo.Opt{kgo.SeedBrokers(h.brokers...), kgo.MetadataMinAge(100 * time.Millisecond)}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sink: %v", err)
		}
	}()

	query := func(q string, args ...any) uint64 {
		t.Helper()
		qctx, qcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer qcancel()
		var n uint64
		if err := db.Conn.QueryRow(qctx, q, args...).Scan(&n); err != nil {
			// The sink creates the tables; until then there is nothing.
			return 0
		}
		return n
	}
	deadline := time.Now().Add(90 * time.Second)
	for query("SELECT count() FROM ingest_errors FINAL") < 2 ||
		query("SELECT count() FROM communication_logs WHERE notification_id = ? AND status = 'delivered'", partialNotificationID) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the batch did not land within 90s: %d ingest_errors, %d delivered", query("SELECT count() FROM ingest_errors FINAL"),
				query("SELECT count() FROM communication_logs WHERE notification_id = ? AND status = 'delivered'", partialNotificationID))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, c := range []struct{ raw, key, reason string }{
		{partialMalformedRaw, "+447700900124", "malformed: /entry/0/changes/0/value/statuses/1/id: is required"},
		{partialUntrackedRaw, "+447700900125", `untracked: /entry/0/changes/0/value/statuses/2/status: "deleted" is not a status the pipeline tracks`},
	} {
		if n := query("SELECT count() FROM ingest_errors FINAL WHERE topic = ? AND value = ? AND key = ? AND position(reason, ?) > 0",
			topics.Status, c.raw, c.key, c.reason); n != 1 {
			var got []struct {
				Key    string `ch:"key"`
				Value  string `ch:"value"`
				Reason string `ch:"reason"`
			}
			_ = db.Conn.Select(context.Background(), &got, "SELECT key, value, reason FROM ingest_errors FINAL")
			t.Errorf("ingest_errors has %d rows for %s with reason %q, want 1; it holds %+v", n, c.raw, c.reason, got)
		}
	}
	if n := query("SELECT count() FROM notification_events FINAL"); n != 1 {
		t.Errorf("notification_events has %d rows, want the 1 good status", n)
	}
	if !strings.Contains(string(partialBatch), partialMalformedRaw) || !strings.Contains(string(partialBatch), partialUntrackedRaw) {
		t.Fatal("test data: the raw statuses must appear verbatim in the batch")
	}
}

package sink

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/topics"
)

// fuzzTopics are the topics a fuzzed record may come from: the three the
// sink reads and one it does not.
var fuzzTopics = []string{topics.Requested, topics.Status, topics.DLQ, "notifications.other"}

// fuzzHeaders turns "key=value" lines into record headers.
func fuzzHeaders(raw string) []kgo.RecordHeader {
	var hs []kgo.RecordHeader
	for _, line := range strings.Split(raw, "\n") {
		if line == "" {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return hs
}

// FuzzDecode feeds arbitrary records to the sink's decoder: whatever a
// topic holds, the decoder never panics and turns it into exactly one row
// of the table the topic belongs to (or of ingest_errors), with every time
// inside what ClickHouse stores, so no insert of a batch can be refused
// because of one record.
func FuzzDecode(f *testing.F) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	valid := `{"schema_version":1,"notification_id":"6f1c2a4e-8a0b-5d7e-9c3f-2b1a0e9d8c7b","idempotency_key":"k","tenant":"acme",` +
		`"source_service":"auth","event_type":"otp","recipient":"+447700900123","sender":"acct-1",` +
		`"template":{"name":"otp","language":"en"},"created_at":"2026-03-01T10:00:00Z"}`
	status := `{"schema_version":1,"event_id":"e/accepted/1","notification_id":"6f1c2a4e-8a0b-5d7e-9c3f-2b1a0e9d8c7b",` +
		`"recipient":"+447700900123","status":"accepted","attempt":1,"occurred_at":"2026-03-01T10:00:00.3Z","emitter":"dispatcher"}`
	dlqHeaders := "wanotify-attempt=4\nwanotify-origin-topic=notifications.requested\nwanotify-origin-partition=3\n" +
		"wanotify-origin-offset=10\nwanotify-error-code=http_503\nwanotify-error-retryable=true\n" +
		"wanotify-failed-at=2026-03-01T10:01:00Z\nwanotify-dlq-reason=exhausted\nwanotify-error-class=retryable\n"
	f.Add(uint8(0), []byte("+447700900123"), []byte(valid), "", t0)
	f.Add(uint8(0), []byte("+447700900123"), []byte(strings.Replace(valid, "2026", "9999", 1)), "", t0)
	f.Add(uint8(0), []byte("+447700900123"), []byte(valid[:40]), "", t0)
	f.Add(uint8(1), []byte("+447700900123"), []byte(status), "", t0)
	f.Add(uint8(1), []byte("+447700900123"), []byte(strings.Replace(status, "2026-03-01", "0001-01-01", 1)), "", int64(-1)<<62)
	f.Add(uint8(2), []byte("+447700900123"), []byte(valid), dlqHeaders, t0)
	f.Add(uint8(2), []byte("+447700900123"), []byte("\x00garbage"), dlqHeaders, t0)
	f.Add(uint8(2), []byte(nil), []byte(valid), "wanotify-attempt=one\nwanotify-failed-at=yesterday\n", int64(1)<<62)
	f.Add(uint8(3), []byte("k"), []byte(valid), "", t0)
	f.Fuzz(func(t *testing.T, topic uint8, key, value []byte, headers string, tsMillis int64) {
		r := &kgo.Record{Topic: fuzzTopics[int(topic)%len(fuzzTopics)], Partition: 1, Offset: 42, Key: key, Value: value,
			Headers: fuzzHeaders(headers), Timestamp: time.UnixMilli(tsMillis)}
		d := decoder{requested: topics.Requested, status: topics.Status, dlq: topics.DLQ, maxValue: 256}
		x := d.decode(r)
		inRange := func(what string, tm time.Time) {
			if tm.Before(minTime) || !tm.Before(maxTime) {
				t.Fatalf("%s %s is outside what ClickHouse stores", what, tm)
			}
		}
		src := Source{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
		switch x.kind {
		case kindEvent:
			ev := x.ev
			if r.Topic != topics.Requested && r.Topic != topics.Status {
				t.Fatalf("an event row from %s", r.Topic)
			}
			if ev.NotificationID == "" && ev.ProviderMessageID == "" {
				t.Fatalf("event %q names no notification", ev.EventID)
			}
			if ev.EventID == "" || ev.StatusRank == 0 || ev.Source != src {
				t.Fatalf("event row incomplete: %+v", ev)
			}
			inRange("occurred_at", ev.OccurredAt)
			if ev.DueAt != nil {
				inRange("due_at", *ev.DueAt)
			}
			if ev.ExpiresAt != nil {
				inRange("expires_at", *ev.ExpiresAt)
			}
		case kindDeadLetter:
			dl := x.dl
			if r.Topic != topics.DLQ {
				t.Fatalf("a dead letter row from %s", r.Topic)
			}
			if _, err := envelope.Parse(r.Headers); err != nil {
				t.Fatalf("dead letter row for headers that do not parse: %v", err)
			}
			if dl.Source != src || int(dl.ValueSize) != len(value) || len(dl.Value) > d.maxValue {
				t.Fatalf("dead letter row wrong: %+v", dl)
			}
			inRange("failed_at", dl.FailedAt)
			inRange("record_time", dl.RecordTime)
			if dl.FirstFailedAt != nil {
				inRange("first_failed_at", *dl.FirstFailedAt)
			}
			if dl.ValueValid == (dl.ValueError != "") {
				t.Fatalf("value_valid %t with value_error %q", dl.ValueValid, dl.ValueError)
			}
		case kindError:
			er := x.er
			if er.Reason == "" || er.Source != src || int(er.ValueSize) != len(value) || len(er.Value) > d.maxValue || len(er.Key) > 1024 {
				t.Fatalf("error row wrong: %+v", er)
			}
			inRange("record_time", er.RecordTime)
		default:
			t.Fatalf("unknown row kind %d", x.kind)
		}
	})
}

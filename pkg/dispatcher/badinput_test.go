package dispatcher

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/topics"
)

// Garbage in every topic the dispatcher reads, and retry records whose
// failure headers have the wrong types: each one is parked on the DLQ as
// poison with its original key and value and its origin, none is sent,
// and the valid notifications behind them on the same partition are
// delivered (the partition never stalls). A notification that expired two
// seconds before the dispatcher saw it (a producer's clock ahead of ours,
// within the skew ingest allows) is recorded expired and never sent.
func TestGarbageInEveryTopicIsParkedAndNothingStalls(t *testing.T) {
	e := newEnv(t, 1, simulator.Behavior{})
	w := e.watch()
	rcp := recipient(11)
	valid := func(key string) []byte {
		v, err := notification(key, rcp, "sender-1", "hello").Encode()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	now := time.Now().UTC()
	goodHeaders := func(origin envelope.Origin) []kgo.RecordHeader {
		f := envelope.Failure{Attempt: 1, DueAt: now, Origin: origin, Error: contract.ErrorInfo{Code: "http_503", Retryable: true},
			Class: envelope.ClassRetryable, FailedAt: now.Add(-time.Second), ReplayedFrom: -1}
		hs, err := f.Headers()
		if err != nil {
			t.Fatal(err)
		}
		return hs
	}
	// Readable failure headers name where a record first entered the
	// pipeline; each garbage record gets its own, so its DLQ record can be
	// told apart.
	next := int64(1000)
	fromRequested := func() envelope.Origin {
		next++
		return envelope.Origin{Topic: topics.Requested, Partition: 0, Offset: next}
	}
	withHeader := func(key, value string) []kgo.RecordHeader {
		return envelope.Set(goodHeaders(fromRequested()), key, value)
	}

	type garbage struct {
		name    string
		topic   string
		value   []byte
		headers []kgo.RecordHeader
	}
	var gs []garbage
	for _, tp := range append([]string{topics.Requested}, topics.RetryTiers...) {
		hs := func() []kgo.RecordHeader {
			if tp == topics.Requested {
				return nil
			}
			return goodHeaders(fromRequested())
		}
		gs = append(gs,
			garbage{name: "not JSON", topic: tp, value: []byte("not json at all"), headers: hs()},
			garbage{name: "truncated JSON", topic: tp, value: valid("k-trunc-" + tp)[:40], headers: hs()},
			garbage{name: "empty value", topic: tp, headers: hs()},
			garbage{name: "binary", topic: tp, value: []byte{0, 0xff, 0x7b, 0x80}, headers: hs()},
			garbage{name: "wrong types", topic: tp, value: []byte(`{"schema_version":"1","notification_id":7,"recipient":["+15550000011"]}`), headers: hs()},
			garbage{name: "invalid phone number", topic: tp, value: []byte(`{"schema_version":1,"notification_id":"x-` + tp + `","idempotency_key":"k","tenant":"acme","source_service":"s","event_type":"e","recipient":"12345","sender":"s","text":{"body":"b"},"created_at":"2026-01-01T00:00:00Z"}`), headers: hs()},
		)
	}
	for _, h := range []struct{ key, value string }{
		{envelope.HeaderAttempt, "one"},
		{envelope.HeaderAttempt, "-1"},
		{envelope.HeaderAttempt, "\xff\xfe"},
		{envelope.HeaderDueAt, "tomorrow"},
		{envelope.HeaderOriginPartition, "x"},
		{envelope.HeaderOriginOffset, "1.5"},
		{envelope.HeaderErrorRetryable, "maybe"},
		{envelope.HeaderFailedAt, "1764324002"},
	} {
		gs = append(gs, garbage{name: fmt.Sprintf("header %s=%q", h.key, h.value), topic: topics.Retry5s,
			value: valid("k-hdr-" + h.key + h.value), headers: withHeader(h.key, h.value)})
	}
	gs = append(gs,
		garbage{name: "no failure headers on a retry topic", topic: topics.Retry15s, value: valid("k-nohdr")},
		garbage{name: "retry record from another partition", topic: topics.Retry45s, value: valid("k-otherpart"),
			headers: goodHeaders(envelope.Origin{Topic: topics.Requested, Partition: 5, Offset: 9})},
	)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Where each DLQ record must say its record came from: the origin its
	// failure headers name when they are readable, else its own position.
	at := map[envelope.Origin]garbage{}
	for _, g := range gs {
		res := e.prod.ProduceSync(ctx, &kgo.Record{Topic: g.topic, Partition: 0, Key: []byte(rcp), Value: g.value, Headers: g.headers})
		r, err := res.First()
		if err != nil {
			t.Fatal(err)
		}
		o := envelope.Origin{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
		if f, err := envelope.Parse(g.headers); err == nil {
			o = f.Origin
		}
		if _, dup := at[o]; dup {
			t.Fatalf("two garbage records with origin %+v", o)
		}
		at[o] = g
	}
	// Behind the garbage, on the same partition: a notification to send
	// and one whose expiry passed two seconds ago.
	after := notification("k-after", rcp, "sender-1", "after the garbage")
	skewed := notification("k-skewed", rcp, "sender-1", "expired on arrival")
	past := time.Now().Add(-2 * time.Second).UTC()
	skewed.ExpiresAt = &past
	e.publish(after, skewed)

	cfg := testConfig("t-badinput")
	e.start(cfg)
	term := w.waitTerminal(t, []string{after.ID, skewed.ID}, 60*time.Second)
	if term[after.ID] != contract.StatusAccepted || term[skewed.ID] != contract.StatusExpired {
		t.Fatalf("after the garbage: %s %s, skewed expiry: %s, want accepted and expired", after.ID, term[after.ID], term[skewed.ID])
	}
	deadline := time.Now().Add(30 * time.Second)
	var dlq []*kgo.Record
	for {
		_, _, dlq = w.snapshot()
		if len(dlq) >= len(gs) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(dlq) != len(gs) {
		t.Fatalf("%d records on the DLQ, want one per garbage record (%d)", len(dlq), len(gs))
	}
	parked := map[envelope.Origin]bool{}
	for _, r := range dlq {
		f, err := envelope.Parse(r.Headers)
		if err != nil {
			t.Fatalf("DLQ record with unreadable failure headers: %v", err)
		}
		if f.DLQReason != envelope.ReasonPoison || f.Class != envelope.ClassPoison || f.Error.Message == "" || f.Error.Retryable {
			t.Errorf("DLQ failure %+v, want a non-retryable poison with a reason", f)
		}
		g, ok := at[f.Origin]
		if !ok || parked[f.Origin] {
			t.Errorf("DLQ record from %+v matches no garbage record, or one parked twice", f.Origin)
			continue
		}
		parked[f.Origin] = true
		if string(r.Value) != string(g.value) || string(r.Key) != rcp {
			t.Errorf("%s on %s: DLQ record value %q key %q, want the original", g.name, g.topic, r.Value, r.Key)
		}
	}
	for o, g := range at {
		if !parked[o] {
			t.Errorf("%s on %s (origin %+v) was not parked", g.name, g.topic, o)
		}
	}
	led := e.sim.Ledger()
	if led.Accepted != 1 || led.Entries[0].NotificationID != after.ID {
		t.Fatalf("provider took %d sends, want only %s: %+v", led.Accepted, after.ID, led.Entries)
	}
	// Every status event (the poison ones that named a notification
	// included) was committed once.
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, n := range w.events {
		if n != 1 {
			t.Errorf("status event %s committed %d times", id, n)
		}
	}
}

package sink

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

// Garbage in every topic the sink reads, and DLQ records whose failure
// headers have the wrong types, mixed with good records on one partition:
// each garbage record becomes exactly one ingest_errors row naming where
// it was and why, a DLQ record whose headers are fine but whose value is
// garbage is still a dead letter (value_valid false), the good records
// around them all land, and the sink commits everything (nothing stalls).
func TestGarbageInEveryTopicBecomesOneRowEachAndNothingStalls(t *testing.T) {
	db := testinfra.ClickHouseDatabase(t)
	brokers := testinfra.KafkaWithTopics(t, 1)
	cl := testinfra.Client(t, brokers)
	n, raw := sampleNotification(t)
	accepted, err := (&contract.StatusEvent{EventID: n.ID + "/accepted/1", NotificationID: n.ID, ProviderMessageID: "wamid.ok",
		Recipient: n.Recipient, Status: contract.StatusAccepted, Attempt: 1, OccurredAt: n.CreatedAt.Add(time.Second),
		Emitter: contract.EmitterDispatcher}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	failure := envelope.Failure{Attempt: 4, Origin: envelope.Origin{Topic: topics.Requested, Partition: 0, Offset: 1},
		Error: contract.ErrorInfo{Code: "http_503", Retryable: true}, Class: envelope.ClassRetryable,
		FailedAt: n.CreatedAt.Add(time.Minute), DLQReason: envelope.ReasonExhausted, NotificationID: n.ID, ReplayedFrom: -1}
	dlqHeaders, err := failure.Headers()
	if err != nil {
		t.Fatal(err)
	}
	key := []byte(n.Recipient)
	garbageValues := map[string][]byte{
		"not JSON":       []byte("not json"),
		"truncated JSON": raw[:len(raw)/2],
		"empty":          nil,
		"binary":         {0x00, 0xff, 0xfe},
		"wrong types":    []byte(`{"schema_version":"1","notification_id":7}`),
	}
	type sent struct {
		name  string
		error bool // must become an ingest_errors row
	}
	var recs []*kgo.Record
	var what []sent
	add := func(name string, isErr bool, r *kgo.Record) {
		r.Partition = 0
		recs = append(recs, r)
		what = append(what, sent{name, isErr})
	}
	add("good request", false, &kgo.Record{Topic: topics.Requested, Key: key, Value: raw})
	for name, v := range garbageValues {
		add("requested "+name, true, &kgo.Record{Topic: topics.Requested, Key: key, Value: v})
		add("status "+name, true, &kgo.Record{Topic: topics.Status, Key: key, Value: v})
		// Readable failure headers: still a dead letter, with the value
		// kept as it came and flagged invalid.
		add("dlq value "+name, false, &kgo.Record{Topic: topics.DLQ, Key: key, Value: v, Headers: dlqHeaders})
	}
	for _, h := range []struct{ k, v string }{
		{envelope.HeaderAttempt, "four"},
		{envelope.HeaderFailedAt, "yesterday"},
		{envelope.HeaderOriginOffset, "-3"},
		{envelope.HeaderErrorRetryable, "yes"},
		{envelope.HeaderDLQReason, "\xff"},
	} {
		add(fmt.Sprintf("dlq header %s=%q", h.k, h.v), true, &kgo.Record{Topic: topics.DLQ, Key: key, Value: raw,
			Headers: envelope.Set(dlqHeaders, h.k, h.v)})
	}
	add("dlq without failure headers", true, &kgo.Record{Topic: topics.DLQ, Key: key, Value: raw})
	add("good status after the garbage", false, &kgo.Record{Topic: topics.Status, Key: key, Value: accepted})
	add("good dead letter after the garbage", false, &kgo.Record{Topic: topics.DLQ, Key: key, Value: raw, Headers: dlqHeaders})
	produce(t, cl, recs)

	startSink(t, Config{Group: "sink-bad", BatchRows: 7, BatchInterval: 100 * time.Millisecond}, db.Options(), brokers)
	waitConsumed(t, kadm.NewClient(cl), "sink-bad", time.Minute)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errRows := map[string]string{}
	rows, err := db.Conn.Query(ctx, `SELECT toString(topic), offset, reason FROM ingest_errors`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var topic, reason string
		var off int64
		if err := rows.Scan(&topic, &off, &reason); err != nil {
			t.Fatal(err)
		}
		k := fmt.Sprintf("%s@%d", topic, off)
		if _, dup := errRows[k]; dup {
			t.Errorf("two ingest_errors rows for %s", k)
		}
		errRows[k] = reason
	}
	rows.Close()
	wantErrs := 0
	for i, r := range recs {
		k := fmt.Sprintf("%s@%d", r.Topic, r.Offset)
		reason, got := errRows[k]
		switch {
		case what[i].error && !got:
			t.Errorf("%s (%s): no ingest_errors row", what[i].name, k)
		case what[i].error && reason == "":
			t.Errorf("%s (%s): ingest_errors row without a reason", what[i].name, k)
		case !what[i].error && got:
			t.Errorf("%s (%s): refused as %q", what[i].name, k, reason)
		}
		if what[i].error {
			wantErrs++
		}
	}
	if len(errRows) != wantErrs {
		t.Errorf("%d ingest_errors rows, want %d", len(errRows), wantErrs)
	}
	if v := queryUint(t, db.Conn, `SELECT count() FROM dead_letters FINAL`); v != uint64(len(garbageValues)+1) {
		t.Errorf("%d dead letters, want %d", v, len(garbageValues)+1)
	}
	if v := queryUint(t, db.Conn, `SELECT countIf(NOT value_valid AND value_error != '') FROM dead_letters FINAL`); v != uint64(len(garbageValues)) {
		t.Errorf("%d dead letters flagged invalid with a reason, want %d", v, len(garbageValues))
	}
	logs := queryLogs(t, db.Conn)
	if r, ok := logs[n.ID]; !ok || r.Status != "accepted" || r.ProviderMessageID != "wamid.ok" || !r.Requested {
		t.Fatalf("the good notification around the garbage: %+v (found %t)", r, ok)
	}
	if len(logs) != 1 {
		t.Errorf("%d notifications in communication_logs, want only the good one", len(logs))
	}
}

package sink

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/privacy"
	"github.com/wanotify/wanotify/pkg/topics"
)

func testDecoder() *decoder {
	return &decoder{requested: topics.Requested, status: topics.Status, dlq: topics.DLQ, maxValue: 64}
}

func sampleNotification(t *testing.T) (*contract.Notification, []byte) {
	t.Helper()
	created := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)
	exp := created.Add(5 * time.Minute)
	n := &contract.Notification{
		IdempotencyKey: "u1:otp:1",
		Tenant:         "acme",
		SourceService:  "auth",
		EventType:      "otp",
		Recipient:      "+15551234567",
		Sender:         "acct-1",
		Template:       &contract.Template{Name: "otp_code", Language: "en_US", Parameters: []string{"123456"}},
		ExpiresAt:      &exp,
		CreatedAt:      created,
	}
	n.ID = contract.NotificationID(n.Tenant, n.IdempotencyKey)
	raw, err := n.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return n, raw
}

func rec(topic string, offset int64, key string, value []byte, hs ...kgo.RecordHeader) *kgo.Record {
	return &kgo.Record{Topic: topic, Partition: 3, Offset: offset, Key: []byte(key), Value: value, Headers: hs,
		Timestamp: time.Date(2026, 3, 1, 10, 0, 1, 0, time.UTC)}
}

func TestDecodeRequested(t *testing.T) {
	n, raw := sampleNotification(t)
	b := newBatch()
	testDecoder().add(b, rec(topics.Requested, 7, n.Recipient, raw))
	if len(b.Events) != 1 || len(b.Errors) != 0 || len(b.DeadLetters) != 0 {
		t.Fatalf("rows: %d events %d errors %d dead letters, want 1 event", len(b.Events), len(b.Errors), len(b.DeadLetters))
	}
	ev := b.Events[0]
	// The payload is the request without its one-time code.
	redacted := *n
	redacted.Template = &contract.Template{Name: "otp_code", Language: "en_US", Parameters: []string{privacy.RedactedCode}}
	stored, err := redacted.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := EventRow{
		EventID: n.ID + "/requested", NotificationID: n.ID, Status: "requested", StatusRank: 1,
		Tenant: "acme", SourceService: "auth", EventType: "otp", Template: "otp_code", TemplateLanguage: "en_US",
		Sender: "acct-1", Lane: "critical", Recipient: n.Recipient, IdempotencyKey: "u1:otp:1", Payload: string(stored),
		OccurredAt: n.CreatedAt, Source: Source{Topic: topics.Requested, Partition: 3, Offset: 7},
	}
	if ev.ExpiresAt == nil || !ev.ExpiresAt.Equal(*n.ExpiresAt) {
		t.Errorf("expires_at = %v, want %v", ev.ExpiresAt, n.ExpiresAt)
	}
	ev.ExpiresAt = nil
	if ev != want {
		t.Errorf("event row\n got %+v\nwant %+v", ev, want)
	}
	if b.Records() != 1 {
		t.Errorf("records = %d", b.Records())
	}
}

func TestDecodeStatusEvents(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 2, 0, time.UTC)
	cases := []struct {
		name string
		ev   contract.StatusEvent
		rank uint8
	}{
		{"dispatcher retry", contract.StatusEvent{EventID: "n1/retry_scheduled/1", NotificationID: "n1", Recipient: "+15551234567",
			Status: contract.StatusRetryScheduled, Attempt: 1, RetryTier: "5s", Error: &contract.ErrorInfo{Code: "http_503", Message: "unavailable", Retryable: true},
			OccurredAt: at, Emitter: contract.EmitterDispatcher, Tenant: "acme", EventType: "otp"}, 10},
		{"webhook without notification id", contract.StatusEvent{EventID: "wh/pm-1/read", ProviderMessageID: "pm-1", Recipient: "+15551234567",
			Status: contract.StatusRead, OccurredAt: at, Emitter: contract.EmitterWebhook, Provider: "xpressbot"}, 50},
		{"webhook failure", contract.StatusEvent{EventID: "wh/pm-2/failed", NotificationID: "n2", ProviderMessageID: "pm-2", Recipient: "+15551234567",
			Status: contract.StatusFailed, Error: &contract.ErrorInfo{Code: "131026", Message: "undeliverable"}, OccurredAt: at, Emitter: contract.EmitterWebhook}, 100},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw, err := c.ev.Encode()
			if err != nil {
				t.Fatal(err)
			}
			b := newBatch()
			testDecoder().add(b, rec(topics.Status, int64(i), c.ev.Recipient, raw))
			if len(b.Events) != 1 {
				t.Fatalf("want one event, got errors %+v", b.Errors)
			}
			ev := b.Events[0]
			if ev.EventID != c.ev.EventID || ev.NotificationID != c.ev.NotificationID || ev.ProviderMessageID != c.ev.ProviderMessageID ||
				ev.Status != string(c.ev.Status) || ev.StatusRank != c.rank || !ev.OccurredAt.Equal(at) || ev.Emitter != c.ev.Emitter ||
				ev.Attempt != uint16(c.ev.Attempt) || ev.Payload != "" {
				t.Errorf("row %+v does not reflect %+v", ev, c.ev)
			}
			if c.ev.Error != nil && (ev.ErrorCode != c.ev.Error.Code || ev.ErrorMessage != c.ev.Error.Message || ev.ErrorRetryable != c.ev.Error.Retryable) {
				t.Errorf("error columns %q %q %v, want %+v", ev.ErrorCode, ev.ErrorMessage, ev.ErrorRetryable, c.ev.Error)
			}
		})
	}
}

func TestDecodePoisonBecomesErrorRow(t *testing.T) {
	n, raw := sampleNotification(t)
	noIDs, err := (&contract.StatusEvent{EventID: "x1", Recipient: n.Recipient, Status: contract.StatusSent,
		OccurredAt: time.Now(), Emitter: contract.EmitterIngest}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	farFuture := strings.Replace(string(raw), n.CreatedAt.Format(time.RFC3339Nano), "2999-01-01T00:00:00Z", 1)
	cases := []struct {
		name, topic string
		value       []byte
		headers     []kgo.RecordHeader
		reason      string
	}{
		{"not json", topics.Requested, []byte("\x00\xffgarbage"), nil, "notifications.requested value"},
		{"schema violation", topics.Requested, []byte(`{"schema_version":1,"notification_id":"x"}`), nil, "notifications.requested value"},
		{"time out of range", topics.Requested, []byte(farFuture), nil, "created_at"},
		{"status without ids", topics.Status, noIDs, nil, "neither notification_id nor provider_message_id"},
		{"status not json", topics.Status, []byte("{"), nil, "notifications.status value"},
		{"dlq without envelope", topics.DLQ, raw, nil, "failure headers"},
		{"dlq with invalid envelope", topics.DLQ, raw, []kgo.RecordHeader{{Key: envelope.HeaderAttempt, Value: []byte("x")}}, "failure headers"},
		{"unknown topic", "other", raw, nil, "not consumed"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBatch()
			r := rec(c.topic, int64(100+i), "+15551234567", c.value, c.headers...)
			testDecoder().add(b, r)
			if len(b.Errors) != 1 || len(b.Events) != 0 || len(b.DeadLetters) != 0 {
				t.Fatalf("want exactly one error row, got %d events %d errors %d dead letters", len(b.Events), len(b.Errors), len(b.DeadLetters))
			}
			e := b.Errors[0]
			if e.Topic != c.topic || e.Partition != 3 || e.Offset != int64(100+i) || e.Key != "+15551234567" {
				t.Errorf("error row source %+v key %q", e.Source, e.Key)
			}
			if !strings.Contains(e.Reason, c.reason) {
				t.Errorf("reason %q does not contain %q", e.Reason, c.reason)
			}
			// The value is kept (cut) with its content hidden: the
			// one-time code never, other JSON as it came, non-JSON as a
			// marker.
			want := truncate(defaultRedactor.Value(c.value), 64)
			if int(e.ValueSize) != len(c.value) || e.Value != want || strings.Contains(e.Value, `"123456"`) {
				t.Errorf("value %q (size %d), want %q of %d bytes", e.Value, e.ValueSize, want, len(c.value))
			}
			if !strings.Contains(string(c.value), `"123456"`) && json.Valid(c.value) && !strings.HasPrefix(string(c.value), e.Value) {
				t.Errorf("value %q without content is not the cut original", e.Value)
			}
		})
	}
}

func TestDecodeDeadLetter(t *testing.T) {
	n, raw := sampleNotification(t)
	failedAt := time.Date(2026, 3, 1, 10, 1, 10, 0, time.UTC)
	f := envelope.Failure{
		Attempt: 4, Origin: envelope.Origin{Topic: topics.Requested, Partition: 3, Offset: 41},
		Error: contract.ErrorInfo{Code: "http_503", Message: "unavailable", Retryable: true},
		Class: envelope.ClassRetryable, FailedAt: failedAt, FirstFailedAt: failedAt.Add(-time.Minute),
		DLQReason: envelope.ReasonExhausted, NotificationID: n.ID, Tenant: n.Tenant, EventType: n.EventType,
		ReplayCount: 1, ReplayedFrom: 17,
	}
	hs, err := f.Headers()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("valid value", func(t *testing.T) {
		b := newBatch()
		testDecoder().add(b, rec(topics.DLQ, 9, n.Recipient, raw, hs...))
		if len(b.DeadLetters) != 1 {
			t.Fatalf("want a dead letter, got errors %+v", b.Errors)
		}
		d := b.DeadLetters[0]
		if d.NotificationID != n.ID || d.Tenant != "acme" || d.EventType != "otp" || d.Template != "otp_code" || d.Recipient != n.Recipient ||
			d.Reason != "exhausted" || d.ErrorClass != "retryable" || d.ErrorCode != "http_503" || !d.ErrorRetryable || d.Attempt != 4 ||
			d.OriginTopic != topics.Requested || d.OriginPartition != 3 || d.OriginOffset != 41 || !d.FailedAt.Equal(failedAt) ||
			d.FirstFailedAt == nil || !d.FirstFailedAt.Equal(failedAt.Add(-time.Minute)) || d.ReplayCount != 1 ||
			d.ReplayedFromOffset == nil || *d.ReplayedFromOffset != 17 || !d.ValueValid || d.ValueError != "" || int(d.ValueSize) != len(raw) {
			t.Errorf("dead letter %+v", d)
		}
		if strings.Contains(d.Value, `"123456"`) {
			t.Errorf("dead letter value keeps the one-time code: %s", d.Value)
		}
	})
	t.Run("poison value keeps its context", func(t *testing.T) {
		pf := f
		pf.NotificationID, pf.Tenant, pf.EventType, pf.DLQReason, pf.Class = "", "", "", envelope.ReasonPoison, envelope.ClassPoison
		phs, err := pf.Headers()
		if err != nil {
			t.Fatal(err)
		}
		b := newBatch()
		testDecoder().add(b, rec(topics.DLQ, 10, "k", []byte("not a notification"), phs...))
		if len(b.DeadLetters) != 1 {
			t.Fatalf("want a dead letter, got errors %+v", b.Errors)
		}
		d := b.DeadLetters[0]
		if d.ValueValid || d.ValueError == "" || d.NotificationID != "" || d.Reason != "poison" || d.Value != "[redacted: 18 bytes, not a JSON object]" {
			t.Errorf("poison dead letter %+v", d)
		}
	})
}

func TestBatchTokenAndCommitPositions(t *testing.T) {
	_, raw := sampleNotification(t)
	build := func(offsets ...int64) *Batch {
		b := newBatch()
		for _, o := range offsets {
			testDecoder().add(b, &kgo.Record{Topic: topics.Requested, Partition: int32(o % 2), Offset: o, Value: raw})
		}
		b.seal()
		return b
	}
	a, again, other := build(1, 2, 3, 4), build(1, 2, 3, 4), build(1, 2, 3)
	if a.Token != again.Token {
		t.Errorf("same records, different tokens %s %s", a.Token, again.Token)
	}
	if a.Token == other.Token {
		t.Errorf("different records share token %s", a.Token)
	}
	got := map[int32]int64{}
	for _, r := range a.lastRecords() {
		got[r.Partition] = r.Offset
	}
	if len(got) != 2 || got[0] != 4 || got[1] != 3 {
		t.Errorf("commit positions %v, want partition 0 at 4 and 1 at 3", got)
	}
}

func TestPrecedence(t *testing.T) {
	order := []string{"requested", "duplicate", "retry_scheduled", "outcome_unknown", "expired", "accepted", "sent", "delivered", "read", "dead_lettered", "failed"}
	for i := 1; i < len(order); i++ {
		if Precedence(order[i-1]) >= Precedence(order[i]) {
			t.Errorf("Precedence(%s)=%d is not below Precedence(%s)=%d", order[i-1], Precedence(order[i-1]), order[i], Precedence(order[i]))
		}
	}
	for _, s := range contract.Statuses {
		if Precedence(string(s)) == 0 {
			t.Errorf("status %s has no precedence", s)
		}
	}
	if Precedence("bogus") != 0 {
		t.Error("unknown status must rank 0")
	}
}

func TestMaskPhones(t *testing.T) {
	got := maskPhones("/recipient: '+15551234567' does not match pattern; offset 12")
	if strings.Contains(got, "5551234567") || !strings.Contains(got, "offset 12") {
		t.Errorf("maskPhones = %q", got)
	}
}

func TestTruncateKeepsUTF8(t *testing.T) {
	s := strings.Repeat("é", 10) // 2 bytes each
	for n := 0; n <= len(s); n++ {
		got := truncate(s, n)
		if len(got) > n || !utf8.ValidString(got) || !strings.HasPrefix(s, got) {
			t.Fatalf("truncate(%d) = %q", n, got)
		}
	}
}

// TestBatchTokenLayout pins what the token hashes: per record the topic,
// then partition (4 bytes), offset and value length (8 bytes each, big
// endian), then the value. A retried batch must carry the same token as
// its first attempt, also across a restart on a newer version.
func TestBatchTokenLayout(t *testing.T) {
	recs := []*kgo.Record{
		{Topic: topics.Status, Partition: 3, Offset: 1 << 40, Value: []byte(`{"x":1}`)},
		{Topic: topics.Requested, Partition: 0, Offset: 7, Value: nil},
	}
	want := sha256.New()
	for _, r := range recs {
		want.Write([]byte(r.Topic))
		var n [20]byte
		binary.BigEndian.PutUint32(n[0:], uint32(r.Partition))
		binary.BigEndian.PutUint64(n[4:], uint64(r.Offset))
		binary.BigEndian.PutUint64(n[12:], uint64(len(r.Value)))
		want.Write(n[:])
		want.Write(r.Value)
	}
	b := newBatch()
	testDecoder().decodeInto(b, recs)
	b.seal()
	if w := hex.EncodeToString(want.Sum(nil)); b.Token != w {
		t.Errorf("token %s, want %s", b.Token, w)
	}
}

// TestDecodeIntoMixedRecordsKeepsOrder decodes, in one call spread over
// workers, a mix of events, poison records and dead letters: every record
// becomes the row decode gives it alone, events stay in record order with
// no gap or leftover of the rows that went elsewhere, and undecodable
// records are counted per topic.
func TestDecodeIntoMixedRecordsKeepsOrder(t *testing.T) {
	_, raw := sampleNotification(t)
	hs, err := (&envelope.Failure{Attempt: 1, Origin: envelope.Origin{Topic: topics.Requested}, Class: envelope.ClassPoison,
		Error:     contract.ErrorInfo{Code: "invalid_json", Message: "not JSON"},
		DLQReason: envelope.ReasonPoison, FailedAt: time.Date(2026, 3, 1, 10, 1, 0, 0, time.UTC)}).Headers()
	if err != nil {
		t.Fatal(err)
	}
	status, err := (&contract.StatusEvent{EventID: "e/1", NotificationID: "n-1", ProviderMessageID: "wamid.1", Recipient: "+15551234567", Status: contract.StatusSent,
		OccurredAt: time.Date(2026, 3, 1, 10, 0, 2, 0, time.UTC), Emitter: contract.EmitterWebhook}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range 3 * parallelMin {
		var r *kgo.Record
		switch {
		case i%7 == 3:
			r = rec(topics.Status, int64(i), "k", []byte("{broken"))
		case i%11 == 5:
			r = rec(topics.DLQ, int64(i), "k", []byte("poison"), hs...)
		case i%13 == 0:
			r = rec(topics.Requested, int64(i), "k", raw[:len(raw)/2])
		case i%2 == 0:
			r = rec(topics.Status, int64(i), "k", status)
		default:
			r = rec(topics.Requested, int64(i), "k", raw)
		}
		recs = append(recs, r)
	}
	d := testDecoder()
	b := newBatch()
	// Two calls, as two polls filling one batch.
	errs := d.decodeInto(b, recs[:100])
	for topic, n := range d.decodeInto(b, recs[100:]) {
		if errs == nil {
			errs = map[string]int{}
		}
		errs[topic] += n
	}

	var want Batch
	wantErrs := map[string]int{}
	for _, r := range recs {
		x := d.decode(r)
		switch x.kind {
		case kindEvent:
			want.Events = append(want.Events, x.ev)
		case kindDeadLetter:
			want.DeadLetters = append(want.DeadLetters, x.dl)
		default:
			want.Errors = append(want.Errors, x.er)
			wantErrs[r.Topic]++
		}
	}
	if b.Records() != len(recs) {
		t.Errorf("batch holds %d records, want %d", b.Records(), len(recs))
	}
	if len(want.Events) == 0 || len(want.Errors) == 0 || len(want.DeadLetters) == 0 {
		t.Fatalf("the mix lacks a kind: %d events, %d errors, %d dead letters", len(want.Events), len(want.Errors), len(want.DeadLetters))
	}
	if !reflect.DeepEqual(b.Events, want.Events) {
		t.Errorf("events differ from decoding one by one (%d rows, want %d)", len(b.Events), len(want.Events))
	}
	if !reflect.DeepEqual(b.Errors, want.Errors) || !reflect.DeepEqual(b.DeadLetters, want.DeadLetters) {
		t.Errorf("errors or dead letters differ from decoding one by one (%d and %d rows, want %d and %d)",
			len(b.Errors), len(b.DeadLetters), len(want.Errors), len(want.DeadLetters))
	}
	if !reflect.DeepEqual(errs, wantErrs) {
		t.Errorf("undecodable per topic %v, want %v", errs, wantErrs)
	}
	if tail := b.Events[len(b.Events):cap(b.Events)]; !reflect.DeepEqual(tail, make([]EventRow, len(tail))) {
		t.Error("rows beyond the events still hold data")
	}
}

// TestDecodeStoresContentOnlyForOptedInTenants: the payload of an
// opted-in tenant's request is stored as sent; another tenant's has its
// parameters and metadata hidden, in the event and in the dead letter.
func TestDecodeStoresContentOnlyForOptedInTenants(t *testing.T) {
	d := testDecoder()
	d.maxValue = 64 << 10
	d.red = privacy.New(privacy.Policy{StoreContentTenants: []string{"acme"}})
	build := func(tenant string) (*contract.Notification, []byte) {
		n := &contract.Notification{IdempotencyKey: "inv-7", Tenant: tenant, SourceService: "billing", EventType: "invoice.reminder",
			Recipient: "+15551234567", Sender: "acct-1", CreatedAt: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
			Template: &contract.Template{Name: "invoice_due", Language: "en_US", Parameters: []string{"Jane Roe", "$310.00"}},
			Metadata: map[string]string{"customer": "C-77"}}
		n.ID = contract.NotificationID(tenant, n.IdempotencyKey)
		raw, err := n.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return n, raw
	}
	hs, err := (&envelope.Failure{Attempt: 1, Origin: envelope.Origin{Topic: topics.Requested}, Error: contract.ErrorInfo{Code: "131026"}, Class: envelope.ClassPermanent,
		FailedAt: time.Date(2026, 3, 1, 10, 1, 0, 0, time.UTC), DLQReason: envelope.ReasonPermanent, ReplayedFrom: -1}).Headers()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tenant string
		kept   bool
	}{{"acme", true}, {"globex", false}} {
		n, raw := build(c.tenant)
		b := newBatch()
		d.add(b, rec(topics.Requested, 1, n.Recipient, raw))
		d.add(b, rec(topics.DLQ, 2, n.Recipient, raw, hs...))
		if len(b.Events) != 1 || len(b.DeadLetters) != 1 {
			t.Fatalf("%s: %d events, %d dead letters, errors %+v", c.tenant, len(b.Events), len(b.DeadLetters), b.Errors)
		}
		for what, v := range map[string]string{"payload": b.Events[0].Payload, "dead letter value": b.DeadLetters[0].Value} {
			if c.kept && v != string(raw) {
				t.Errorf("%s (opted in): %s changed: %s", c.tenant, what, v)
			}
			if !c.kept && (strings.Contains(v, "Jane") || strings.Contains(v, "310") || strings.Contains(v, "C-77") || !strings.Contains(v, privacy.Redacted)) {
				t.Errorf("%s (not opted in): %s keeps content: %s", c.tenant, what, v)
			}
		}
	}
}

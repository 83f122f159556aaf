package dlq

import (
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
)

func TestParseRef(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    Ref
		ok, err bool
	}{
		{"3/1042", Ref{3, 1042}, true, false},
		{"3@1042", Ref{3, 1042}, true, false},
		{"notifications.dlq-3@1042", Ref{3, 1042}, true, false},
		{"notifications.dlq/3/1042", Ref{3, 1042}, true, false},
		{"0/0", Ref{0, 0}, true, false},
		{"notifications.status-3@1042", Ref{}, true, true},
		{"3/99999999999999999999", Ref{}, false, false},
		{"5b0c8f0e-8a43-5d1e-9a57-0b2c0a6c2d11", Ref{}, false, false},
		{"", Ref{}, false, false},
		{"3/", Ref{}, false, false},
		{"-1/2", Ref{}, false, false},
	} {
		got, ok, err := ParseRef(c.in)
		if ok != c.ok || (err != nil) != c.err || (err == nil && got != c.want) {
			t.Errorf("ParseRef(%q) = %v, %v, %v; want %v, %v, err %v", c.in, got, ok, err, c.want, c.ok, c.err)
		}
		if ok && err == nil {
			if back, _, _ := ParseRef(got.String()); back != got {
				t.Errorf("%v does not survive String and ParseRef", got)
			}
		}
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"3/1042", "notifications.dlq-3@1042", "x/1/2", "1@", "9999999/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, ok, err := ParseRef(s)
		if ok && err == nil {
			if ref.Partition < 0 || ref.Offset < 0 {
				t.Fatalf("%q gave negative %v", s, ref)
			}
			if back, ok2, err2 := ParseRef(ref.String()); !ok2 || err2 != nil || back != ref {
				t.Fatalf("%q: %v does not round-trip", s, ref)
			}
		}
	})
}

func TestReplayRecordKeepsValueKeyPartitionAndTraceButNoFailure(t *testing.T) {
	f := envelope.Failure{Attempt: 4, Origin: envelope.Origin{Topic: "notifications.requested"},
		Error: contract.ErrorInfo{Code: "http_503", Retryable: true}, FailedAt: time.Now(), ReplayCount: 2, ReplayedFrom: 9,
		NotificationID: "n-1", Tenant: "acme", EventType: "otp", DLQReason: envelope.ReasonExhausted}
	hs, err := f.Headers()
	if err != nil {
		t.Fatal(err)
	}
	hs = append(hs, kgo.RecordHeader{Key: "traceparent", Value: []byte("00-abc-def-01")})
	r := NewRecord(&kgo.Record{Partition: 7, Offset: 41, Key: []byte("+447100900123"), Value: []byte("raw bytes"), Headers: hs})
	if r.Failure == nil || r.ReplayCount() != 2 {
		t.Fatalf("failure not read: %v %v", r.Failure, r.FailureErr)
	}
	out := ReplayRecord(r, "notifications.requested", 3)
	if out.Partition != 7 || string(out.Key) != "+447100900123" || string(out.Value) != "raw bytes" || out.Topic != "notifications.requested" {
		t.Fatalf("replay record %+v", out)
	}
	want := map[string]string{
		envelope.HeaderReplayCount: "3", envelope.HeaderReplayedFromOffset: strconv.Itoa(41),
		envelope.HeaderNotificationID: "n-1", envelope.HeaderTenant: "acme", "traceparent": "00-abc-def-01",
	}
	if len(out.Headers) != len(want) {
		t.Errorf("headers %v, want exactly %v", out.Headers, want)
	}
	for _, h := range out.Headers {
		if want[h.Key] != string(h.Value) {
			t.Errorf("header %s = %q, want %q", h.Key, h.Value, want[h.Key])
		}
	}
}

func TestClassification(t *testing.T) {
	mk := func(reason string, retryable bool, value string) *Record {
		f := envelope.Failure{Attempt: 1, Origin: envelope.Origin{Topic: "notifications.requested"},
			Error: contract.ErrorInfo{Code: "x", Retryable: retryable}, FailedAt: time.Now(), DLQReason: reason, ReplayedFrom: -1}
		hs, err := f.Headers()
		if err != nil {
			t.Fatal(err)
		}
		return NewRecord(&kgo.Record{Value: []byte(value), Headers: hs})
	}
	if r := mk(envelope.ReasonExhausted, false, "{}"); !r.Permanent() {
		t.Error("exhausted with a non-retryable last error is permanent")
	}
	if r := mk(envelope.ReasonPermanent, true, "{}"); !r.Permanent() {
		t.Error("reason permanent is permanent")
	}
	if r := mk(envelope.ReasonPoison, false, "{}"); r.Permanent() || !r.Poison() {
		t.Error("poison is poison, not permanent")
	}
	if r := mk(envelope.ReasonExhausted, true, "not json"); r.Permanent() || !r.Poison() {
		t.Error("an undecodable value is poison whatever the reason")
	}
	if r := NewRecord(&kgo.Record{Value: []byte("x")}); r.Failure != nil || r.FailureErr == nil || r.Reason() != "" {
		t.Error("a record without failure headers has no failure")
	}
}

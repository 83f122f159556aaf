package dispatcher

import (
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/simulator"
)

// TestRecordsWithUnsendableTextArePoison: a notifications.requested
// record written past ingest and the SDK (by hand, by another producer)
// whose text could not reach WhatsApp as written, or that repeats a
// member, is parked on the DLQ as poison with the reason naming the field,
// and nothing of it is sent.
func TestRecordsWithUnsendableTextArePoison(t *testing.T) {
	e := newEnv(t, 1, simulator.Behavior{})
	w := e.watch()
	rcp := recipient(12)
	base := func(id string) string {
		return `{"schema_version":1,"notification_id":"` + id + `","idempotency_key":"` + id + `","tenant":"acme","source_service":"s","event_type":"e","recipient":"` + rcp + `","sender":"sender-1","created_at":"2026-01-01T00:00:00Z",`
	}
	cases := map[string]string{
		"/template/parameters/1": base("p-nul") + `"template":{"name":"otp","language":"en","parameters":["ok","a\u0000b"]}}`,
		"/text/body":             base("p-utf8") + "\"text\":{\"body\":\"a\xffb\"}}",
		"/recipient":             base("p-dup") + `"recipient":"+12025550000","text":{"body":"hi"}}`,
		"/metadata/k":            base("p-dupmeta") + `"text":{"body":"hi"},"metadata":{"k":"1","k":"2"}}`,
	}
	for _, v := range cases {
		e.publishRaw([]byte(rcp), []byte(v))
	}
	e.start(testConfig("t-textpoison"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, _, dlq := w.snapshot()
		if len(dlq) >= len(cases) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records on the DLQ, want %d", len(dlq), len(cases))
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, _, dlq := w.snapshot()
	named := map[string]bool{}
	for _, r := range dlq {
		f, err := envelope.Parse(r.Headers)
		if err != nil {
			t.Fatal(err)
		}
		if f.DLQReason != envelope.ReasonPoison {
			t.Errorf("DLQ reason %q, want poison", f.DLQReason)
		}
		for field, v := range cases {
			if string(r.Value) == v {
				if !strings.Contains(f.Error.Message, field) {
					t.Errorf("poison reason %q does not name %s", f.Error.Message, field)
				}
				named[field] = true
			}
		}
	}
	if len(named) != len(cases) {
		t.Fatalf("parked %v, want every case", named)
	}
	if n := e.sim.Ledger().Accepted; n != 0 {
		t.Fatalf("%d sends, want none", n)
	}
}

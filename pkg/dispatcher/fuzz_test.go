package dispatcher

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/dispatcher/order"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/topics"
)

// refusingProvider is never called by the poison path.
type refusingProvider struct{}

func (refusingProvider) Name() string { return "fuzz" }
func (refusingProvider) Send(context.Context, provider.Message) (string, error) {
	return "", errors.New("the poison path must not call the provider")
}

// FuzzPoison feeds arbitrary records (value, key and headers, on
// notifications.requested or a retry topic) to the dispatcher's path for
// records it cannot deliver. Whatever the record holds, it ends up on the
// DLQ with its original key and value, failure headers that parse with
// reason and class "poison" and the record's origin, and at most one
// status event, which is valid and says dead_lettered.
func FuzzPoison(f *testing.F) {
	valid := `{"schema_version":1,"notification_id":"6f1c2a4e-8a0b-5d7e-9c3f-2b1a0e9d8c7b","idempotency_key":"k","tenant":"acme",` +
		`"source_service":"auth","event_type":"otp","recipient":"+447700900123","sender":"acct-1",` +
		`"template":{"name":"otp","language":"en"},"created_at":"2026-03-01T10:00:00Z"}`
	f.Add(false, []byte("+447700900123"), []byte("not json"), "")
	f.Add(false, []byte("+447700900123"), []byte(valid), "")
	f.Add(false, []byte("+447700900123"), []byte(valid[:60]), "")
	f.Add(false, []byte("not a number"), []byte(`{"notification_id":"x","recipient":"12345","tenant":"`+strings.Repeat("t", 100)+`"}`), "")
	f.Add(true, []byte("+447700900123"), []byte(valid), "wanotify-attempt=one\nwanotify-due-at=yesterday\n")
	f.Add(true, []byte("+447700900123"), []byte(valid), "wanotify-attempt=1\nwanotify-origin-topic=notifications.requested\n"+
		"wanotify-origin-partition=7\nwanotify-origin-offset=3\nwanotify-error-code=http_503\nwanotify-error-retryable=true\n"+
		"wanotify-failed-at=2026-03-01T10:00:00Z\nwanotify-due-at=2026-03-01T10:00:05Z\ntraceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n")
	f.Add(true, []byte(nil), []byte(nil), "wanotify-error-code=\n")

	d, err := New(DefaultConfig(), refusingProvider{}, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	if d.met, err = newMetrics(d); err != nil {
		f.Fatal(err)
	}
	defer d.met.close()
	d.dispatchCtx, d.dispatchCancel = context.WithCancel(context.Background())
	defer d.dispatchCancel()

	f.Fuzz(func(t *testing.T, retry bool, key, value []byte, headers string) {
		topic := topics.Requested
		if retry {
			topic = topics.Retry5s
		}
		var hs []kgo.RecordHeader
		for _, line := range strings.Split(headers, "\n") {
			if line != "" {
				k, v, _ := strings.Cut(line, "=")
				hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
			}
		}
		r := &kgo.Record{Topic: topic, Partition: 2, Offset: 99, Key: key, Value: value, Headers: hs}
		p := d.newPart(tp{topic, 2})
		it := &order.Item{Offset: r.Offset, Key: string(key)}
		rc := &rec{item: it, part: p, r: r}
		it.Value = rc
		p.tr.Add(it)
		if retry {
			rc.env, rc.envErr = envelope.Parse(hs)
			if rc.envErr != nil {
				rc.env = nil
			}
		}
		d.poison(rc, errors.New("fuzzed record"))
		dr, ok := p.tr.Drain()
		if !ok || len(dr.Outputs) != 1 {
			t.Fatalf("the poison record was not finished: %+v", dr)
		}
		outs, _ := dr.Outputs[0].([]*kgo.Record)
		if len(outs) == 0 || len(outs) > 2 {
			t.Fatalf("%d outputs, want the DLQ record and at most one status event", len(outs))
		}
		dlq := outs[0]
		if dlq.Topic != topics.DLQ || dlq.Partition != r.Partition || !bytes.Equal(dlq.Key, key) || !bytes.Equal(dlq.Value, value) {
			t.Fatalf("DLQ record %s/%d key %q does not keep the original record", dlq.Topic, dlq.Partition, dlq.Key)
		}
		fl, err := envelope.Parse(dlq.Headers)
		if err != nil {
			t.Fatalf("the DLQ record's failure headers do not parse: %v\n%v", err, dlq.Headers)
		}
		if fl.DLQReason != envelope.ReasonPoison || fl.Class != envelope.ClassPoison || fl.Error.Retryable {
			t.Fatalf("DLQ failure %+v, want reason and class poison, not retryable", fl)
		}
		want := envelope.Origin{Topic: topic, Partition: r.Partition, Offset: r.Offset}
		if rc.env != nil {
			want = rc.env.Origin
		}
		if fl.Origin != want {
			t.Fatalf("origin %+v, want %+v", fl.Origin, want)
		}
		for _, h := range hs {
			if !strings.HasPrefix(h.Key, "wanotify-") && envelope.Get(dlq.Headers, h.Key) != envelope.Get(hs, h.Key) {
				t.Fatalf("foreign header %q not kept", h.Key)
			}
		}
		if len(outs) == 2 {
			st := outs[1]
			ev, err := contract.DecodeStatusEvent(st.Value)
			if err != nil {
				t.Fatalf("status event invalid: %v", err)
			}
			if st.Topic != topics.Status || ev.Status != contract.StatusDeadLettered || ev.NotificationID == "" || string(st.Key) != ev.Recipient {
				t.Fatalf("status event %+v on %s keyed %q", ev, st.Topic, st.Key)
			}
		}
	})
}

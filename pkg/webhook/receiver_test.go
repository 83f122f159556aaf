package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/metawebhook"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
	"github.com/wanotify/wanotify/pkg/webhook/payload"
)

func outcome(o string) attribute.KeyValue { return attribute.String("outcome", o) }

func TestHandshake(t *testing.T) {
	h := newHarness(t, nil, nil)
	ok := h.get("hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444")
	if ok.status != http.StatusOK || string(ok.body) != "1158201444" {
		t.Fatalf("handshake: %d %q, want 200 and the challenge", ok.status, ok.body)
	}
	if ct := ok.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("challenge Content-Type %q, want text/plain", ct)
	}

	wrong := h.get("hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1158201444")
	if wrong.status != http.StatusForbidden || strings.Contains(string(wrong.body), "1158201444") {
		t.Fatalf("wrong token: %d %s, want 403 without the challenge", wrong.status, wrong.body)
	}
	if p := wrong.problem(t); p.Type != ProblemHandshake {
		t.Errorf("problem type %q", p.Type)
	}

	missing := h.get("hub.mode=subscribe")
	if missing.status != http.StatusBadRequest {
		t.Fatalf("missing params: %d, want 400", missing.status)
	}
	named := map[string]bool{}
	for _, f := range missing.problem(t).Errors {
		named[f.Field] = true
	}
	if !named["hub.verify_token"] || !named["hub.challenge"] || named["hub.mode"] {
		t.Errorf("problem names %v, want hub.verify_token and hub.challenge", sortedKeys(named))
	}
	if got := h.get("hub.mode=unsubscribe&hub.verify_token=verify-me&hub.challenge=1"); got.status != http.StatusBadRequest {
		t.Errorf("mode unsubscribe: %d, want 400", got.status)
	}

	if n := counter(t, h.reader, "wanotify.webhook.requests", outcome(OutcomeVerified)); n != 1 {
		t.Errorf("verified requests %d, want 1", n)
	}
	if n := counter(t, h.reader, "wanotify.webhook.verification.failures", attribute.String("reason", ReasonWrongVerifyToken)); n != 1 {
		t.Errorf("wrong-token failures %d, want 1", n)
	}
	if n := counter(t, h.reader, "wanotify.webhook.verification.failures", attribute.String("reason", ReasonBadHandshake)); n != 2 {
		t.Errorf("bad-handshake failures %d, want 2", n)
	}
}

func TestHandshakeRefusedWithoutConfiguredToken(t *testing.T) {
	h := newHarness(t, nil, func(c *Config) { c.VerifyToken = "" })
	if got := h.get("hub.mode=subscribe&hub.verify_token=anything&hub.challenge=1"); got.status != http.StatusForbidden {
		t.Fatalf("%d, want 403 when no token is configured", got.status)
	}
}

func TestSignedWebhookProducesEveryStatusKeyedByRecipient(t *testing.T) {
	h := newHarness(t, nil, nil)
	recipients := []string{"447700900123", "14155550100", "919876543210"}
	var sts []metawebhook.Status
	want := map[string]contract.StatusEvent{}
	ts := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC).Unix()
	for i, r := range recipients {
		for m := range 4 {
			id := fmt.Sprintf("wamid.%d.%d", i, m)
			nid := fmt.Sprintf("00000000-0000-5000-8000-%012d", i*10+m)
			for j, s := range []string{"sent", "delivered", "read"} {
				st := metaStatus(id, s, r, ts+int64(j))
				if m%2 == 0 {
					st.BizOpaqueCallbackData = nid
				}
				sts = append(sts, st)
				ev := contract.StatusEvent{ProviderMessageID: id, Recipient: "+" + r, Status: contract.Status(s), OccurredAt: time.Unix(ts+int64(j), 0).UTC()}
				if m%2 == 0 {
					ev.NotificationID = nid
				}
				want[contract.WebhookEventID(id, contract.Status(s))] = ev
			}
		}
	}
	failed := metaStatus("wamid.f", "failed", recipients[0], ts)
	failed.Errors = []metawebhook.Error{{Code: 131047, Title: "Re-engagement message"}}
	sts = append(sts, failed)
	want[contract.WebhookEventID("wamid.f", contract.StatusFailed)] = contract.StatusEvent{ProviderMessageID: "wamid.f",
		Recipient: "+" + recipients[0], Status: contract.StatusFailed, OccurredAt: time.Unix(ts, 0).UTC(),
		Error: &contract.ErrorInfo{Code: "meta_131047", Message: "Re-engagement message"}}

	got := h.post(mustJSON(t, metaPayload(sts...)))
	if got.status != http.StatusOK {
		t.Fatalf("status %d %s, want 200", got.status, got.body)
	}
	recs := consumeStatus(t, h.brokers, len(want))
	partitionOf := map[string]int32{}
	for _, r := range recs {
		ev := decodeEvent(t, r)
		w, ok := want[ev.EventID]
		if !ok {
			t.Fatalf("unexpected event %s", ev.EventID)
		}
		delete(want, ev.EventID)
		if string(r.Key) != ev.Recipient || ev.Recipient != w.Recipient {
			t.Errorf("%s: key %q recipient %q, want %q", ev.EventID, r.Key, ev.Recipient, w.Recipient)
		}
		if ev.ProviderMessageID != w.ProviderMessageID || ev.Status != w.Status || !ev.OccurredAt.Equal(w.OccurredAt) ||
			ev.NotificationID != w.NotificationID || ev.Emitter != contract.EmitterWebhook || ev.Provider != "xpressbot" {
			t.Errorf("%s: got %+v, want %+v", ev.EventID, ev, w)
		}
		if (w.Error == nil) != (ev.Error == nil) || (w.Error != nil && (*w.Error != *ev.Error)) {
			t.Errorf("%s: error %+v, want %+v", ev.EventID, ev.Error, w.Error)
		}
		if hv := envelope.Get(r.Headers, envelope.HeaderNotificationID); hv != w.NotificationID {
			t.Errorf("%s: notification id header %q, want %q", ev.EventID, hv, w.NotificationID)
		}
		if p, seen := partitionOf[ev.Recipient]; seen && p != r.Partition {
			t.Errorf("recipient %s in partitions %d and %d: co-partitioning broken", ev.Recipient, p, r.Partition)
		}
		partitionOf[ev.Recipient] = r.Partition
	}
	if len(want) != 0 {
		t.Errorf("missing events: %v", want)
	}

	if n := counter(t, h.reader, "wanotify.webhook.requests", outcome(OutcomeAccepted)); n != 1 {
		t.Errorf("accepted requests %d, want 1", n)
	}
	for s, n := range map[string]int64{"sent": 12, "delivered": 12, "read": 12, "failed": 1} {
		if got := counter(t, h.reader, "wanotify.webhook.statuses", attribute.String("status", s), attribute.String("result", "produced")); got != n {
			t.Errorf("statuses{%s} %d, want %d", s, got, n)
		}
	}
	if n := histogramCount(t, h.reader, "wanotify.webhook.produce.duration", attribute.String("result", "ok")); n != 1 {
		t.Errorf("produce.duration observations %d, want 1", n)
	}
	// The HTTP server metric the catalogue documents, from otelhttp, on
	// the receiver's meter provider; the body-size histograms are dropped
	// by the services' views.
	if n := histogramCount(t, h.reader, "http.server.request.duration", attribute.String("http.request.method", "POST"),
		attribute.Int("http.response.status_code", http.StatusOK)); n != 1 {
		t.Errorf("http.server.request.duration observations %d, want 1", n)
	}
	for _, name := range metricNames(t, h.reader) {
		if strings.HasSuffix(name, ".body.size") {
			t.Errorf("%s recorded", name)
		}
	}
}

func TestRefusedRequestsProduceNothing(t *testing.T) {
	h := newHarness(t, nil, func(c *Config) { c.MaxBodyBytes = 4096 })
	good := mustJSON(t, metaPayload(metaStatus("wamid.1", "delivered", "447700900123", 1764324002)))
	sign := func(secret string, body []byte) map[string]string {
		return map[string]string{h.cfg.SignatureHeader: metawebhook.Sign([]byte(secret), body)}
	}
	big := mustJSON(t, metaPayload(metaStatus(strings.Repeat("x", 5000), "delivered", "447700900123", 1764324002)))
	cases := []struct {
		name    string
		body    []byte
		headers map[string]string
		status  int
		typ     string
		field   string
	}{
		{"wrong secret", good, sign("not-the-secret", good), http.StatusUnauthorized, ProblemSignature, ""},
		{"missing signature", good, nil, http.StatusUnauthorized, ProblemSignature, ""},
		{"signature of another body", good, sign(testSecret, []byte(`{}`)), http.StatusUnauthorized, ProblemSignature, ""},
		{"signature in another header", good, map[string]string{"X-Hub-Signature": metawebhook.Sign([]byte(testSecret), good)}, http.StatusUnauthorized, ProblemSignature, ""},
		{"malformed signature", good, map[string]string{h.cfg.SignatureHeader: "sha1=abc"}, http.StatusUnauthorized, ProblemSignature, ""},
		// The signature is checked before the body is parsed.
		{"unsigned garbage", []byte("not json"), nil, http.StatusUnauthorized, ProblemSignature, ""},
		{"malformed JSON", []byte(`{"entry":[{"changes":`), sign(testSecret, []byte(`{"entry":[{"changes":`)), http.StatusBadRequest, ProblemInvalidPayload, ""},
		{"oversized", big, sign(testSecret, big), http.StatusRequestEntityTooLarge, ProblemTooLarge, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := h.postWith(c.body, c.headers)
			if got.status != c.status {
				t.Fatalf("status %d %s, want %d", got.status, got.body, c.status)
			}
			p := got.problem(t)
			if p.Type != c.typ || p.Status != c.status {
				t.Errorf("problem %+v, want type %s", p, c.typ)
			}
			if c.field != "" {
				found := false
				for _, f := range p.Errors {
					found = found || f.Field == c.field
				}
				if !found {
					t.Errorf("problem errors %v do not name %s", p.Errors, c.field)
				}
			}
		})
	}

	t.Run("oversized without Content-Length", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, h.url, struct{ *bytes.Reader }{bytes.NewReader(big)}) // hides the length: chunked
		req.Header.Set(h.cfg.SignatureHeader, metawebhook.Sign([]byte(testSecret), big))
		if got := do(t, req); got.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", got.status)
		}
	})
	t.Run("other method", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, h.url, bytes.NewReader(good))
		req.Header.Set(h.cfg.SignatureHeader, metawebhook.Sign([]byte(testSecret), good))
		if got := do(t, req); got.status != http.StatusMethodNotAllowed {
			t.Fatalf("status %d, want 405", got.status)
		}
	})

	// Give a wrongly accepted record every chance to show up.
	time.Sleep(100 * time.Millisecond)
	if n := statusRecordCount(t, h.brokers); n != 0 {
		t.Fatalf("%d records on %s after refused requests, want 0", n, topics.Status)
	}
	for o, n := range map[string]int64{OutcomeUnauthorized: 6, OutcomeMalformed: 1, OutcomeTooLarge: 2, OutcomeAccepted: 0} {
		if got := counter(t, h.reader, "wanotify.webhook.requests", outcome(o)); got != n {
			t.Errorf("requests{%s} = %d, want %d", o, got, n)
		}
	}
	if n := counter(t, h.reader, "wanotify.webhook.verification.failures", attribute.String("reason", ReasonMissingSignature)); n != 3 {
		t.Errorf("missing-signature failures %d, want 3", n)
	}
	if n := counter(t, h.reader, "wanotify.webhook.verification.failures", attribute.String("reason", ReasonBadSignature)); n != 3 {
		t.Errorf("bad-signature failures %d, want 3", n)
	}

	// The receiver still takes a good webhook afterwards.
	if got := h.post(good); got.status != http.StatusOK {
		t.Fatalf("good webhook after refusals: %d %s", got.status, got.body)
	}
	consumeStatus(t, h.brokers, 1)
}

func TestKafkaRefusingWritesGets503ThenTheRetryIsStored(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topics.Status))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	h := newHarness(t, c.ListenAddrs(), func(cfg *Config) { cfg.ProduceTimeout = 500 * time.Millisecond })
	fault := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topics.Status, Err: kerr.NotEnoughReplicas, Count: -1})

	body := mustJSON(t, metaPayload(
		metaStatus("wamid.1", "sent", "447700900123", 1764324002),
		metaStatus("wamid.2", "delivered", "14155550100", 1764324003),
	))
	start := time.Now()
	got := h.post(body)
	if got.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d %s, want 503 while Kafka refuses writes", got.status, got.body)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("503 after %v; the produce timeout is 500ms", took)
	}
	if p := got.problem(t); p.Type != ProblemUnavailable {
		t.Errorf("problem type %q", p.Type)
	}
	if got.header.Get("Retry-After") == "" {
		t.Error("no Retry-After on 503")
	}
	fault.Remove()
	// The client gave the records up with the 503: none lands later.
	time.Sleep(300 * time.Millisecond)
	if n := statusRecordCount(t, h.brokers); n != 0 {
		t.Fatalf("%d records after the 503, want 0", n)
	}

	// The provider resends: now stored, once.
	if got := h.post(body); got.status != http.StatusOK {
		t.Fatalf("retry: %d %s, want 200", got.status, got.body)
	}
	recs := consumeStatus(t, h.brokers, 2)
	ids := map[string]bool{}
	for _, r := range recs {
		ids[decodeEvent(t, r).EventID] = true
	}
	if !ids["wh/wamid.1/sent"] || !ids["wh/wamid.2/delivered"] {
		t.Errorf("event ids %v", sortedKeys(ids))
	}
	if n := counter(t, h.reader, "wanotify.webhook.requests", outcome(OutcomeUnavailable)); n != 1 {
		t.Errorf("unavailable requests %d, want 1", n)
	}
	if n := histogramCount(t, h.reader, "wanotify.webhook.produce.duration", attribute.String("result", "error")); n != 1 {
		t.Errorf("failed produce observations %d, want 1", n)
	}
	// Statuses are counted once, for the request that stored them.
	if n := counter(t, h.reader, "wanotify.webhook.statuses", attribute.String("status", "sent")); n != 1 {
		t.Errorf("sent statuses counted %d, want 1", n)
	}
}

func TestKafkaGoneGets503(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topics.Status))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, c.ListenAddrs(), func(cfg *Config) { cfg.ProduceTimeout = 500 * time.Millisecond })
	body := mustJSON(t, metaPayload(metaStatus("wamid.1", "sent", "447700900123", 1764324002)))
	if got := h.post(body); got.status != http.StatusOK {
		t.Fatalf("before the outage: %d %s", got.status, got.body)
	}
	c.Close()
	start := time.Now()
	if got := h.post(body); got.status != http.StatusServiceUnavailable {
		t.Fatalf("broker gone: %d %s, want 503", got.status, got.body)
	}
	// The produce timeout plus the grace for the client to let go.
	if took := time.Since(start); took > 500*time.Millisecond+produceGrace+time.Second {
		t.Errorf("503 after %v", took)
	}
	t.Logf("503 after %v", time.Since(start))
}

func TestResentWebhookCarriesTheSameEventIDs(t *testing.T) {
	h := newHarness(t, nil, nil)
	body := mustJSON(t, metaPayload(metaStatus("wamid.1", "delivered", "447700900123", 1764324002)))
	for range 2 {
		if got := h.post(body); got.status != http.StatusOK {
			t.Fatalf("%d %s", got.status, got.body)
		}
	}
	recs := consumeStatus(t, h.brokers, 2)
	a, b := decodeEvent(t, recs[0]), decodeEvent(t, recs[1])
	if a.EventID != b.EventID || a.EventID != "wh/wamid.1/delivered" {
		t.Fatalf("event ids %q and %q: a resent webhook must carry the same id so the sink deduplicates it", a.EventID, b.EventID)
	}
}

func TestInboundMessagesUnknownFieldsAndStatusesAreAcceptedAndCounted(t *testing.T) {
	h := newHarness(t, nil, nil)
	inbound := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"w","changes":[{"field":"messages","value":{
	  "messaging_product":"whatsapp","metadata":{"phone_number_id":"pn"},
	  "contacts":[{"profile":{"name":"A"},"wa_id":"447700900123"}],
	  "messages":[{"from":"447700900123","id":"wamid.in1","timestamp":"1764324002","type":"text","text":{"body":"STOP"}},
	              {"from":"447700900123","id":"wamid.in2","timestamp":"1764324003","type":"text","text":{"body":"hi"}}]}}]}]}`)
	if got := h.post(inbound); got.status != http.StatusOK {
		t.Fatalf("inbound messages: %d %s, want 200", got.status, got.body)
	}
	unknown := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"w","time":1764324002,"changes":[
	  {"field":"messages","value":{"statuses":[
	    {"id":"wamid.1","status":"deleted","timestamp":"1764324002","recipient_id":"447700900123"},
	    {"id":"wamid.2","status":"some_future_status","timestamp":"1764324002","recipient_id":"447700900123"},
	    {"id":"wamid.3","status":"read","timestamp":"1764324002","recipient_id":"447700900123","recipient_type":"individual"}]}},
	  {"field":"message_template_status_update","value":{"event":"APPROVED"}}]}]}`)
	if got := h.post(unknown); got.status != http.StatusOK {
		t.Fatalf("unknown fields and statuses: %d %s, want 200", got.status, got.body)
	}
	// The read status is the one event; the two untracked ones are kept
	// (raw, marked rejected) for the sink's ingest_errors.
	recs := consumeStatus(t, h.brokers, 3)
	events := 0
	for _, r := range recs {
		if reason := rejectedHeader(r); reason != "" {
			if !strings.HasPrefix(reason, payload.RejectedUntracked+": ") {
				t.Errorf("kept status %s has reason %q", r.Value, reason)
			}
			continue
		}
		events++
		if ev := decodeEvent(t, r); ev.EventID != "wh/wamid.3/read" {
			t.Fatalf("produced %s, want only the read status", ev.EventID)
		}
	}
	if events != 1 {
		t.Fatalf("%d status events, want 1", events)
	}
	checks := []struct {
		name  string
		attrs []attribute.KeyValue
		want  int64
	}{
		{"wanotify.webhook.requests", []attribute.KeyValue{outcome(OutcomeAccepted)}, 2},
		{"wanotify.webhook.inbound.messages", nil, 2},
		{"wanotify.webhook.statuses", []attribute.KeyValue{attribute.String("status", "deleted"), attribute.String("result", "skipped")}, 1},
		{"wanotify.webhook.statuses", []attribute.KeyValue{attribute.String("status", "other"), attribute.String("result", "skipped")}, 1},
		{"wanotify.webhook.statuses", []attribute.KeyValue{attribute.String("status", "read"), attribute.String("result", "produced")}, 1},
		{"wanotify.webhook.ignored", []attribute.KeyValue{attribute.String("kind", payload.IgnoredUnknownFields)}, 1},
		{"wanotify.webhook.ignored", []attribute.KeyValue{attribute.String("kind", payload.IgnoredChange)}, 1},
	}
	for _, c := range checks {
		if got := counter(t, h.reader, c.name, c.attrs...); got != c.want {
			t.Errorf("%s%v = %d, want %d", c.name, c.attrs, got, c.want)
		}
	}
}

func TestRequestSpanNamesTheNotificationAndRecordsCarryItsContext(t *testing.T) {
	h := newHarness(t, nil, nil)
	st := metaStatus("wamid.1", "delivered", "447700900123", 1764324002)
	st.BizOpaqueCallbackData = "6d1f7a52-3c55-5b8e-a1a4-0f3f7e0b9c21"
	if got := h.post(mustJSON(t, metaPayload(st))); got.status != http.StatusOK {
		t.Fatalf("%d %s", got.status, got.body)
	}
	recs := consumeStatus(t, h.brokers, 1)

	var server trace.SpanContext
	for _, s := range h.spans.Ended() {
		if s.SpanKind() != trace.SpanKindServer {
			continue
		}
		server = s.SpanContext()
		attrs := attribute.NewSet(s.Attributes()...)
		if v, _ := attrs.Value("wanotify.notification_id"); v.AsString() != st.BizOpaqueCallbackData {
			t.Errorf("span wanotify.notification_id = %q, want %q", v.AsString(), st.BizOpaqueCallbackData)
		}
		if v, _ := attrs.Value("wanotify.webhook.outcome"); v.AsString() != OutcomeAccepted {
			t.Errorf("span outcome %q", v.AsString())
		}
		for _, kv := range s.Attributes() {
			if strings.Contains(kv.Value.Emit(), "447700900123") {
				t.Errorf("span attribute %s carries the full phone number", kv.Key)
			}
		}
	}
	if !server.IsValid() {
		t.Fatal("no server span recorded")
	}
	carrier := propagation.MapCarrier{}
	for _, hd := range recs[0].Headers {
		carrier[hd.Key] = string(hd.Value)
	}
	got := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), carrier))
	if got.TraceID() != server.TraceID() {
		t.Fatalf("record traceparent %q: trace %s, want the request's %s", carrier["traceparent"], got.TraceID(), server.TraceID())
	}
}

func TestNewValidates(t *testing.T) {
	cl := testinfra.Client(t, []string{"127.0.0.1:1"})
	if _, err := New(Config{}, cl); err == nil || !strings.Contains(err.Error(), EnvSecret) {
		t.Fatalf("New(zero config) = %v, want an error naming %s", err, EnvSecret)
	}
	if _, err := New(testConfig(), nil); err == nil {
		t.Fatal("New without a client succeeded")
	}
}

func TestAcceptedBodyIsTheJSONObject(t *testing.T) {
	for _, c := range [][4]int{{0, 0, 0, 0}, {1, 0, 0, 0}, {37, 2, 5, 3}, {1 << 20, 999, 12, 7}} {
		var want bytes.Buffer
		_ = json.NewEncoder(&want).Encode(map[string]int{"events": c[0], "skipped": c[1], "inbound_messages": c[2], "rejected": c[3]})
		if got := acceptedBody(c[0], c[1], c[2], c[3]); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("acceptedBody%v = %s, want %s", c, got, want.Bytes())
		}
	}
}

package e2e

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/wanotify/wanotify/pkg/topics"
	"github.com/wanotify/wanotify/pkg/webhook"
)

// TestOneTracePerNotification sends two notifications through every
// service and reads the spans the in-memory exporter received:
//
//   - one delivered notification: ingest's server span starts the
//     notification's trace (the API is a public route: the caller's span
//     is a link, not the parent), which continues through the
//     dispatcher's consume and attempt spans,
//     the provider HTTP call, the status event's produce span and the
//     sink's consume spans of both Kafka hops; the provider's webhooks
//     start their own traces (a provider propagates no trace context) and
//     are tied to the notification by its id, each continuing through the
//     webhook's produce span to the sink;
//   - one notification that fails every attempt: each retry is a
//     descendant of the attempt before it (through the retry topic's
//     produce and consume spans), and the dead letter continues the same
//     trace to the sink.
//
// No span carries a phone number or a secret, every log line is JSON,
// request logs carry the ids of their span, and both notifications reach
// their final state in communication_logs.
func TestOneTracePerNotification(t *testing.T) {
	s := startStack(t)

	delivered := caller()
	idDelivered := s.publish(t, delivered.traceparent(), `{"event_type":"invoice.reminder","idempotency_key":"e2e-delivered-1",`+
		`"recipient":"+44 7100 900123","text":{"body":"Your invoice INV-2291 is ready"}}`)
	exhausted := caller()
	idExhausted := s.publish(t, exhausted.traceparent(), `{"event_type":"server.alert","idempotency_key":"e2e-exhausted-1",`+
		`"recipient":"+447100900456","text":{"body":"disk almost full [sim:http_503]"}}`)
	// The digits that identify the two recipients, in any spelling.
	secrets := []string{"7700900123", "7700900456", apiKey, simAPIKey, webhookSecret}

	v := s.waitStatus(t, idDelivered, 45*time.Second, "read")
	if v.SentAt == nil || v.DeliveredAt == nil || v.ReadAt == nil || v.Attempts != 1 {
		t.Errorf("communication_logs of the delivered notification: sent %v delivered %v read %v attempts %d",
			v.SentAt, v.DeliveredAt, v.ReadAt, v.Attempts)
	}
	v = s.waitStatus(t, idExhausted, 45*time.Second, "dead_lettered")
	if v.Attempts != 1+len(topics.RetryTiers) {
		t.Errorf("dead-lettered notification: %d attempts, want %d", v.Attempts, 1+len(topics.RetryTiers))
	}

	all := spanSet(s.spans.GetSpans())
	t.Run("delivered", func(t *testing.T) { checkDeliveredTrace(t, all, delivered, idDelivered) })
	t.Run("retries", func(t *testing.T) { checkRetryTrace(t, all, exhausted, idExhausted) })
	t.Run("no phone numbers or secrets in spans", func(t *testing.T) { checkSpansClean(t, all, secrets) })
	t.Run("logs", func(t *testing.T) { checkLogs(t, s.logs.String(), all, secrets) })
}

// ingestSpan is the ingest server span of the caller's request: the root
// of the notification's trace, linked to the caller's span.
func ingestSpan(t *testing.T, all spanSet, c callerSpan) tracetest.SpanStub {
	t.Helper()
	ing := all.one(t, "ingest server span linked to the caller's", named("POST /v1/notifications"), linksTo(c))
	if ing.Parent.IsValid() || ing.SpanContext.TraceID() == c.trace {
		t.Errorf("ingest span continues the caller's trace (parent %s); a public route starts its own", ing.Parent.SpanID())
	}
	return ing
}

func linksTo(c callerSpan) spanPred {
	return func(s tracetest.SpanStub) bool {
		for _, l := range s.Links {
			if l.SpanContext.TraceID() == c.trace && l.SpanContext.SpanID() == c.span {
				return true
			}
		}
		return false
	}
}

func checkDeliveredTrace(t *testing.T, all spanSet, c callerSpan, id string) {
	ing := ingestSpan(t, all, c)
	in := all.inTrace(ing.SpanContext.TraceID())
	wantKind(t, ing, trace.SpanKindServer)
	wantAttrs(t, ing, map[string]any{
		"wanotify.notification_id": id, "wanotify.tenant": tenant, "wanotify.event_type": "invoice.reminder",
		"http.route": "/v1/notifications", "http.response.status_code": int64(202), "http.request.method": "POST",
	})

	// The record on notifications.requested carries the ingest span as its
	// parent; the dispatcher and the sink each consume it.
	recv := in.where(named(topics.Requested+" receive"), childOf(ing))
	if len(recv) != 2 {
		t.Fatalf("%d consume spans of %s under the ingest span, want 2 (dispatcher, sink)\n%s", len(recv), topics.Requested, in.dump())
	}
	attempt := in.one(t, "dispatcher attempt span", named("send"), attrIs("wanotify.notification_id", id))
	dispRecv, sinkRecv := recv[0], recv[1]
	if attempt.Parent.SpanID() == sinkRecv.SpanContext.SpanID() {
		dispRecv, sinkRecv = sinkRecv, dispRecv
	}
	if attempt.Parent.SpanID() != dispRecv.SpanContext.SpanID() {
		t.Fatalf("attempt span's parent %s is not a consume span of %s\n%s", attempt.Parent.SpanID(), topics.Requested, in.dump())
	}
	for _, r := range recv {
		wantKind(t, r, trace.SpanKindConsumer)
		wantAttrs(t, r, map[string]any{"messaging.system": "kafka", "messaging.operation": "receive"})
	}
	if n := len(in.where(childOf(sinkRecv))); n != 0 {
		t.Errorf("the sink's consume span has %d children, want none", n)
	}
	wantKind(t, attempt, trace.SpanKindConsumer)
	wantAttrs(t, attempt, map[string]any{
		"wanotify.tenant": tenant, "wanotify.event_type": "invoice.reminder", "wanotify.attempt": int64(1),
		"messaging.system": "kafka", "messaging.operation": "process", "messaging.destination.name": topics.Requested,
		"wanotify.outcome": "accepted",
	})
	if r, ok := attr(attempt, "wanotify.recipient"); !ok || r.AsString() == "" || r.AsString() == "+447100900123" {
		t.Errorf("attempt span's wanotify.recipient = %q, want the masked number", r.AsString())
	}

	call := in.one(t, "provider HTTP client span", named("xpressbot send"), childOf(attempt))
	wantKind(t, call, trace.SpanKindClient)
	wantAttrs(t, call, map[string]any{"http.request.method": "POST", "http.response.status_code": int64(200)})

	pub := in.one(t, "status produce span", named(topics.Status+" publish"), childOf(attempt))
	wantKind(t, pub, trace.SpanKindProducer)
	wantAttrs(t, pub, map[string]any{"messaging.system": "kafka", "messaging.destination.name": topics.Status})
	statusRecv := in.one(t, "sink's consume span of the accepted status", named(topics.Status+" receive"), childOf(pub))
	wantKind(t, statusRecv, trace.SpanKindConsumer)

	// Webhooks: a trace each, joined to the notification by its id.
	hooks := all.where(named("POST "+webhook.DefaultPath), attrIs("wanotify.notification_id", id))
	seen := map[string]bool{}
	for _, h := range hooks {
		wantKind(t, h, trace.SpanKindServer)
		if h.SpanContext.TraceID() == c.trace || h.SpanContext.TraceID() == ing.SpanContext.TraceID() {
			t.Errorf("webhook span is in the notification's trace; the provider propagates none")
		}
		if h.Parent.IsValid() {
			t.Errorf("webhook span has parent %s; the provider's request starts a trace", h.Parent.SpanID())
		}
		wantAttrs(t, h, map[string]any{"http.response.status_code": int64(200), "url.path": webhook.DefaultPath,
			"wanotify.webhook.outcome": "accepted"})
		for _, ev := range h.Events {
			for _, kv := range ev.Attributes {
				if kv.Key == "wanotify.status" {
					seen[kv.Value.AsString()] = true
				}
			}
		}
		wt := all.inTrace(h.SpanContext.TraceID())
		hp := wt.one(t, "webhook's status produce span", named(topics.Status+" publish"), childOf(h))
		wt.one(t, "sink's consume span of the webhook status", named(topics.Status+" receive"), childOf(hp))
	}
	for _, st := range []string{"sent", "delivered", "read"} {
		if !seen[st] {
			t.Errorf("no webhook span for status %q of %s (saw %v in %d webhook spans)", st, id, seen, len(hooks))
		}
	}
}

func checkRetryTrace(t *testing.T, all spanSet, c callerSpan, id string) {
	ing := ingestSpan(t, all, c)
	in := all.inTrace(ing.SpanContext.TraceID())
	recv := in.where(named(topics.Requested+" receive"), childOf(ing))
	var prev tracetest.SpanStub
	for n := 1; n <= 1+len(topics.RetryTiers); n++ {
		attempt := in.one(t, fmt.Sprintf("span of attempt %d", n), named("send"),
			attrIs("wanotify.notification_id", id), attrIs("wanotify.attempt", int64(n)))
		if attempt.Status.Code != codes.Error {
			t.Errorf("attempt %d: span status %v, want Error", n, attempt.Status)
		}
		if n == 1 {
			if !recv.has(attempt.Parent.SpanID()) {
				t.Fatalf("attempt 1 is not a child of a consume span of %s\n%s", topics.Requested, in.dump())
			}
		} else {
			// attempt n-1 → produce on its tier → consume → attempt n.
			tier := topics.RetryTiers[n-2]
			r := in.one(t, fmt.Sprintf("consume span of %s before attempt %d", tier, n), named(tier+" receive"), spanIs(attempt.Parent.SpanID()))
			p := in.one(t, fmt.Sprintf("produce span of %s after attempt %d", tier, n-1), named(tier+" publish"), spanIs(r.Parent.SpanID()))
			if p.Parent.SpanID() != prev.SpanContext.SpanID() {
				t.Errorf("retry record on %s was produced under span %s, want attempt %d's span %s", tier, p.Parent.SpanID(), n-1, prev.SpanContext.SpanID())
			}
			wantAttrs(t, attempt, map[string]any{"messaging.destination.name": tier})
		}
		call := in.one(t, fmt.Sprintf("provider call of attempt %d", n), named("xpressbot send"), childOf(attempt))
		wantAttrs(t, call, map[string]any{"http.response.status_code": int64(503)})
		in.one(t, fmt.Sprintf("status produce span of attempt %d", n), named(topics.Status+" publish"), childOf(attempt))
		prev = attempt
	}
	dlq := in.one(t, "dead letter produce span", named(topics.DLQ+" publish"), childOf(prev))
	in.one(t, "sink's consume span of the dead letter", named(topics.DLQ+" receive"), childOf(dlq))
}

func checkSpansClean(t *testing.T, all spanSet, secrets []string) {
	if len(all) == 0 {
		t.Fatal("no spans")
	}
	for _, s := range all {
		values := []string{s.Name}
		add := func(kvs []attribute.KeyValue) {
			for _, kv := range kvs {
				values = append(values, string(kv.Key)+"="+kv.Value.Emit())
			}
		}
		add(s.Attributes)
		for _, e := range s.Events {
			values = append(values, e.Name)
			add(e.Attributes)
		}
		for _, l := range s.Links {
			add(l.Attributes)
		}
		for _, v := range values {
			for _, sec := range secrets {
				if strings.Contains(v, sec) {
					t.Errorf("span %q (%s) carries %q in %s", s.Name, s.InstrumentationScope.Name, mask(sec), mask(v))
				}
			}
		}
	}
}

func checkLogs(t *testing.T, logs string, all spanSet, secrets []string) {
	spanIDs := map[string]string{} // span id -> trace id
	for _, s := range all {
		spanIDs[s.SpanContext.SpanID().String()] = s.SpanContext.TraceID().String()
	}
	lines, withTrace := 0, 0
	for _, line := range strings.Split(logs, "\n") {
		if line == "" {
			continue
		}
		lines++
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line is not JSON: %s", mask(line))
			continue
		}
		for _, k := range []string{"time", "level", "msg", "service"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("log line without %q: %s", k, mask(line))
			}
		}
		for _, sec := range secrets {
			if strings.Contains(line, sec) {
				t.Errorf("log line carries %q: %s", mask(sec), mask(line))
			}
		}
		tid, _ := rec["trace_id"].(string)
		sid, _ := rec["span_id"].(string)
		if tid != "" || sid != "" {
			if spanIDs[sid] != tid {
				t.Errorf("log line's trace_id %s / span_id %s name no exported span: %s", tid, sid, mask(line))
			}
			withTrace++
		}
	}
	if lines == 0 {
		t.Fatal("no log lines")
	}
	// The webhook logs each accepted request inside its span.
	if withTrace == 0 {
		t.Errorf("none of %d log lines carries trace_id and span_id", lines)
	}
}

// mask hides all but the ends of s, so a failing check does not print
// the secret it found.
func mask(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	for _, sec := range []string{"7700900123", "7700900456", apiKey, simAPIKey, webhookSecret} {
		s = strings.ReplaceAll(s, sec, sec[:2]+"***")
	}
	return s
}

// callerSpan is the span of the application that calls the ingest API.
type callerSpan struct {
	trace trace.TraceID
	span  trace.SpanID
}

func caller() callerSpan {
	var c callerSpan
	_, _ = rand.Read(c.trace[:])
	_, _ = rand.Read(c.span[:])
	return c
}

func (c callerSpan) traceparent() string {
	return "00-" + c.trace.String() + "-" + c.span.String() + "-01"
}

// spanSet is a collection of exported spans with queries.
type spanSet []tracetest.SpanStub

type spanPred func(tracetest.SpanStub) bool

func named(n string) spanPred { return func(s tracetest.SpanStub) bool { return s.Name == n } }

func childOf(p tracetest.SpanStub) spanPred {
	return func(s tracetest.SpanStub) bool {
		return s.Parent.TraceID() == p.SpanContext.TraceID() && s.Parent.SpanID() == p.SpanContext.SpanID()
	}
}

func spanIs(id trace.SpanID) spanPred {
	return func(s tracetest.SpanStub) bool { return s.SpanContext.SpanID() == id }
}

func attrIs(key string, want any) spanPred {
	return func(s tracetest.SpanStub) bool {
		v, ok := attr(s, key)
		return ok && sameValue(v, want)
	}
}

func (ss spanSet) where(preds ...spanPred) spanSet {
	var out spanSet
outer:
	for _, s := range ss {
		for _, p := range preds {
			if !p(s) {
				continue outer
			}
		}
		out = append(out, s)
	}
	return out
}

func (ss spanSet) inTrace(id trace.TraceID) spanSet {
	return ss.where(func(s tracetest.SpanStub) bool { return s.SpanContext.TraceID() == id })
}

func (ss spanSet) has(id trace.SpanID) bool { return len(ss.where(spanIs(id))) > 0 }

// one returns the single span matching preds, failing the test with the
// trace's spans otherwise.
func (ss spanSet) one(t *testing.T, what string, preds ...spanPred) tracetest.SpanStub {
	t.Helper()
	m := ss.where(preds...)
	if len(m) != 1 {
		t.Fatalf("%s: %d matching spans, want 1\n%s", what, len(m), ss.dump())
	}
	return m[0]
}

// dump lists spans as a tree-ish table for failure messages.
func (ss spanSet) dump() string {
	sorted := append(spanSet(nil), ss...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].StartTime.Before(sorted[j].StartTime) })
	var b strings.Builder
	for _, s := range sorted {
		fmt.Fprintf(&b, "  %s %s parent=%s %-8s %q\n", s.SpanContext.TraceID().String()[:8], s.SpanContext.SpanID(),
			s.Parent.SpanID(), s.SpanKind, s.Name)
	}
	return b.String()
}

func attr(s tracetest.SpanStub, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func sameValue(v attribute.Value, want any) bool {
	switch w := want.(type) {
	case string:
		return v.Type() == attribute.STRING && v.AsString() == w
	case int64:
		return v.Type() == attribute.INT64 && v.AsInt64() == w
	case bool:
		return v.Type() == attribute.BOOL && v.AsBool() == w
	}
	return false
}

func wantAttrs(t *testing.T, s tracetest.SpanStub, want map[string]any) {
	t.Helper()
	for k, w := range want {
		v, ok := attr(s, k)
		if !ok {
			t.Errorf("span %q: attribute %s missing (want %v)", s.Name, k, w)
			continue
		}
		if !sameValue(v, w) {
			t.Errorf("span %q: %s = %v, want %v", s.Name, k, v.Emit(), w)
		}
	}
}

func wantKind(t *testing.T, s tracetest.SpanStub, k trace.SpanKind) {
	t.Helper()
	if s.SpanKind != k {
		t.Errorf("span %q is of kind %s, want %s", s.Name, s.SpanKind, k)
	}
}

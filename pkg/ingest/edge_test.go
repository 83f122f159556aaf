package ingest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/wanotify/wanotify/pkg/envelope"
)

// TestPublicRouteStartsItsOwnTrace: a caller's traceparent does not make
// ingest continue the caller's trace (the caller would choose our trace
// ids and force sampling); the server span is the root of a new trace
// with the caller's span as a link, the record's traceparent is the new
// trace, and the caller's baggage (8 KiB here) reaches no record.
func TestPublicRouteStartsItsOwnTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tel.Tracer.RegisterSpanProcessor(rec)
	t.Cleanup(func() { tel.Tracer.UnregisterSpanProcessor(rec) })
	h := newHarness(t, nil)

	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	baggage := "caller.note=" + strings.Repeat("b", 8<<10-len("caller.note="))
	r := h.post(keyAcme, otpBody, "traceparent", "00-"+callerTrace+"-"+callerSpan+"-01", "baggage", baggage)
	if r.code != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.code, r.body)
	}

	var server []trace.SpanContext
	for _, s := range rec.Ended() {
		if s.Name() != RoutePublish {
			continue
		}
		server = append(server, s.SpanContext())
		if s.SpanContext().TraceID().String() == callerTrace {
			t.Errorf("server span is in the caller's trace %s", callerTrace)
		}
		if s.Parent().IsValid() {
			t.Errorf("server span has parent %s; a public route's span is a root", s.Parent().SpanID())
		}
		linked := false
		for _, l := range s.Links() {
			if l.SpanContext.TraceID().String() == callerTrace && l.SpanContext.SpanID().String() == callerSpan {
				linked = true
			}
		}
		if !linked {
			t.Errorf("server span links %v, want the caller's span %s/%s", s.Links(), callerTrace, callerSpan)
		}
	}
	if len(server) != 1 {
		t.Fatalf("%d server spans named %s, want 1", len(server), RoutePublish)
	}

	got := consume(t, h.brokers, 1)[0]
	tp := envelope.Get(got.Headers, "traceparent")
	if want := server[0].TraceID().String(); !strings.Contains(tp, want) {
		t.Errorf("record traceparent %q, want ingest's trace %s", tp, want)
	}
	for _, hd := range got.Headers {
		if strings.EqualFold(hd.Key, "baggage") || strings.Contains(string(hd.Value), "caller.note") {
			t.Errorf("record carries the caller's baggage in header %q (%d bytes)", hd.Key, len(hd.Value))
		}
	}
}

// TestHostHeaderIsNotAMetricLabel: otelhttp labels its request metrics
// with server.address and server.port, taken from the Host header unless
// a server name is set; any client could then make one series per Host.
func TestHostHeaderIsNotAMetricLabel(t *testing.T) {
	h := newHarness(t, nil)
	for _, host := range []string{"attacker-1.example:1111", "attacker-2.example:2222", "attacker-3.example"} {
		req := httptest.NewRequest(http.MethodPost, "/v1/notifications", strings.NewReader(otpBody))
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+keyAcme)
		w := httptest.NewRecorder()
		h.router.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	fams, err := tel.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "http_server_") {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "server_address" {
					found = true
				}
				if strings.Contains(l.GetValue(), "attacker") || l.GetValue() == "1111" || l.GetValue() == "2222" {
					t.Errorf("%s has label %s=%q from the Host header", f.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	if !found {
		t.Fatal("no http_server_* series with server_address: the check saw nothing")
	}
}

package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/service"
	"github.com/wanotify/wanotify/pkg/telemetry"
	"github.com/wanotify/wanotify/pkg/testinfra"
)

// TestServiceEndToEnd runs the service body as the binary does (Run over
// a real listener, kfake as the broker) and follows one request onto the
// topic: key = recipient, the tenant, the deterministic id, and a
// traceparent of ingest's own trace (not the caller's: the API is a
// public route), with none of the caller's baggage. Headers past
// edgehttp.MaxHeaderBytes are refused with 431.
func TestServiceEndToEnd(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 12)
	addr := freeAddr(t)
	env := map[string]string{
		"WANOTIFY_INGEST_ADDR":     addr,
		"WANOTIFY_KAFKA_BROKERS":   strings.Join(brokers, ","),
		"WANOTIFY_INGEST_API_KEYS": "acme:" + HashKey(keyAcme),
		"WANOTIFY_SENDERS": `{"senders":[{"name":"acme-main","tenants":["acme"],"number_id":"100"}],` +
			`"tenants":[{"name":"acme","default_sender":"acme-main"}]}`,
	}
	e := config.New(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	c := Load(e)
	if err := errorsJoin(e.Err(), c.Validate()); err != nil {
		t.Fatal(err)
	}
	rt := &service.Runtime{Name: "ingest", Log: telemetry.NewLogger(os.Stderr, 8), Telemetry: tel}
	rt.SetHealthy(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, rt, c, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Run did not drain")
		}
	})

	base := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	// Readiness is the lifecycle's (served on the admin listener, not
	// here): wait for Run to report it.
	for !rt.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("never ready")
		}
		time.Sleep(20 * time.Millisecond)
	}

	const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/notifications", bytes.NewReader([]byte(otpBody)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+keyAcme)
	req.Header.Set("Idempotency-Key", "login-7781-otp")
	req.Header.Set("traceparent", "00-"+callerTrace+"-00f067aa0ba902b7-01")
	req.Header.Set("baggage", "caller.note="+strings.Repeat("b", 8000))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var a Accepted
	_ = json.NewDecoder(resp.Body).Decode(&a)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d", resp.StatusCode)
	}
	wantID := contract.NotificationID("acme", "login-7781-otp")
	if a.ID != wantID {
		t.Fatalf("id %s, want %s", a.ID, wantID)
	}

	rec := consume(t, brokers, 1)[0]
	if string(rec.Key) != "+447100900123" {
		t.Fatalf("key %q", rec.Key)
	}
	if envelope.Get(rec.Headers, envelope.HeaderTenant) != "acme" || envelope.Get(rec.Headers, envelope.HeaderNotificationID) != wantID {
		t.Fatalf("headers %v", rec.Headers)
	}
	n, err := contract.DecodeNotification(rec.Value)
	if err != nil || n.ID != wantID || n.Tenant != "acme" || n.IdempotencyKey != "login-7781-otp" {
		t.Fatalf("value %+v %v", n, err)
	}
	tp := envelope.Get(rec.Headers, "traceparent")
	parts := strings.Split(tp, "-")
	if len(parts) != 4 {
		t.Fatalf("traceparent %q", tp)
	}
	if parts[1] == callerTrace {
		t.Errorf("traceparent %q continues the caller's trace: a public route starts its own", tp)
	}
	if _, err := trace.TraceIDFromHex(parts[1]); err != nil {
		t.Fatalf("traceparent trace id: %v", err)
	}
	if _, err := trace.SpanIDFromHex(parts[2]); err != nil {
		t.Fatalf("traceparent span id: %v", err)
	}
	for _, h := range rec.Headers {
		if strings.EqualFold(h.Key, "baggage") || strings.Contains(string(h.Value), "caller.note") {
			t.Errorf("the record carries the caller's baggage in header %q (%d bytes)", h.Key, len(h.Value))
		}
	}

	// A header block past edgehttp.MaxHeaderBytes is refused before any
	// handler runs (net/http's own default would take 1 MiB).
	big, _ := http.NewRequest(http.MethodPost, base+"/v1/notifications", bytes.NewReader([]byte(otpBody)))
	big.Header.Set("Content-Type", "application/json")
	big.Header.Set("Authorization", "Bearer "+keyAcme)
	big.Header.Set("X-Padding", strings.Repeat("p", 40<<10))
	resp, err = http.DefaultClient.Do(big)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a 40 KiB header: status %d, want 431", resp.StatusCode)
	}
}

func TestRunRefusesABadListenAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := testConfig(testinfra.Kafka(t))
	c.Addr = ln.Addr().String() // taken
	rt := &service.Runtime{Name: "ingest", Log: telemetry.NewLogger(os.Stderr, 8)}
	if err := Run(context.Background(), rt, c, nil); err == nil || !strings.Contains(err.Error(), "WANOTIFY_INGEST_ADDR") {
		t.Fatalf("err = %v", err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

package webhook

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/wanotify/wanotify/pkg/metawebhook"
	"github.com/wanotify/wanotify/pkg/testinfra"
)

// productionPropagators installs, for one test, the global propagators
// every service runs with (telemetry.Setup): W3C trace context and
// baggage.
func productionPropagators(t *testing.T) {
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
}

// TestWebhookStartsItsOwnTrace: whoever posts to the receiver does not
// choose its trace: the server span is a new root linked to the sender's
// span, and the sender's baggage reaches no record.
func TestWebhookStartsItsOwnTrace(t *testing.T) {
	productionPropagators(t)
	h := newHarness(t, nil, nil)
	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	body := mustJSON(t, metaPayload(metaStatus("wamid.edge", "delivered", "447700900123", 1764324002)))
	got := h.postWith(body, map[string]string{
		h.cfg.SignatureHeader: metawebhook.Sign([]byte(testSecret), body),
		"traceparent":         "00-" + callerTrace + "-" + callerSpan + "-01",
		"baggage":             "caller.note=" + strings.Repeat("b", 8<<10-len("caller.note=")),
	})
	if got.status != http.StatusOK {
		t.Fatalf("%d %s", got.status, got.body)
	}
	recs := consumeStatus(t, h.brokers, 1)

	var server trace.SpanContext
	for _, s := range h.spans.Ended() {
		if s.SpanKind() != trace.SpanKindServer {
			continue
		}
		server = s.SpanContext()
		if server.TraceID().String() == callerTrace || s.Parent().IsValid() {
			t.Errorf("server span %s has parent %s: it continues the sender's trace", server.TraceID(), s.Parent().SpanID())
		}
		linked := false
		for _, l := range s.Links() {
			linked = linked || l.SpanContext.SpanID().String() == callerSpan && l.SpanContext.TraceID().String() == callerTrace
		}
		if !linked {
			t.Errorf("server span links %v, want the sender's span", s.Links())
		}
	}
	if !server.IsValid() {
		t.Fatal("no server span recorded")
	}
	for _, hd := range recs[0].Headers {
		if strings.EqualFold(hd.Key, "baggage") || strings.Contains(string(hd.Value), "caller.note") {
			t.Errorf("record carries the sender's baggage in header %q (%d bytes)", hd.Key, len(hd.Value))
		}
	}
}

// TestWebhookHostHeaderIsNotAMetricLabel: the Host a client sends does
// not become a value of any HTTP server metric attribute.
func TestWebhookHostHeaderIsNotAMetricLabel(t *testing.T) {
	h := newHarness(t, nil, nil)
	for i := range 3 {
		body := mustJSON(t, metaPayload(metaStatus(fmt.Sprintf("wamid.host%d", i), "sent", "447700900123", 1764324002)))
		req, _ := http.NewRequest(http.MethodPost, h.url, bytes.NewReader(body))
		req.Host = fmt.Sprintf("attacker-%d.example:%d", i, 1000+i)
		req.Header.Set(h.cfg.SignatureHeader, metawebhook.Sign([]byte(testSecret), body))
		if a := do(t, req); a.status != http.StatusOK {
			t.Fatalf("%d %s", a.status, a.body)
		}
	}
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	seen := 0
	check := func(name string, set attribute.Set) {
		seen++
		for _, kv := range set.ToSlice() {
			v := kv.Value.Emit()
			if strings.Contains(v, "attacker") || v == "1000" || v == "1001" || v == "1002" {
				t.Errorf("%s has attribute %s=%q from the Host header", name, kv.Key, v)
			}
		}
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if !strings.HasPrefix(m.Name, "http.server.") {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					check(m.Name, dp.Attributes)
				}
			case metricdata.Histogram[int64]:
				for _, dp := range d.DataPoints {
					check(m.Name, dp.Attributes)
				}
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					check(m.Name, dp.Attributes)
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no http.server.* data points: the check saw nothing")
	}
}

// slowUpload is a client that sends a webhook's headers announcing
// length bytes and all of the body but its last bytes at once, then
// trickles the rest a byte at a time: the receiver holds what it read
// for as long as the upload lasts.
type slowUpload struct {
	conn net.Conn
	code atomic.Int32 // the answer's status; -1: the connection ended without one
}

func startSlowUpload(t *testing.T, addr, path string, length int, stop <-chan struct{}, wg *sync.WaitGroup) *slowUpload {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	u := &slowUpload{conn: c}
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s: sha256=00\r\n\r\n{",
		path, addr, length, metawebhook.DefaultSignatureHeader)
	wg.Add(2)
	go func() { // most of the body at once, then trickle
		defer wg.Done()
		if _, err := c.Write(bytes.Repeat([]byte(" "), length-4096)); err != nil {
			return
		}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	go func() { // read the answer, if one comes
		defer wg.Done()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			u.code.Store(-1)
			return
		}
		resp.Body.Close()
		u.code.Store(int32(resp.StatusCode))
	}()
	return u
}

// TestSlowUploadsCannotExhaustMemory opens 300 uploads that announce a
// 1 MiB body each, send nearly all of it and trickle the rest. Before this bound, each one buffered
// up to its whole body before the signature could be checked (300 MiB
// here; about 150 of them killed a 256 MiB pod). Now bodies are read
// only within the body-memory budget: the bytes reserved never exceed
// it, the heap stays bounded, the uploads past the budget are answered
// 503 (their connections freed), and a real, signed webhook sent
// during the attack is either accepted or cleanly refused with 503 and
// Retry-After, and accepted once the attack ends.
func TestSlowUploadsCannotExhaustMemory(t *testing.T) {
	const (
		uploads  = 300
		bodySize = 1 << 20
		budget   = 10 << 20
	)
	h := newHarness(t, nil, func(c *Config) {
		c.BodyMemory = budget
		// Long enough that the uploads holding memory still hold it
		// while the test looks; closing them ends them.
		c.BodyReadTimeout = time.Minute
	})
	addr := strings.TrimPrefix(h.srv.URL, "http://")
	maxHeld := budget / (bodySize + 512)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	ups := make([]*slowUpload, uploads)
	for i := range ups {
		ups[i] = startSlowUpload(t, addr, h.cfg.Path, bodySize, stop, &wg)
	}
	var closeOnce sync.Once
	end := func() {
		closeOnce.Do(func() {
			close(stop)
			for _, u := range ups {
				u.conn.Close()
			}
			wg.Wait()
		})
	}
	t.Cleanup(end)

	// The live heap may grow by the budget plus the connections'
	// overhead (goroutines' buffers, the 503s), never by the uploads'
	// bodies: 300 bodies of 1 MiB would be about 300 MiB (measured: 310
	// without the budget). The overhead of 300 connections was seen at
	// up to 41 MiB on a busy machine, so it is allowed 90.
	limit := int64(budget + 90<<20)
	heapGrowth := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapInuse) - int64(before.HeapInuse)
	}

	// Every upload past the budget is turned away with 503; the others
	// hold the budget. Wait for exactly that state (no sleeps), checking
	// the heap as the uploads come in.
	deadline := time.After(60 * time.Second)
	busy := 0
	for polls := 0; ; polls++ {
		if polls%10 == 0 {
			if grew := heapGrowth(); grew > limit {
				t.Fatalf("heap in use grew by %.1f MiB under %d slow uploads; want under %.1f MiB (the %d MiB budget plus connection overhead)",
					float64(grew)/(1<<20), uploads, float64(limit)/(1<<20), budget>>20)
			}
		}
		busy = 0
		for _, u := range ups {
			switch c := u.code.Load(); c {
			case 0:
			case http.StatusServiceUnavailable:
				busy++
			default:
				t.Fatalf("a slow upload was answered %d, want 503 or nothing yet", c)
			}
		}
		if busy >= uploads-maxHeld {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("after 60 s only %d of %d slow uploads were turned away (%+v)", busy, uploads, h.rx.BodyStats())
		case <-time.After(20 * time.Millisecond):
		}
	}

	st := h.rx.BodyStats()
	if st.PeakHeld > budget || st.PeakCount > maxHeld {
		t.Errorf("bodies reserved at once: peak %d bytes in %d bodies, budget %d bytes (%d bodies of %d)", st.PeakHeld, st.PeakCount, budget, maxHeld, bodySize)
	}
	grew := heapGrowth()
	t.Logf("%d slow uploads: %d turned away, %d bodies held (%d bytes reserved); heap in use grew by %.1f MiB",
		uploads, busy, st.Bodies, st.Held, float64(grew)/(1<<20))
	if grew > limit {
		t.Errorf("heap in use grew by %d bytes under %d slow uploads; want under %d (the %d-byte budget plus connection overhead)",
			grew, uploads, limit, budget)
	}
	if n := counter(t, h.reader, "wanotify.webhook.requests", attribute.String("outcome", OutcomeBusy)); n < int64(uploads-maxHeld) {
		t.Errorf("wanotify.webhook.requests{outcome=busy} = %d, want at least %d", n, uploads-maxHeld)
	}

	// A real webhook during the attack: accepted, or a clean 503.
	body := mustJSON(t, metaPayload(metaStatus("wamid.during", "delivered", "447700900123", 1764324002)))
	during1 := h.post(body)
	switch during1.status {
	case http.StatusOK:
	case http.StatusServiceUnavailable:
		if during1.header.Get("Retry-After") == "" || during1.problem(t).Type != ProblemUnavailable {
			t.Errorf("503 during the attack without Retry-After or problem: %v %s", during1.header, during1.body)
		}
	default:
		t.Fatalf("webhook during the attack: %d %s", during1.status, during1.body)
	}

	// Once the attackers are gone, their memory is free and webhooks go
	// through.
	end()
	for st := h.rx.BodyStats(); st.Held != 0; st = h.rx.BodyStats() {
		select {
		case <-deadline:
			t.Fatalf("body memory still held after the uploads closed: %+v", st)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if after := h.post(mustJSON(t, metaPayload(metaStatus("wamid.after", "delivered", "447700900123", 1764324002)))); after.status != http.StatusOK {
		t.Fatalf("webhook after the attack: %d %s", after.status, after.body)
	}
}

// Meta's webhook payloads reach 3 MB (as BSPs document): a body of that
// size is accepted by default, not refused on every redelivery.
func TestDefaultBodyLimitCoversMetasLargestPayloads(t *testing.T) {
	if DefaultMaxBodyBytes < 3_000_000 {
		t.Fatalf("DefaultMaxBodyBytes %d is below Meta's 3 MB", DefaultMaxBodyBytes)
	}
	h := newHarness(t, nil, nil)
	var statuses []metawebhook.Status
	for i := 0; ; i++ {
		statuses = append(statuses, metaStatus(fmt.Sprintf("wamid.HBgLMTQxNTU1NTAxMDAVAgARGBI%06d", i), "delivered", "447700900123", 1764324002))
		if i%500 == 0 && len(mustJSON(t, metaPayload(statuses...))) > 3_000_000 {
			break
		}
	}
	body := mustJSON(t, metaPayload(statuses...))
	got := h.post(body)
	if got.status != http.StatusOK {
		t.Fatalf("a %d-byte webhook: %d %.200s", len(body), got.status, got.body)
	}
	if n := statusRecordCount(t, h.brokers); n != int64(len(statuses)) {
		t.Fatalf("%d records, want %d", n, len(statuses))
	}
}

// TestSlowBodyIsCutOffAtItsReadDeadline: once its memory is reserved, a
// body must arrive within WANOTIFY_WEBHOOK_BODY_READ_TIMEOUT; an upload
// trickling past it is answered and its memory released, whatever the
// server's own (longer) read timeout.
func TestSlowBodyIsCutOffAtItsReadDeadline(t *testing.T) {
	h := newHarness(t, nil, func(c *Config) { c.BodyReadTimeout = 300 * time.Millisecond })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	u := startSlowUpload(t, strings.TrimPrefix(h.srv.URL, "http://"), h.cfg.Path, 1<<20, stop, &wg)
	defer func() { close(stop); u.conn.Close(); wg.Wait() }()
	deadline := time.After(30 * time.Second)
	for u.code.Load() == 0 {
		select {
		case <-deadline:
			t.Fatalf("a trickling upload is still being read after 30 s (%+v)", h.rx.BodyStats())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if c := u.code.Load(); c != http.StatusBadRequest && c != -1 {
		t.Fatalf("trickling upload answered %d, want 400 (unreadable) or a closed connection", c)
	}
	for st := h.rx.BodyStats(); st.Held != 0; st = h.rx.BodyStats() {
		select {
		case <-deadline:
			t.Fatalf("memory still reserved: %+v", st)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestCallerCannotForceSampling: with our sampler off (parent-based,
// ratio 0), a request carrying a sampled traceparent, here one refused
// with 401, records no span: the caller's flag does not decide.
func TestCallerCannotForceSampling(t *testing.T) {
	productionPropagators(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0))), sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg := testConfig()
	rx, err := New(cfg, testinfra.Client(t, []string{"127.0.0.1:1"}), WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rx.Handler())
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+cfg.Path, strings.NewReader(`{}`))
	req.Header.Set(cfg.SignatureHeader, "sha256=00")
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if a := do(t, req); a.status != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", a.status)
	}
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("%d spans recorded: the caller's sampled flag forced sampling", n)
	}
}

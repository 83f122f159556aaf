package dispatcher

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

// spanRecorder keeps every ended span.
type spanRecorder struct {
	mu    sync.Mutex
	spans []sdktrace.ReadOnlySpan
}

func (r *spanRecorder) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (r *spanRecorder) OnEnd(s sdktrace.ReadOnlySpan) {
	r.mu.Lock()
	r.spans = append(r.spans, s)
	r.mu.Unlock()
}
func (r *spanRecorder) Shutdown(context.Context) error   { return nil }
func (r *spanRecorder) ForceFlush(context.Context) error { return nil }

func (r *spanRecorder) named(name string) []sdktrace.ReadOnlySpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sdktrace.ReadOnlySpan
	for _, s := range r.spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// TestSpansAndMetrics: one "send" span per attempt, in the producer's
// trace, with the notification's attributes and a masked recipient; and
// the send, status and breaker instruments report what happened.
func TestSpansAndMetrics(t *testing.T) {
	rec := &spanRecorder{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	prevTP, prevMP, prevProp := otel.GetTracerProvider(), otel.GetMeterProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		otel.SetTracerProvider(prevTP)
		otel.SetMeterProvider(prevMP)
		otel.SetTextMapPropagator(prevProp)
	})
	hooks := kotel.NewKotel(kotel.WithTracer(kotel.NewTracer(kotel.TracerProvider(tp), kotel.TracerPropagator(propagation.TraceContext{})))).Hooks()

	e := newEnv(t, 2, simulator.Behavior{})
	w := e.watch()
	cfg := testConfig("t-telemetry")
	d, err := New(cfg, e.provider(), append(e.kafkaOpts(), kgo.WithHooks(hooks...)), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	// The producing application's trace.
	appCtx, appSpan := tp.Tracer("app").Start(context.Background(), "publish invoice reminder")
	n := notification("traced-1", "+15551234567", "sender-1", "[sim:http_503]")
	ok := notification("traced-2", "+15557654321", "sender-1", "hello")
	prod := testinfra.Client(t, e.brokers, kgo.WithHooks(hooks...), kgo.ProducerLinger(0))
	for _, x := range []*contract.Notification{n, ok} {
		v, _ := x.Encode()
		if err := prod.ProduceSync(appCtx, &kgo.Record{Topic: topics.Requested, Key: x.Key(), Value: v, Context: appCtx}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	appSpan.End()
	w.waitTerminal(t, []string{n.ID, ok.ID}, 30*time.Second)

	var attempts []int64
	for _, s := range rec.named("send") {
		attrs := map[attribute.Key]attribute.Value{}
		for _, kv := range s.Attributes() {
			attrs[kv.Key] = kv.Value
		}
		if attrs["wanotify.notification_id"].AsString() != n.ID {
			continue
		}
		if s.SpanContext().TraceID() != appSpan.SpanContext().TraceID() {
			t.Errorf("send span of attempt %d is not in the producer's trace", attrs["wanotify.attempt"].AsInt64())
		}
		if attrs["wanotify.tenant"].AsString() != "acme" || attrs["wanotify.event_type"].AsString() != "invoice.reminder" {
			t.Errorf("span attributes %v", attrs)
		}
		if r := attrs["wanotify.recipient"].AsString(); strings.Contains(r, "1234567") || r == "" {
			t.Errorf("recipient %q not masked in the span", r)
		}
		for _, kv := range s.Attributes() {
			if strings.Contains(kv.Value.Emit(), "5551234567") {
				t.Errorf("attribute %s carries the phone number", kv.Key)
			}
		}
		attempts = append(attempts, attrs["wanotify.attempt"].AsInt64())
	}
	if len(attempts) != 4 {
		t.Fatalf("send spans for the failing notification: attempts %v, want one span for each of 4 attempts", attempts)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	sums := map[string]map[string]int64{}
	seen := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			seen[m.Name] = true
			if s, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range s.DataPoints {
					var key []string
					for _, kv := range dp.Attributes.ToSlice() {
						key = append(key, string(kv.Key)+"="+kv.Value.Emit())
					}
					if sums[m.Name] == nil {
						sums[m.Name] = map[string]int64{}
					}
					sums[m.Name][strings.Join(key, ",")] += dp.Value
				}
			}
		}
	}
	if got := sums["wanotify.dispatcher.sends"]["error_code=,outcome=accepted"]; got != 1 {
		t.Errorf("sends accepted = %d, want 1 (%v)", got, sums["wanotify.dispatcher.sends"])
	}
	if got := sums["wanotify.dispatcher.sends"]["error_code=http_503,outcome=retryable"]; got != 4 {
		t.Errorf("sends retryable http_503 = %d, want 4", got)
	}
	if got := sums["wanotify.dispatcher.dlq"]["reason=exhausted"]; got != 1 {
		t.Errorf("dlq = %d, want 1", got)
	}
	if got := sums["wanotify.dispatcher.retries"]["tier="+topics.Retry5s]; got != 1 {
		t.Errorf("retries on the first tier = %d, want 1", got)
	}
	for _, name := range []string{"wanotify.dispatcher.breaker.state", "wanotify.dispatcher.inflight", "wanotify.dispatcher.lag",
		"wanotify.dispatcher.limiter.wait", "wanotify.dispatcher.retry.lateness", "wanotify.dispatcher.statuses"} {
		if !seen[name] {
			t.Errorf("instrument %s not reported", name)
		}
	}
}

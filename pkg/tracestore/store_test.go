package tracestore

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/wanotify/wanotify/pkg/testinfra"
)

// startReceiver serves a Receiver on a free port, writing into a fresh
// database, and returns the store and the OTLP endpoint.
func startReceiver(t *testing.T) (*Store, string) {
	t.Helper()
	db := testinfra.ClickHouseDatabase(t)
	st := New(db.Conn, db.Name)
	ctx, cancel := context.WithCancel(context.Background())
	if err := st.Ensure(ctx, 0); err != nil {
		t.Fatal(err)
	}
	// Twice: a restart finds the tables there.
	if err := st.Ensure(ctx, 0); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- NewReceiver(st, nil).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("receiver: %v", err)
		}
	})
	return st, ln.Addr().String()
}

func provider(t *testing.T, endpoint, service string) *sdktrace.TracerProvider {
	t.Helper()
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(endpoint), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// TestSpansExportedOverOTLPAreStoredAndRenderedAsATree: an OTel SDK
// exporting OTLP/gRPC to the receiver lands every span in otel_traces
// with the collector exporter's values; the notification id finds the
// trace, and the tree shows parents, durations, errors and links.
func TestSpansExportedOverOTLPAreStoredAndRenderedAsATree(t *testing.T) {
	st, endpoint := startReceiver(t)
	ctx := context.Background()
	ingest, disp := provider(t, endpoint, "ingest"), provider(t, endpoint, "dispatcher")

	const id = "6f850ffb-0cb4-577d-b9f8-742da8a4164a"
	rctx, root := ingest.Tracer("t").Start(ctx, "POST /v1/notifications", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String(AttrNotificationID, id), attribute.Int("http.response.status_code", 202)))
	sctx, send := disp.Tracer("t").Start(rctx, "send", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.Int("wanotify.attempt", 1), attribute.String("wanotify.outcome", "retrying")))
	_, call := disp.Tracer("t").Start(sctx, "xpressbot send", trace.WithSpanKind(trace.SpanKindClient))
	time.Sleep(2 * time.Millisecond)
	call.SetStatus(codes.Error, "503 Service Unavailable")
	call.End()
	send.End()
	root.End()
	// Another trace linked to the first one, carrying the id too.
	_, hook := ingest.Tracer("t").Start(ctx, "POST /v1/webhooks/whatsapp", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithLinks(trace.Link{SpanContext: root.SpanContext()}),
		trace.WithAttributes(attribute.StringSlice("wanotify.notification_ids", []string{"other", id})))
	hook.AddEvent("status", trace.WithAttributes(attribute.String("wanotify.status", "delivered")))
	hook.AddEvent("other")
	hook.AddEvent("status", trace.WithAttributes(attribute.String("wanotify.status", "read")))
	hook.End()
	for _, tp := range []*sdktrace.TracerProvider{ingest, disp} {
		if err := tp.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
	}

	refs, err := st.TracesOf(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 2 || refs[0].TraceID != root.SpanContext().TraceID().String() || refs[0].Root != "POST /v1/notifications" ||
		refs[1].TraceID != hook.SpanContext().TraceID().String() {
		t.Fatalf("traces of %s: %+v", id, refs)
	}
	spans, err := st.Spans(ctx, refs[0].TraceID)
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3: %+v", len(spans), spans)
	}
	byName := map[string]Span{}
	for _, sp := range spans {
		byName[sp.Name] = sp
	}
	c := byName["xpressbot send"]
	if c.Kind != "Client" || c.Service != "dispatcher" || c.StatusCode != "Error" || c.StatusMsg != "503 Service Unavailable" ||
		c.Duration < 2*time.Millisecond || c.ParentSpanID != byName["send"].SpanID {
		t.Errorf("provider call span %+v", c)
	}
	if r := byName["POST /v1/notifications"]; r.Kind != "Server" || r.ParentSpanID != "" || r.Attributes["http.response.status_code"] != "202" {
		t.Errorf("root span %+v", r)
	}
	hs, err := st.Spans(ctx, refs[1].TraceID)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || len(hs[0].Links) != 1 || hs[0].Links[0].TraceID != refs[0].TraceID || hs[0].Links[0].SpanID != root.SpanContext().SpanID().String() ||
		hs[0].Attributes["wanotify.notification_ids"] != `["other","`+id+`"]` || strings.Join(hs[0].Statuses, ",") != "delivered,read" {
		t.Errorf("linked span %+v", hs)
	}

	var out bytes.Buffer
	if err := Render(&out, Tree(spans)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "POST /v1/notifications") || !strings.HasPrefix(lines[2], "└─ send") ||
		!strings.HasPrefix(lines[3], "   └─ xpressbot send") || !strings.Contains(lines[3], "ERROR 503") ||
		!strings.Contains(lines[2], "attempt=1 outcome=retrying") || !strings.Contains(lines[3], "ms") {
		t.Errorf("tree:\n%s", out.String())
	}

	// The trace-id table the exporter keeps for lookups is fed too.
	var n uint64
	if err := st.conn.QueryRow(ctx, "SELECT count() FROM "+st.db+".otel_traces_trace_id_ts WHERE TraceId = ?", refs[0].TraceID).Scan(&n); err != nil || n == 0 {
		t.Errorf("otel_traces_trace_id_ts rows for the trace: %d, %v", n, err)
	}
}

// TestMetricsExportsAreAccepted: the services export metrics to the same
// endpoint; the receiver takes them without error.
func TestMetricsExportsAreAccepted(t *testing.T) {
	_, endpoint := startReceiver(t)
	ctx := context.Background()
	exp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(endpoint), otlpmetricgrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)
	cnt, _ := mp.Meter("t").Int64Counter("c")
	cnt.Add(ctx, 1)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if err := exp.Export(ctx, &rm); err != nil {
		t.Fatalf("metrics export: %v", err)
	}
	_ = exp.Shutdown(ctx)
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0", 850 * time.Microsecond: "850µs", 12345 * time.Microsecond: "12.3ms", 1250 * time.Millisecond: "1.25s", 3 * time.Nanosecond: "3ns",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%s) = %s, want %s", d, got, want)
		}
	}
}

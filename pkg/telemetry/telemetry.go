// Package telemetry sets up what every wanotify service shares: the
// OpenTelemetry tracer and meter providers (OTLP export when an endpoint is
// configured), a Prometheus /metrics handler, W3C trace-context
// propagation, and a JSON log/slog logger that stamps each line with the
// trace and span ids of its context.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/wanotify/wanotify/pkg/config"
)

// Config selects exporters and log settings.
type Config struct {
	ServiceName  string
	OTLPEndpoint string  // host:port of an OTLP/gRPC collector; empty: no export
	OTLPInsecure bool    // plaintext OTLP
	SampleRatio  float64 // root-span sampling ratio, 0..1
	LogLevel     string  // debug, info, warn, error
	// SpanExporter, when set, receives every ended span synchronously
	// besides any OTLP export; not read from the environment. The
	// end-to-end tests use an in-memory exporter to see whole traces.
	SpanExporter sdktrace.SpanExporter
}

// Load reads the telemetry variables.
func Load(e *config.Env, service string) Config {
	return Config{
		ServiceName:  service,
		OTLPEndpoint: e.String("WANOTIFY_OTLP_ENDPOINT", "", "OTLP/gRPC collector host:port for traces and metrics (empty: no export)"),
		OTLPInsecure: e.Bool("WANOTIFY_OTLP_INSECURE", true, "send OTLP without TLS"),
		SampleRatio:  e.Float("WANOTIFY_TRACE_SAMPLE_RATIO", 1, "fraction of new traces sampled (parent-based)"),
		LogLevel:     e.String("WANOTIFY_LOG_LEVEL", "info", "log level: debug, info, warn, error"),
	}
}

// Validate names the bad variable.
func (c Config) Validate() error {
	var errs []error
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		errs = append(errs, fmt.Errorf("WANOTIFY_TRACE_SAMPLE_RATIO: %v is not between 0 and 1", c.SampleRatio))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("WANOTIFY_LOG_LEVEL: %w", err))
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
	}
	return l, nil
}

// Telemetry owns the providers of one process.
type Telemetry struct {
	Logger   *slog.Logger
	Tracer   *sdktrace.TracerProvider
	Meter    *sdkmetric.MeterProvider
	Registry *prometheus.Registry
	shutdown []func(context.Context) error
}

// Setup installs global providers and returns them. Call Shutdown at exit
// to flush exporters.
func Setup(ctx context.Context, c Config, logOut io.Writer) (*Telemetry, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if logOut == nil {
		logOut = os.Stderr
	}
	level, _ := parseLevel(c.LogLevel)
	t := &Telemetry{Logger: NewLogger(logOut, level).With("service", c.ServiceName)}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(c.ServiceName)))
	if err != nil {
		res = resource.Default()
	}
	topts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio))),
	}
	t.Registry = prometheus.NewRegistry()
	t.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	promExp, err := otelprom.New(otelprom.WithRegisterer(t.Registry), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(promExp), sdkmetric.WithView(Views...)}
	if c.OTLPEndpoint != "" {
		te := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(c.OTLPEndpoint)}
		me := []otlpmetricgrpc.Option{otlpmetricgrpc.WithEndpoint(c.OTLPEndpoint)}
		if c.OTLPInsecure {
			te = append(te, otlptracegrpc.WithInsecure())
			me = append(me, otlpmetricgrpc.WithInsecure())
		}
		texp, err := otlptracegrpc.New(ctx, te...)
		if err != nil {
			return nil, fmt.Errorf("WANOTIFY_OTLP_ENDPOINT: trace exporter: %w", err)
		}
		mexp, err := otlpmetricgrpc.New(ctx, me...)
		if err != nil {
			return nil, fmt.Errorf("WANOTIFY_OTLP_ENDPOINT: metric exporter: %w", err)
		}
		topts = append(topts, sdktrace.WithBatcher(texp))
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(15*time.Second))))
	}
	if c.SpanExporter != nil {
		topts = append(topts, sdktrace.WithSyncer(c.SpanExporter))
	}
	t.Tracer = sdktrace.NewTracerProvider(topts...)
	t.Meter = sdkmetric.NewMeterProvider(mopts...)
	otel.SetTracerProvider(t.Tracer)
	otel.SetMeterProvider(t.Meter)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { t.Logger.Warn("telemetry", "err", err) }))
	t.shutdown = append(t.shutdown, t.Tracer.Shutdown, t.Meter.Shutdown)
	return t, nil
}

// latencyView gives every *.duration histogram buckets in seconds that fit
// a notification pipeline (1 ms … 2 min).
var latencyView = sdkmetric.NewView(
	sdkmetric.Instrument{Name: "*duration*", Kind: sdkmetric.InstrumentKindHistogram},
	sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{
		Boundaries: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
	}},
)

// Views are the metric views of every service: latency buckets, and no
// body-size histograms. Tests that build their own meter provider use them
// too, so they see what /metrics exports.
var Views = []sdkmetric.View{latencyView, dropBodySizes}

// dropBodySizes drops otelhttp's request and response body-size
// histograms (server and client): no dashboard or alert reads them, and
// recording them cost every HTTP request an attribute set and two
// histogram updates.
var dropBodySizes = sdkmetric.NewView(
	sdkmetric.Instrument{Name: "http.*.body.size"},
	sdkmetric.Stream{Aggregation: sdkmetric.AggregationDrop{}},
)

// MetricsHandler serves the Prometheus exposition of this process.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.Registry, promhttp.HandlerOpts{})
}

// Shutdown flushes and stops the exporters.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// NewLogger returns a JSON logger whose records carry trace_id and span_id
// when logged with a context that holds a span.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(traceHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(a)}
}
func (h traceHandler) WithGroup(n string) slog.Handler { return traceHandler{h.Handler.WithGroup(n)} }

package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel"

	"github.com/wanotify/wanotify/pkg/edgehttp"
	"github.com/wanotify/wanotify/pkg/service"
	"github.com/wanotify/wanotify/pkg/topics"
)

// ProducerOpts are the franz-go options of the ingest producer on top of
// the shared Kafka settings: acks=all on an idempotent producer (a 202
// promises the record survives a broker loss), records to
// notifications.requested, and a buffer deep enough for many concurrent
// batches.
//
// There is no producer span per record: the server writes the request's
// own span (one per request, from otelhttp) into every record's
// traceparent itself (Server.traceHeaders). A span per record would cost
// more than the rest of a batch item's work together (measured: the
// producer's throughput fell ninefold), and the request span already
// covers the wait for Kafka's acknowledgement. kotel's meter hooks stay.
func ProducerOpts(c Config) ([]kgo.Opt, error) {
	kc := c.Kafka
	kc.Tracing = false
	opts, err := kc.Opts()
	if err != nil {
		return nil, err
	}
	k := kotel.NewKotel(kotel.WithMeter(kotel.NewMeter(kotel.MeterProvider(otel.GetMeterProvider()))))
	return append(opts,
		kgo.WithHooks(k.Hooks()...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic(topics.Requested),
		kgo.ProducerLinger(c.Linger),
		kgo.MaxBufferedRecords(64*MaxBatchItems),
		kgo.RecordDeliveryTimeout(c.ProduceTimeout+5*time.Second),
	), nil
}

// Run is the service body: it serves the API on c.Addr until ctx is
// cancelled, reports ready once the broker answers a
// ping, then drains: in-flight requests finish (each bounded by the
// produce timeout) and buffered records are flushed.
//
// GET /v1/notifications/{id} reads through reader; when it is nil and
// c.StatusReads is set, through the ClickHouse communication logs
// (package logstore); otherwise the route answers 501.
func Run(ctx context.Context, rt *service.Runtime, c Config, reader StatusReader) error {
	if reader == nil && c.StatusReads {
		r, closeConn, err := OpenLogstoreReader(c.ClickHouse)
		if err != nil {
			return err
		}
		defer func() { _ = closeConn() }()
		reader = r
	}
	opts, err := ProducerOpts(c)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	srv, err := NewServer(c, cl, reader, rt.Log)
	if err != nil {
		return err
	}
	// /healthz, /readyz and /metrics are served by the lifecycle on its
	// own admin listener (WANOTIFY_ADMIN_ADDR), never on the public port:
	// the API port faces producers (and, through an Ingress, the
	// internet), which have no business reading metrics or probes.
	router := srv.Router()
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("WANOTIFY_INGEST_ADDR: %w", err)
	}
	hs := &http.Server{
		Handler:           router,
		ReadHeaderTimeout: edgehttp.ReadHeaderTimeout,
		MaxHeaderBytes:    edgehttp.MaxHeaderBytes,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      c.ProduceTimeout + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(rt.Log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	rt.Log.Info("ingest listening", "addr", ln.Addr().String(), "status_reads", reader != nil)
	if srv.keys.hasDevKey() {
		rt.Log.Warn("the local development API key of tenant demo is accepted; configure WANOTIFY_INGEST_API_KEYS outside local use")
	}
	go awaitBroker(ctx, cl, rt)

	select {
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), c.ProduceTimeout+10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		rt.Log.Warn("http shutdown", "err", err)
	}
	if err := cl.Flush(sctx); err != nil {
		rt.Log.Warn("producer flush", "err", err)
	}
	return nil
}

// awaitBroker pings until a broker answers, then marks the service ready.
func awaitBroker(ctx context.Context, cl *kgo.Client, rt *service.Runtime) {
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := cl.Ping(pctx)
		cancel()
		if err == nil {
			rt.SetReady(true)
			rt.Log.Info("ready: broker reachable")
			return
		}
		if attempt == 1 || attempt%20 == 0 {
			rt.Log.Warn("broker not reachable yet", "attempt", attempt, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

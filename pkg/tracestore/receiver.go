package tracestore

import (
	"context"
	"errors"
	"log/slog"
	"net"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Receiver is an OTLP/gRPC endpoint (what WANOTIFY_OTLP_ENDPOINT points
// the services at) that writes the spans of every export into a Store,
// one insert per export (the services' batch span processors already
// batch). Metrics exports are accepted and dropped: the services serve
// their metrics on /metrics for Prometheus, and their OTLP metric
// exporter must not log a failure every 15 s.
type Receiver struct {
	coltracepb.UnimplementedTraceServiceServer
	store *Store
	log   *slog.Logger
	srv   *grpc.Server
}

// NewReceiver returns a receiver writing to store.
func NewReceiver(store *Store, log *slog.Logger) *Receiver {
	if log == nil {
		log = slog.Default()
	}
	r := &Receiver{store: store, log: log, srv: grpc.NewServer(grpc.MaxRecvMsgSize(16 << 20))}
	coltracepb.RegisterTraceServiceServer(r.srv, r)
	colmetricspb.RegisterMetricsServiceServer(r.srv, dropMetrics{})
	return r
}

// Export stores the spans of one OTLP export. A failed insert answers
// Unavailable, which OTLP exporters retry.
func (r *Receiver) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	if _, err := r.store.Write(ctx, req.GetResourceSpans()); err != nil {
		r.log.WarnContext(ctx, "spans not stored", "err", err)
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// Serve answers on ln until ctx ends, then stops gracefully.
func (r *Receiver) Serve(ctx context.Context, ln net.Listener) error {
	done := make(chan error, 1)
	go func() { done <- r.srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	r.srv.GracefulStop()
	if err := <-done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

type dropMetrics struct {
	colmetricspb.UnimplementedMetricsServiceServer
}

func (dropMetrics) Export(context.Context, *colmetricspb.ExportMetricsServiceRequest) (*colmetricspb.ExportMetricsServiceResponse, error) {
	return &colmetricspb.ExportMetricsServiceResponse{}, nil
}

package tracestore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/wanotify/wanotify/pkg/chconf"
	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/service"
)

// ServiceName is the trace receiver's name in logs and -help.
const ServiceName = "traces"

// Config is the receiver service's configuration.
type Config struct {
	Addr          string
	RetentionDays int
	ClickHouse    chconf.Config
}

// Validate names the bad variable.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("WANOTIFY_TRACES_ADDR: %q is not host:port", c.Addr))
	}
	if c.RetentionDays < 0 {
		errs = append(errs, fmt.Errorf("WANOTIFY_TRACES_RETENTION_DAYS: %d is negative", c.RetentionDays))
	}
	return errors.Join(append(errs, c.ClickHouse.Validate())...)
}

// Configure reads the receiver's variables (service.Configure).
func Configure(e *config.Env) (service.Body, error) {
	c := Config{
		Addr:          e.String("WANOTIFY_TRACES_ADDR", "127.0.0.1:4317", "listen address of the local trace store's OTLP/gRPC receiver (point WANOTIFY_OTLP_ENDPOINT here)"),
		RetentionDays: e.Int("WANOTIFY_TRACES_RETENTION_DAYS", 7, "days ClickHouse keeps spans in otel_traces (TTL); 0 keeps them"),
		ClickHouse:    chconf.Load(e),
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return func(ctx context.Context, rt *service.Runtime) error { return run(ctx, rt, c) }, nil
}

func run(ctx context.Context, rt *service.Runtime, c Config) error {
	opts, err := c.ClickHouse.Options()
	if err != nil {
		return err
	}
	// The database may not exist yet (the sink creates it too): connect
	// without it and name it in every statement.
	opts.Auth.Database = ""
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	defer conn.Close()
	store := New(conn, c.ClickHouse.Database)
	for delay := 200 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		err := store.Ensure(ctx, c.RetentionDays)
		if err == nil {
			break
		}
		rt.Log.Warn("trace tables not created yet", "err", err, "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("WANOTIFY_TRACES_ADDR: %w", err)
	}
	rt.Log.Info("trace store ready", "otlp_grpc", ln.Addr().String(), "database", c.ClickHouse.Database, "table", "otel_traces")
	rt.SetReady(true)
	return NewReceiver(store, rt.Log).Serve(ctx, ln)
}

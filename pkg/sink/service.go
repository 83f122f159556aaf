package sink

import (
	"context"
	"errors"
	"fmt"

	"github.com/wanotify/wanotify/pkg/chconf"
	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/kafkaconf"
	"github.com/wanotify/wanotify/pkg/service"
)

// ServiceName names the sink's binary, logs and telemetry.
const ServiceName = "sink"

// DefaultAdminAddr serves /healthz, /readyz and /metrics.
const DefaultAdminAddr = "127.0.0.1:9465"

// Configure reads the sink's settings (WANOTIFY_SINK_*, WANOTIFY_KAFKA_*,
// WANOTIFY_CLICKHOUSE_*) and returns the service body, for service.Main
// and for running the sink inside the local stack. Readiness follows
// Sink.Ready.
func Configure(e *config.Env) (service.Body, error) {
	cfg := Load(e)
	kc := kafkaconf.Load(e, "wanotify-sink")
	cc := chconf.Load(e)
	ec := LoadEraseAPI(e, cfg.ContentHashKey)
	if err := errors.Join(cfg.Validate(), kc.Validate(), cc.Validate(), ec.Validate()); err != nil {
		return nil, err
	}
	return func(ctx context.Context, rt *service.Runtime) error {
		kopts, err := kc.Opts()
		if err != nil {
			return fmt.Errorf("kafka: %w", err)
		}
		chopts, err := cc.Options()
		if err != nil {
			return fmt.Errorf("clickhouse: %w", err)
		}
		c := cfg
		c.OnReady = rt.SetReady
		s, err := New(c, chopts, kopts, rt.Log)
		if err != nil {
			return err
		}
		if ec.Addr == "" {
			return s.Run(ctx)
		}
		return runWithEraseAPI(ctx, s, ec, chopts, rt.Log)
	}, nil
}

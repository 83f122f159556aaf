package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/edgehttp"
	"github.com/wanotify/wanotify/pkg/kafkaconf"
	"github.com/wanotify/wanotify/pkg/service"
)

// ServiceName is the receiver's service name (logs, traces, client id).
const ServiceName = "webhook"

// GCPercent is the receiver process's garbage collector target when GOGC
// is not set (service.ApplyRuntimeDefaults): its live heap is a few
// megabytes while every webhook allocates kilobytes, so at Go's default
// it collects dozens of times a second.
const GCPercent = 200

// Configure reads the receiver's and Kafka's settings from e and returns
// the service body: the webhook routes on Config.Addr. /healthz, /readyz
// and /metrics are served by the lifecycle on the admin listener
// (WANOTIFY_ADMIN_ADDR, default DefaultAdminAddr), never on the port the
// provider reaches.
func Configure(e *config.Env) (service.Body, error) {
	cfg := Load(e)
	kc := kafkaconf.Load(e, "wanotify-"+ServiceName)
	if err := errors.Join(cfg.Validate(), kc.Validate()); err != nil {
		return nil, err
	}
	return func(ctx context.Context, rt *service.Runtime) error { return serve(ctx, rt, cfg, kc) }, nil
}

// serve runs until ctx is cancelled. Readiness waits for the first
// successful contact with Kafka; on shutdown in-flight requests finish
// (each bounded by the produce timeout) before the client closes.
func serve(ctx context.Context, rt *service.Runtime, cfg Config, kc kafkaconf.Config) error {
	opts, err := kc.Opts()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(opts, ProducerOptions()...)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	rx, err := New(cfg, cl, WithLogger(rt.Log))
	if err != nil {
		return err
	}
	if cfg.VerifyToken == "" {
		rt.Log.Warn("no " + EnvVerifyToken + ": the GET subscription handshake is refused")
	}

	r := mux.NewRouter()
	rx.Register(r)
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (%s): %w", cfg.Addr, EnvAddr, err)
	}
	srv := &http.Server{
		Handler:           r,
		ReadHeaderTimeout: edgehttp.ReadHeaderTimeout,
		// The outer bound of a request's reading; each body also has its
		// own, shorter deadline once its memory is reserved.
		ReadTimeout:    30 * time.Second,
		WriteTimeout:   cfg.ProduceTimeout + 30*time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: edgehttp.MaxHeaderBytes,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	rt.Log.Info("webhook receiver listening", "addr", ln.Addr().String(), "path", cfg.Path,
		"signature_header", cfg.SignatureHeader, "format", string(cfg.Format), "provider", cfg.Provider)

	pinged := make(chan struct{})
	go func() {
		defer close(pinged)
		for attempt := 0; ; attempt++ {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := cl.Ping(pctx)
			cancel()
			if err == nil {
				rt.SetReady(true)
				return
			}
			if attempt%30 == 0 {
				rt.Log.Warn("kafka not reachable yet; not ready", "err", err, "attempt", attempt+1)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
		runErr = fmt.Errorf("webhook server: %w", runErr)
	}
	rt.SetReady(false)
	<-pinged
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ProduceTimeout+5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("webhook server shutdown: %w", err))
	}
	return runErr
}

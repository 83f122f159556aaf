// Package service is the lifecycle every wanotify binary shares: read and
// validate configuration, set up telemetry, serve /healthz, /readyz and
// /metrics, run the service body, and on SIGINT/SIGTERM flip readiness to
// unavailable first, wait the readiness grace, then cancel the body and
// give it a bounded time to drain.
//
// A services/<name>/main.go is one call to Main.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/mux"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/telemetry"
)

// Body runs the service until ctx is cancelled, then drains and returns.
// It calls rt.SetReady(true) once it can take work.
type Body func(ctx context.Context, rt *Runtime) error

// Configure reads the service's variables from e and returns its body.
// It must not start anything: Main validates all configuration (and
// answers -help) before the body runs.
type Configure func(e *config.Env) (Body, error)

// Runtime is what a body gets from the process.
type Runtime struct {
	Name      string
	Log       *slog.Logger
	Telemetry *telemetry.Telemetry
	AdminAddr string
	ready     atomic.Bool
	health    atomic.Bool
}

// SetReady marks the service ready (or not) to take work.
func (rt *Runtime) SetReady(v bool) { rt.ready.Store(v) }

// Ready reports readiness.
func (rt *Runtime) Ready() bool { return rt.ready.Load() }

// SetHealthy marks the process alive (true by default) or broken.
func (rt *Runtime) SetHealthy(v bool) { rt.health.Store(v) }

// AdminRoutes mounts /healthz, /readyz and /metrics on r.
func (rt *Runtime) AdminRoutes(r *mux.Router) {
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !rt.health.Load() {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}).Methods(http.MethodGet)
	r.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !rt.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	}).Methods(http.MethodGet)
	if rt.Telemetry != nil {
		r.Handle("/metrics", rt.Telemetry.MetricsHandler()).Methods(http.MethodGet)
	}
}

// Options tune the lifecycle.
type Options struct {
	AdminAddr        string        // where /healthz, /readyz, /metrics are served; empty: not served
	ReadinessGrace   time.Duration // time between readiness going false and the body's cancellation
	ShutdownTimeout  time.Duration // how long the body may drain
	DefaultAdminAddr string
	// GCPercent is the garbage collector's target (as GOGC) when the
	// environment sets none; 0 keeps Go's default (see
	// ApplyRuntimeDefaults).
	GCPercent int
}

// Main runs a service and exits the process.
func Main(name string, configure Configure, opts Options) {
	ApplyRuntimeDefaults(opts.GCPercent)
	os.Exit(Run(context.Background(), name, config.FromEnv(), configure, opts, nil))
}

// Run is Main without os.Exit, for tests; signals (nil: SIGINT/SIGTERM)
// triggers the shutdown. It returns the process exit code.
func Run(ctx context.Context, name string, e *config.Env, configure Configure, opts Options, signals <-chan os.Signal) int {
	tcfg := telemetry.Load(e, name)
	opts.AdminAddr = e.String("WANOTIFY_ADMIN_ADDR", opts.DefaultAdminAddr, "address of /healthz, /readyz and /metrics for this service (empty: off)")
	opts.ReadinessGrace = e.Duration("WANOTIFY_SHUTDOWN_READINESS_GRACE", opts.ReadinessGrace, "after SIGTERM, how long readiness reports unavailable before work stops")
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = 30 * time.Second
	}
	opts.ShutdownTimeout = e.Duration("WANOTIFY_SHUTDOWN_TIMEOUT", opts.ShutdownTimeout, "how long in-flight work may drain after SIGTERM")
	body, cerr := configure(e)
	if e.HelpMarkdown {
		fmt.Fprint(os.Stdout, config.Markdown())
		return 0
	}
	if e.Help {
		fmt.Fprint(os.Stdout, config.Usage(name))
		return 0
	}
	if err := errors.Join(cerr, e.Err(), tcfg.Validate()); err != nil {
		fmt.Fprintf(os.Stderr, "%s: invalid configuration:\n%v\n", name, err)
		return 2
	}
	tel, err := telemetry.Setup(ctx, tcfg, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: telemetry: %v\n", name, err)
		return 2
	}
	rt := &Runtime{Name: name, Log: tel.Logger, Telemetry: tel, AdminAddr: opts.AdminAddr}
	rt.health.Store(true)
	logRuntime(rt.Log)
	for _, w := range e.Warnings() {
		rt.Log.Warn("insecure setting: "+w.Message, "variable", w.Name)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()

	var adminSrv *http.Server
	if opts.AdminAddr != "" {
		r := mux.NewRouter()
		rt.AdminRoutes(r)
		ln, err := net.Listen("tcp", opts.AdminAddr)
		if err != nil {
			rt.Log.Error("admin listener", "addr", opts.AdminAddr, "err", err)
			return 1
		}
		adminSrv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = adminSrv.Serve(ln) }()
		defer adminSrv.Close()
	}

	if signals == nil {
		ch := make(chan os.Signal, 2)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(ch)
		signals = ch
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- body(runCtx, rt) }()
	rt.Log.Info("started", "admin", opts.AdminAddr)

	select {
	case err := <-done:
		rt.SetReady(false)
		if err != nil && !errors.Is(err, context.Canceled) {
			rt.Log.Error("stopped with error", "err", err)
			return 1
		}
		rt.Log.Info("stopped")
		return 0
	case sig := <-signals:
		rt.SetReady(false)
		rt.Log.Info("shutting down", "signal", sig.String(), "readiness_grace", opts.ReadinessGrace.String())
		if opts.ReadinessGrace > 0 {
			select {
			case <-time.After(opts.ReadinessGrace):
			case <-signals:
			}
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			rt.Log.Error("drain failed", "err", err)
			return 1
		}
		rt.Log.Info("stopped cleanly")
		return 0
	case <-time.After(opts.ShutdownTimeout):
		rt.Log.Error("drain timed out", "timeout", opts.ShutdownTimeout.String())
		return 1
	}
}

// Command simulator runs the Xpressbot / WhatsApp Cloud API simulator
// (package simulator) configured from WANOTIFY_SIM_* environment variables.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wanotify/wanotify/pkg/simulator"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With(slog.String("service", "simulator"))
	if err := run(log); err != nil {
		log.Error("simulator failed", slog.Any("error", err))
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	cfg, err := simulator.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	cfg.Logger = log
	if cfg.APIKey == "" {
		log.Warn("no " + simulator.EnvAPIKey + ": sends are not authenticated")
	}
	sim, err := simulator.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := sim.Start(ctx); err != nil {
		return err
	}
	b := sim.Behavior()
	log.Info("simulator ready", slog.String("addr", sim.Addr()), slog.String("send_path", cfg.SendPath),
		slog.Float64("rate_limit", b.RateLimit), slog.Bool("webhooks", b.Webhooks && cfg.Webhook.URL != ""))
	<-ctx.Done()
	log.Info("simulator stopping")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return sim.Shutdown(shutdownCtx)
}

package dispatcher

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/kafkaconf"
	"github.com/wanotify/wanotify/pkg/service"
)

// Configure reads every variable of the dispatcher service (its own, the
// Kafka connection and the provider client) and returns the service body
// for service.Main.
func Configure(e *config.Env) (service.Body, error) {
	c := Load(e)
	kc := kafkaconf.Load(e, "wanotify-dispatcher")
	pc := LoadProvider(e)
	pc.SizePool(c.Concurrency)
	if err := errors.Join(c.Validate(), kc.Validate()); err != nil {
		return nil, err
	}
	if e.Err() != nil {
		// The variables' own errors are reported by the caller.
		return nil, errors.New("sender routes not built: the configuration has errors")
	}
	// Every sender's route is built once here, so a missing secret or a
	// bad base URL stops the service at start, naming the sender.
	_, closeProv, err := pc.NewRouter(c.Senders, os.LookupEnv, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	closeProv()
	return func(ctx context.Context, rt *service.Runtime) error {
		opts, err := kc.Opts()
		if err != nil {
			return err
		}
		prov, closeProv, err := pc.NewRouter(c.Senders, os.LookupEnv, rt.Log)
		if err != nil {
			return err
		}
		defer closeProv()
		c.Logger = rt.Log
		d, err := New(c, prov, opts, rt.Log)
		if err != nil {
			return err
		}
		rt.SetReady(true)
		defer rt.SetReady(false)
		return d.Run(ctx)
	}, nil
}

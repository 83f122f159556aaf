package dispatcher

import (
	"context"
	"errors"

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
	if err := errors.Join(c.Validate(), kc.Validate(), pc.Validate()); err != nil {
		return nil, err
	}
	return func(ctx context.Context, rt *service.Runtime) error {
		opts, err := kc.Opts()
		if err != nil {
			return err
		}
		prov, closeProv, err := pc.New(rt.Log)
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

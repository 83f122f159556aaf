// Command wanotify-broker runs the local Kafka-protocol broker (kfake) on
// 127.0.0.1 with a persistent data directory. For development and tests;
// production uses Apache Kafka.
package main

import (
	"context"

	"github.com/wanotify/wanotify/pkg/broker"
	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/service"
)

func main() {
	service.Main("broker", func(e *config.Env) (service.Body, error) {
		cfg := broker.Load(e)
		return func(ctx context.Context, rt *service.Runtime) error {
			return broker.Run(ctx, cfg, rt.Log, func(string) { rt.SetReady(true) })
		}, cfg.Validate()
	}, service.Options{DefaultAdminAddr: ""})
}

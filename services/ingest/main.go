// Command ingest serves the HTTP API through which platform teams publish
// WhatsApp notifications (package ingest).
package main

import (
	"context"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/ingest"
	"github.com/wanotify/wanotify/pkg/service"
)

func main() {
	service.Main("ingest", configure, service.Options{DefaultAdminAddr: ""})
}

func configure(e *config.Env) (service.Body, error) {
	c := ingest.Load(e)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return func(ctx context.Context, rt *service.Runtime) error {
		return ingest.Run(ctx, rt, c, nil)
	}, nil
}

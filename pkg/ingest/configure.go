package ingest

import (
	"context"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/service"
)

// Configure reads ingest's configuration and returns its service body, for
// service.Main and for tests that run the service in-process.
func Configure(e *config.Env) (service.Body, error) {
	c := Load(e)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return func(ctx context.Context, rt *service.Runtime) error {
		return Run(ctx, rt, c, nil)
	}, nil
}

// GCPercent is the ingest process's garbage collector target when GOGC is
// not set (service.ApplyRuntimeDefaults): its live heap is a few
// megabytes while every request allocates tens of kilobytes, so at Go's
// default it collects dozens of times a second.
const GCPercent = 200

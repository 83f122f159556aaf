package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/dispatcher"
	"github.com/wanotify/wanotify/pkg/ingest"
	"github.com/wanotify/wanotify/pkg/service"
	"github.com/wanotify/wanotify/pkg/sink"
	"github.com/wanotify/wanotify/pkg/webhook"
)

// serviceEnv makes the test binary run one service instead of the tests:
// the metrics test starts each service as its own process this way, so
// each /metrics shows exactly what that service's binary would.
const serviceEnv = "WANOTIFY_E2E_SERVICE"

func TestMain(m *testing.M) {
	if name := os.Getenv(serviceEnv); name != "" {
		os.Exit(runService(name))
	}
	os.Exit(m.Run())
}

// services are the Configure functions the binaries in services/ pass to
// service.Main.
var services = map[string]service.Configure{
	"dispatcher":        dispatcher.Configure,
	webhook.ServiceName: webhook.Configure,
	sink.ServiceName:    sink.Configure,
	"ingest":            ingest.Configure,
}

// runService runs one service until SIGTERM, as its binary does.
func runService(name string) int {
	configure, ok := services[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "%s=%q: no such service\n", serviceEnv, name)
		return 2
	}
	return service.Run(context.Background(), name, config.New(os.LookupEnv, nil), configure, service.Options{}, nil)
}

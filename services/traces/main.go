// Command traces is the local trace store: an OTLP/gRPC receiver that
// writes the services' spans into ClickHouse (table otel_traces, the
// OpenTelemetry Collector's ClickHouse exporter schema), where notifyctl
// trace reads them (package tracestore). Configuration: WANOTIFY_TRACES_*
// and WANOTIFY_CLICKHOUSE_* (see -help).
package main

import (
	"github.com/wanotify/wanotify/pkg/service"
	"github.com/wanotify/wanotify/pkg/tracestore"
)

func main() {
	service.Main(tracestore.ServiceName, tracestore.Configure, service.Options{DefaultAdminAddr: "127.0.0.1:13133"})
}

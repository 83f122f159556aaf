// Command sink writes the pipeline's topics (the lanes' topics
// notifications.critical, notifications.requested and notifications.bulk,
// notifications.status, notifications.dlq) into ClickHouse: the
// communication logs and the delivery analytics (package sink). It applies
// the schema migrations at start. Configuration: WANOTIFY_SINK_*,
// WANOTIFY_KAFKA_* and WANOTIFY_CLICKHOUSE_* (see -help).
package main

import (
	"github.com/wanotify/wanotify/pkg/service"
	"github.com/wanotify/wanotify/pkg/sink"
)

func main() {
	service.Main(sink.ServiceName, sink.Configure, service.Options{DefaultAdminAddr: sink.DefaultAdminAddr})
}

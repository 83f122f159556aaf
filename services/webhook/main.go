// Command webhook runs the provider status webhook receiver (package
// webhook): signed WhatsApp status webhooks in, status events on
// notifications.status out. Configuration: WANOTIFY_WEBHOOK_* and
// WANOTIFY_KAFKA_* (see -help). WANOTIFY_WEBHOOK_SECRET has no default;
// the local stack passes its development value explicitly.
package main

import (
	"github.com/wanotify/wanotify/pkg/service"
	"github.com/wanotify/wanotify/pkg/webhook"
)

func main() {
	service.Main(webhook.ServiceName, webhook.Configure, service.Options{DefaultAdminAddr: webhook.DefaultAdminAddr, GCPercent: webhook.GCPercent})
}

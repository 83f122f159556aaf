// Command ingest serves the HTTP API through which platform teams publish
// WhatsApp notifications (package ingest).
package main

import (
	"github.com/wanotify/wanotify/pkg/ingest"
	"github.com/wanotify/wanotify/pkg/service"
)

func main() {
	service.Main("ingest", ingest.Configure, service.Options{DefaultAdminAddr: ingest.DefaultAdminAddr, GCPercent: ingest.GCPercent})
}

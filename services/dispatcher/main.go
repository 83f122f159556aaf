// Command dispatcher delivers the notifications of notifications.requested
// through the WhatsApp provider (package dispatcher).
package main

import (
	"github.com/wanotify/wanotify/pkg/dispatcher"
	"github.com/wanotify/wanotify/pkg/service"
)

func main() {
	service.Main("dispatcher", dispatcher.Configure, service.Options{DefaultAdminAddr: "127.0.0.1:9464"})
}

package contract

import (
	"strings"
	"testing"
	"time"
)

// The status event says which route sent the message; the member is
// optional, so events without it (older producers, events that involve
// no send) stay valid, and only the two route names are accepted.
func TestStatusEventRoute(t *testing.T) {
	ev := StatusEvent{EventID: "n1/accepted/1", NotificationID: "0b7f6c1e-2d1a-5c8e-9a1b-3c4d5e6f7a8b", Recipient: "+447700900123",
		Status: StatusAccepted, Attempt: 1, ProviderMessageID: "wamid.x", Route: RouteFailover,
		OccurredAt: time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC), Emitter: EmitterDispatcher}
	raw, err := ev.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"route":"failover"`) {
		t.Fatalf("route not written: %s", raw)
	}
	got, err := DecodeStatusEvent(raw)
	if err != nil || got.Route != RouteFailover {
		t.Fatalf("decode: %+v %v", got, err)
	}
	ev.Route = ""
	raw, err = ev.Encode()
	if err != nil || strings.Contains(string(raw), "route") {
		t.Fatalf("without a route: %s %v", raw, err)
	}
	if got, err := DecodeStatusEvent(raw); err != nil || got.Route != "" {
		t.Fatalf("decode without a route: %+v %v", got, err)
	}
	ev.Route = "backup"
	if _, err := ev.Encode(); err == nil || !strings.Contains(err.Error(), "/route") {
		t.Fatalf("an unknown route was accepted: %v", err)
	}
}

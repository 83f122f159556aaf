package sink

import (
	"context"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

// The route a status event names (primary or failover) reaches
// notification_events.route (migration 0016); events without one keep
// the column empty.
func TestStatusRouteIsRecorded(t *testing.T) {
	db := testinfra.ClickHouseDatabase(t)
	conn := prepared(t, db.Options())
	defer conn.Close()
	at := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	events := []contract.StatusEvent{
		{EventID: "a/accepted/1", NotificationID: "0b7f6c1e-2d1a-5c8e-9a1b-000000000001", Recipient: "+447700900123",
			Status: contract.StatusAccepted, Attempt: 1, ProviderMessageID: "wamid.a", Route: contract.RouteFailover, OccurredAt: at, Emitter: contract.EmitterDispatcher},
		{EventID: "b/accepted/1", NotificationID: "0b7f6c1e-2d1a-5c8e-9a1b-000000000002", Recipient: "+447700900124",
			Status: contract.StatusAccepted, Attempt: 1, ProviderMessageID: "wamid.b", Route: contract.RoutePrimary, OccurredAt: at, Emitter: contract.EmitterDispatcher},
		{EventID: "c/retry_scheduled/1", NotificationID: "0b7f6c1e-2d1a-5c8e-9a1b-000000000003", Recipient: "+447700900125",
			Status: contract.StatusRetryScheduled, Attempt: 1, OccurredAt: at, Emitter: contract.EmitterDispatcher},
	}
	b := newBatch()
	for i := range events {
		raw, err := events[i].Encode()
		if err != nil {
			t.Fatal(err)
		}
		testDecoder().add(b, rec(topics.Status, int64(i), events[i].Recipient, raw))
	}
	b.Token = "route-test"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := NewClickHouseWriter(conn, db.Name).Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, "SELECT event_id, route FROM notification_events FINAL ORDER BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var id, route string
		if err := rows.Scan(&id, &route); err != nil {
			t.Fatal(err)
		}
		got[id] = route
	}
	want := map[string]string{"a/accepted/1": "failover", "b/accepted/1": "primary", "c/retry_scheduled/1": ""}
	if len(got) != len(want) {
		t.Fatalf("rows %v", got)
	}
	for id, r := range want {
		if got[id] != r {
			t.Errorf("%s: route %q, want %q", id, got[id], r)
		}
	}
}

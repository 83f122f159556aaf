package sink

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

// TestViewsExposePlainTypes applies the migrations and reads the column
// types of every plain view in the database (what analysts, BI tools and
// older drivers query): none may be an AggregateFunction or
// SimpleAggregateFunction. Each view must also answer a SELECT * over the
// native protocol.
func TestViewsExposePlainTypes(t *testing.T) {
	srv := testinfra.ClickHouse(t)
	db := srv.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := New(Config{}, db.Options(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := s.prepare(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()

	rows, err := db.Conn.Query(ctx, `SELECT c.table, c.name, c.type FROM system.columns AS c
		WHERE c.database = ? AND c.table IN (SELECT name FROM system.tables WHERE database = ? AND engine = 'View')
		ORDER BY c.table, c.position`, db.Name, db.Name)
	if err != nil {
		t.Fatal(err)
	}
	views := map[string]int{}
	var bad []string
	for rows.Next() {
		var table, name, typ string
		if err := rows.Scan(&table, &name, &typ); err != nil {
			t.Fatal(err)
		}
		views[table]++
		if strings.Contains(typ, "AggregateFunction") {
			bad = append(bad, fmt.Sprintf("%s.%s %s", table, name, typ))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for _, want := range []string{"communication_logs", "unmatched_webhooks", "delivery_funnel_hourly", "failures_by_code",
		"retry_errors_by_code", "step_durations", "step_latency", "retry_dlq_rates", "dead_letters_hourly"} {
		if views[want] == 0 {
			t.Errorf("view %s not found among %v", want, views)
		}
	}
	if len(bad) > 0 {
		t.Errorf("views expose internal ClickHouse types:\n%s", strings.Join(bad, "\n"))
	}
	for v := range views {
		r, err := db.Conn.Query(ctx, "SELECT * FROM "+v+" LIMIT 1")
		if err != nil {
			t.Errorf("SELECT * FROM %s: %v", v, err)
			continue
		}
		r.Close()
	}
}

// TestFunnelCountsOnlyRequestedNotifications sends, through the sink,
// two notifications that were requested and delivered and a third whose
// dispatcher status and delivered webhook arrive before its request
// record. The funnel's rates stay within 1 (the early notification is
// counted apart as an orphan, not as a delivery of nothing), and once
// its request record lands it joins the funnel.
func TestFunnelCountsOnlyRequestedNotifications(t *testing.T) {
	db := testinfra.ClickHouseDatabase(t)
	brokers := testinfra.KafkaWithTopics(t, 3)
	cl := testinfra.Client(t, brokers)
	adm := kadm.NewClient(cl)
	base := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

	type built struct{ requested, statuses []*kgo.Record }
	build := func(i int) built {
		t.Helper()
		n := &contract.Notification{SchemaVersion: contract.SchemaVersion, IdempotencyKey: fmt.Sprintf("user-%d:otp:1", i),
			Tenant: "acme", SourceService: "acme-auth", EventType: "otp", Recipient: fmt.Sprintf("+1555000%04d", i),
			Sender: "acct-acme", Template: &contract.Template{Name: "otp_code", Language: "en_US"}, CreatedAt: base.Add(time.Duration(i) * time.Second)}
		n.ID = contract.NotificationID(n.Tenant, n.IdempotencyKey)
		pmid := fmt.Sprintf("wamid.funnel%d", i)
		accepted := contract.StatusEvent{SchemaVersion: contract.SchemaVersion, EventID: contract.DispatcherEventID(n.ID, contract.StatusAccepted, 1),
			NotificationID: n.ID, ProviderMessageID: pmid, Provider: "xpressbot", Tenant: n.Tenant, EventType: n.EventType, Sender: n.Sender,
			Recipient: n.Recipient, Status: contract.StatusAccepted, Attempt: 1, OccurredAt: n.CreatedAt.Add(time.Second), Emitter: contract.EmitterDispatcher}
		delivered := contract.StatusEvent{SchemaVersion: contract.SchemaVersion, EventID: contract.WebhookEventID(pmid, contract.StatusDelivered),
			NotificationID: n.ID, ProviderMessageID: pmid, Provider: "xpressbot", Recipient: n.Recipient, Status: contract.StatusDelivered,
			OccurredAt: n.CreatedAt.Add(3 * time.Second), Emitter: contract.EmitterWebhook}
		rec := func(topic string, v any) *kgo.Record {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			return &kgo.Record{Topic: topic, Key: []byte(n.Recipient), Value: b}
		}
		return built{requested: []*kgo.Record{rec(topics.Requested, n)},
			statuses: []*kgo.Record{rec(topics.Status, accepted), rec(topics.Status, delivered)}}
	}
	a, b, early := build(1), build(2), build(3)
	produce(t, cl, append(append(append(append(a.requested, a.statuses...), b.requested...), b.statuses...), early.statuses...))

	startSink(t, Config{Group: "sink-funnel", BatchRows: 100, BatchInterval: 50 * time.Millisecond}, db.Options(), brokers)
	waitConsumed(t, adm, "sink-funnel", time.Minute)

	type totals struct{ requested, delivered, orphans, orphansDelivered, rateOrphans uint64 }
	read := func() totals {
		t.Helper()
		var x totals
		x.requested = queryUint(t, db.Conn, "SELECT toUInt64(sum(requested)) FROM delivery_funnel_hourly WHERE tenant = 'acme'")
		x.delivered = queryUint(t, db.Conn, "SELECT toUInt64(sum(delivered)) FROM delivery_funnel_hourly WHERE tenant = 'acme'")
		if over := queryUint(t, db.Conn, `SELECT count() FROM delivery_funnel_hourly
			WHERE accepted > requested OR sent > requested OR delivered > requested OR read > requested`); over != 0 {
			t.Errorf("%d funnel rows count a step above requested", over)
		}
		if over := queryUint(t, db.Conn, "SELECT count() FROM retry_dlq_rates WHERE retry_rate > 1 OR dlq_rate > 1 OR retried > requested"); over != 0 {
			t.Errorf("%d retry_dlq_rates rows have a rate above 1", over)
		}
		if x.delivered > x.requested {
			t.Errorf("tenant acme: delivered %d of %d requested (delivery rate %.2f)", x.delivered, x.requested, float64(x.delivered)/float64(max(x.requested, 1)))
		}
		x.orphans = queryUint(t, db.Conn, "SELECT toUInt64(sum(orphans)) FROM delivery_funnel_hourly WHERE tenant = 'acme'")
		x.orphansDelivered = queryUint(t, db.Conn, "SELECT toUInt64(sum(orphans_delivered)) FROM delivery_funnel_hourly WHERE tenant = 'acme'")
		x.rateOrphans = queryUint(t, db.Conn, "SELECT toUInt64(sum(orphans)) FROM retry_dlq_rates WHERE tenant = 'acme'")
		return x
	}
	got := read()
	if got.requested != 2 || got.delivered != 2 {
		t.Errorf("funnel of tenant acme: requested %d, delivered %d; want 2 and 2 (delivery rate %.2f, want 1)",
			got.requested, got.delivered, float64(got.delivered)/float64(max(got.requested, 1)))
	}
	if got.orphans != 1 || got.orphansDelivered != 1 || got.rateOrphans != 1 {
		t.Errorf("orphans: funnel %d (delivered %d), retry_dlq_rates %d; want 1, 1, 1", got.orphans, got.orphansDelivered, got.rateOrphans)
	}

	// The request record arrives: the notification joins the funnel.
	produce(t, cl, early.requested)
	waitConsumed(t, adm, "sink-funnel", time.Minute)
	got = read()
	if got.requested != 3 || got.delivered != 3 || got.orphans != 0 || got.orphansDelivered != 0 || got.rateOrphans != 0 {
		t.Errorf("after the late request record: requested %d, delivered %d, orphans %d/%d/%d; want 3, 3, 0/0/0",
			got.requested, got.delivered, got.orphans, got.orphansDelivered, got.rateOrphans)
	}
}

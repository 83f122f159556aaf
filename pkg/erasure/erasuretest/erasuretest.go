// Package erasuretest fills a ClickHouse database with a person's data
// through the real sink, and finds every row of every table and view that
// still mentions a number: what the erasure tests of pkg/erasure and
// notifyctl share.
package erasuretest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/erasure"
	"github.com/wanotify/wanotify/pkg/sink"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

// Person is whose traffic Records builds.
type Person struct {
	Recipient, Tenant string
	// Tag makes ids and keys unique between persons.
	Tag string
}

// Records is one person's traffic on every topic the sink reads, so that
// every table of the database gets rows naming them: two requests (one
// OTP, one invoice with content), the dispatcher's accepted events (the
// provider id map), delivered and read webhooks, one of which names only
// the provider's message id and no recipient (provider_message_state and
// its mapping), a dead letter with a valid value, a poison dead letter
// keyed by the number, and an undecodable record on each of the requested
// and status topics that mentions the number.
func Records(t testing.TB, p Person, at time.Time) []*kgo.Record {
	t.Helper()
	var recs []*kgo.Record
	add := func(topic string, key []byte, value []byte, hs ...kgo.RecordHeader) {
		recs = append(recs, &kgo.Record{Topic: topic, Key: key, Value: value, Headers: hs, Timestamp: at})
	}
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var notes []*contract.Notification
	for i, kind := range []struct{ eventType, template string }{{"otp", "otp_code"}, {"invoice.reminder", "invoice_due"}} {
		n := &contract.Notification{SchemaVersion: 1, IdempotencyKey: fmt.Sprintf("%s-%d", p.Tag, i), Tenant: p.Tenant,
			SourceService: "svc", EventType: kind.eventType, UserID: "user-" + p.Tag, Recipient: p.Recipient, Sender: "acct",
			Template:  &contract.Template{Name: kind.template, Language: "en_US", Parameters: []string{"482913", "Jane " + p.Tag}},
			Metadata:  map[string]string{"phone": p.Recipient},
			CreatedAt: at.Add(time.Duration(i) * time.Second)}
		n.ID = contract.NotificationID(p.Tenant, n.IdempotencyKey)
		notes = append(notes, n)
		raw := must(n.Encode())
		add(topics.Requested, n.Key(), raw)
		pm := fmt.Sprintf("wamid.%s.%d", p.Tag, i)
		add(topics.Status, n.Key(), must((&contract.StatusEvent{SchemaVersion: 1, EventID: contract.DispatcherEventID(n.ID, contract.StatusAccepted, 1),
			NotificationID: n.ID, ProviderMessageID: pm, Tenant: p.Tenant, EventType: n.EventType, Recipient: p.Recipient,
			Status: contract.StatusAccepted, Attempt: 1, OccurredAt: n.CreatedAt.Add(time.Second), Emitter: contract.EmitterDispatcher}).Encode()))
		// The webhook names only the provider's message id (no callback
		// data) but carries the number, as Meta's recipient_id.
		add(topics.Status, n.Key(), must((&contract.StatusEvent{SchemaVersion: 1, EventID: contract.WebhookEventID(pm, contract.StatusDelivered),
			ProviderMessageID: pm, Recipient: p.Recipient, Status: contract.StatusDelivered, OccurredAt: n.CreatedAt.Add(2 * time.Second),
			Emitter: contract.EmitterWebhook}).Encode()))
		if i == 1 {
			hs, err := (&envelope.Failure{Attempt: 4, Origin: envelope.Origin{Topic: topics.Requested, Partition: 0, Offset: 1},
				Error: contract.ErrorInfo{Code: "131026", Message: "undeliverable to " + p.Recipient}, Class: envelope.ClassPermanent,
				FailedAt: at.Add(5 * time.Second), DLQReason: envelope.ReasonPermanent, NotificationID: n.ID, Tenant: p.Tenant,
				EventType: n.EventType, ReplayedFrom: -1}).Headers()
			if err != nil {
				t.Fatal(err)
			}
			add(topics.DLQ, n.Key(), raw, hs...)
		}
	}
	// A webhook for a message of the person's that no dispatcher event
	// mapped: only the recipient identifies it.
	orphan := "wamid." + p.Tag + ".orphan"
	add(topics.Status, []byte(p.Recipient), must((&contract.StatusEvent{SchemaVersion: 1, EventID: contract.WebhookEventID(orphan, contract.StatusRead),
		ProviderMessageID: orphan, Recipient: p.Recipient, Status: contract.StatusRead, OccurredAt: at.Add(3 * time.Second),
		Emitter: contract.EmitterWebhook}).Encode()))
	hs, err := (&envelope.Failure{Attempt: 1, Origin: envelope.Origin{Topic: topics.Requested}, Error: contract.ErrorInfo{Code: "poison"},
		Class: envelope.ClassPoison, FailedAt: at, DLQReason: envelope.ReasonPoison, ReplayedFrom: -1}).Headers()
	if err != nil {
		t.Fatal(err)
	}
	add(topics.DLQ, []byte(p.Recipient), []byte(`{"tenant":"`+p.Tenant+`","recipient":"`+p.Recipient+`","broken":`), hs...)
	add(topics.Requested, []byte(p.Recipient), []byte(`{"tenant":"`+p.Tenant+`","recipient":"`+p.Recipient+`","unexpected":true}`))
	add(topics.Status, []byte("k-"+p.Tag), []byte(`{"note":"webhook for `+strings.TrimPrefix(p.Recipient, "+")+`","tenant":"`+p.Tenant+`"}`))
	return recs
}

// Fill produces recs and runs the sink (its default configuration) into
// db until it has written them all.
func Fill(t testing.TB, brokers []string, db *testinfra.ClickHouseDB, recs []*kgo.Record) {
	t.Helper()
	cl := testinfra.Client(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	group := "erasure-fill-" + db.Name
	s, err := sink.New(sink.Config{Group: group, BatchInterval: 50 * time.Millisecond}, db.Options(),
		[]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(100 * time.Millisecond)}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(sctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("sink: %v", err)
		}
	}()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		lag, err := lagOf(ctx, adm, group)
		if err == nil && lag == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sink did not write everything within 2m: lag %d, err %v", lag, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func lagOf(ctx context.Context, adm *kadm.Client, group string) (int64, error) {
	lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = ctx
	ends, err := adm.ListEndOffsets(lctx, topics.Requested, topics.Status, topics.DLQ)
	if err != nil {
		return 0, err
	}
	committed, err := adm.FetchOffsets(lctx, group)
	if err != nil {
		return 0, err
	}
	var lag int64
	ends.Each(func(o kadm.ListedOffset) {
		c, _ := committed.Lookup(o.Topic, o.Partition)
		lag += max(o.Offset-max(c.At, 0), 0)
	})
	return lag, nil
}

// Mentions counts, in every table and view of the database (found in
// system.tables, so none can be forgotten), the rows whose text mentions
// num, with or without its "+" (erasure.NumberPattern). Aggregate states are included in their
// serialized form, so a number kept inside an aggregate is found too.
func Mentions(t testing.TB, db *testinfra.ClickHouseDB, num string) map[string]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := db.Conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ? AND engine NOT IN ('MaterializedView') ORDER BY name", db.Name)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	if len(names) == 0 {
		t.Fatal("no tables in the database")
	}
	out := map[string]uint64{}
	for _, n := range names {
		var c uint64
		q := fmt.Sprintf("SELECT count() FROM `%s` WHERE match(formatRow('TabSeparated', *), ?)", n)
		if err := db.Conn.QueryRow(ctx, q, erasure.NumberPattern(num)).Scan(&c); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		out[n] = c
	}
	return out
}

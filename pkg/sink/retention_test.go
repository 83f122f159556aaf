package sink

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

// TestDefaultRetentionExpiresOldRows runs the sink with its default
// configuration over traffic from 120, 40 and 1 day(s) ago, then merges
// every table (as ClickHouse does in the background): rows past the
// default retention (90 days for events, state and the provider id map;
// 30 days for dead letters and ingest errors) are gone, the others are
// kept. Without a default TTL every row would survive.
func TestDefaultRetentionExpiresOldRows(t *testing.T) {
	db := testinfra.ClickHouseDatabase(t)
	brokers := testinfra.KafkaWithTopics(t, 2)
	cl := testinfra.Client(t, brokers)
	now := time.Now().UTC().Truncate(time.Millisecond)
	ages := map[string]time.Duration{"old": 120 * 24 * time.Hour, "mid": 40 * 24 * time.Hour, "new": 24 * time.Hour}

	var recs []*kgo.Record
	for label, age := range ages {
		at := now.Add(-age)
		n := &contract.Notification{SchemaVersion: 1, IdempotencyKey: "ret-" + label, Tenant: "acme", SourceService: "billing",
			EventType: "invoice.reminder", Recipient: "+15550001" + fmt.Sprint(len(label)) + "00", Sender: "acct",
			Template: &contract.Template{Name: "invoice_due", Language: "en_US"}, CreatedAt: at}
		n.ID = label
		raw, err := n.Encode()
		if err != nil {
			t.Fatal(err)
		}
		accepted, err := (&contract.StatusEvent{SchemaVersion: 1, EventID: label + "/accepted", NotificationID: label,
			ProviderMessageID: "pm-" + label, Recipient: n.Recipient, Status: contract.StatusAccepted, Attempt: 1,
			OccurredAt: at.Add(time.Second), Emitter: contract.EmitterDispatcher}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		hs, err := (&envelope.Failure{Attempt: 4, Origin: envelope.Origin{Topic: topics.Requested}, Error: contract.ErrorInfo{Code: "http_503"},
			Class: envelope.ClassRetryable, FailedAt: at, DLQReason: envelope.ReasonExhausted, ReplayedFrom: -1}).Headers()
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs,
			&kgo.Record{Topic: topics.Requested, Key: n.Key(), Value: raw, Timestamp: at},
			&kgo.Record{Topic: topics.Status, Key: n.Key(), Value: accepted, Timestamp: at},
			&kgo.Record{Topic: topics.DLQ, Key: n.Key(), Value: raw, Headers: hs, Timestamp: at},
			&kgo.Record{Topic: topics.Requested, Key: n.Key(), Value: []byte("poison " + label), Timestamp: at})
	}
	produce(t, cl, recs)
	s, lw := newTestSink(t, Config{Group: "sink-retention", BatchInterval: 50 * time.Millisecond}, db.Options(), brokers)
	// newTestSink keeps rows forever unless told: this test is about the
	// defaults.
	s.cfg.RetentionDays, s.cfg.ErrorRetentionDays = DefaultRetentionDays, DefaultErrorRetentionDays
	_, stop := runUntilStopped(t, "sink Run", s.Run, lw.stop)
	waitConsumed(t, kadm.NewClient(cl), "sink-retention", time.Minute)
	stop()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, rc := range retentionColumns {
		if err := db.Conn.Exec(ctx, "OPTIMIZE TABLE "+rc.table+" FINAL"); err != nil {
			t.Fatalf("optimize %s: %v", rc.table, err)
		}
	}
	ids := func(q string) string {
		rows, err := db.Conn.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return strings.Join(out, " ")
	}
	for table, want := range map[string]string{
		TableEvents:            "mid new",
		"notification_state":   "mid new",
		"provider_message_map": "mid new",
		TableDeadLetters:       "new",
	} {
		if got := ids("SELECT DISTINCT notification_id FROM " + table + " ORDER BY notification_id"); got != want {
			t.Errorf("%s keeps notifications %q, want %q", table, got, want)
		}
	}
	if got := ids("SELECT value FROM ingest_errors"); !strings.Contains(got, "bytes") || queryUint(t, db.Conn, "SELECT count() FROM ingest_errors") != 1 ||
		queryUint(t, db.Conn, "SELECT count() FROM ingest_errors WHERE record_time < now() - INTERVAL 30 DAY") != 0 {
		t.Errorf("ingest_errors keeps %d rows (%q), want the one of the last 30 days", queryUint(t, db.Conn, "SELECT count() FROM ingest_errors"), got)
	}
}

package logstore

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wanotify/wanotify/pkg/chmigrate"
	"github.com/wanotify/wanotify/pkg/sink"
	"github.com/wanotify/wanotify/pkg/sink/migrations"
	"github.com/wanotify/wanotify/pkg/testinfra"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ptr[T any](v T) *T { return &v }

// fixture writes, through the sink's own writer and schema, three
// notifications:
//
//	n-read (acme/otp): requested, a retry, accepted as pm-1, then a "read"
//	  webhook that named only pm-1 and arrived first, then a late
//	  "delivered" that named the notification;
//	n-dlq (globex/invoice): requested, three retries, dead-lettered, with
//	  its DLQ record;
//	n-failed (acme/otp): requested, permanently failed;
//	n-replayed (acme/otp): dead-lettered, replayed from the DLQ an hour
//	  later, then accepted and sent (the dispatcher's ids repeat).
func fixture(t *testing.T) *Store {
	t.Helper()
	db := testinfra.ClickHouseDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ms, err := chmigrate.Load(migrations.FS, migrations.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chmigrate.Apply(ctx, db.Conn, ms, nil); err != nil {
		t.Fatal(err)
	}
	req := func(id, tenant, eventType, template string, created time.Time, off int64) sink.EventRow {
		return sink.EventRow{EventID: id + "/requested", NotificationID: id, Status: "requested", StatusRank: sink.Precedence("requested"),
			Tenant: tenant, SourceService: tenant + "-app", EventType: eventType, Template: template, TemplateLanguage: "en",
			Sender: "acct", Recipient: "+15551234567", IdempotencyKey: id + "-key",
			Payload:    `{"notification_id":"` + id + `","template":{"name":"` + template + `"}}`,
			OccurredAt: created, Source: sink.Source{Topic: "notifications.requested", Partition: 1, Offset: off}}
	}
	st := func(id, pmid, status string, attempt uint16, when time.Time, off int64, code string, retryable bool) sink.EventRow {
		ev := sink.EventRow{EventID: id + "/" + status + "/" + string(rune('0'+attempt)), NotificationID: id, ProviderMessageID: pmid,
			Status: status, StatusRank: sink.Precedence(status), Recipient: "+15551234567", Attempt: attempt,
			Emitter: "dispatcher", OccurredAt: when, Source: sink.Source{Topic: "notifications.status", Partition: 1, Offset: off}}
		if code != "" {
			ev.ErrorCode, ev.ErrorMessage, ev.ErrorRetryable = code, code+" happened", retryable
		}
		if strings.HasPrefix(status, "retry") {
			ev.RetryTier = "retry-5s"
		}
		return ev
	}
	wh := func(id, pmid, status string, when time.Time, off int64) sink.EventRow {
		return sink.EventRow{EventID: "wh/" + pmid + "/" + status, NotificationID: id, ProviderMessageID: pmid, Status: status,
			StatusRank: sink.Precedence(status), Recipient: "+15551234567", Emitter: "webhook", Provider: "xpressbot", OccurredAt: when,
			Source: sink.Source{Topic: "notifications.status", Partition: 1, Offset: off}}
	}
	early := sink.Batch{Token: "early", Events: []sink.EventRow{wh("", "pm-1", "read", at(9*time.Second), 1)}}
	rest := sink.Batch{Token: "rest", Events: []sink.EventRow{
		req("n-read", "acme", "otp", "otp_code", at(0), 1),
		st("n-read", "", "retry_scheduled", 1, at(1*time.Second), 2, "http_503", true),
		st("n-read", "pm-1", "accepted", 2, at(6*time.Second), 3, "", false),
		wh("n-read", "pm-1", "delivered", at(8*time.Second), 4),
		req("n-dlq", "globex", "invoice.reminder", "invoice_due", at(time.Hour), 2),
		st("n-dlq", "", "retry_scheduled", 1, at(time.Hour+time.Second), 5, "timeout", true),
		st("n-dlq", "", "retry_scheduled", 2, at(time.Hour+6*time.Second), 6, "timeout", true),
		st("n-dlq", "", "retry_scheduled", 3, at(time.Hour+21*time.Second), 7, "timeout", true),
		st("n-dlq", "", "dead_lettered", 4, at(time.Hour+66*time.Second), 8, "timeout", true),
		req("n-failed", "acme", "otp", "otp_code", at(2*time.Second), 3),
		st("n-failed", "", "failed", 1, at(3*time.Second), 9, "131026", false),
		req("n-replayed", "acme", "otp", "otp_code", at(4*time.Second), 4),
		st("n-replayed", "", "retry_scheduled", 1, at(5*time.Second), 10, "timeout", true),
		st("n-replayed", "", "dead_lettered", 2, at(10*time.Second), 11, "timeout", true),
		st("n-replayed", "", "retry_scheduled", 1, at(time.Hour+5*time.Second), 12, "http_503", true),
		st("n-replayed", "pm-2", "accepted", 2, at(time.Hour+10*time.Second), 13, "", false),
		wh("n-replayed", "pm-2", "sent", at(time.Hour+11*time.Second), 14),
	}, DeadLetters: []sink.DeadLetterRow{{
		Source: sink.Source{Topic: "notifications.dlq", Partition: 1, Offset: 0}, RecordTime: at(time.Hour + 66*time.Second),
		NotificationID: "n-dlq", Tenant: "globex", EventType: "invoice.reminder", Template: "invoice_due", Recipient: "+15551234567",
		Reason: "exhausted", ErrorClass: "retryable", ErrorCode: "timeout", ErrorMessage: "timeout happened", ErrorRetryable: true,
		Attempt: 4, OriginTopic: "notifications.requested", OriginPartition: 1, OriginOffset: 2, FailedAt: at(time.Hour + 66*time.Second),
		FirstFailedAt: ptr(at(time.Hour + time.Second)), Value: "{}", ValueSize: 2, ValueValid: true,
	}}}
	w := sink.NewClickHouseWriter(db.Conn, db.Name)
	// Written twice, the second time as one batch: the answers must not change.
	for _, b := range []*sink.Batch{&early, &rest, {Token: "again", Events: append(append([]sink.EventRow{}, rest.Events...), early.Events...), DeadLetters: rest.DeadLetters}} {
		if err := w.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	return New(db.Conn, db.Name)
}

func TestNotification(t *testing.T) {
	s := fixture(t)
	ctx := context.Background()

	v, err := s.Notification(ctx, "acme", "n-read")
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != "read" || v.Tenant != "acme" || v.EventType != "otp" || v.Template != "otp_code" || v.ProviderMessageID != "pm-1" ||
		v.Recipient != "+15551234567" || v.Attempts != 2 || v.Retries != 1 || v.Duplicates != 0 || v.IdempotencyKey != "n-read-key" {
		t.Errorf("view %+v", v)
	}
	if !v.CreatedAt.Equal(at(0)) || !v.UpdatedAt.Equal(at(9*time.Second)) || v.ReadAt == nil || !v.ReadAt.Equal(at(9*time.Second)) ||
		v.DeliveredAt == nil || !v.DeliveredAt.Equal(at(8*time.Second)) || v.SentAt != nil || v.AcceptedAt == nil {
		t.Errorf("times: created %v updated %v accepted %v sent %v delivered %v read %v", v.CreatedAt, v.UpdatedAt, v.AcceptedAt, v.SentAt, v.DeliveredAt, v.ReadAt)
	}
	if v.Error == nil || v.Error.Code != "http_503" || !v.Error.Retryable {
		t.Errorf("error %+v, want the transient http_503", v.Error)
	}
	var payload map[string]any
	if err := json.Unmarshal(v.Payload, &payload); err != nil || payload["notification_id"] != "n-read" {
		t.Errorf("payload %s: %v", v.Payload, err)
	}
	var got []string
	for _, e := range v.Timeline {
		got = append(got, e.Status)
	}
	if strings.Join(got, ",") != "requested,retry_scheduled,accepted,delivered,read" {
		t.Errorf("timeline %v (duplicates must not repeat, the early webhook must be attached)", got)
	}
	if e := v.Timeline[1]; e.Error == nil || e.Error.Code != "http_503" || e.Attempt != 1 || e.RetryTier != "retry-5s" || e.Source.Topic != "notifications.status" {
		t.Errorf("retry event %+v", e)
	}
	if len(v.DeadLetters) != 0 {
		t.Errorf("dead letters %+v", v.DeadLetters)
	}

	// Operators see every tenant; another tenant sees nothing.
	if _, err := s.Notification(ctx, "", "n-read"); err != nil {
		t.Errorf("operator lookup: %v", err)
	}
	if _, err := s.Notification(ctx, "globex", "n-read"); !errors.Is(err, ErrNotFound) {
		t.Errorf("other tenant: %v, want ErrNotFound", err)
	}
	if _, err := s.Notification(ctx, "", "no-such-id"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v, want ErrNotFound", err)
	}
	if _, err := s.Notification(ctx, "", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty id: %v, want ErrInvalid", err)
	}

	d, err := s.Notification(ctx, "globex", "n-dlq")
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != "dead_lettered" || d.Retries != 3 || d.Attempts != 4 || len(d.Timeline) != 5 || len(d.DeadLetters) != 1 {
		t.Fatalf("dead-lettered view %+v", d)
	}
	dl := d.DeadLetters[0]
	if dl.Reason != "exhausted" || dl.Error.Code != "timeout" || dl.Attempt != 4 || dl.Origin.Offset != 2 || dl.Source.Topic != "notifications.dlq" {
		t.Errorf("dead letter %+v", dl)
	}

	r, err := s.Notification(ctx, "acme", "n-replayed")
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, e := range r.Timeline {
		got = append(got, e.Status)
	}
	if r.Status != "sent" || !r.Reattempted || r.Error == nil || r.Error.Code != "http_503" || r.DeadLetteredAt == nil ||
		strings.Join(got, ",") != "requested,retry_scheduled,dead_lettered,retry_scheduled,accepted,sent" {
		t.Errorf("replayed notification: status %s reattempted %v error %+v timeline %v", r.Status, r.Reattempted, r.Error, got)
	}
	if f, err := s.Notification(ctx, "acme", "n-failed"); err != nil || f.Status != "failed" || f.Reattempted {
		t.Errorf("failed notification: %+v %v", f, err)
	}

	// The view is what the HTTP API and the CLI print.
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"notification_id":"n-dlq"`, `"status":"dead_lettered"`, `"dead_letters":[`, `"timeline":[`, `"error":{"code":"timeout"`, `"dead_lettered_at":`} {
		if !strings.Contains(string(raw), key) {
			t.Errorf("JSON lacks %s: %s", key, raw)
		}
	}
	if strings.Contains(string(raw), `"read_at"`) {
		t.Errorf("JSON carries an empty read_at: %s", raw)
	}
}

func TestStats(t *testing.T) {
	s := fixture(t)
	ctx := context.Background()
	st, err := s.Stats(ctx, at(-time.Hour), at(3*time.Hour), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	want := Funnel{Requested: 4, Accepted: 2, Sent: 2, Delivered: 1, Read: 1, Failed: 1, DeadLettered: 1}
	if st.Funnel != want {
		t.Errorf("funnel %+v, want %+v", st.Funnel, want)
	}
	if len(st.Hourly) != 2 || !st.Hourly[0].Hour.Equal(t0) || st.Hourly[0].Requested != 3 || st.Hourly[1].DeadLettered != 1 {
		t.Errorf("hourly %+v", st.Hourly)
	}
	if len(st.Failures) != 2 {
		t.Fatalf("failures %+v", st.Failures)
	}
	for _, f := range st.Failures {
		if !(f.Status == "failed" && f.ErrorCode == "131026" && !f.Retryable || f.Status == "dead_lettered" && f.ErrorCode == "timeout") || f.Notifications != 1 {
			t.Errorf("failure %+v", f)
		}
	}
	lat := map[string]StepLatency{}
	for _, l := range st.Latency {
		lat[l.Step] = l
	}
	// n-read took 6 s, n-replayed an hour and 6 s (its replay).
	if l := lat["requested_to_accepted"]; l.Samples != 2 || l.P50 != 3606 || l.Max != 3606 {
		t.Errorf("requested_to_accepted %+v, want samples 6s and 3606s", l)
	}
	if l := lat["delivered_to_read"]; l.Samples != 1 || l.P50 != 1 {
		t.Errorf("delivered_to_read %+v, want one sample of 1s", l)
	}
	if l := lat["accepted_to_sent"]; l.Samples != 1 || l.P50 != 1 {
		t.Errorf("accepted_to_sent %+v, want only n-replayed's 1s (n-read never reported sent)", l)
	}
	if _, ok := lat["sent_to_delivered"]; ok {
		t.Errorf("sent_to_delivered has samples though no notification has both: %+v", lat)
	}
	if r := st.Retries; r.Requested != 4 || r.Retried != 3 || r.RetryEvents != 5 || r.DeadLettered != 1 || r.DLQRate != 0.25 {
		t.Errorf("retries %+v", r)
	}
	if len(st.DeadLetters) != 1 || st.DeadLetters[0].Records != 1 || st.DeadLetters[0].Reason != "exhausted" {
		t.Errorf("dead letters %+v", st.DeadLetters)
	}

	acme, err := s.Stats(ctx, at(-time.Hour), at(3*time.Hour), Filter{Tenant: "acme", Template: "otp_code"})
	if err != nil {
		t.Fatal(err)
	}
	if acme.Funnel.Requested != 3 || acme.Funnel.DeadLettered != 0 || len(acme.DeadLetters) != 0 || acme.Retries.Retried != 2 {
		t.Errorf("acme stats %+v", acme)
	}
	later, err := s.Stats(ctx, at(30*time.Minute), at(3*time.Hour), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if later.Funnel.Requested != 4 { // 10:30 is rounded down to 10:00: both hours count
		t.Errorf("range rounded to hours: requested %d, want 4", later.Funnel.Requested)
	}
	last, err := s.Stats(ctx, at(time.Hour), at(3*time.Hour), Filter{})
	if err != nil || last.Funnel.Requested != 1 || last.Funnel.DeadLettered != 1 {
		t.Errorf("second hour only: %+v %v", last, err)
	}
	none, err := s.Stats(ctx, at(5*time.Hour), at(6*time.Hour), Filter{})
	if err != nil || none.Funnel != (Funnel{}) || len(none.Hourly) != 0 {
		t.Errorf("empty range: %+v %v", none, err)
	}
	if _, err := s.Stats(ctx, at(time.Hour), at(time.Hour), Filter{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty range: %v, want ErrInvalid", err)
	}
}

package sink

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

// TestLanesAreStoredAndTheLaneViewCountsThem sends a small fixed set of
// notifications of every lane through the sink (each on its lane's
// topic, two of a producer that knows no lanes on notifications.requested)
// with their provider acceptances, and reads the lane and the lane_flow
// and lane_flow_minutely views: queued, sent per second and waiting
// times, per lane and tenant.
func TestLanesAreStoredAndTheLaneViewCountsThem(t *testing.T) {
	db := testinfra.ClickHouseDatabase(t)
	brokers := testinfra.KafkaWithTopics(t, 3)
	cl := testinfra.Client(t, brokers)
	now := time.Now().UTC().Truncate(time.Millisecond)

	var recs []*kgo.Record
	seq := 0
	rec := func(topic, key string, v any) *kgo.Record {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return &kgo.Record{Topic: topic, Key: []byte(key), Value: b}
	}
	// note publishes one notification: requested at now-age, then each
	// status after its own delay from the request.
	type step struct {
		status contract.Status
		after  time.Duration
	}
	note := func(tenant, eventType, lane, topic string, age time.Duration, steps ...step) string {
		seq++
		n := &contract.Notification{SchemaVersion: 1, IdempotencyKey: fmt.Sprintf("k-%d", seq), Tenant: tenant, SourceService: "svc",
			EventType: eventType, Recipient: fmt.Sprintf("+1555100%04d", seq), Sender: "s-" + tenant, Lane: lane,
			Text: &contract.Text{Body: "hi"}, CreatedAt: now.Add(-age)}
		n.ID = contract.NotificationID(tenant, n.IdempotencyKey)
		recs = append(recs, rec(topic, n.Recipient, n))
		for i, s := range steps {
			e := contract.StatusEvent{SchemaVersion: 1, EventID: contract.DispatcherEventID(n.ID, s.status, i+1), NotificationID: n.ID,
				Tenant: tenant, EventType: eventType, Sender: n.Sender, Recipient: n.Recipient, Status: s.status, Attempt: i + 1,
				OccurredAt: n.CreatedAt.Add(s.after), Emitter: contract.EmitterDispatcher}
			if s.status == contract.StatusAccepted {
				e.ProviderMessageID = "wamid." + n.ID
			}
			if s.status == contract.StatusFailed || s.status == contract.StatusRetryScheduled {
				e.Error = &contract.ErrorInfo{Code: "131000", Retryable: s.status == contract.StatusRetryScheduled}
			}
			recs = append(recs, rec(topics.Status, n.Recipient, e))
		}
		return n.ID
	}
	acc := func(after time.Duration) step { return step{contract.StatusAccepted, after} }

	// acme, critical: three accepted in the last minute (waits 0.5 s, 1 s,
	// 2 s), one queued, and one OTP of a lane-less producer, queued.
	note("acme", "otp", "critical", topics.Critical, 10*time.Second, acc(500*time.Millisecond))
	note("acme", "otp", "critical", topics.Critical, 8*time.Second, acc(time.Second))
	note("acme", "login.code", "critical", topics.Critical, 6*time.Second, acc(2*time.Second))
	note("acme", "otp", "critical", topics.Critical, 4*time.Second)
	legacyOTP := note("acme", "otp", "", topics.Requested, 90*time.Second)
	// acme, transactional: one lane-less invoice, queued; one asked
	// transactional, accepted 20 minutes ago after 3 s.
	legacyInvoice := note("acme", "invoice.due", "", topics.Requested, 3*time.Second)
	note("acme", "otp", "transactional", topics.Requested, 20*time.Minute, acc(3*time.Second))
	// acme, bulk: accepted in the last minute after 20 s, accepted 5
	// minutes ago after 60 s, two queued, one waiting for a retry
	// (queued), one failed (not queued), one accepted two hours ago (in no
	// window).
	note("acme", "campaign.x", "bulk", topics.Bulk, 30*time.Second, acc(20*time.Second))
	note("acme", "campaign.x", "bulk", topics.Bulk, 6*time.Minute, acc(time.Minute))
	note("acme", "campaign.x", "bulk", topics.Bulk, 2*time.Minute)
	note("acme", "campaign.x", "bulk", topics.Bulk, time.Minute)
	note("acme", "campaign.x", "bulk", topics.Bulk, 50*time.Second, step{contract.StatusRetryScheduled, time.Second})
	note("acme", "campaign.x", "bulk", topics.Bulk, 40*time.Second, step{contract.StatusFailed, time.Second})
	note("acme", "campaign.x", "bulk", topics.Bulk, 2*time.Hour, acc(10*time.Second))
	// A lane-less record written straight to the bulk topic is in the bulk
	// lane whatever its event type (the dispatcher serves it there).
	laneless := note("acme", "otp", "", topics.Bulk, 10*time.Second)
	// globex, bulk: one accepted in the last minute after 4 s.
	note("globex", "newsletter", "bulk", topics.Bulk, 5*time.Second, acc(4*time.Second))
	produce(t, cl, recs)

	startSink(t, Config{Group: "sink-lanes", BatchRows: 100, BatchInterval: 50 * time.Millisecond}, db.Options(), brokers)
	waitConsumed(t, kadm.NewClient(cl), "sink-lanes", time.Minute)

	// The lane is stored on each request row; a lane-less record gets the
	// lane its event type derives.
	if got := queryUint(t, db.Conn, "SELECT count() FROM notification_events FINAL WHERE status = 'requested'"); got != uint64(seq) {
		t.Fatalf("%d request rows, want %d", got, seq)
	}
	for id, want := range map[string]string{legacyOTP: "critical", legacyInvoice: "transactional", laneless: "bulk"} {
		if n := queryUint(t, db.Conn, "SELECT count() FROM notification_events WHERE notification_id = ? AND status = 'requested' AND lane = ?", id, want); n != 1 {
			t.Errorf("lane-less notification %s: not stored in lane %s", id, want)
		}
	}
	if n := queryUint(t, db.Conn, "SELECT count() FROM notification_events WHERE status = 'requested' AND lane = ''"); n != 0 {
		t.Errorf("%d request rows without a lane", n)
	}
	for lane, want := range map[string]uint64{"critical": 5, "transactional": 2, "bulk": 9} {
		if n := queryUint(t, db.Conn, "SELECT count() FROM notification_events FINAL WHERE status = 'requested' AND lane = ?", lane); n != want {
			t.Errorf("lane %s: %d request rows, want %d", lane, n, want)
		}
	}

	type flow struct {
		queued, lastMinute, lastHour uint64
		perSecond, p50, p99, max     float64
		oldest                       float64
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := db.Conn.Query(ctx, `SELECT lane, tenant, queued, accepted_last_minute, accepted_last_hour,
		sent_per_second, wait_p50_s, wait_p99_s, wait_max_s, oldest_queued_s FROM lane_flow`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]flow{}
	for rows.Next() {
		var lane, tenant string
		var f flow
		if err := rows.Scan(&lane, &tenant, &f.queued, &f.lastMinute, &f.lastHour, &f.perSecond, &f.p50, &f.p99, &f.max, &f.oldest); err != nil {
			t.Fatal(err)
		}
		got[lane+"/"+tenant] = f
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	want := map[string]flow{
		"critical/acme":      {queued: 2, lastMinute: 3, lastHour: 3, perSecond: 0.05, p50: 1, p99: 2, max: 2, oldest: 90},
		"transactional/acme": {queued: 1, lastMinute: 0, lastHour: 1, perSecond: 0, p50: 3, p99: 3, max: 3, oldest: 3},
		"bulk/acme":          {queued: 4, lastMinute: 1, lastHour: 2, perSecond: 0.017, p50: 60, p99: 60, max: 60, oldest: 120},
		"bulk/globex":        {queued: 0, lastMinute: 1, lastHour: 1, perSecond: 0.017, p50: 4, p99: 4, max: 4, oldest: 0},
	}
	if len(got) != len(want) {
		t.Errorf("lane_flow rows %v, want %d", got, len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("lane_flow has no row %s", k)
			continue
		}
		// The oldest queued notification has waited its age plus the
		// time the test took so far.
		if g.oldest < w.oldest || g.oldest > w.oldest+60 {
			t.Errorf("%s: oldest queued %.3f s, want %v s (+ the test's time)", k, g.oldest, w.oldest)
		}
		g.oldest = w.oldest
		if g != w {
			t.Errorf("%s: lane_flow %+v, want %+v", k, g, w)
		}
	}

	// Per minute: the bulk acceptance of 5 minutes ago is in its own
	// minute; the one two hours ago too.
	minutely := queryUint(t, db.Conn, "SELECT toUInt64(sum(accepted)) FROM lane_flow_minutely WHERE lane = 'bulk' AND tenant = 'acme'")
	if minutely != 3 {
		t.Errorf("lane_flow_minutely counts %d bulk acceptances of acme, want 3", minutely)
	}
	var maxWait float64
	if err := db.Conn.QueryRow(ctx, "SELECT max(wait_max_s) FROM lane_flow_minutely WHERE lane = 'critical'").Scan(&maxWait); err != nil || math.Abs(maxWait-2) > 1e-9 {
		t.Errorf("lane_flow_minutely critical wait max %v, %v; want 2", maxWait, err)
	}
}

package sdk_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/lanes"
	"github.com/wanotify/wanotify/pkg/sdk"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

// Every record goes to its lane's topic: the lane asked for, else the
// one its event type derives; the value carries the lane.
func TestRecordsGoToTheirLanesTopic(t *testing.T) {
	cases := []struct {
		eventType, lane string
		topic, stored   string
	}{
		{"otp", "", topics.Critical, "critical"},
		{"invoice.reminder", "", topics.Requested, "transactional"},
		{"campaign.black_friday", "", topics.Bulk, "bulk"},
		{"invoice.reminder", "critical", topics.Critical, "critical"},
		{"otp", "bulk", topics.Bulk, "bulk"},
		{"promo", "transactional", topics.Requested, "transactional"},
	}
	for _, c := range cases {
		r := otp()
		r.EventType, r.Lane = c.eventType, c.lane
		rec, n, err := sdk.BuildRecord("acme", &r, opts, now, "")
		if err != nil {
			t.Fatalf("%s/%q: %v", c.eventType, c.lane, err)
		}
		back, err := contract.DecodeNotification(rec.Value)
		if err != nil {
			t.Fatalf("%s/%q: value breaks the schema: %v", c.eventType, c.lane, err)
		}
		if rec.Topic != c.topic || n.Lane != c.stored || back.Lane != c.stored {
			t.Errorf("%s asking %q: topic %s, lane %q (value %q); want %s, %q", c.eventType, c.lane, rec.Topic, n.Lane, back.Lane, c.topic, c.stored)
		}
	}
	// An explicit topic wins (Options.Topic), the lane is still stored.
	r := otp()
	rec, n, err := sdk.BuildRecord("acme", &r, opts, now, "test.topic")
	if err != nil || rec.Topic != "test.topic" || n.Lane != "critical" {
		t.Fatalf("explicit topic: %v, %s, %q", err, rec.Topic, n.Lane)
	}
}

func TestAnUnknownLaneIsRefusedNamingTheField(t *testing.T) {
	for _, lane := range []string{"urgent", "Critical", " bulk"} {
		r := otp()
		r.Lane = lane
		_, err := sdk.Build("acme", &r, opts, now)
		if !fieldNamed(err, "/lane") {
			t.Errorf("lane %q: error %v does not name /lane", lane, err)
		}
	}
}

// NewRecord of a notification without a lane (a producer that knows no
// lanes built it) goes where its derived lane's records go, without
// writing a lane into the value.
func TestNewRecordWithoutALaneGoesToTheDerivedLanesTopic(t *testing.T) {
	r := otp()
	r.EventType = "newsletter"
	n, err := sdk.Build("acme", &r, opts, now)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := sdk.NewRecord(n, "")
	if err != nil || rec.Topic != topics.Bulk {
		t.Fatalf("%v, topic %s", err, rec.Topic)
	}
	back, _ := contract.DecodeNotification(rec.Value)
	if back.Lane != "" {
		t.Fatalf("lane %q written into a notification that had none", back.Lane)
	}
}

// The publisher routes by lane against a broker: an OTP, an invoice and
// a campaign land on three topics, a publisher with an explicit Topic
// writes everything there.
func TestPublisherRoutesByLane(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 3)
	p := publisher(t, brokers, sdk.Options{})
	want := map[string]string{}
	for _, et := range []string{"otp", "invoice.due", "campaign.spring"} {
		r := otp()
		r.EventType, r.IdempotencyKey = et, "k-"+et
		id, err := p.Publish(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		want[id] = map[string]string{"otp": topics.Critical, "invoice.due": topics.Requested, "campaign.spring": topics.Bulk}[et]
	}
	for _, rec := range consumeAll(t, brokers, 3) {
		id := envelope.Get(rec.Headers, envelope.HeaderNotificationID)
		if rec.Topic != want[id] {
			t.Errorf("notification %s on %s, want %s", id, rec.Topic, want[id])
		}
	}
}

func fieldNamed(err error, field string) bool {
	var ve *contract.ValidationError
	if !errors.As(err, &ve) {
		return false
	}
	for _, f := range ve.Fields {
		if f.Field == field {
			return true
		}
	}
	return false
}

// Past Options.DailyCaps for a lane Publish returns a *QuotaError
// (errors.Is ErrQuotaExceeded) with the time to the next UTC day, and
// produces nothing; other lanes go on.
func TestPublisherDailyCapReturnsATypedError(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 3)
	clock := time.Date(2026, 12, 7, 23, 0, 0, 0, time.UTC)
	p := publisher(t, brokers, sdk.Options{DailyCaps: map[lanes.Lane]int64{lanes.Bulk: 1}, Now: func() time.Time { return clock }})
	campaign := func(key string) sdk.Request {
		r := otp()
		r.EventType, r.IdempotencyKey, r.TTL = "campaign.x", key, 0
		return r
	}
	if _, err := p.Publish(context.Background(), campaign("c-1")); err != nil {
		t.Fatal(err)
	}
	_, err := p.Publish(context.Background(), campaign("c-2"))
	var qe *sdk.QuotaError
	if !errors.Is(err, sdk.ErrQuotaExceeded) || !errors.As(err, &qe) || qe.Lane != lanes.Bulk || qe.Limit != 1 || qe.RetryAfter != time.Hour {
		t.Fatalf("over the cap: %v (%+v)", err, qe)
	}
	res := p.PublishBatch(context.Background(), []sdk.Request{campaign("c-3"), otp()})
	if !errors.Is(res[0].Err, sdk.ErrQuotaExceeded) || res[1].Err != nil {
		t.Fatalf("batch %+v", res)
	}
	recs := consumeAll(t, brokers, 2)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	if _, err := sdk.New(testinfra.Client(t, brokers), sdk.Options{Tenant: "acme", SourceService: "x", DailyCaps: map[lanes.Lane]int64{"urgent": 3}}); err == nil ||
		!strings.Contains(err.Error(), "DailyCaps") {
		t.Fatalf("a cap of no lane: %v", err)
	}
}

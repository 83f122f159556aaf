package sdk_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/sdk"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func consumeAll(t *testing.T, brokers []string, want int) []*kgo.Record {
	t.Helper()
	cl := testinfra.Client(t, brokers, kgo.ConsumeTopics(topics.Critical, topics.Requested, topics.Bulk), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d records, want %d", len(out), want)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func publisher(t *testing.T, brokers []string, o sdk.Options) *sdk.Publisher {
	t.Helper()
	if o.Tenant == "" {
		o.Tenant = "acme"
	}
	if o.SourceService == "" {
		o.SourceService = "auth-api"
	}
	if o.DefaultSender == "" {
		o.DefaultSender = "acme-main"
	}
	p, err := sdk.Connect(o, kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestPublishWritesTheRecordDurablyAndReturnsItsID(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 3)
	p := publisher(t, brokers, sdk.Options{})
	r := otp()
	id, err := p.Publish(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if id != contract.NotificationID("acme", "u-1001:otp:2026-11-28T10:00:00Z") {
		t.Fatalf("id %s is not the deterministic one", id)
	}
	again, err := p.Publish(context.Background(), r)
	if err != nil || again != id {
		t.Fatalf("republish got %s, %v; want the same id", again, err)
	}
	recs := consumeAll(t, brokers, 2)
	for _, rec := range recs {
		if string(rec.Key) != "+447100900123" || envelope.Get(rec.Headers, envelope.HeaderNotificationID) != id ||
			envelope.Get(rec.Headers, envelope.HeaderTenant) != "acme" {
			t.Fatalf("record key %q headers %v", rec.Key, rec.Headers)
		}
		n, err := contract.DecodeNotification(rec.Value)
		if err != nil || n.ID != id || n.SourceService != "auth-api" || n.Sender != "acme-main" {
			t.Fatalf("value %+v, %v", n, err)
		}
	}
	if recs[0].Partition != recs[1].Partition {
		t.Fatal("one recipient's records landed in two partitions")
	}
}

func TestPublishBatchKeepsValidItemsDespiteInvalidOnes(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 3)
	p := publisher(t, brokers, sdk.Options{})
	good := otp()
	bad := otp()
	bad.Recipient = "12"
	other := otp()
	other.IdempotencyKey = "k-2"
	res := p.PublishBatch(context.Background(), []sdk.Request{good, bad, other})
	if res[0].Err != nil || res[2].Err != nil || res[0].ID == "" || res[2].ID != contract.NotificationID("acme", "k-2") {
		t.Fatalf("valid items failed: %+v", res)
	}
	if !errors.Is(res[1].Err, contract.ErrInvalid) || res[1].ID != "" {
		t.Fatalf("invalid item: %+v", res[1])
	}
	ids := map[string]bool{}
	for _, rec := range consumeAll(t, brokers, 2) {
		ids[envelope.Get(rec.Headers, envelope.HeaderNotificationID)] = true
	}
	if !ids[res[0].ID] || !ids[res[2].ID] || len(ids) != 2 {
		t.Fatalf("records %v", ids)
	}
}

func TestPublishFailsWithErrUnavailableWhenKafkaIsDown(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topics.Critical, topics.Requested, topics.Bulk))
	if err != nil {
		t.Fatal(err)
	}
	brokers := c.ListenAddrs()
	p := publisher(t, brokers, sdk.Options{Timeout: 500 * time.Millisecond})
	if _, err := p.Publish(context.Background(), otp()); err != nil {
		t.Fatalf("broker up: %v", err)
	}
	c.Close()
	r := otp()
	r.IdempotencyKey = "after-outage"
	start := time.Now()
	id, err := p.Publish(context.Background(), r)
	if !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("broker down: err = %v, want ErrUnavailable", err)
	}
	if id != contract.NotificationID("acme", "after-outage") {
		t.Fatalf("the id a retry would get is not returned: %q", id)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %v despite a 500ms timeout", time.Since(start))
	}
}

func TestPublishToADeadPortFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	p := publisher(t, []string{dead}, sdk.Options{Timeout: 300 * time.Millisecond})
	if _, err := p.Publish(context.Background(), otp()); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	res := p.PublishBatch(context.Background(), []sdk.Request{otp(), {}})
	if !errors.Is(res[0].Err, sdk.ErrUnavailable) || !errors.Is(res[1].Err, contract.ErrInvalid) {
		t.Fatalf("results %+v", res)
	}
}

func TestInvalidRequestsNeverReachKafka(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 1)
	p := publisher(t, brokers, sdk.Options{})
	r := otp()
	r.Recipient = "+1"
	if _, err := p.Publish(context.Background(), r); !errors.Is(err, contract.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	if n := endOffset(t, brokers); n != 0 {
		t.Fatalf("%d records written for an invalid request", n)
	}
}

// endOffset is the number of records on notifications.requested.
func endOffset(t *testing.T, brokers []string) int64 {
	t.Helper()
	adm := kadm.NewClient(testinfra.Client(t, brokers))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	offs, err := adm.ListEndOffsets(ctx, topics.Requested)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	offs.Each(func(o kadm.ListedOffset) { total += o.Offset })
	return total
}

func TestNewRefusesClientsThatAckEarly(t *testing.T) {
	brokers := testinfra.Kafka(t)
	cl := testinfra.Client(t, brokers, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	if _, err := sdk.New(cl, sdk.Options{Tenant: "acme", SourceService: "x"}); !errors.Is(err, sdk.ErrNotDurable) {
		t.Fatalf("err = %v", err)
	}
	ok := testinfra.Client(t, brokers)
	if _, err := sdk.New(ok, sdk.Options{Tenant: "Bad Tenant", SourceService: "x"}); err == nil {
		t.Fatal("bad tenant accepted")
	}
	if _, err := sdk.New(ok, sdk.Options{Tenant: "acme"}); err == nil {
		t.Fatal("missing source service accepted")
	}
}

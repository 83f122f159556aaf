package ingest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/sdk"
)

// TestTheSDKAndTheAPIWriteTheSameRecord publishes one notification both
// ways: key, headers, id and value agree (apart from the moment of
// creation), because both are package sdk.
func TestTheSDKAndTheAPIWriteTheSameRecord(t *testing.T) {
	h := newHarness(t, nil)
	accepted(t, h.post(keyAcme, otpBody, "Idempotency-Key", "parity-1"))

	cl, err := kgo.NewClient(kgo.SeedBrokers(h.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pub, err := sdk.New(cl, sdk.Options{Tenant: "acme", SourceService: "api", DefaultSender: "acme-main"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := pub.Publish(context.Background(), sdk.Request{
		IdempotencyKey: "parity-1", EventType: "otp", UserID: "u-1001",
		EventTime: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), Recipient: "+44 7100 900123",
		Template: &contract.Template{Name: "otp_code", Language: "en_US", Parameters: []string{"482913"}},
		TTL:      300 * time.Second, Metadata: map[string]string{"request_id": "r-77"},
	})
	if err != nil {
		t.Fatal(err)
	}

	recs := consume(t, h.brokers, 2)
	if string(recs[0].Key) != string(recs[1].Key) || recs[0].Partition != recs[1].Partition {
		t.Fatalf("keys %q %q", recs[0].Key, recs[1].Key)
	}
	for _, k := range []string{envelope.HeaderTenant, envelope.HeaderNotificationID, envelope.HeaderEventType} {
		if a, b := envelope.Get(recs[0].Headers, k), envelope.Get(recs[1].Headers, k); a != b || a == "" {
			t.Fatalf("header %s: %q vs %q", k, a, b)
		}
	}
	var ns []*contract.Notification
	for _, r := range recs {
		n, err := contract.DecodeNotification(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if n.ID != id {
			t.Fatalf("ids differ: %s vs %s", n.ID, id)
		}
		n.CreatedAt, n.ExpiresAt = time.Time{}, nil
		ns = append(ns, n)
	}
	a, _ := ns[0].Encode()
	b, _ := ns[1].Encode()
	if !slices.Equal(a, b) {
		t.Fatalf("values differ:\n%s\n%s", a, b)
	}
}

package unknown

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/testinfra"
)

func TestPolicyCheck(t *testing.T) {
	p := Policy{Window: time.Minute, ResendEventTypes: DefaultResendEventTypes}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	soon, later := now.Add(30*time.Second), now.Add(5*time.Minute)
	for _, tc := range []struct {
		eventType string
		expires   *time.Time
		want      bool
	}{
		{"otp", nil, true},
		{"otp", &later, true},
		{"otp", &soon, false}, // useless by the time the window ends
		{"otp.login", &later, true},
		{"auth.reset", nil, true},
		{"authentication", nil, true},
		{"invoice.reminder", nil, false},
		{"otpx", nil, false},
	} {
		n := &contract.Notification{EventType: tc.eventType, ExpiresAt: tc.expires}
		if got := p.Check(n, now); got != tc.want {
			t.Errorf("Check(%s, expires %v) = %v, want %v", tc.eventType, tc.expires, got, tc.want)
		}
	}
	if (Policy{Window: time.Minute}).Check(&contract.Notification{EventType: "otp"}, now) {
		t.Error("an empty resend list resends")
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, p := range []Policy{
		{Window: 0},
		{Window: time.Second, ResendEventTypes: []string{"["}},
		{Window: time.Second, ResendEventTypes: []string{" "}},
	} {
		if p.Validate() == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}

// TestStatusScan reads a status partition holding the dispatcher's
// transactional events (with their commit and abort markers) and webhook
// events: it finds the webhook naming the notification, ignores the
// dispatcher's own events and other notifications, stops at the end it
// saw when it started (however that end is made up), and reads nothing
// before since minus the margin.
func TestStatusScan(t *testing.T) {
	brokers := testinfra.Kafka(t)
	const topic = "notifications.status"
	adm := kadm.NewClient(testinfra.Client(t, brokers))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	rcpt := "+15550000042"
	event := func(id, emitter string, s contract.Status, pmid string, at time.Time) *kgo.Record {
		ev := contract.StatusEvent{EventID: id + "/" + string(s) + "/" + emitter, NotificationID: id, ProviderMessageID: pmid,
			Recipient: rcpt, Status: s, OccurredAt: at.UTC(), Emitter: emitter}
		v, err := ev.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return &kgo.Record{Topic: topic, Partition: 1, Key: []byte(rcpt), Value: v, Timestamp: at}
	}
	plain := testinfra.Client(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	txn := testinfra.Client(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionalID("scan-test"))
	transact := func(commit bool, rs ...*kgo.Record) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := txn.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	old := now.Add(-10 * time.Minute)
	// Long before the call: a webhook of another run of the same id,
	// outside since minus the margin.
	if err := plain.ProduceSync(ctx, event("n-old", contract.EmitterWebhook, contract.StatusSent, "wamid.OLD", old)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	transact(true, event("n1", contract.EmitterDispatcher, contract.StatusAccepted, "wamid.D", now))
	if err := plain.ProduceSync(ctx, event("n2", contract.EmitterWebhook, contract.StatusDelivered, "wamid.N2", now)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	transact(false, event("n3", contract.EmitterDispatcher, contract.StatusAccepted, "wamid.A", now))
	if err := plain.ProduceSync(ctx, event("n1", contract.EmitterWebhook, contract.StatusSent, "wamid.N1", now)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The partition now ends with an abort marker.
	transact(false, event("n4", contract.EmitterDispatcher, contract.StatusAccepted, "wamid.B", now))

	s := &StatusScan{Opts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, Topic: topic, Margin: time.Minute}
	find := func(id string, since time.Time) (Evidence, bool) {
		t.Helper()
		fctx, fcancel := context.WithTimeout(ctx, 20*time.Second)
		defer fcancel()
		ev, found, err := s.Find(fctx, 1, since, id)
		if err != nil {
			t.Fatalf("Find(%s): %v", id, err)
		}
		return ev, found
	}
	if ev, ok := find("n1", now); !ok || ev.ProviderMessageID != "wamid.N1" || ev.Status != contract.StatusSent {
		t.Errorf("n1: %+v %v, want the webhook's sent wamid.N1", ev, ok)
	}
	if ev, ok := find("n2", now); !ok || ev.ProviderMessageID != "wamid.N2" {
		t.Errorf("n2: %+v %v", ev, ok)
	}
	if _, ok := find("n4", now); ok {
		t.Error("n4: the dispatcher's own (aborted) event taken for a webhook")
	}
	if _, ok := find("n-old", now); ok {
		t.Error("n-old: a webhook from before since minus the margin was read")
	}
	if _, ok := find("n-old", old); !ok {
		t.Error("n-old: not found when since covers it")
	}
	if _, ok := find("nobody", now.Add(time.Hour)); ok {
		t.Error("found a webhook after the partition's end")
	}
	// An empty partition ends at once.
	fctx, fcancel := context.WithTimeout(ctx, 20*time.Second)
	defer fcancel()
	if _, ok, err := s.Find(fctx, 0, now, "n1"); err != nil || ok {
		t.Errorf("empty partition: found %v, err %v", ok, err)
	}
}

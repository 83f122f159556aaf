package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/dispatcher/dedupe"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

// interrupted publishes nt and leaves the state a crash during its first
// provider call leaves: a pending marker for attempt 1 and no outcome.
// It returns the partition of nt's record.
func (e *env) interrupted(t *testing.T, nt *contract.Notification, callAt time.Time) int32 {
	t.Helper()
	v, err := nt.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := e.prod.ProduceSync(ctx, &kgo.Record{Topic: topics.Requested, Key: nt.Key(), Value: v}).First()
	if err != nil {
		t.Fatal(err)
	}
	h := dedupe.HashKey(nt.Tenant, nt.IdempotencyKey)
	marker := dedupe.Record{Hash: h,
		Entry:  dedupe.Entry{Origin: res.Offset, Created: uint32(callAt.Unix()), State: dedupe.StatePending, Attempt: 1},
		Detail: dedupe.Detail{NotificationID: nt.ID, SourceTopic: topics.Requested, SourceOffset: res.Offset, UpdatedAt: callAt}}
	manual := testinfra.Client(t, e.brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := manual.ProduceSync(ctx, &kgo.Record{Topic: topics.Dedupe, Partition: res.Partition, Key: h.RecordKey(), Value: dedupe.Encode(marker)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return res.Partition
}

func otp(key string, rcpt string) *contract.Notification {
	nt := notification(key, rcpt, "sender-1", "your code is 482913")
	nt.EventType = "otp"
	exp := time.Now().Add(10 * time.Minute).UTC()
	nt.ExpiresAt = &exp
	return nt
}

// waitStatus waits until id has status s and returns its events.
func (w *watcher) waitStatus(t *testing.T, id string, s contract.Status, timeout time.Duration) []contract.StatusEvent {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, _, _ := w.snapshot()
		for _, ev := range st[id] {
			if ev.Status == s {
				return st[id]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no status %s after %s; events %+v", id, s, timeout, st[id])
		}
		select {
		case <-w.changed:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func verifyConfig(txn string) Config {
	cfg := testConfig(txn)
	cfg.OutcomeUnknownPolicy = PolicyVerify
	cfg.Unknown.Window = 2 * time.Second
	return cfg
}

// TestInterruptedOTPSettledByWebhook: the provider took the interrupted
// call (its status webhook is on notifications.status): the notification
// is settled accepted with the webhook's message id and not sent again.
func TestInterruptedOTPSettledByWebhook(t *testing.T) {
	e := newEnv(t, 2, simulator.Behavior{})
	w := e.watch()
	nt := otp("otp-webhook", recipient(41))
	callAt := time.Now()
	p := e.interrupted(t, nt, callAt)
	hook := contract.StatusEvent{EventID: contract.WebhookEventID("wamid.TAKEN", contract.StatusSent), NotificationID: nt.ID,
		ProviderMessageID: "wamid.TAKEN", Recipient: nt.Recipient, Status: contract.StatusSent, OccurredAt: callAt.Add(time.Second).UTC(),
		Emitter: contract.EmitterWebhook}
	v, err := hook.Encode()
	if err != nil {
		t.Fatal(err)
	}
	manual := testinfra.Client(t, e.brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := manual.ProduceSync(ctx, &kgo.Record{Topic: topics.Status, Partition: p, Key: hook.Key(), Value: v}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	e.start(verifyConfig("t-unknown-webhook"))
	evs := w.waitStatus(t, nt.ID, contract.StatusAccepted, 60*time.Second)
	var sawUnknown bool
	for _, ev := range evs {
		switch {
		case ev.Emitter != contract.EmitterDispatcher:
		case ev.Status == contract.StatusOutcomeUnknown:
			sawUnknown = true
		case ev.Status == contract.StatusAccepted && ev.ProviderMessageID != "wamid.TAKEN":
			t.Errorf("accepted with provider message id %q, want the webhook's wamid.TAKEN", ev.ProviderMessageID)
		}
	}
	if !sawUnknown {
		t.Errorf("no outcome_unknown while the webhook was awaited: %+v", evs)
	}
	if led := e.sim.Ledger(); led.Accepted != 0 {
		t.Fatalf("the provider was called %d times for a notification its webhook showed as taken", led.Accepted)
	}
}

// TestInterruptedOTPResentWithoutWebhook: no webhook came within the
// window, so the OTP is sent again, once, not before the window ended.
// A notification of another event type is reported and never resent.
func TestInterruptedOTPResentWithoutWebhook(t *testing.T) {
	e := newEnv(t, 2, simulator.Behavior{})
	w := e.watch()
	nt := otp("otp-lost", recipient(42))
	notice := notification("notice-lost", recipient(43), "sender-1", "maintenance tonight")
	callAt := time.Now()
	e.interrupted(t, nt, callAt)
	e.interrupted(t, notice, callAt)
	cfg := verifyConfig("t-unknown-resend")
	e.start(cfg)
	evs := w.waitStatus(t, nt.ID, contract.StatusAccepted, 60*time.Second)
	led := e.sim.Ledger()
	var sends []simulator.Entry
	for _, en := range led.Entries {
		if en.NotificationID == nt.ID {
			sends = append(sends, en)
		}
	}
	if len(sends) != 1 {
		t.Fatalf("OTP sent %d times, want once; events %+v", len(sends), evs)
	}
	if early := sends[0].Time.Sub(callAt); early < cfg.Unknown.Window {
		t.Errorf("resent %s after the interrupted call, before the %s window", early, cfg.Unknown.Window)
	}
	_, retries, _ := w.snapshot()
	var parked int
	for _, r := range retries {
		if f, err := envelope.Parse(r.Headers); err == nil && f.NotificationID == nt.ID && f.Class == envelope.ClassOutcomeUnknown {
			parked++
		}
	}
	if parked != 1 {
		t.Errorf("%d parked records for the OTP, want 1", parked)
	}
	term := w.waitTerminal(t, []string{notice.ID}, 30*time.Second)
	if term[notice.ID] != contract.StatusOutcomeUnknown {
		t.Fatalf("notice: status %s, want outcome_unknown", term[notice.ID])
	}
	for _, en := range e.sim.Ledger().Entries {
		if en.NotificationID == notice.ID {
			t.Fatalf("a notice whose call was interrupted was resent")
		}
	}
}

// TestParkedCallAcceptedElsewhere: a record parked as interrupted whose
// call another instance did finish (the changelog says accepted at the
// interrupted attempt: that instance kept sending after the partition
// moved) is settled accepted with its webhook's message id, and never
// sent again.
func TestParkedCallAcceptedElsewhere(t *testing.T) {
	e := newEnv(t, 2, simulator.Behavior{})
	w := e.watch()
	nt := otp("otp-elsewhere", recipient(44))
	v, err := nt.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := e.prod.ProduceSync(ctx, &kgo.Record{Topic: topics.Requested, Key: nt.Key(), Value: v}).First()
	if err != nil {
		t.Fatal(err)
	}
	callAt := time.Now()
	manual := testinfra.Client(t, e.brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	h := dedupe.HashKey(nt.Tenant, nt.IdempotencyKey)
	accepted := dedupe.Record{Hash: h,
		Entry:  dedupe.Entry{Origin: res.Offset, Created: uint32(callAt.Unix()), State: dedupe.StateAccepted, Attempt: 1},
		Detail: dedupe.Detail{NotificationID: nt.ID, SourceTopic: topics.Requested, SourceOffset: res.Offset, UpdatedAt: callAt}}
	f := envelope.Failure{Attempt: 1, DueAt: callAt, Origin: envelope.Origin{Topic: topics.Requested, Partition: res.Partition, Offset: res.Offset},
		Error: contract.ErrorInfo{Code: "outcome_unknown", Retryable: true}, Class: envelope.ClassOutcomeUnknown, FailedAt: callAt,
		NotificationID: nt.ID, Tenant: nt.Tenant, EventType: nt.EventType, ReplayedFrom: -1}
	hs, err := f.Headers()
	if err != nil {
		t.Fatal(err)
	}
	hook := contract.StatusEvent{EventID: contract.WebhookEventID("wamid.ELSEWHERE", contract.StatusDelivered), NotificationID: nt.ID,
		ProviderMessageID: "wamid.ELSEWHERE", Recipient: nt.Recipient, Status: contract.StatusDelivered, OccurredAt: callAt.UTC(), Emitter: contract.EmitterWebhook}
	hv, err := hook.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := manual.ProduceSync(ctx,
		&kgo.Record{Topic: topics.Dedupe, Partition: res.Partition, Key: h.RecordKey(), Value: dedupe.Encode(accepted)},
		&kgo.Record{Topic: topics.Status, Partition: res.Partition, Key: hook.Key(), Value: hv},
		&kgo.Record{Topic: topics.Retry45s, Partition: res.Partition, Key: nt.Key(), Value: v, Headers: hs},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The requested record itself was settled by the instance that parked
	// it: start after it.
	cl := testinfra.Client(t, e.brokers)
	adm := kadm.NewClient(cl)
	if _, err := adm.CommitOffsets(ctx, "wanotify-dispatcher", kadm.OffsetsFromRecords(kgo.Record{Topic: topics.Requested, Partition: res.Partition, Offset: res.Offset})); err != nil {
		t.Fatal(err)
	}
	e.start(verifyConfig("t-unknown-elsewhere"))
	evs := w.waitStatus(t, nt.ID, contract.StatusAccepted, 60*time.Second)
	for _, ev := range evs {
		if ev.Status == contract.StatusAccepted && ev.ProviderMessageID != "wamid.ELSEWHERE" {
			t.Errorf("accepted with %q, want the webhook's wamid.ELSEWHERE", ev.ProviderMessageID)
		}
	}
	if led := e.sim.Ledger(); led.Accepted != 0 {
		t.Fatalf("sent %d times although another instance's call was accepted", led.Accepted)
	}
}

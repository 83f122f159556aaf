package dispatcher

import (
	"context"
	"testing"
	"time"

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

// TestPendingMarkerOnlyForCallsInFlight: records waiting for their
// sender's token have no pending marker, so a crash would report only
// the calls truly in flight. With a sender paced to 2/s and a dozen
// records queued, the changelog never shows more than one key pending
// (the one call under way) at any point.
func TestPendingMarkerOnlyForCallsInFlight(t *testing.T) {
	e := newEnv(t, 1, simulator.Behavior{})
	w := e.watch()
	var ns []*contract.Notification
	var ids []string
	for i := range 12 {
		nt := notification("paced-"+string(rune('a'+i)), recipient(100+i), "slow", "hi")
		ns = append(ns, nt)
		ids = append(ids, nt.ID)
	}
	cfg := testConfig("t-marker-order")
	cfg.Limits.Rate, cfg.Limits.Burst = 2, 1
	e.publish(ns...)
	e.start(cfg)
	w.waitTerminal(t, ids, 60*time.Second)

	// Replay the changelog in order: the number of keys whose latest
	// state is pending, after every record.
	cl := testinfra.Client(t, e.brokers, kgo.ConsumeTopics(topics.Dedupe), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	latest := map[string]dedupe.State{}
	maxPending, seen, want := 0, 0, 2*len(ns) // a pending and a done marker per notification
	for seen < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d changelog records", seen, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			seen++
			rec, ok, err := dedupe.Decode(r.Key, r.Value)
			if err != nil {
				t.Fatalf("changelog record: %v", err)
			}
			if !ok {
				delete(latest, string(r.Key))
				return
			}
			latest[string(r.Key)] = rec.State
			pending := 0
			for _, s := range latest {
				if s == dedupe.StatePending {
					pending++
				}
			}
			maxPending = max(maxPending, pending)
		})
	}
	if maxPending > 1 {
		t.Fatalf("up to %d keys pending at once with one call in flight at 2/s: records waiting for a token carried pending markers", maxPending)
	}
}

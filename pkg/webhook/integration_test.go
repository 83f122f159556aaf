package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/simulator"
)

// TestSimulatorWebhooksAllLandOnStatusTopic sends messages through the
// provider simulator, lets it deliver its signed status webhooks (with
// duplicates and disorder) to the receiver, and checks that every status
// of every accepted message is on notifications.status, attached to its
// notification and keyed by its recipient.
func TestSimulatorWebhooksAllLandOnStatusTopic(t *testing.T) {
	h := newHarness(t, nil, func(c *Config) { c.Secret = "sim-shared-secret-0123456789abcdef0123" })
	quick := simulator.Uniform(time.Millisecond, 20*time.Millisecond)
	sim, err := simulator.New(simulator.Config{
		Seed: 7,
		Webhook: simulator.WebhookConfig{
			URL:         h.url,
			Secret:      h.cfg.Secret,
			Backoff:     20 * time.Millisecond,
			MaxBackoff:  200 * time.Millisecond,
			MaxAttempts: 10,
		},
		Behavior: simulator.Behavior{
			Webhooks:       true,
			SentDelay:      quick,
			DeliveredDelay: quick,
			ReadDelay:      quick,
			ReadRate:       1,
			OutOfOrderRate: 0.5,
			DuplicateRate:  0.3,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := sim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Shutdown(context.Background()) })
	simSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(simSrv.Close)

	// want: event id → expected event, from what the simulator accepted.
	want := map[string]contract.StatusEvent{}
	send := func(i int, failing bool) {
		recipient := fmt.Sprintf("+4477009%05d", i)
		nid := fmt.Sprintf("5f0c2a4e-0000-5000-8000-%012d", i)
		body, _ := json.Marshal(map[string]any{
			"phone_number_id": "sim-sender", "to": recipient, "type": "text",
			"text": map[string]string{"body": fmt.Sprintf("message %d", i)}, "biz_opaque_callback_data": nid,
		})
		resp, err := http.Post(simSrv.URL+simulator.DefaultSendPath, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env struct {
			Success bool `json:"success"`
			Data    struct {
				MessageID string `json:"message_id"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || !env.Success || env.Data.MessageID == "" {
			t.Fatalf("send %d: %d %+v %v", i, resp.StatusCode, env, err)
		}
		statuses := []contract.Status{contract.StatusSent, contract.StatusDelivered, contract.StatusRead}
		if failing {
			statuses = []contract.Status{contract.StatusSent, contract.StatusFailed}
		}
		for _, s := range statuses {
			ev := contract.StatusEvent{ProviderMessageID: env.Data.MessageID, NotificationID: nid, Recipient: recipient, Status: s}
			if s == contract.StatusFailed {
				ev.Error = &contract.ErrorInfo{Code: "meta_131026"}
			}
			want[contract.WebhookEventID(env.Data.MessageID, s)] = ev
		}
	}
	const delivered, failed = 30, 10
	for i := range delivered {
		send(i, false)
	}
	b := sim.Behavior()
	b.AsyncFailRate = 1
	if err := sim.SetBehavior(b); err != nil {
		t.Fatal(err)
	}
	for i := delivered; i < delivered+failed; i++ {
		send(i, true)
	}

	// Wait for the simulator to have delivered every webhook it scheduled.
	deadline := time.Now().Add(30 * time.Second)
	var snap simulator.Snapshot
	for {
		snap = sim.Ledger()
		w := snap.Webhooks
		if w.Scheduled > 0 && w.Delivered == w.Scheduled && sim.PendingWebhooks() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhooks not all delivered: %+v, pending %d", w, sim.PendingWebhooks())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if snap.Accepted != delivered+failed {
		t.Fatalf("simulator accepted %d sends, want %d", snap.Accepted, delivered+failed)
	}
	if snap.Webhooks.GaveUp != 0 || snap.Webhooks.Dropped != 0 {
		t.Fatalf("simulator gave up on or dropped webhooks: %+v", snap.Webhooks)
	}
	if int(snap.Webhooks.Scheduled) <= len(want) {
		t.Logf("no duplicate webhooks this run (scheduled %d for %d statuses)", snap.Webhooks.Scheduled, len(want))
	}

	// One record per delivered webhook (a resent status is a second record
	// with the same event id); together, exactly the statuses expected.
	recs := consumeStatus(t, h.brokers, int(snap.Webhooks.Delivered))
	seen := map[string]int{}
	for _, r := range recs {
		ev := decodeEvent(t, r)
		w, ok := want[ev.EventID]
		if !ok {
			t.Errorf("unexpected event %s", ev.EventID)
			continue
		}
		seen[ev.EventID]++
		if string(r.Key) != w.Recipient || ev.Recipient != w.Recipient || ev.NotificationID != w.NotificationID ||
			ev.ProviderMessageID != w.ProviderMessageID || ev.Status != w.Status || ev.Emitter != contract.EmitterWebhook {
			t.Errorf("%s: record key %q event %+v, want %+v", ev.EventID, r.Key, ev, w)
		}
		if (w.Error == nil) != (ev.Error == nil) || (w.Error != nil && (ev.Error.Code != w.Error.Code || ev.Error.Retryable)) {
			t.Errorf("%s: error %+v, want %+v", ev.EventID, ev.Error, w.Error)
		}
	}
	for id := range want {
		if seen[id] == 0 {
			t.Errorf("status %s never reached %s", id, "notifications.status")
		}
	}
	if n := counter(t, h.reader, "wanotify.webhook.verification.failures"); n != 0 {
		t.Errorf("%d verification failures with the simulator's signatures", n)
	}
}

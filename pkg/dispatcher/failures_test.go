package dispatcher

import (
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/topics"
)

// TestTenThousandWithInjectedFailures: 20% retryable and 2% permanent
// failures injected on every call. Every notification ends in a terminal
// status, nothing is sent twice, nothing is throttled, and the DLQ holds
// exactly the notifications whose four attempts all failed retryably.
func TestTenThousandWithInjectedFailures(t *testing.T) {
	n := 10000
	e := newEnv(t, 12, simulator.Behavior{RateLimit: 3000, RetryableRate: 0.2, PermanentRate: 0.02})
	w := e.watch()
	cfg := testConfig("t-10k")
	cfg.Limits.Rate, cfg.Limits.Burst = 2700, 50
	e.start(cfg)
	var ids []string
	var batch []*contract.Notification
	for i := 0; i < n; i++ {
		nt := notification(idKey(i), recipient(i%2000), "sender-"+string(rune('a'+i%3)), "hello")
		ids = append(ids, nt.ID)
		batch = append(batch, nt)
		if len(batch) == 500 {
			e.publish(batch...)
			batch = batch[:0]
		}
	}
	start := time.Now()
	term := w.waitTerminal(t, ids, 150*time.Second)
	t.Logf("%d notifications terminal after %s", n, time.Since(start).Round(time.Millisecond))

	led := e.sim.Ledger()
	if led.Throttled != 0 {
		t.Errorf("%d sends throttled (429), want 0", led.Throttled)
	}
	if led.DuplicateSends != 0 || led.DuplicateIdempotencySends != 0 {
		t.Errorf("duplicate sends: %d by id, %d by key", led.DuplicateSends, led.DuplicateIdempotencySends)
	}
	// Per notification, what the provider saw.
	retryable := map[string]int{}
	permanent := map[string]bool{}
	for _, r := range led.Rejections {
		if r.Code == "http_503" {
			retryable[r.NotificationID]++
		} else {
			permanent[r.NotificationID] = true
		}
	}
	accepted := map[string]bool{}
	for _, en := range led.Entries {
		accepted[en.NotificationID] = true
	}
	wantDLQ := map[string]bool{}
	for id, c := range retryable {
		if c > 4 {
			t.Errorf("%s attempted %d times", id, c)
		}
		if c == 4 {
			wantDLQ[id] = true
		}
	}
	counts := map[contract.Status]int{}
	for _, id := range ids {
		s := term[id]
		counts[s]++
		switch {
		case accepted[id]:
			if s != contract.StatusAccepted {
				t.Errorf("%s accepted by the provider but status %s", id, s)
			}
		case permanent[id]:
			if s != contract.StatusFailed {
				t.Errorf("%s failed permanently but status %s", id, s)
			}
		case wantDLQ[id]:
			if s != contract.StatusDeadLettered {
				t.Errorf("%s failed four times but status %s", id, s)
			}
		default:
			t.Errorf("%s: status %s, not explained by the ledger", id, s)
		}
	}
	t.Logf("statuses %v; provider: %d accepted, %d rejections", counts, led.Accepted, len(led.Rejections))
	if len(wantDLQ) == 0 {
		t.Fatal("no notification failed four times: the injection rate is too low to test the DLQ")
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		_, retries, dlq := w.snapshot()
		if len(dlq) >= len(wantDLQ) || time.Now().After(deadline) {
			got := map[string]bool{}
			for _, r := range dlq {
				f, err := envelope.Parse(r.Headers)
				if err != nil {
					t.Fatalf("DLQ headers: %v", err)
				}
				if f.DLQReason != envelope.ReasonExhausted || f.Attempt != 4 || f.Origin.Topic != topics.Requested || f.Error.Code != "http_503" {
					t.Errorf("DLQ record context %+v", f)
				}
				if got[f.NotificationID] {
					t.Errorf("%s dead-lettered twice", f.NotificationID)
				}
				got[f.NotificationID] = true
			}
			if len(got) != len(wantDLQ) {
				t.Errorf("DLQ holds %d notifications, want exactly the %d that failed four times", len(got), len(wantDLQ))
			}
			for id := range wantDLQ {
				if !got[id] {
					t.Errorf("%s failed four times but is not in the DLQ", id)
				}
			}
			checkExactlyOnce(t, w)
			checked := checkRetriesNotEarly(t, e.sim, retries)
			t.Logf("%d DLQ records, %d retry records, %d retried attempts checked against their due time", len(dlq), len(retries), checked)
			if checked == 0 {
				t.Fatal("no retry was checked")
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

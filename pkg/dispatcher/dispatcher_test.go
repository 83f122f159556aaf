package dispatcher

import (
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/simulator"
)

func idKey(i int) string { return "user-" + strconv.Itoa(i) + ":invoice.reminder:2026-01-01T00:00:00Z" }

func TestDeliversEveryNotificationOnce(t *testing.T) {
	// Registered first, so it runs after every other cleanup: the
	// dispatcher, the broker and the simulator are gone by then and must
	// have left no goroutine behind.
	t.Cleanup(func() {
		goleak.VerifyNone(t, goleak.IgnoreCurrent(),
			goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"))
	})
	e := newEnv(t, 4, simulator.Behavior{})
	w := e.watch()
	e.start(testConfig("t-basic"))
	var ids []string
	for i := 0; i < 300; i++ {
		n := notification(idKey(i), recipient(i%50), "sender-1", "hello")
		ids = append(ids, n.ID)
		e.publish(n)
	}
	term := w.waitTerminal(t, ids, 60*time.Second)
	for id, s := range term {
		if s != contract.StatusAccepted {
			t.Errorf("%s: %s, want accepted", id, s)
		}
	}
	led := e.sim.Ledger()
	if led.Accepted != 300 || led.DuplicateSends != 0 {
		t.Fatalf("ledger: accepted %d duplicates %d", led.Accepted, led.DuplicateSends)
	}
	st, _, _ := w.snapshot()
	for _, id := range ids {
		for _, ev := range st[id] {
			if ev.Status == contract.StatusAccepted && ev.ProviderMessageID == "" {
				t.Fatalf("accepted status without the provider message id: %+v", ev)
			}
		}
	}
}

// TestSameIdempotencyKeyThreeTimes: one send, two duplicate statuses.
func TestSameIdempotencyKeyThreeTimes(t *testing.T) {
	e := newEnv(t, 4, simulator.Behavior{})
	w := e.watch()
	e.start(testConfig("t-idem"))
	n := notification("caller-supplied-key-1", recipient(1), "sender-1", "your code is 123456")
	for i := 0; i < 3; i++ {
		e.publish(n)
	}
	other := notification("caller-supplied-key-2", recipient(2), "sender-1", "hello")
	e.publish(other)
	w.waitTerminal(t, []string{n.ID, other.ID}, 30*time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, _, _ := w.snapshot()
		var accepted, dup int
		ids := map[string]bool{}
		for _, ev := range st[n.ID] {
			switch ev.Status {
			case contract.StatusAccepted:
				accepted++
			case contract.StatusDuplicate:
				dup++
				ids[ev.EventID] = true
			}
		}
		if accepted == 1 && dup == 2 {
			if len(ids) != 2 {
				t.Fatalf("the two duplicate statuses share an event id: %v", ids)
			}
			break
		}
		if time.Now().After(deadline) || accepted > 1 || dup > 2 {
			t.Fatalf("statuses of %s: %+v; want 1 accepted and 2 duplicate", n.ID, st[n.ID])
		}
		time.Sleep(100 * time.Millisecond)
	}
	led := e.sim.Ledger()
	if led.Accepted != 2 || led.DuplicateIdempotencySends != 0 || led.DuplicateSends != 0 {
		t.Fatalf("ledger: accepted %d, duplicate sends %d/%d; want 2 and none", led.Accepted, led.DuplicateSends, led.DuplicateIdempotencySends)
	}
}

func TestPoisonRecordsGoToDLQAndPartitionKeepsFlowing(t *testing.T) {
	e := newEnv(t, 1, simulator.Behavior{})
	w := e.watch()
	e.start(testConfig("t-poison"))
	rcp := recipient(7)
	before := notification("k-before", rcp, "sender-1", "before")
	e.publish(before)
	e.publishRaw([]byte(rcp), []byte("not json at all"))
	bad := notification("k-bad", rcp, "sender-1", "bad")
	bad.Recipient = "12345" // not E.164: fails the schema
	raw, _ := jsonMarshal(bad)
	e.publishRaw([]byte(rcp), raw)
	after := notification("k-after", rcp, "sender-1", "after")
	e.publish(after)
	w.waitTerminal(t, []string{before.ID, after.ID}, 30*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, dlq := w.snapshot()
		if len(dlq) == 2 {
			for _, r := range dlq {
				f, err := envelope.Parse(r.Headers)
				if err != nil {
					t.Fatalf("DLQ headers: %v", err)
				}
				if f.DLQReason != envelope.ReasonPoison || f.Class != envelope.ClassPoison || f.Error.Message == "" {
					t.Fatalf("DLQ record context: %+v", f)
				}
				if f.Origin.Topic != "notifications.requested" {
					t.Fatalf("origin %+v", f.Origin)
				}
			}
			if string(dlq[0].Value) != "not json at all" {
				t.Fatalf("DLQ record value rewritten: %q", dlq[0].Value)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("DLQ holds %d records, want 2", len(dlq))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := e.sim.Ledger().Accepted; got != 2 {
		t.Fatalf("accepted %d, want 2", got)
	}
}

func TestExpiredNotificationIsNotSent(t *testing.T) {
	e := newEnv(t, 2, simulator.Behavior{})
	w := e.watch()
	e.start(testConfig("t-expiry"))
	old := notification("otp-1", recipient(3), "sender-1", "code 111111")
	past := time.Now().Add(-time.Minute).UTC()
	old.ExpiresAt = &past
	fresh := notification("otp-2", recipient(4), "sender-1", "code 222222")
	future := time.Now().Add(time.Hour).UTC()
	fresh.ExpiresAt = &future
	e.publish(old, fresh)
	term := w.waitTerminal(t, []string{old.ID, fresh.ID}, 30*time.Second)
	if term[old.ID] != contract.StatusExpired || term[fresh.ID] != contract.StatusAccepted {
		t.Fatalf("statuses %v", term)
	}
	led := e.sim.Ledger()
	if led.Accepted != 1 || led.Entries[0].NotificationID != fresh.ID {
		t.Fatalf("ledger %+v", led.Entries)
	}
}

package dispatcher

import (
	"testing"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/dispatcher/dedupe"
	"github.com/wanotify/wanotify/pkg/simulator"
)

// TestKeyReusedForAnotherMessageIsNotSilent: a request that reuses an
// idempotency key for another message (here another amount to the same
// recipient, as ingest cannot see when the first went through another
// instance) is not sent, and its duplicate status says the payload
// differed (error code idempotency_key_reused: the sink writes it to
// ClickHouse). A plain retry stays a plain duplicate.
func TestKeyReusedForAnotherMessageIsNotSilent(t *testing.T) {
	e := newEnv(t, 1, simulator.Behavior{})
	w := e.watch()
	e.start(testConfig("t-reuse"))
	first := notification("order-42-paid", recipient(42), "sender-1", "paid 10.00")
	e.publish(first)
	waitStatusCount(t, w, first.ID, contract.StatusAccepted, 1)

	retry := notification("order-42-paid", recipient(42), "sender-1", "paid 10.00")
	e.publish(retry)
	waitStatusCount(t, w, first.ID, contract.StatusDuplicate, 1)
	other := notification("order-42-paid", recipient(42), "sender-1", "paid 99.00")
	if other.ID != first.ID {
		t.Fatal("the reuse has another id")
	}
	e.publish(other)
	waitStatusCount(t, w, first.ID, contract.StatusDuplicate, 2)

	st, _, _ := w.snapshot()
	var plain, reused int
	for _, ev := range st[first.ID] {
		if ev.Status != contract.StatusDuplicate {
			continue
		}
		switch {
		case ev.Error == nil:
			plain++
		case ev.Error.Code == dedupe.ErrorCodeKeyReused && !ev.Error.Retryable && ev.Error.Message != "":
			reused++
		default:
			t.Fatalf("duplicate with error %+v", ev.Error)
		}
	}
	if plain != 1 || reused != 1 {
		t.Fatalf("%d plain and %d reused duplicates, want 1 and 1: %+v", plain, reused, st[first.ID])
	}
	if got := e.sim.Ledger().Accepted; got != 1 {
		t.Fatalf("%d sends, want 1", got)
	}
}

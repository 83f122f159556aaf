package simulator_test

import (
	"net/http"
	"testing"

	"github.com/wanotify/wanotify/pkg/simulator"
)

func TestRepeatedIdempotencyKeyIsAnsweredWithoutSendingAgain(t *testing.T) {
	for _, honour := range []bool{true, false} {
		sim, url := newSim(t, func(c *simulator.Config) { c.Behavior.IdempotencyKeys = honour })
		c := httpClient(t)
		first := sendXB(t, c, url, "n-1", "sender-a", "hi")
		again := sendXB(t, c, url, "n-1", "sender-a", "hi")
		if first.status != http.StatusOK || again.status != http.StatusOK {
			t.Fatalf("honour=%v: statuses %d, %d", honour, first.status, again.status)
		}
		l := sim.Ledger()
		if honour {
			if string(first.raw) != string(again.raw) {
				t.Errorf("replay answered %s, want the first answer %s", again.raw, first.raw)
			}
			if l.Accepted != 1 || l.IdempotentReplays != 1 || l.DuplicateSends != 0 {
				t.Errorf("ledger %+v: want 1 accepted, 1 replay, 0 duplicates", l)
			}
		} else if l.Accepted != 2 || l.DuplicateSends != 1 || l.IdempotentReplays != 0 {
			t.Errorf("keys ignored: ledger %+v: want 2 accepted, 1 duplicate", l)
		}
	}
}

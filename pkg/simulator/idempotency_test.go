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

// Xpressbot deduplicates by key across the whole account, not per number:
// a key repeated from another sender is answered from the first send and
// nothing is sent. (This is why the dispatcher never sends a tenant's own
// key: see provider.ProviderKey.)
func TestIdempotencyKeyIsAccountWide(t *testing.T) {
	sim, url := newSim(t, func(c *simulator.Config) { c.Behavior.IdempotencyKeys = true })
	c := httpClient(t)
	first := sendXB(t, c, url, "n-1", "sender-a", "tenant A's code")
	other := sendXB(t, c, url, "n-1", "sender-b", "tenant B's code")
	if first.status != http.StatusOK || other.status != http.StatusOK {
		t.Fatalf("statuses %d, %d", first.status, other.status)
	}
	l := sim.Ledger()
	if l.Accepted != 1 || l.IdempotentReplays != 1 || string(first.raw) != string(other.raw) {
		t.Fatalf("ledger %+v: a key repeated from another number must be answered from the first send", l)
	}
}

// With the account's numbers configured, a send from any other
// phone_number_id (a sender's name sent in place of its number id) is
// refused as Meta refuses an unknown object, and nothing is sent.
func TestUnknownPhoneNumberIDIsRefused(t *testing.T) {
	sim, url := newSim(t, func(c *simulator.Config) { c.PhoneNumberIDs = []string{"106540352242922"} })
	c := httpClient(t)
	if a := sendXB(t, c, url, "n-1", "106540352242922", "hi"); a.status != http.StatusOK {
		t.Fatalf("the account's number: status %d", a.status)
	}
	a := sendXB(t, c, url, "n-2", "acme-otp", "hi")
	if a.status != http.StatusBadRequest || a.errorCode() != 100 {
		t.Fatalf("unknown number: status %d code %d: %s", a.status, a.errorCode(), a.raw)
	}
	if l := sim.Ledger(); l.Accepted != 1 {
		t.Fatalf("ledger accepted %d, want only the account number's send", l.Accepted)
	}
	cfg, err := simulator.ConfigFromEnv(func(k string) string {
		if k == simulator.EnvNumbers {
			return " 1, 2 "
		}
		return ""
	})
	if err != nil || len(cfg.PhoneNumberIDs) != 2 || cfg.PhoneNumberIDs[1] != "2" {
		t.Fatalf("%s: %v %v", simulator.EnvNumbers, cfg.PhoneNumberIDs, err)
	}
}

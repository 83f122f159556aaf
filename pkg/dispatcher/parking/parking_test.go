package parking

import (
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/envelope"
)

func TestDueTakesOnlyWhatIsDue(t *testing.T) {
	now := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	if ok, _ := (Due{}).Take(Record{Env: &envelope.Failure{DueAt: now}}, now); !ok {
		t.Fatal("a record due now was not taken")
	}
	later := now.Add(24 * time.Hour)
	ok, wake := (Due{}).Take(Record{Env: &envelope.Failure{DueAt: later}}, now)
	if ok || !wake.Equal(later) {
		t.Fatalf("a record due in a day: taken %v, wake %v; want stop until its due time", ok, wake)
	}
}

type halts struct {
	halted map[string]bool
	due    bool
	next   time.Time
}

func (h *halts) Halted(s string) bool { return h.halted[s] }
func (h *halts) ProbeDue(string, time.Time) (bool, time.Time) {
	return h.due, h.next
}

func TestHeldTakesRunningSendersAndOneProbe(t *testing.T) {
	now := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	hs := &halts{halted: map[string]bool{"bad": true}, next: now.Add(5 * time.Minute)}
	h := &Held{Halts: hs}
	env := &envelope.Failure{}
	if ok, _ := h.Take(Record{Env: env, Sender: "good"}, now); !ok {
		t.Fatal("a running sender's record was not taken")
	}
	if ok, _ := h.Take(Record{Env: env, Sender: ""}, now); !ok {
		t.Fatal("a record without a readable sender must be taken (the admit stage dead-letters it)")
	}
	ok, wake := h.Take(Record{Env: env, Sender: "bad"}, now)
	if ok || !wake.Equal(hs.next) {
		t.Fatalf("a halted sender's record: taken %v, wake %v; want a stop until its next probe", ok, wake)
	}
	if ok, _ := h.Take(Record{Env: env, Sender: "bad", Rescan: true}, now); !ok {
		t.Fatal("a record before the rescan end must be taken (it goes back to the end)")
	}
	hs.due = true
	if ok, _ := h.Take(Record{Env: env, Sender: "bad"}, now); !ok {
		t.Fatal("the first record once a probe is due was not taken")
	}
	if ok, wake := h.Take(Record{Env: env, Sender: "bad"}, now); ok || wake.IsZero() {
		t.Fatalf("a second record for the same probe: taken %v, wake %v; want one record per probe", ok, wake)
	}
	hs.next = hs.next.Add(5 * time.Minute) // the probe was made; the next is due later
	if ok, _ := h.Take(Record{Env: env, Sender: "bad"}, now); !ok {
		t.Fatal("the next probe's record was not taken")
	}
}

// Package parking holds the rules of the dispatcher's parking topics:
// topics where notifications wait, in Kafka rather than in memory, for a
// condition that may be far off. notifications.deferred holds a
// notification the recipient cannot get now (131049) until it is due, a
// day later by default; notifications.held holds a halted sender's
// notifications until the sender runs again.
//
// The dispatcher reads a parking partition record by record and asks the
// partition's Rule whether it may take each one. At the first it may not,
// it stops: that record and every later one stay in Kafka (the fetch
// position is set back to it and the partition is paused), and nothing of
// them is held in memory. The partition is read again at the wake time
// the rule gave, or when the dispatcher is told the condition changed
// (a halt was lifted).
package parking

import (
	"sync"
	"time"

	"github.com/wanotify/wanotify/pkg/envelope"
)

// Record is what a rule sees of one parked record.
type Record struct {
	Offset int64
	// Env is the record's failure envelope (never nil).
	Env *envelope.Failure
	// Sender is the notification's sender ("" when its value could not
	// be read; such a record is taken, and the admit stage dead-letters
	// it).
	Sender string
	// Rescan reports that the record lies before the end the partition
	// had when it was woken by a change: it is taken so the records of
	// the senders that run again behind it are reached.
	Rescan bool
}

// Rule decides how far a parking partition is read.
type Rule interface {
	// Take reports whether r may be taken now. If not, the partition
	// stops at r until wake (zero: until the dispatcher is told the
	// condition changed).
	Take(r Record, now time.Time) (ok bool, wake time.Time)
}

// Due takes records whose due time has come (notifications.deferred).
// The records of a partition are written in about the order they fall
// due (one delay for all), so stopping at the first not yet due holds
// back few that are.
type Due struct{}

// Take implements Rule.
func (Due) Take(r Record, now time.Time) (bool, time.Time) {
	if r.Env.DueAt.After(now) {
		return false, r.Env.DueAt
	}
	return true, time.Time{}
}

// Halts is what the Held rule knows of halted senders.
type Halts interface {
	// Halted reports whether sender is halted.
	Halted(sender string) bool
	// ProbeDue reports whether a halted sender's next probe may go, and
	// otherwise when it may.
	ProbeDue(sender string, now time.Time) (bool, time.Time)
}

// Held takes records of senders that run (notifications.held). Of a
// halted sender it takes the records a change asks to pass over (they go
// back to the end of the topic), and the first one whose probe is due (it
// may become the probe); at any other it stops until the sender's next
// probe, or until a change.
type Held struct {
	Halts Halts

	mu sync.Mutex
	// let is, per halted sender, the probe time for which a record was
	// already taken: one record per sender per probe.
	let map[string]time.Time
}

// Take implements Rule.
func (h *Held) Take(r Record, now time.Time) (bool, time.Time) {
	if r.Sender == "" || !h.Halts.Halted(r.Sender) || r.Rescan {
		return true, time.Time{}
	}
	due, next := h.Halts.ProbeDue(r.Sender, now)
	h.mu.Lock()
	defer h.mu.Unlock()
	if due {
		if h.let == nil {
			h.let = map[string]time.Time{}
		}
		if t, ok := h.let[r.Sender]; !ok || !t.Equal(next) {
			h.let[r.Sender] = next
			return true, time.Time{}
		}
		// This probe's record was taken already: look again a little
		// later, when the probe has been made (or given back).
		return false, now.Add(time.Second)
	}
	return false, next
}

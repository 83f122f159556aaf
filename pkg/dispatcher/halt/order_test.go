package halt

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

// bare is a Store without Kafka, for the ordering rules alone.
func bare() *Store {
	return &Store{cfg: Config{Instance: "a", ProbeInterval: time.Minute}.withDefaults(),
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), states: map[string]*entry{}, reports: map[string]Report{}}
}

// While a local write is not acknowledged, records of the key read from
// the topic wait; once it is, only a record placed after it applies: the
// log's order wins here as on every other instance.
func TestLocalWriteAndTailOrder(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	halted := State{V: 1, Sender: "s", State: StateHalted, Code: "meta_190", Since: t0, By: "a"}
	resumed := State{V: 1, Sender: "s", State: StateRunning, Since: t0.Add(time.Second), By: "notifyctl"}
	isHalted := func(s *Store) bool { _, _, ok := s.Halted("s"); return ok }

	// An older resume read while our halt is in flight does not release
	// the sender, before or after the halt is placed.
	s := bare()
	s.applyTail("s", resumed, 4)
	s.applyLocal("s", halted)
	s.applyTail("s", resumed, 6) // an older record (another writer's) read late
	if !isHalted(s) {
		t.Fatal("a record read during the local write undid it")
	}
	s.settle("s", 7, nil)
	if !isHalted(s) {
		t.Fatal("a record placed before the local write applied after it")
	}
	s.applyTail("s", halted, 7) // our own record read back: nothing changes
	if !isHalted(s) {
		t.Fatal("our own record read back changed the state")
	}

	// A resume placed after our halt applies once the halt is placed.
	s = bare()
	s.applyLocal("s", halted)
	s.applyTail("s", resumed, 9)
	if !isHalted(s) {
		t.Fatal("applied before the local write was placed")
	}
	s.settle("s", 8, nil)
	if isHalted(s) {
		t.Fatal("a resume placed after the local halt did not apply")
	}

	// A failed write leaves the local state until the log says otherwise,
	// and marks it to be written again.
	s = bare()
	s.applyLocal("s", halted)
	s.settle("s", -1, errors.New("broker gone"))
	if !isHalted(s) || !s.states["s"].unsaved {
		t.Fatal("a failed halt write released the sender or was not marked unsaved")
	}
	s.applyTail("s", resumed, 3)
	if isHalted(s) || s.states["s"].unsaved {
		t.Fatal("a resume read after a failed local write did not apply")
	}
}

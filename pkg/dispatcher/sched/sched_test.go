package sched_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/dispatcher/sched"
)

type item struct{ id, to string }

func (i *item) Sender() string    { return "s" }
func (i *item) Recipient() string { return i.to }
func (i *item) Tenant() string    { return "t" }

// pairGate holds a recipient for a while after each item let go to it.
type pairGate struct {
	mu       sync.Mutex
	next     map[string]time.Time
	every    time.Duration
	released []string
}

func (g *pairGate) Check(it sched.Item, now time.Time) sched.Verdict {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t, ok := g.next[it.Recipient()]; ok && now.Before(t) {
		return sched.Verdict{Kind: sched.Wait, Until: t}
	}
	g.next[it.Recipient()] = now.Add(g.every)
	return sched.Verdict{Kind: sched.Go}
}

func (g *pairGate) Release(it sched.Item) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.next, it.Recipient())
	g.released = append(g.released, it.(*item).id)
}

// blockGate diverts items to one recipient.
type blockGate struct{ to string }

var errBlocked = errors.New("blocked")

func (g blockGate) Check(it sched.Item, _ time.Time) sched.Verdict {
	if it.Recipient() == g.to {
		return sched.Verdict{Kind: sched.Divert, Why: errBlocked}
	}
	return sched.Verdict{Kind: sched.Go}
}
func (blockGate) Release(sched.Item) {}

func ids(steps []sched.Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.Item.(*item).id)
	}
	return out
}

func drain(s *sched.Scheduler) []sched.Step {
	var out []sched.Step
	for {
		st, ok := s.Next()
		if !ok {
			return out
		}
		out = append(out, st)
	}
}

func TestFirstInFirstOutWithAFront(t *testing.T) {
	s := sched.New("s", nil, nil)
	s.Push([]sched.Item{&item{"a", "+1"}, &item{"b", "+2"}}, false)
	s.Push([]sched.Item{&item{"c", "+3"}}, false)
	s.Push([]sched.Item{&item{"x", "+4"}, &item{"y", "+5"}}, true)
	got := ids(drain(s))
	want := []string{"x", "y", "a", "b", "c"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if s.Len() != 0 {
		t.Fatalf("len %d after draining", s.Len())
	}
}

func TestAWaitingRecipientDoesNotHoldUpOthers(t *testing.T) {
	g := &pairGate{next: map[string]time.Time{}, every: 150 * time.Millisecond}
	ready := make(chan struct{}, 10)
	s := sched.New("s", []sched.Gate{g}, func() { ready <- struct{}{} })
	s.Push([]sched.Item{&item{"a1", "+1"}, &item{"a2", "+1"}, &item{"b1", "+2"}, &item{"a3", "+1"}, &item{"c1", "+3"}}, false)
	got := ids(drain(s))
	if len(got) != 3 || got[0] != "a1" || got[1] != "b1" || got[2] != "c1" {
		t.Fatalf("first pass %v, want [a1 b1 c1]: a2 and a3 wait, the others go on", got)
	}
	if s.Len() != 2 {
		t.Fatalf("%d items set aside, want 2", s.Len())
	}
	start := time.Now()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("ready was never called for the items set aside")
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Fatalf("ready after %v, before the gate's time", waited)
	}
	got = ids(drain(s))
	if len(got) != 1 || got[0] != "a2" {
		t.Fatalf("second pass %v, want [a2] (a3 waits for the next slot)", got)
	}
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("ready was never called for a3")
	}
	if got = ids(drain(s)); len(got) != 1 || got[0] != "a3" {
		t.Fatalf("third pass %v, want [a3]", got)
	}
}

func TestDivertGivesBackEarlierGatesReservations(t *testing.T) {
	g := &pairGate{next: map[string]time.Time{}, every: time.Hour}
	s := sched.New("s", []sched.Gate{g, blockGate{to: "+9"}}, nil)
	s.Push([]sched.Item{&item{"blocked", "+9"}, &item{"ok", "+1"}}, false)
	steps := drain(s)
	if len(steps) != 2 || steps[0].Kind != sched.Divert || steps[0].Gate != 1 || !errors.Is(steps[0].Why, errBlocked) {
		t.Fatalf("steps %+v: want the first diverted by gate 1", steps)
	}
	if steps[1].Kind != sched.Go {
		t.Fatalf("second step %+v, want Go", steps[1])
	}
	if len(g.released) != 1 || g.released[0] != "blocked" {
		t.Fatalf("released %v: the pair slot of the diverted item must be given back", g.released)
	}
	// An item let go that then does not start gives its slot back too.
	s.Release(steps[1].Item)
	if len(g.released) != 2 {
		t.Fatalf("released %v after Release", g.released)
	}
	s.Push([]sched.Item{&item{"again", "+1"}}, false)
	if st, ok := s.Next(); !ok || st.Kind != sched.Go {
		t.Fatalf("after Release the recipient's slot is free: got %+v %v", st, ok)
	}
}

func TestDropRemovesDeadItemsEverywhere(t *testing.T) {
	g := &pairGate{next: map[string]time.Time{}, every: time.Hour}
	s := sched.New("s", []sched.Gate{g}, nil)
	s.Push([]sched.Item{&item{"a1", "+1"}, &item{"a2", "+1"}, &item{"b1", "+2"}}, false)
	if st, ok := s.Next(); !ok || st.Item.(*item).id != "a1" {
		t.Fatalf("first %+v", st)
	}
	// a2 is set aside by the next call; b1 goes.
	if st, ok := s.Next(); !ok || st.Item.(*item).id != "b1" {
		t.Fatalf("second %+v", st)
	}
	s.Push([]sched.Item{&item{"c1", "+3"}}, false)
	dropped := s.Drop(func(it sched.Item) bool { return it.Recipient() != "+3" })
	defer s.Stop()
	if len(dropped) != 1 || dropped[0].(*item).id != "a2" || s.Len() != 1 {
		t.Fatalf("dropped %v, %d left; want a2 dropped and c1 left", dropped, s.Len())
	}
}

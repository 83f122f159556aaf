package pairrate_test

import (
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/dispatcher/pairrate"
	"github.com/wanotify/wanotify/pkg/dispatcher/sched"
)

type item struct {
	sender, recipient string
	partition         int32
}

func (i *item) Sender() string    { return i.sender }
func (i *item) Recipient() string { return i.recipient }
func (i *item) Tenant() string    { return "acme" }
func (i *item) Partition() int32  { return i.partition }

// refuse is a later gate of the scheduler that holds every item.
type refuse struct{}

func (refuse) Check(sched.Item, time.Time) sched.Verdict {
	return sched.Verdict{Kind: sched.Wait, Until: time.Now().Add(time.Hour)}
}
func (refuse) Release(sched.Item) {}

// In a sender's scheduler, a record whose pair is busy waits aside and the
// records behind it go on.
func TestInASchedulerOtherRecipientsGoOn(t *testing.T) {
	g := pairrate.New(pairrate.Config{Interval: time.Hour, Burst: 1}, nil)
	s := sched.New("snd", []sched.Gate{g}, nil)
	defer s.Stop()
	a1 := &item{"snd", "+14155550123", 0}
	a2 := &item{"snd", "+14155550123", 0}
	b := &item{"snd", "+14155550124", 1}
	s.Push([]sched.Item{a1, a2, b}, false)
	var got []sched.Item
	for {
		st, ok := s.Next()
		if !ok {
			break
		}
		got = append(got, st.Item)
	}
	if len(got) != 2 || got[0] != a1 || got[1] != b {
		t.Fatalf("let go %v, want a1 then b (a2 waits for its pair)", got)
	}
	if s.Len() != 1 {
		t.Fatalf("%d items held, want a2", s.Len())
	}
}

// A later gate that holds the item gives its pair's slot back: the next
// message to that recipient is not paced by one that never went.
func TestALaterGateGivesTheSlotBack(t *testing.T) {
	g := pairrate.New(pairrate.Config{Interval: time.Hour, Burst: 1}, nil)
	s := sched.New("snd", []sched.Gate{g, refuse{}}, nil)
	defer s.Stop()
	a := &item{"snd", "+14155550123", 0}
	s.Push([]sched.Item{a}, false)
	if _, ok := s.Next(); ok {
		t.Fatal("the refusing gate let the item go")
	}
	if _, ok := g.Take(pairrate.PairOf(a), 0, time.Now()); !ok {
		t.Fatal("the pair is still paced for a message that never went")
	}
}

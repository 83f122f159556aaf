package sched_test

import (
	"fmt"
	"testing"

	"github.com/wanotify/wanotify/pkg/dispatcher/sched"
)

type laned struct {
	id, tenant string
	lane       int
}

func (i *laned) Sender() string    { return "s" }
func (i *laned) Recipient() string { return "+1" + i.id }
func (i *laned) Tenant() string    { return i.tenant }
func (i *laned) Lane() int         { return i.lane }

func push(s *sched.Scheduler, n int, tenant string, lane int, prefix string) {
	for i := range n {
		s.Push([]sched.Item{&laned{id: fmt.Sprintf("%s%d", prefix, i), tenant: tenant, lane: lane}}, false)
	}
}

func next(t *testing.T, s *sched.Scheduler) *laned {
	t.Helper()
	st, ok := s.Next()
	if !ok {
		t.Fatal("scheduler empty")
	}
	return st.Item.(*laned)
}

func TestCriticalGoesFirstAlways(t *testing.T) {
	s := sched.New("s", nil, nil)
	push(s, 1000, "a", 2, "bulk")
	push(s, 100, "a", 1, "tx")
	push(s, 3, "b", 0, "otp")
	for i := range 3 {
		if it := next(t, s); it.lane != 0 {
			t.Fatalf("call %d from lane %d, want the critical lane first", i, it.lane)
		}
	}
	// A critical item that comes later still overtakes everything queued.
	next(t, s)
	push(s, 1, "c", 0, "late-otp")
	if it := next(t, s); it.id != "late-otp0" {
		t.Fatalf("got %s, want the late OTP next", it.id)
	}
}

func TestLanesShareByWeightAndBulkIsNeverStarved(t *testing.T) {
	s := sched.New("s", nil, nil)
	s.SetWeights(sched.Weights{Lanes: [sched.Lanes]float64{0, 4, 1}})
	push(s, 1000, "a", 1, "tx")
	push(s, 1000, "a", 2, "bulk")
	var count [sched.Lanes]int
	for range 500 {
		count[next(t, s).lane]++
	}
	if count[1] != 400 || count[2] != 100 {
		t.Fatalf("500 calls: %d transactional, %d bulk; want 400 and 100 (weights 4:1)", count[1], count[2])
	}
}

func TestTenantsShareALaneFairly(t *testing.T) {
	s := sched.New("s", nil, nil)
	push(s, 20000, "big", 2, "a")
	// The big tenant has been served a while before the small one comes.
	for range 1000 {
		next(t, s)
	}
	push(s, 500, "small", 2, "b")
	small := 0
	calls := 0
	for small < 500 {
		if next(t, s).tenant == "small" {
			small++
		}
		calls++
	}
	// Fair share: every other call; a tenant that arrives late gets no
	// credit for the past, and the big one no debt.
	if calls > 1001 {
		t.Fatalf("the small tenant's 500 took %d calls, want about 1000 (half of the lane)", calls)
	}
	// Weights: a tenant of weight 3 gets three calls for each of a weight 1.
	w := sched.New("s", nil, nil)
	w.SetWeights(sched.Weights{Tenants: map[string]float64{"gold": 3}})
	push(w, 1000, "gold", 1, "g")
	push(w, 1000, "plain", 1, "p")
	gold := 0
	for range 400 {
		if next(t, w).tenant == "gold" {
			gold++
		}
	}
	if gold != 300 {
		t.Fatalf("gold got %d of 400 calls, want 300 (weight 3 against 1)", gold)
	}
}

func TestOneTenantOneLaneStaysFirstInFirstOut(t *testing.T) {
	s := sched.New("s", nil, nil)
	push(s, 5, "a", 1, "x")
	first := next(t, s)
	second := next(t, s)
	// Handed back in order, they come first again, in order.
	s.Push([]sched.Item{first, second}, true)
	want := []string{"x0", "x1", "x2", "x3", "x4"}
	for _, w := range want {
		if it := next(t, s); it.id != w {
			t.Fatalf("got %s, want %s", it.id, w)
		}
	}
	counts := map[string]int{}
	push(s, 2, "a", 2, "y")
	push(s, 1, "b", 0, "z")
	s.Counts(func(lane int, tenant string, n int) { counts[fmt.Sprint(lane, tenant)] = n })
	if counts["2a"] != 2 || counts["0b"] != 1 || len(counts) != 2 {
		t.Fatalf("counts %v", counts)
	}
}

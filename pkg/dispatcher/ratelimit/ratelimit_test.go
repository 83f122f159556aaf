package ratelimit

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestShareFollowsAssignment(t *testing.T) {
	cases := []struct {
		assigned, total int
		want            float64
	}{{0, 12, 0}, {6, 12, 0.5}, {4, 12, 1.0 / 3}, {12, 12, 1}, {13, 12, 1}, {3, 0, 0}}
	for _, c := range cases {
		if got := Share(c.assigned, c.total); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Share(%d,%d) = %v, want %v", c.assigned, c.total, got, c.want)
		}
	}
}

// TestSharesNeverExceedTheGlobalBudget checks every way 12 partitions can
// be split over up to 4 instances: the instances' rates add up to at most
// the configured rate and their buckets to at most the configured burst
// (plus one token for each instance whose share is under one token).
func TestSharesNeverExceedTheGlobalBudget(t *testing.T) {
	const total, rate, burst = 12, 45.0, 5
	var split func(left, members int, parts []int)
	split = func(left, members int, parts []int) {
		if members == 0 {
			if left != 0 {
				return
			}
			var sumRate float64
			sumBurst, tiny := 0, 0
			for _, n := range parts {
				r, b := Scaled(rate, burst, Share(n, total))
				sumRate += float64(r)
				sumBurst += b
				if n > 0 && float64(burst)*Share(n, total) < 1 {
					tiny++ // rounded up to one token
				}
			}
			if sumRate > rate+1e-9 {
				t.Fatalf("split %v: rates add up to %v > %v", parts, sumRate, rate)
			}
			if sumBurst > burst+tiny {
				t.Fatalf("split %v: bursts add up to %d > %d", parts, sumBurst, burst)
			}
			return
		}
		for n := 0; n <= left; n++ {
			split(left-n, members-1, append(parts, n))
		}
	}
	for m := 1; m <= 4; m++ {
		split(total, m, nil)
	}
}

func TestSetShareRecomputesExistingLimiters(t *testing.T) {
	s := New(Limits{Rate: 45, Burst: 5, PerSender: map[string]float64{"vip": 10}})
	if _, err := s.Wait(context.Background(), "a"); !errors.Is(err, ErrNoBudget) {
		t.Fatalf("wait with share 0: %v, want ErrNoBudget", err)
	}
	s.SetShare(0.5)
	if got := s.Limiter("a").Limit(); math.Abs(float64(got)-22.5) > 1e-9 {
		t.Fatalf("a: %v, want 22.5", got)
	}
	if got := s.Limiter("vip").Limit(); math.Abs(float64(got)-5) > 1e-9 {
		t.Fatalf("vip: %v, want 5", got)
	}
	if b := s.Limiter("a").Burst(); b != 2 {
		t.Fatalf("burst %d, want 2", b)
	}
	s.SetShare(1)
	if got := s.Limiter("a").Limit(); got != 45 || s.Limiter("a").Burst() != 5 {
		t.Fatalf("after share 1: %v/%d", got, s.Limiter("a").Burst())
	}
}

// TestWaitPacesAndDoesNotBlockOtherSenders runs a saturated sender next to
// an idle one: the saturated one is held to its rate, the other is not
// delayed by it.
func TestWaitPacesAndDoesNotBlockOtherSenders(t *testing.T) {
	s := New(Limits{Rate: 100, Burst: 1})
	s.SetShare(1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Wait(ctx, "busy"); err != nil {
					return
				}
				n.Add(1)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	waited, err := s.Wait(ctx, "quiet")
	if err != nil || waited > 20*time.Millisecond || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("quiet sender waited %v (err %v) behind a busy one", waited, err)
	}
	before := n.Load()
	time.Sleep(time.Second)
	got := n.Load() - before
	close(stop)
	cancel()
	wg.Wait()
	if got < 85 || got > 110 {
		t.Fatalf("busy sender made %d calls in 1s, want about 100", got)
	}
}

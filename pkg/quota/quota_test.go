package quota

import (
	"sync"
	"testing"
	"time"
)

func TestCapPerTenantAndLaneResetsAtUTCMidnight(t *testing.T) {
	now := time.Date(2026, 12, 7, 23, 59, 0, 0, time.UTC)
	c := New(func() time.Time { return now })
	for i := range 3 {
		if ok, _ := c.Take("acme", "bulk", 3); !ok {
			t.Fatalf("take %d refused under the cap", i)
		}
	}
	ok, wait := c.Take("acme", "bulk", 3)
	if ok || wait != time.Minute {
		t.Fatalf("over the cap: %v, wait %s; want refused, 1m to midnight", ok, wait)
	}
	if ok, _ := c.Take("acme", "critical", 3); !ok {
		t.Fatal("another lane shares the cap")
	}
	if ok, _ := c.Take("globex", "bulk", 3); !ok {
		t.Fatal("another tenant shares the cap")
	}
	if ok, _ := c.Take("acme", "bulk", 0); !ok {
		t.Fatal("no cap refused")
	}
	// A unit given back is usable again.
	c.Give("acme", "bulk", 3, now)
	if ok, _ := c.Take("acme", "bulk", 3); !ok {
		t.Fatal("a returned unit is not usable")
	}
	taken := now
	now = now.Add(2 * time.Minute) // the next UTC day
	if ok, _ := c.Take("acme", "bulk", 3); !ok || c.Used("acme", "bulk") != 1 {
		t.Fatalf("the count did not start again at midnight: used %d", c.Used("acme", "bulk"))
	}
	c.Give("acme", "bulk", 3, taken) // taken yesterday: not today's
	if c.Used("acme", "bulk") != 1 {
		t.Fatalf("yesterday's unit was given to today: used %d", c.Used("acme", "bulk"))
	}
}

func TestConcurrentTakesNeverPassTheCap(t *testing.T) {
	c := New(nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 50 {
		wg.Go(func() {
			for range 10 {
				if got, _ := c.Take("acme", "bulk", 123); got {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if ok != 123 {
		t.Fatalf("%d taken, want the cap 123", ok)
	}
}

func TestRetryAfterRoundsUp(t *testing.T) {
	for d, want := range map[time.Duration]int64{time.Minute: 60, 1500 * time.Millisecond: 2, time.Millisecond: 1, 0: 1} {
		if got := RetryAfter(d); got != want {
			t.Errorf("RetryAfter(%s) = %d, want %d", d, got, want)
		}
	}
}

// Package quota counts notifications per tenant and lane over a UTC day,
// against the daily caps of the sender registry (senders.Registry.DailyCap).
// Ingest and the Go SDK take one unit before producing a record and give
// it back when Kafka did not take it, so a refused or failed publish does
// not use the cap.
//
// A Counter lives in one process: with several ingest replicas (or
// several SDK publishers) each counts what it accepted, so the tenant may
// send up to the cap on each of them in a day. Set the cap per replica
// (the daily budget divided by the replicas) when it must hold in total.
package quota

import (
	"sync"
	"time"
)

// Counter counts the units taken per tenant and lane today (UTC). It is
// safe for concurrent use.
type Counter struct {
	mu   sync.Mutex
	day  int64 // days since the Unix epoch, UTC, of used
	used map[key]int64
	now  func() time.Time
}

type key struct{ tenant, lane string }

// New returns an empty counter reading the clock with now (nil:
// time.Now).
func New(now func() time.Time) *Counter {
	if now == nil {
		now = time.Now
	}
	return &Counter{used: map[key]int64{}, now: now}
}

// Take uses one unit of tenant's lane under limit (0 or less: no limit).
// When the cap is reached it uses nothing and returns false and the time
// until the next UTC day, when the count starts again.
func (c *Counter) Take(tenant, lane string, limit int64) (bool, time.Duration) {
	if limit <= 0 {
		return true, 0
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.roll(now)
	k := key{tenant, lane}
	if c.used[k] >= limit {
		return false, UntilNextDay(now)
	}
	c.used[k]++
	return true, 0
}

// Give returns a unit Take used (Kafka did not take the record). A unit
// taken before midnight is not given back to the new day.
func (c *Counter) Give(tenant, lane string, limit int64, takenAt time.Time) {
	if limit <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.roll(c.now())
	k := key{tenant, lane}
	if dayOf(takenAt) == c.day && c.used[k] > 0 {
		c.used[k]--
	}
}

// Used is how many units tenant's lane used today.
func (c *Counter) Used(tenant, lane string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.roll(c.now())
	return c.used[key{tenant, lane}]
}

func (c *Counter) roll(now time.Time) {
	if d := dayOf(now); d != c.day {
		c.day = d
		clear(c.used)
	}
}

func dayOf(t time.Time) int64 { return t.UTC().Unix() / 86400 }

// UntilNextDay is the time from now to the next midnight UTC.
func UntilNextDay(now time.Time) time.Duration {
	u := now.UTC()
	next := time.Date(u.Year(), u.Month(), u.Day()+1, 0, 0, 0, 0, time.UTC)
	return next.Sub(u)
}

// RetryAfter is d in whole seconds, rounded up (at least 1), for a
// Retry-After header.
func RetryAfter(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

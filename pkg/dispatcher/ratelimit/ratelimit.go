// Package ratelimit paces provider calls per sender account with token
// buckets (golang.org/x/time/rate) so the provider's limit is never hit,
// also when several dispatcher instances share it.
//
// Each instance only spends its share of the configured rate: the share is
// the fraction of notifications.requested partitions assigned to it, set
// on every assignment and revocation. Records are spread over partitions
// by recipient, so a sender's traffic is spread the same way, and because
// the group revokes partitions before it assigns them elsewhere, the
// shares of all instances never add up to more than one. The bucket size
// shrinks with the share as well, so the instances' bursts together stay
// within the configured burst (plus one token for an instance whose share
// is worth less than one).
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits is the configured global pacing.
type Limits struct {
	// Rate is the default messages/s per sender account across all
	// instances.
	Rate float64
	// Burst is the bucket size across all instances.
	Burst int
	// PerSender overrides Rate for some senders.
	PerSender map[string]float64
}

// Validate reports bad limits.
func (l Limits) Validate() error {
	var errs []error
	if !(l.Rate > 0) || math.IsInf(l.Rate, 0) {
		errs = append(errs, fmt.Errorf("rate %v must be a positive number", l.Rate))
	}
	if l.Burst < 1 {
		errs = append(errs, fmt.Errorf("burst %d must be at least 1", l.Burst))
	}
	for s, r := range l.PerSender {
		if s == "" || !(r > 0) || math.IsInf(r, 0) {
			errs = append(errs, fmt.Errorf("sender %q rate %v must be a positive number", s, r))
		}
	}
	return errors.Join(errs...)
}

// Set holds one limiter per sender.
type Set struct {
	mu     sync.Mutex
	limits Limits
	share  float64
	m      map[string]*rate.Limiter
}

// New returns a Set with share 0: nothing may be sent until SetShare.
func New(l Limits) *Set {
	return &Set{limits: l, m: map[string]*rate.Limiter{}}
}

// Share computes the fraction of the global budget an instance owning
// assigned of total partitions may spend.
func Share(assigned, total int) float64 {
	if total <= 0 || assigned <= 0 {
		return 0
	}
	if assigned >= total {
		return 1
	}
	return float64(assigned) / float64(total)
}

// Scaled is the per-instance rate and burst for a global rate and burst at
// share. The burst is rounded down so the instances' buckets together hold
// no more than the global burst (at least 1 token while the share is
// positive, so a small share still makes progress).
func Scaled(r float64, burst int, share float64) (rate.Limit, int) {
	if share <= 0 {
		return 0, 0
	}
	return rate.Limit(r * share), max(1, int(math.Floor(float64(burst)*share)))
}

// SetShare updates every limiter to the instance's new share.
func (s *Set) SetShare(share float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.share = share
	now := time.Now()
	for sender, l := range s.m {
		r, b := Scaled(s.rateOf(sender), s.limits.Burst, share)
		l.SetLimitAt(now, r)
		l.SetBurstAt(now, b)
	}
}

// CurrentShare is the current share.
func (s *Set) CurrentShare() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.share
}

func (s *Set) rateOf(sender string) float64 {
	if r, ok := s.limits.PerSender[sender]; ok {
		return r
	}
	return s.limits.Rate
}

// Limiter returns sender's limiter, creating it at the current share.
func (s *Set) Limiter(sender string) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.m[sender]
	if l == nil {
		r, b := Scaled(s.rateOf(sender), s.limits.Burst, s.share)
		l = rate.NewLimiter(r, b)
		s.m[sender] = l
	}
	return l
}

// ErrNoBudget is returned by Wait while the instance's share is zero.
var ErrNoBudget = errors.New("no rate budget: no partitions assigned")

// Wait blocks until sender may send one message or ctx ends, and returns
// how long it waited.
func (s *Set) Wait(ctx context.Context, sender string) (time.Duration, error) {
	l := s.Limiter(sender)
	if l.Limit() == 0 {
		return 0, ErrNoBudget
	}
	start := time.Now()
	err := l.Wait(ctx)
	return time.Since(start), err
}

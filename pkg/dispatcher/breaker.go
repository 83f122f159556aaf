package dispatcher

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/wanotify/wanotify/pkg/provider"
)

// breaker is the circuit breaker of one provider and sender account, and
// the records that found it open. Parked records keep their key's turn and
// have spent no attempt; they go back to their sender's queue when the
// breaker lets a probe through or closes.
type breaker struct {
	name   string
	cb     *gobreaker.CircuitBreaker[string]
	parked []*rec // guarded by Dispatcher.mu
	timer  *time.Timer
	// probes counts calls let through while half-open, so records beyond
	// the allowed probes are parked before they write a pending marker.
	probes atomic.Int32
}

type breakers struct {
	mu  sync.Mutex
	m   map[string]*breaker
	cfg BreakerConfig
	on  func(b *breaker, to gobreaker.State)
	// created reports a new breaker (closed).
	created func(b *breaker)
}

// peek returns the breaker of a provider and sender if there is one.
func (bs *breakers) peek(providerName, sender string) *breaker {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return bs.m[providerName+"/"+sender]
}

func (bs *breakers) get(providerName, sender string) *breaker {
	name := providerName + "/" + sender
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if b := bs.m[name]; b != nil {
		return b
	}
	b := &breaker{name: name}
	cfg := bs.cfg
	b.cb = gobreaker.NewCircuitBreaker[string](gobreaker.Settings{
		Name:        name,
		MaxRequests: uint32(cfg.HalfOpenRequests),
		Interval:    cfg.Interval,
		Timeout:     cfg.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			if int(c.ConsecutiveFailures) >= cfg.ConsecutiveFailures {
				return true
			}
			return int(c.Requests) >= cfg.MinRequests && float64(c.TotalFailures)/float64(c.Requests) >= cfg.FailureRatio
		},
		// Only failures that say "the provider (or this sender's
		// account) is not working" count. A permanent, deferred or
		// pair-rate error is the provider working fine and refusing one
		// message or one recipient.
		IsSuccessful: func(err error) bool {
			return err == nil || !provider.AsError(err).ProviderFault()
		},
		// An account fault halts its sender (halts.go) instead: it says
		// nothing about the provider, and an open breaker would pause
		// every sender's fetching.
		IsExcluded: func(err error) bool {
			if err == nil {
				return false
			}
			pe := provider.AsError(err)
			return pe.Code == "canceled" || pe.Class == provider.AccountFault
		},
		// Called with the breaker's lock held: hand off, never call back.
		OnStateChange: func(_ string, _, to gobreaker.State) { go bs.on(b, to) },
	})
	bs.m[name] = b
	if bs.created != nil {
		bs.created(b)
	}
	return b
}

func stateValue(s gobreaker.State) int64 {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}

// onBreakerState reacts to a breaker changing state (never called with a
// breaker lock held).
func (d *Dispatcher) onBreakerState(b *breaker, to gobreaker.State) {
	if d.met != nil {
		d.met.setBreaker(b.name, stateValue(to))
	}
	d.log.Info("circuit breaker", "breaker", b.name, "state", to.String())
	d.mu.Lock()
	switch {
	case to == gobreaker.StateClosed:
		delete(d.openBreaker, b.name)
	case !d.sendsElsewhere(b):
		// A sender with a failover route keeps sending through it, so
		// its breaker does not pause fetching (failover_stage.go).
		d.openBreaker[b.name] = true
	}
	if to == gobreaker.StateOpen {
		if b.timer != nil {
			b.timer.Stop()
		}
		b.timer = time.AfterFunc(d.cfg.Breaker.OpenTimeout+5*time.Millisecond, func() {
			// Reading the state moves an expired open breaker to
			// half-open, which releases the parked records for a probe.
			if b.cb.State() == gobreaker.StateOpen {
				go d.onBreakerState(b, gobreaker.StateOpen)
			}
		})
	}
	d.mu.Unlock()
	if to != gobreaker.StateOpen {
		d.releaseParked(b)
	}
	d.reconcilePause()
}

// releaseParked puts records parked on b back at the front of their
// sender queues, in the order they were parked.
func (d *Dispatcher) releaseParked(b *breaker) {
	d.mu.Lock()
	defer d.mu.Unlock()
	parked := b.parked
	b.parked = nil
	bySender := map[string][]*rec{}
	var order []string
	for _, rc := range parked {
		if rc.part.dead.Load() {
			continue
		}
		s := rc.n.Sender
		if _, ok := bySender[s]; !ok {
			order = append(order, s)
		}
		bySender[s] = append(bySender[s], rc)
	}
	for _, s := range order {
		d.enqueueLocked(s, bySender[s], true)
	}
}

// park holds rc on an open breaker without spending an attempt.
func (d *Dispatcher) park(b *breaker, rc *rec) {
	d.mu.Lock()
	b.parked = append(b.parked, rc)
	d.mu.Unlock()
	// The breaker may have moved on between the caller's look and now;
	// reading the state settles it, and a closed or half-open breaker
	// releases what is parked.
	if b.cb.State() != gobreaker.StateOpen {
		d.releaseParked(b)
	}
}

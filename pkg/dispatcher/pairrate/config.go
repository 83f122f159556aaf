package pairrate

import (
	"errors"
	"fmt"
	"time"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/provider"
)

// Environment variables of the pair-rate gate.
const (
	EnvInterval = "WANOTIFY_DISPATCHER_PAIR_INTERVAL"
	EnvBurst    = "WANOTIFY_DISPATCHER_PAIR_BURST"
)

// MaxBurst bounds Burst: the platform's allowance is reported as a few
// messages at most, and a large burst would make the gate pointless.
const MaxBurst = 10

// Config paces messages per (sender, recipient).
type Config struct {
	// Interval is the time one sender must leave between two messages to
	// one recipient. WhatsApp allows about one per 6 s (error 131056
	// above it). 0 turns pacing off. WANOTIFY_DISPATCHER_PAIR_INTERVAL.
	Interval time.Duration
	// Burst is how many messages to one recipient may go back to back
	// before Interval applies. WANOTIFY_DISPATCHER_PAIR_BURST.
	Burst int
}

// DefaultConfig is Meta's pair rate: one message per 6 s (the wait the
// provider error table assumes for 131056), no burst.
func DefaultConfig() Config {
	return Config{Interval: provider.PairRateRetryAfter, Burst: 1}
}

// Load reads the pair-rate variables over DefaultConfig.
func Load(e *config.Env) Config {
	c := DefaultConfig()
	c.Interval = e.Duration(EnvInterval, c.Interval,
		"least time between two messages of one sender to one recipient, enforced before the call (WhatsApp answers 131056 above about one per 6s); 0 turns pair pacing off")
	c.Burst = e.Int(EnvBurst, c.Burst, "messages to one recipient that may go back to back before the pair interval applies (1-10)")
	return c
}

// Enabled reports whether pacing is on.
func (c Config) Enabled() bool { return c.Interval > 0 }

// span is how long a pair is remembered after its last message: after
// Interval*Burst its allowance is whole again and forgetting it loses
// nothing.
func (c Config) span() time.Duration { return c.Interval * time.Duration(c.Burst) }

// Validate names each bad field by its environment variable.
func (c Config) Validate() error {
	var errs []error
	if c.Interval < 0 {
		errs = append(errs, fmt.Errorf("%s: %s must be 0 (off) or positive", EnvInterval, c.Interval))
	}
	if c.Burst < 1 || c.Burst > MaxBurst {
		errs = append(errs, fmt.Errorf("%s: %d must be between 1 and %d", EnvBurst, c.Burst, MaxBurst))
	}
	return errors.Join(errs...)
}

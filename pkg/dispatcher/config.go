package dispatcher

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/dispatcher/halt"
	"github.com/wanotify/wanotify/pkg/dispatcher/pairrate"
	"github.com/wanotify/wanotify/pkg/dispatcher/ratelimit"
	"github.com/wanotify/wanotify/pkg/dispatcher/sched"
	"github.com/wanotify/wanotify/pkg/dispatcher/unknown"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/provider/cloudapi"
	"github.com/wanotify/wanotify/pkg/provider/xpressbot"
	"github.com/wanotify/wanotify/pkg/senders"
	"github.com/wanotify/wanotify/pkg/topics"
)

// Outcome-unknown policies: what to do with a record found with a pending
// marker for the attempt it asks for (the dispatcher died during the
// provider call, so the message may or may not have gone out).
const (
	// PolicyReport records status outcome_unknown and does not send: at
	// most once. The default, because a duplicate WhatsApp message is
	// worse than one an operator has to look at.
	PolicyReport = "report"
	// PolicyResend sends again: at least once, for notifications where a
	// duplicate is harmless and a lost one is not.
	PolicyResend = "resend"
	// PolicyVerify (the default) waits for evidence: a status webhook
	// naming the notification settles it as accepted; without one within
	// WANOTIFY_DISPATCHER_OUTCOME_UNKNOWN_WINDOW, notifications whose event
	// type is in WANOTIFY_DISPATCHER_OUTCOME_UNKNOWN_RESEND (OTPs by
	// default) and whose expiry is still ahead are sent again; every
	// other one is reported as under PolicyReport.
	PolicyVerify = "verify"
)

// Config is the dispatcher's configuration. Defaults lives in one place:
// DefaultConfig.
type Config struct {
	// Group is the consumer group. WANOTIFY_DISPATCHER_GROUP.
	Group string
	// TransactionalID must be unique per running instance and stable
	// across its restarts, so a restarted instance fences its previous
	// incarnation and aborts its open transaction at once.
	// WANOTIFY_DISPATCHER_TRANSACTIONAL_ID (default: wanotify-dispatcher-<hostname>).
	TransactionalID string
	// Concurrency bounds provider calls in flight. WANOTIFY_DISPATCHER_CONCURRENCY.
	Concurrency int
	// MaxBuffered bounds records taken from Kafka and not yet finished;
	// above it fetching pauses. WANOTIFY_DISPATCHER_MAX_BUFFERED.
	MaxBuffered int
	// MaxBulkBuffered bounds the bulk lane's records taken from Kafka and
	// not yet finished: notifications.bulk is read only as far as its
	// senders can send soon. WANOTIFY_DISPATCHER_MAX_BULK_BUFFERED.
	MaxBulkBuffered int
	// BulkReaders is how many bulk partitions with a backlog are read at
	// once (package bulkread): a fetch of one brings at least a whole
	// producer batch. WANOTIFY_DISPATCHER_BULK_READERS.
	BulkReaders int
	// Weights share each sender among its lanes and tenants (package
	// sched): WANOTIFY_DISPATCHER_LANE_WEIGHTS,
	// WANOTIFY_DISPATCHER_TENANT_WEIGHTS.
	Weights sched.Weights
	// FlushInterval is how often finished records' outputs and offsets are
	// committed in one transaction. WANOTIFY_DISPATCHER_FLUSH_INTERVAL.
	FlushInterval time.Duration
	// FetchMaxWait bounds how long a fetch waits for data; it is also how
	// late a resumed retry partition may start flowing.
	// WANOTIFY_DISPATCHER_FETCH_MAX_WAIT.
	FetchMaxWait time.Duration
	// FetchPartitionBytes is how much one fetch asks of each partition.
	// Below Kafka's usual 1 MiB: the dispatcher sends at its senders'
	// rates, and what a fetch brings is decoded at once, so this bounds
	// the memory of reading a backlog. A producer batch larger than it is
	// still read, one partition a fetch.
	// WANOTIFY_DISPATCHER_FETCH_PARTITION_BYTES.
	FetchPartitionBytes int
	// SessionTimeout and RebalanceTimeout of the group membership.
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	// TransactionTimeout is how long the broker keeps an abandoned
	// transaction open. WANOTIFY_DISPATCHER_TRANSACTION_TIMEOUT.
	TransactionTimeout time.Duration
	// Limits pace provider calls per sender (global, split over instances).
	// Limits.Rate is the rate of a sender that sets none in the registry;
	// per-sender rates come from Senders.
	Limits ratelimit.Limits
	// Senders is the sender registry: only its senders are sent from, by
	// the tenants it names (WANOTIFY_SENDERS_FILE / WANOTIFY_SENDERS;
	// default the built-in local registry).
	Senders *senders.Registry
	// PairRate paces each sender's messages to one recipient before the
	// call (WANOTIFY_DISPATCHER_PAIR_INTERVAL / _PAIR_BURST).
	PairRate pairrate.Config
	// RetryDelays are the delays of the retry tiers, one per retry topic.
	// WANOTIFY_DISPATCHER_RETRY_DELAYS.
	RetryDelays []time.Duration
	// DeferDelay is how long a notification the recipient cannot get now
	// (131049, Meta's per-user marketing cap) waits on
	// notifications.deferred; its attempt is not counted.
	// WANOTIFY_DISPATCHER_DEFER_DELAY.
	DeferDelay time.Duration
	// DeferMax is how often one notification is deferred before it is
	// dead-lettered; 0 turns long deferral off (the last retry tier
	// instead). WANOTIFY_DISPATCHER_DEFER_MAX.
	DeferMax int
	// DedupeWindow is how long an idempotency key is remembered.
	DedupeWindow time.Duration
	// DedupeSweepInterval is how often keys past the window are forgotten.
	DedupeSweepInterval time.Duration
	// OutcomeUnknownPolicy is PolicyVerify, PolicyReport or PolicyResend.
	OutcomeUnknownPolicy string
	// Unknown is what PolicyVerify checks and resends.
	Unknown unknown.Policy
	// Breaker configures the circuit breaker per provider and sender.
	Breaker BreakerConfig
	// MarkerTimeout bounds one attempt to write a dedupe marker.
	MarkerTimeout time.Duration
	// DrainTimeout bounds how long shutdown waits for provider calls in
	// flight before the final commit.
	DrainTimeout time.Duration
	// HaltProbeInterval is how often a sender halted by an account fault
	// gets one probe notification (package halt).
	// WANOTIFY_DISPATCHER_HALT_PROBE_INTERVAL.
	HaltProbeInterval time.Duration
	// Logger: default discard.
	Logger *slog.Logger
}

// BreakerConfig configures the circuit breakers.
type BreakerConfig struct {
	// ConsecutiveFailures trips the breaker. WANOTIFY_DISPATCHER_BREAKER_CONSECUTIVE_FAILURES.
	ConsecutiveFailures int
	// FailureRatio trips the breaker once MinRequests were counted in the
	// current interval. WANOTIFY_DISPATCHER_BREAKER_FAILURE_RATIO.
	FailureRatio float64
	MinRequests  int
	// Interval resets the counts while closed. WANOTIFY_DISPATCHER_BREAKER_INTERVAL.
	Interval time.Duration
	// OpenTimeout is how long the breaker stays open before probing.
	// WANOTIFY_DISPATCHER_BREAKER_OPEN_TIMEOUT.
	OpenTimeout time.Duration
	// HalfOpenRequests is how many probes run at once when half-open.
	HalfOpenRequests int
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "local"
	}
	return Config{
		Group:                "wanotify-dispatcher",
		TransactionalID:      "wanotify-dispatcher-" + host,
		Concurrency:          512,
		MaxBuffered:          10000,
		MaxBulkBuffered:      5000,
		BulkReaders:          2,
		Weights:              sched.Weights{Lanes: [sched.Lanes]float64{0, 4, 1}},
		FlushInterval:        100 * time.Millisecond,
		FetchMaxWait:         500 * time.Millisecond,
		FetchPartitionBytes:  256 << 10,
		SessionTimeout:       45 * time.Second,
		RebalanceTimeout:     60 * time.Second,
		TransactionTimeout:   60 * time.Second,
		Limits:               ratelimit.Limits{Rate: 45, Burst: 5},
		Senders:              senders.Local(),
		PairRate:             pairrate.DefaultConfig(),
		RetryDelays:          []time.Duration{5 * time.Second, 15 * time.Second, 45 * time.Second},
		DeferDelay:           24 * time.Hour,
		DeferMax:             3,
		DedupeWindow:         24 * time.Hour,
		DedupeSweepInterval:  time.Minute,
		OutcomeUnknownPolicy: PolicyVerify,
		Unknown:              unknown.Policy{Window: unknown.DefaultWindow, ResendEventTypes: unknown.DefaultResendEventTypes},
		Breaker: BreakerConfig{
			ConsecutiveFailures: 10,
			FailureRatio:        0.6,
			MinRequests:         20,
			Interval:            10 * time.Second,
			OpenTimeout:         10 * time.Second,
			HalfOpenRequests:    1,
		},
		MarkerTimeout: 10 * time.Second,
		DrainTimeout:  20 * time.Second,

		HaltProbeInterval: halt.DefaultProbeInterval,
	}
}

// Load reads the WANOTIFY_DISPATCHER_* variables over DefaultConfig.
func Load(e *config.Env) Config {
	c := DefaultConfig()
	c.Group = e.String("WANOTIFY_DISPATCHER_GROUP", c.Group, "consumer group of the dispatchers")
	c.TransactionalID = e.String("WANOTIFY_DISPATCHER_TRANSACTIONAL_ID", c.TransactionalID,
		"Kafka transactional id; unique per instance and stable across its restarts (default uses the host name)")
	c.Concurrency = e.Int("WANOTIFY_DISPATCHER_CONCURRENCY", c.Concurrency, "provider calls in flight at most")
	c.MaxBuffered = e.Int("WANOTIFY_DISPATCHER_MAX_BUFFERED", c.MaxBuffered, "records taken from Kafka and not yet finished before fetching pauses")
	c.MaxBulkBuffered = e.Int("WANOTIFY_DISPATCHER_MAX_BULK_BUFFERED", c.MaxBulkBuffered,
		"bulk-lane records taken from Kafka and not yet finished before notifications.bulk pauses (its backlog stays in Kafka)")
	c.BulkReaders = e.Int("WANOTIFY_DISPATCHER_BULK_READERS", c.BulkReaders,
		"notifications.bulk partitions with a backlog read at once (each fetch of one brings at least a whole producer batch)")
	lw := e.List("WANOTIFY_DISPATCHER_LANE_WEIGHTS", []string{fmt.Sprintf("transactional=%g", c.Weights.Lanes[1]), fmt.Sprintf("bulk=%g", c.Weights.Lanes[2])},
		"how the transactional and bulk lanes share what the critical lane leaves of a sender's rate (lane=weight; bulk is never starved)")
	if ws, err := parseWeights(lw); err != nil {
		e.Fail("WANOTIFY_DISPATCHER_LANE_WEIGHTS", "%v", err)
	} else {
		for name, w := range ws {
			switch name {
			case "transactional":
				c.Weights.Lanes[1] = w
			case "bulk":
				c.Weights.Lanes[2] = w
			default:
				e.Fail("WANOTIFY_DISPATCHER_LANE_WEIGHTS", "lane %q: want transactional or bulk (critical always goes first)", name)
			}
		}
	}
	tw := e.List("WANOTIFY_DISPATCHER_TENANT_WEIGHTS", nil,
		"how tenants share a lane of a sender (tenant=weight, weighted fair queuing; a tenant not listed: 1)")
	if ws, err := parseWeights(tw); err != nil {
		e.Fail("WANOTIFY_DISPATCHER_TENANT_WEIGHTS", "%v", err)
	} else if len(ws) > 0 {
		c.Weights.Tenants = ws
	}
	c.FlushInterval = e.Duration("WANOTIFY_DISPATCHER_FLUSH_INTERVAL", c.FlushInterval, "how often outputs and offsets are committed in one transaction")
	c.FetchMaxWait = e.Duration("WANOTIFY_DISPATCHER_FETCH_MAX_WAIT", c.FetchMaxWait, "longest wait of one fetch for new records")
	c.FetchPartitionBytes = e.Int("WANOTIFY_DISPATCHER_FETCH_PARTITION_BYTES", c.FetchPartitionBytes,
		"bytes one fetch asks of each partition (bounds the memory of reading a backlog; a larger producer batch is still read, one partition a fetch)")
	c.SessionTimeout = e.Duration("WANOTIFY_DISPATCHER_SESSION_TIMEOUT", c.SessionTimeout, "consumer group session timeout")
	c.RebalanceTimeout = e.Duration("WANOTIFY_DISPATCHER_REBALANCE_TIMEOUT", c.RebalanceTimeout, "consumer group rebalance timeout")
	c.TransactionTimeout = e.Duration("WANOTIFY_DISPATCHER_TRANSACTION_TIMEOUT", c.TransactionTimeout, "how long the broker keeps an abandoned transaction open")
	c.Limits.Rate = e.Float("WANOTIFY_DISPATCHER_RATE", c.Limits.Rate, "messages/s per sender account across all dispatcher instances (keep below the provider's limit)")
	c.Limits.Burst = e.Int("WANOTIFY_DISPATCHER_RATE_BURST", c.Limits.Burst, "token bucket size per sender across all instances")
	// Per-sender rates moved into the sender registry. A value left here
	// is refused rather than ignored, so an upgrade never silently loses
	// a sender's lower rate.
	if rates := e.String("WANOTIFY_DISPATCHER_SENDER_RATES", "", "removed: set each sender's rate in the sender registry (WANOTIFY_SENDERS_FILE); a value here is refused"); strings.TrimSpace(rates) != "" {
		e.Fail("WANOTIFY_DISPATCHER_SENDER_RATES", "per-sender rates are now the rate of each sender in the sender registry (%s); move %q there", senders.EnvFile, rates)
	}
	c.Senders = senders.Load(e)
	c.PairRate = pairrate.Load(e)
	delays := e.List("WANOTIFY_DISPATCHER_RETRY_DELAYS", durations(c.RetryDelays), "delays of the retry tiers (one per retry topic)")
	if ds, err := parseDurations(delays); err != nil {
		e.Fail("WANOTIFY_DISPATCHER_RETRY_DELAYS", "%v", err)
	} else {
		c.RetryDelays = ds
	}
	c.DeferDelay = e.Duration("WANOTIFY_DISPATCHER_DEFER_DELAY", c.DeferDelay,
		"how long a notification the recipient cannot get now (131049, marketing cap) waits on notifications.deferred; not counted as an attempt")
	c.DeferMax = e.Int("WANOTIFY_DISPATCHER_DEFER_MAX", c.DeferMax, "how often one notification is deferred before it is dead-lettered; 0: no long deferral (the last retry tier instead)")
	c.DedupeWindow = e.Duration("WANOTIFY_DISPATCHER_DEDUPE_WINDOW", c.DedupeWindow, "how long an idempotency key is remembered")
	c.DedupeSweepInterval = e.Duration("WANOTIFY_DISPATCHER_DEDUPE_SWEEP_INTERVAL", c.DedupeSweepInterval, "how often keys past the window are forgotten")
	c.OutcomeUnknownPolicy = e.String("WANOTIFY_DISPATCHER_OUTCOME_UNKNOWN_POLICY", c.OutcomeUnknownPolicy,
		"after a crash during a provider call: verify (a webhook settles it; without one the event types of _OUTCOME_UNKNOWN_RESEND are resent), report (status outcome_unknown, no resend) or resend")
	c.Unknown.Window = e.Duration("WANOTIFY_DISPATCHER_OUTCOME_UNKNOWN_WINDOW", c.Unknown.Window,
		"policy verify: how long to wait for a status webhook before resending (longer than the last retry tier's delay holds up that tier)")
	c.Unknown.ResendEventTypes = e.List("WANOTIFY_DISPATCHER_OUTCOME_UNKNOWN_RESEND", c.Unknown.ResendEventTypes,
		"policy verify: event type patterns (path.Match) resent when no webhook came within the window and their expiry is still ahead; empty: none")
	b := &c.Breaker
	b.ConsecutiveFailures = e.Int("WANOTIFY_DISPATCHER_BREAKER_CONSECUTIVE_FAILURES", b.ConsecutiveFailures, "consecutive provider failures that open the breaker")
	b.FailureRatio = e.Float("WANOTIFY_DISPATCHER_BREAKER_FAILURE_RATIO", b.FailureRatio, "failure ratio that opens the breaker (with at least the minimum requests)")
	b.MinRequests = e.Int("WANOTIFY_DISPATCHER_BREAKER_MIN_REQUESTS", b.MinRequests, "requests counted before the failure ratio applies")
	b.Interval = e.Duration("WANOTIFY_DISPATCHER_BREAKER_INTERVAL", b.Interval, "period after which a closed breaker resets its counts")
	b.OpenTimeout = e.Duration("WANOTIFY_DISPATCHER_BREAKER_OPEN_TIMEOUT", b.OpenTimeout, "how long an open breaker waits before a probe")
	b.HalfOpenRequests = e.Int("WANOTIFY_DISPATCHER_BREAKER_HALF_OPEN_REQUESTS", b.HalfOpenRequests, "probes allowed at once while half-open")
	c.DrainTimeout = e.Duration("WANOTIFY_DISPATCHER_DRAIN_TIMEOUT", c.DrainTimeout, "how long shutdown waits for provider calls in flight")
	c.HaltProbeInterval = e.Duration("WANOTIFY_DISPATCHER_HALT_PROBE_INTERVAL", c.HaltProbeInterval,
		"how often a sender halted by an account fault gets one probe notification (notifyctl sender resume releases it at once)")
	return c
}

func durations(ds []time.Duration) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}

// parseWeights reads name=weight pairs; weights are positive numbers.
func parseWeights(ss []string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, s := range ss {
		name, v, ok := strings.Cut(strings.TrimSpace(s), "=")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("%q: want name=weight", s)
		}
		w, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || !(w > 0) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("%q: the weight must be a positive number", s)
		}
		out[strings.TrimSpace(name)] = w
	}
	return out, nil
}

func parseDurations(ss []string) ([]time.Duration, error) {
	out := make([]time.Duration, 0, len(ss))
	for _, s := range ss {
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration", s)
		}
		out = append(out, d)
	}
	return out, nil
}

// Validate names every bad field by its environment variable.
func (c Config) Validate() error {
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", env, fmt.Sprintf(format, args...)))
	}
	if c.Group == "" {
		bad("WANOTIFY_DISPATCHER_GROUP", "is required")
	}
	if c.TransactionalID == "" {
		bad("WANOTIFY_DISPATCHER_TRANSACTIONAL_ID", "is required")
	}
	if c.Concurrency < 1 {
		bad("WANOTIFY_DISPATCHER_CONCURRENCY", "%d must be at least 1", c.Concurrency)
	}
	if c.MaxBulkBuffered < 1 {
		bad("WANOTIFY_DISPATCHER_MAX_BULK_BUFFERED", "%d must be at least 1", c.MaxBulkBuffered)
	}
	if c.BulkReaders < 1 {
		bad("WANOTIFY_DISPATCHER_BULK_READERS", "%d must be at least 1", c.BulkReaders)
	}
	if c.MaxBuffered < 1 {
		bad("WANOTIFY_DISPATCHER_MAX_BUFFERED", "%d must be at least 1", c.MaxBuffered)
	}
	if c.FlushInterval <= 0 {
		bad("WANOTIFY_DISPATCHER_FLUSH_INTERVAL", "must be positive")
	}
	if c.FetchPartitionBytes < 1<<10 || c.FetchPartitionBytes > 1<<30 {
		bad("WANOTIFY_DISPATCHER_FETCH_PARTITION_BYTES", "%d must be between 1024 and 1073741824", c.FetchPartitionBytes)
	}
	if c.FetchMaxWait <= 0 {
		bad("WANOTIFY_DISPATCHER_FETCH_MAX_WAIT", "must be positive")
	}
	if c.SessionTimeout <= 0 || c.RebalanceTimeout <= 0 {
		bad("WANOTIFY_DISPATCHER_SESSION_TIMEOUT", "session and rebalance timeouts must be positive")
	}
	if c.TransactionTimeout < time.Second {
		bad("WANOTIFY_DISPATCHER_TRANSACTION_TIMEOUT", "must be at least 1s")
	}
	if err := c.Limits.Validate(); err != nil {
		bad("WANOTIFY_DISPATCHER_RATE / _RATE_BURST", "%v", err)
	}
	if c.Senders == nil {
		bad(senders.EnvFile, "no sender registry")
	}
	if err := c.PairRate.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(c.RetryDelays) != len(topics.RetryTiers) {
		bad("WANOTIFY_DISPATCHER_RETRY_DELAYS", "want %d delays (one per retry topic), got %d", len(topics.RetryTiers), len(c.RetryDelays))
	}
	for i, d := range c.RetryDelays {
		if d <= 0 {
			bad("WANOTIFY_DISPATCHER_RETRY_DELAYS", "delay %d (%s) must be positive", i+1, d)
		}
	}
	if c.DeferDelay <= 0 {
		bad("WANOTIFY_DISPATCHER_DEFER_DELAY", "must be positive")
	}
	if c.DeferMax < 0 || c.DeferMax > 100 {
		bad("WANOTIFY_DISPATCHER_DEFER_MAX", "%d must be between 0 and 100", c.DeferMax)
	}
	if c.DedupeWindow <= 0 {
		bad("WANOTIFY_DISPATCHER_DEDUPE_WINDOW", "must be positive")
	}
	if c.DedupeSweepInterval <= 0 {
		bad("WANOTIFY_DISPATCHER_DEDUPE_SWEEP_INTERVAL", "must be positive")
	}
	switch c.OutcomeUnknownPolicy {
	case PolicyVerify, PolicyReport, PolicyResend:
	default:
		bad("WANOTIFY_DISPATCHER_OUTCOME_UNKNOWN_POLICY", "%q must be %q, %q or %q", c.OutcomeUnknownPolicy, PolicyVerify, PolicyReport, PolicyResend)
	}
	if c.OutcomeUnknownPolicy == PolicyVerify {
		if err := c.Unknown.Validate(); err != nil {
			bad("WANOTIFY_DISPATCHER_OUTCOME_UNKNOWN_WINDOW / _OUTCOME_UNKNOWN_RESEND", "%v", err)
		}
	}
	b := c.Breaker
	if b.ConsecutiveFailures < 1 {
		bad("WANOTIFY_DISPATCHER_BREAKER_CONSECUTIVE_FAILURES", "must be at least 1")
	}
	if !(b.FailureRatio > 0 && b.FailureRatio <= 1) {
		bad("WANOTIFY_DISPATCHER_BREAKER_FAILURE_RATIO", "%v must be in (0, 1]", b.FailureRatio)
	}
	if b.MinRequests < 1 {
		bad("WANOTIFY_DISPATCHER_BREAKER_MIN_REQUESTS", "must be at least 1")
	}
	if b.Interval <= 0 {
		bad("WANOTIFY_DISPATCHER_BREAKER_INTERVAL", "must be positive")
	}
	if b.OpenTimeout <= 0 {
		bad("WANOTIFY_DISPATCHER_BREAKER_OPEN_TIMEOUT", "must be positive")
	}
	if b.HalfOpenRequests < 1 {
		bad("WANOTIFY_DISPATCHER_BREAKER_HALF_OPEN_REQUESTS", "must be at least 1")
	}
	if c.MarkerTimeout <= 0 {
		bad("MarkerTimeout", "must be positive")
	}
	if c.DrainTimeout <= 0 {
		bad("WANOTIFY_DISPATCHER_DRAIN_TIMEOUT", "must be positive")
	}
	if c.HaltProbeInterval <= 0 {
		bad("WANOTIFY_DISPATCHER_HALT_PROBE_INTERVAL", "must be positive")
	}
	return errors.Join(errs...)
}

// Provider kinds.
const (
	ProviderXpressbot = "xpressbot"
	ProviderCloudAPI  = "cloudapi"
)

// ProviderConfig selects and configures the provider client.
type ProviderConfig struct {
	// Kind is ProviderXpressbot (default) or ProviderCloudAPI. WANOTIFY_PROVIDER.
	Kind      string
	Xpressbot xpressbot.Options
	CloudAPI  cloudapi.Options
	// ErrorClasses overrides classes of the provider error table
	// ("131048=throttled,131049=deferred"). WANOTIFY_PROVIDER_ERROR_CLASSES.
	ErrorClasses string
}

// LoadProvider reads WANOTIFY_PROVIDER and the chosen client's variables.
func LoadProvider(e *config.Env) ProviderConfig {
	c := ProviderConfig{Kind: e.String("WANOTIFY_PROVIDER", ProviderXpressbot, "provider client of senders that name none in the sender registry: xpressbot or cloudapi")}
	// Both are read: a sender of the registry may name either provider.
	c.Xpressbot = xpressbot.Load(e)
	c.ErrorClasses = e.String("WANOTIFY_PROVIDER_ERROR_CLASSES", "",
		"overrides of the provider error table: code=class,… (classes: retryable, throttled, permanent, account_fault, deferred; see docs/provider-errors.md)")
	c.CloudAPI = cloudapi.Load(e)
	return c
}

// SizePool sizes the provider client's keep-alive pool to calls calls in
// flight unless it was configured: a smaller pool would dial and drop a
// connection for every call above it.
func (c *ProviderConfig) SizePool(calls int) {
	if c.Xpressbot.MaxIdleConns == 0 {
		c.Xpressbot.MaxIdleConns = calls
	}
	if c.CloudAPI.MaxIdleConns == 0 {
		c.CloudAPI.MaxIdleConns = calls
	}
}

// Validate checks the chosen client's options (the route of senders
// that give no credentials of their own; NewRouter checks every route)
// and the error-class overrides.
func (c ProviderConfig) Validate() error {
	var err error
	if _, perr := provider.ParseOverrides(c.ErrorClasses); perr != nil {
		err = fmt.Errorf("WANOTIFY_PROVIDER_ERROR_CLASSES: %w", perr)
	}
	switch c.Kind {
	case ProviderXpressbot:
		return errors.Join(c.Xpressbot.Validate(), err)
	case ProviderCloudAPI:
		return errors.Join(c.CloudAPI.Validate(), err)
	}
	return errors.Join(fmt.Errorf("WANOTIFY_PROVIDER: %q must be %q or %q", c.Kind, ProviderXpressbot, ProviderCloudAPI), err)
}

// New builds the provider client; close releases its connections.
func (c ProviderConfig) New(log *slog.Logger) (p provider.Provider, closeFn func(), err error) {
	// The error table is process-wide: its overrides apply to whichever
	// client is built.
	over, err := provider.ParseOverrides(c.ErrorClasses)
	if err != nil {
		return nil, nil, fmt.Errorf("WANOTIFY_PROVIDER_ERROR_CLASSES: %w", err)
	}
	provider.SetOverrides(over)
	switch c.Kind {
	case ProviderXpressbot:
		o := c.Xpressbot
		o.Logger = log
		cl, err := xpressbot.New(o)
		if err != nil {
			return nil, nil, err
		}
		return cl, cl.Close, nil
	case ProviderCloudAPI:
		o := c.CloudAPI
		o.Logger = log
		cl, err := cloudapi.New(o)
		if err != nil {
			return nil, nil, err
		}
		return cl, cl.Close, nil
	}
	return nil, nil, c.Validate()
}

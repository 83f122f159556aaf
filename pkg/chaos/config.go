package chaos

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Config is one scenario. Start from Full or Short and override fields.
type Config struct {
	// N is how many notifications are published (each until Kafka
	// acknowledges it).
	N int
	// Duration spreads the publishing, and with it the faults, over this
	// long.
	Duration time.Duration
	// Seed drives every random choice: the workload, the fault schedule
	// and the simulator's injected failures.
	Seed uint64
	// Senders and Recipients size the workload. Each sender is one
	// provider rate-limit bucket (50/s in the simulator, 45/s in the
	// dispatchers), so Senders bounds the throughput.
	Senders    int
	Recipients int
	// Dispatchers is the number of dispatcher processes.
	Dispatchers int

	// RetryableRate and PermanentRate are the simulator's randomly injected
	// provider errors (503 and Meta permanent codes).
	RetryableRate float64
	PermanentRate float64
	// Fractions of N whose outcome is decided up front, so the checks can
	// name the one expected terminal state: ExhaustRate carry a directive
	// that fails every attempt with 503 (dead-lettered after the last
	// retry tier), RejectRate one that fails with Meta 131026 (failed,
	// never retried), SkewedExpiryRate expire two seconds before they are
	// published, inside the SDK's allowed clock skew (expired, never
	// sent), and DuplicateRate are published twice with the same
	// idempotency key (one send, one suppressed duplicate).
	ExhaustRate      float64
	RejectRate       float64
	SkewedExpiryRate float64
	DuplicateRate    float64
	// Poison garbage records go to notifications.requested and
	// RetryPoison records with malformed failure headers to the first
	// retry topic.
	Poison      int
	RetryPoison int

	// KillEvery is the pause between two SIGKILLs of a random dispatcher;
	// KillDowntime how long the killed one stays down.
	KillEvery    time.Duration
	KillDowntime time.Duration
	// Outage is how long the provider answers every send with 503.
	Outage time.Duration
	// AccountFault is how long one sender's access token is revoked
	// (Meta 190), from half-way through the run: the dispatchers halt
	// that sender and hold its records on notifications.held, then probe
	// it every HaltProbe and send them once it works again.
	AccountFault time.Duration
	HaltProbe    time.Duration
	// ClickHouseDown and BrokerDown are how long ClickHouse and the broker
	// stay dead after their SIGKILL.
	ClickHouseDown time.Duration
	BrokerDown     time.Duration

	// RetryDelays are the dispatchers' retry tiers
	// (WANOTIFY_DISPATCHER_RETRY_DELAYS).
	RetryDelays []time.Duration
	// UnknownWindow is how long the dispatchers wait for a status webhook
	// before they resend a notification whose call a kill interrupted
	// (WANOTIFY_DISPATCHER_OUTCOME_UNKNOWN_WINDOW; the scenario's
	// notifications are all resendable, so every interrupted call is
	// resolved one way or the other).
	UnknownWindow time.Duration
	// BreakerOpenTimeout is how long an open breaker waits before probing
	// (WANOTIFY_DISPATCHER_BREAKER_OPEN_TIMEOUT).
	BreakerOpenTimeout time.Duration
	// SessionTimeout of the dispatchers' group membership: how long a
	// killed dispatcher's partitions wait for the group to notice.
	SessionTimeout time.Duration
	// SettleTimeout bounds the wait, after the last fault, for every
	// notification to reach its terminal state and every webhook to land.
	SettleTimeout time.Duration

	// Launcher starts the processes (BinDir for the built binaries).
	Launcher Launcher
	// WorkDir holds the data directories and the process logs; it must
	// exist and be empty or new.
	WorkDir string
	// ClickHouseLib is libchdb.so (scripts/fetch-clickhouse.sh prints it).
	ClickHouseLib string
	// Kafka is the broker the stack runs on and kills: "kfake" (the
	// default; the in-process broker of services/broker), "apache"
	// (Apache Kafka, a JVM owned by services/broker, recovering from its
	// SIGKILL with its own log recovery and transaction coordinator) or
	// "apache-cluster" (three Apache Kafka nodes with production's
	// replication: the node leading the most partitions of
	// notifications.requested and __transaction_state is the one killed).
	Kafka string
	// KafkaLibs is Apache Kafka's class path (scripts/fetch-kafka.sh
	// prints it); required with Kafka "apache" and "apache-cluster".
	KafkaLibs string
	// TopicsFile is the repository's topics.yaml.
	TopicsFile string
	// Out receives progress lines and the report (default io.Discard).
	Out io.Writer
}

// Brokers of Config.Kafka.
const (
	KafkaKfake         = "kfake"
	KafkaApache        = "apache"
	KafkaApacheCluster = "apache-cluster"
)

// clusterSize is the node count of KafkaApacheCluster: production's
// replication factor.
const clusterSize = 3

// Full is the `make chaos` scenario: 50,000 notifications over four
// minutes with the production retry delays (5 s, 15 s, 45 s) and a 30 s
// provider outage.
func Full() Config {
	return Config{
		N:                  50000,
		Duration:           4 * time.Minute,
		Seed:               1,
		Senders:            20,
		Recipients:         20000,
		Dispatchers:        3,
		RetryableRate:      0.03,
		PermanentRate:      0.01,
		ExhaustRate:        0.004,
		RejectRate:         0.004,
		SkewedExpiryRate:   0.002,
		DuplicateRate:      0.01,
		Poison:             8,
		RetryPoison:        2,
		KillEvery:          10 * time.Second,
		KillDowntime:       2 * time.Second,
		Outage:             30 * time.Second,
		AccountFault:       30 * time.Second,
		HaltProbe:          10 * time.Second,
		ClickHouseDown:     10 * time.Second,
		BrokerDown:         5 * time.Second,
		RetryDelays:        []time.Duration{5 * time.Second, 15 * time.Second, 45 * time.Second},
		UnknownWindow:      30 * time.Second,
		BreakerOpenTimeout: 10 * time.Second,
		SessionTimeout:     6 * time.Second,
		SettleTimeout:      10 * time.Minute,
	}
}

// Short is the version `make test` runs: 5,000 notifications in about a
// minute, retry delays of 0.5 s, 1 s and 2 s and a 5 s outage, with every
// fault of the full scenario.
func Short() Config {
	c := Full()
	c.N = 5000
	c.Duration = 50 * time.Second
	c.Senders = 10
	c.Recipients = 3000
	c.Poison = 6
	c.KillEvery = 7 * time.Second
	c.KillDowntime = time.Second
	c.Outage = 5 * time.Second
	c.AccountFault = 8 * time.Second
	c.HaltProbe = 2 * time.Second
	c.ClickHouseDown = 3 * time.Second
	c.BrokerDown = 2 * time.Second
	c.RetryDelays = []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}
	c.BreakerOpenTimeout = 2 * time.Second
	c.UnknownWindow = 15 * time.Second
	c.SettleTimeout = 2 * time.Minute
	return c
}

// Validate names every bad field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("chaos.Config.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.N < 1 {
		bad("N", "%d must be at least 1", c.N)
	}
	if c.Duration < 10*time.Second {
		bad("Duration", "%s must be at least 10s (the faults need room)", c.Duration)
	}
	if c.Senders < 1 || c.Recipients < 1 {
		bad("Senders/Recipients", "must be at least 1")
	}
	if c.Recipients > 9_999_999 {
		bad("Recipients", "%d is more than the numbering plan holds", c.Recipients)
	}
	if c.Dispatchers < 1 {
		bad("Dispatchers", "%d must be at least 1", c.Dispatchers)
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"RetryableRate", c.RetryableRate}, {"PermanentRate", c.PermanentRate}, {"ExhaustRate", c.ExhaustRate},
		{"RejectRate", c.RejectRate}, {"SkewedExpiryRate", c.SkewedExpiryRate}, {"DuplicateRate", c.DuplicateRate}} {
		if !(p.v >= 0 && p.v <= 1) {
			bad(p.name, "%v is not a probability", p.v)
		}
	}
	if c.RetryableRate+c.PermanentRate > 1 {
		bad("RetryableRate+PermanentRate", "must not exceed 1")
	}
	if c.ExhaustRate+c.RejectRate+c.SkewedExpiryRate+c.DuplicateRate > 1 {
		bad("ExhaustRate+RejectRate+SkewedExpiryRate+DuplicateRate", "must not exceed 1")
	}
	if c.Poison < 0 || c.RetryPoison < 0 {
		bad("Poison/RetryPoison", "must not be negative")
	}
	if c.KillEvery < 0 || c.KillDowntime < 0 || c.Outage < 0 || c.AccountFault < 0 || c.ClickHouseDown < 0 || c.BrokerDown < 0 {
		bad("KillEvery/KillDowntime/Outage/AccountFault/ClickHouseDown/BrokerDown", "must not be negative (0 turns the fault off)")
	}
	if c.HaltProbe <= 0 {
		bad("HaltProbe", "must be positive")
	}
	if len(c.RetryDelays) != 3 {
		bad("RetryDelays", "want 3 delays (one per retry topic), got %d", len(c.RetryDelays))
	}
	for _, d := range c.RetryDelays {
		if d <= 0 {
			bad("RetryDelays", "%s must be positive", d)
		}
	}
	if c.BreakerOpenTimeout <= 0 || c.SessionTimeout <= 0 || c.SettleTimeout <= 0 || c.UnknownWindow <= 0 {
		bad("BreakerOpenTimeout/SessionTimeout/SettleTimeout/UnknownWindow", "must be positive")
	}
	if c.Launcher == nil {
		bad("Launcher", "is required")
	}
	if c.WorkDir == "" {
		bad("WorkDir", "is required")
	}
	if c.ClickHouseLib == "" {
		bad("ClickHouseLib", "is required (scripts/fetch-clickhouse.sh | tail -n1)")
	}
	if c.TopicsFile == "" {
		bad("TopicsFile", "is required")
	}
	switch c.Kafka {
	case "", KafkaKfake:
	case KafkaApache, KafkaApacheCluster:
		if c.KafkaLibs == "" {
			bad("KafkaLibs", "is required with Kafka %q (scripts/fetch-kafka.sh | tail -n1)", c.Kafka)
		}
	default:
		bad("Kafka", "%q is none of %q, %q, %q", c.Kafka, KafkaKfake, KafkaApache, KafkaApacheCluster)
	}
	return errors.Join(errs...)
}

func durationList(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.String()
	}
	return strings.Join(s, ",")
}

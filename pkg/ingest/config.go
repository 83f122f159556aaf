package ingest

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/wanotify/wanotify/pkg/chconf"
	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/kafkaconf"
	"github.com/wanotify/wanotify/pkg/phone"
	"github.com/wanotify/wanotify/pkg/sdk"
	"github.com/wanotify/wanotify/pkg/secretcheck"
	"github.com/wanotify/wanotify/pkg/senders"
)

// loadSenders reads the sender registry. The single default sender of
// every tenant is gone: each tenant's default is in the registry, and a
// value left in the old variable is refused rather than ignored.
func loadSenders(e *config.Env) *senders.Registry {
	if v := e.String("WANOTIFY_INGEST_DEFAULT_SENDER", "", "removed: each tenant's default sender is its default_sender in the sender registry (WANOTIFY_SENDERS_FILE); a value here is refused"); v != "" {
		e.Fail("WANOTIFY_INGEST_DEFAULT_SENDER", "each tenant's default sender is now its default_sender in the sender registry (%s); move %q there", senders.EnvFile, v)
	}
	return senders.Load(e)
}

// DevAPIKey is the well-known key of tenant "demo" that the default
// configuration accepts, so `make run` works out of the box. It is for
// local use only: the service refuses to start with it on an address that
// is not loopback.
const DevAPIKey = "dev-key-demo"

// devKeyEntry is DevAPIKey's WANOTIFY_INGEST_API_KEYS entry:
// printf %s dev-key-demo | sha256sum.
const devKeyEntry = "demo:85402ea0a0f53339c2b8e1fcde2ce5d7e129b472fa9fbd7c3700d878a53573ec"

// DefaultAdminAddr is where ingest serves /healthz, /readyz and /metrics
// unless WANOTIFY_ADMIN_ADDR says otherwise: loopback, a port of its own
// next to the dispatcher's (9464) and the sink's (9465).
const DefaultAdminAddr = "127.0.0.1:9466"

// MaxBatchItems is the most notifications one batch request may carry.
const MaxBatchItems = 1000

// Config is the ingest service's configuration.
type Config struct {
	// Addr is the listen address of the API. /healthz, /readyz and
	// /metrics are served on the admin listener instead
	// (WANOTIFY_ADMIN_ADDR, default DefaultAdminAddr).
	Addr string
	// APIKeys are "tenant:sha256hex" entries; a tenant may have several
	// (key rotation). Only hashes are configured, never keys.
	APIKeys []string
	// MaxBody and MaxBatchBody bound request bodies in bytes (413 above).
	MaxBody      int64
	MaxBatchBody int64
	// ProduceTimeout bounds the wait for Kafka's acknowledgement; past it
	// the caller gets 503 and Retry-After.
	ProduceTimeout time.Duration
	// RetryAfter is the Retry-After given with 503 answers.
	RetryAfter time.Duration
	// Senders is the sender registry: which senders each tenant owns, its
	// default sender (for requests that name none), the templates it may
	// send and whether it may send free text (WANOTIFY_SENDERS_FILE /
	// WANOTIFY_SENDERS; default the built-in local registry).
	Senders *senders.Registry
	// DefaultSourceService is the source service of requests that name none.
	DefaultSourceService string
	// ClockSkew is how far in the past expires_at may lie and still be
	// accepted (the notification is then recorded as expired).
	ClockSkew time.Duration
	// IdempotencyMemory is how many recently accepted notifications this
	// instance remembers the fingerprint of, to answer 422 to a key
	// reused for another message (0: none; the dispatcher still records
	// such a reuse).
	IdempotencyMemory int
	// PhoneValidation is the recipient rule: "valid" (the number must be
	// in use in its region) or "possible" (of a possible length only).
	PhoneValidation string
	// Linger is the producer's linger. Every request waits for its own
	// records, so the default is 0: records go out at once, and batching
	// happens by itself while a produce request is in flight.
	Linger time.Duration
	// Kafka is how the producer reaches the brokers.
	Kafka kafkaconf.Config
	// StatusReads serves GET /v1/notifications/{id} from the ClickHouse
	// communication logs (ClickHouse); off, the route answers 501.
	StatusReads bool
	ClickHouse  chconf.Config
}

// Load reads the WANOTIFY_INGEST_* and WANOTIFY_KAFKA_* variables.
func Load(e *config.Env) Config {
	return Config{
		Addr: e.String("WANOTIFY_INGEST_ADDR", "127.0.0.1:8080", "listen address of the ingest API (/healthz, /readyz and /metrics are on WANOTIFY_ADMIN_ADDR)"),
		APIKeys: e.List("WANOTIFY_INGEST_API_KEYS", []string{devKeyEntry},
			"API keys as tenant:sha256hex entries, comma-separated (hash a key with: printf %s \"$KEY\" | sha256sum); the default accepts the local-only key \"dev-key-demo\" for tenant demo"),
		MaxBody:              int64(e.Int("WANOTIFY_INGEST_MAX_BODY", 64<<10, "largest body of POST /v1/notifications in bytes (413 above)")),
		MaxBatchBody:         int64(e.Int("WANOTIFY_INGEST_MAX_BATCH_BODY", 2<<20, "largest body of POST /v1/notifications/batch in bytes (413 above)")),
		ProduceTimeout:       e.Duration("WANOTIFY_INGEST_PRODUCE_TIMEOUT", 5*time.Second, "how long a request waits for Kafka to acknowledge its record before answering 503"),
		RetryAfter:           e.Duration("WANOTIFY_INGEST_RETRY_AFTER", 2*time.Second, "Retry-After sent with 503 answers (whole seconds)"),
		Senders:              loadSenders(e),
		DefaultSourceService: e.String("WANOTIFY_INGEST_DEFAULT_SOURCE_SERVICE", "api", "source service of requests that name none"),
		ClockSkew:            e.Duration("WANOTIFY_INGEST_CLOCK_SKEW", sdk.DefaultClockSkew, "how far in the past expires_at may lie and still be accepted (it is then recorded as expired)"),
		IdempotencyMemory:    e.Int("WANOTIFY_INGEST_IDEMPOTENCY_MEMORY", 100000, "how many recently accepted notifications each ingest instance remembers, to answer 422 when an idempotency key is reused for another message (about 150 bytes each; 0 turns it off)"),
		PhoneValidation:      e.String("WANOTIFY_PHONE_VALIDATION", "valid", "recipient check: valid (the number must be in use in its region, libphonenumber's IsValidNumber) or possible (of a possible length only, for numbering plans newer than the library)"),
		Linger:               e.Duration("WANOTIFY_INGEST_PRODUCE_LINGER", 0, "how long the producer waits to fill a batch (requests wait for their records, so 0 is usually best)"),
		Kafka:                kafkaconf.Load(e, "wanotify-ingest"),
		StatusReads:          e.Bool("WANOTIFY_INGEST_STATUS_READS", true, "serve GET /v1/notifications/{id} from the ClickHouse communication logs (WANOTIFY_CLICKHOUSE_*); off: the route answers 501"),
		ClickHouse:           chconf.Load(e),
	}
}

// Validate names every bad field by its variable.
func (c Config) Validate() error {
	var errs []error
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		errs = append(errs, fmt.Errorf("WANOTIFY_INGEST_ADDR: %q is not host:port", c.Addr))
	}
	if keys, err := ParseKeys(c.APIKeys); err != nil {
		errs = append(errs, fmt.Errorf("WANOTIFY_INGEST_API_KEYS: %w", err))
	} else if err := exampleKey(c.APIKeys); err != nil {
		errs = append(errs, err)
	} else if keys.hasDevKey() && !isLoopback(host) {
		errs = append(errs, fmt.Errorf("WANOTIFY_INGEST_API_KEYS: the local development key of tenant demo is configured but WANOTIFY_INGEST_ADDR %q is not a loopback address; configure real keys", c.Addr))
	}
	if c.MaxBody < 1024 {
		errs = append(errs, fmt.Errorf("WANOTIFY_INGEST_MAX_BODY: %d is below 1024 bytes", c.MaxBody))
	}
	if c.MaxBatchBody < c.MaxBody {
		errs = append(errs, fmt.Errorf("WANOTIFY_INGEST_MAX_BATCH_BODY: %d is below WANOTIFY_INGEST_MAX_BODY", c.MaxBatchBody))
	}
	if c.ProduceTimeout <= 0 {
		errs = append(errs, errors.New("WANOTIFY_INGEST_PRODUCE_TIMEOUT: must be positive"))
	}
	if c.RetryAfter < time.Second {
		errs = append(errs, errors.New("WANOTIFY_INGEST_RETRY_AFTER: must be at least 1s"))
	}
	if c.Senders == nil {
		errs = append(errs, fmt.Errorf("%s: no sender registry", senders.EnvFile))
	}
	if c.DefaultSourceService == "" || len(c.DefaultSourceService) > sdk.MaxSourceService {
		errs = append(errs, fmt.Errorf("WANOTIFY_INGEST_DEFAULT_SOURCE_SERVICE: 1 to %d characters", sdk.MaxSourceService))
	}
	if c.ClockSkew < 0 {
		errs = append(errs, errors.New("WANOTIFY_INGEST_CLOCK_SKEW: must not be negative"))
	}
	if c.IdempotencyMemory < 0 {
		errs = append(errs, errors.New("WANOTIFY_INGEST_IDEMPOTENCY_MEMORY: must not be negative"))
	}
	if _, err := phone.ParseRule(c.PhoneValidation); err != nil {
		errs = append(errs, fmt.Errorf("WANOTIFY_PHONE_VALIDATION: %w", err))
	}
	if c.Linger < 0 {
		errs = append(errs, errors.New("WANOTIFY_INGEST_PRODUCE_LINGER: must not be negative"))
	}
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.StatusReads {
		if err := c.ClickHouse.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// exampleKey refuses a key hash published in an example file
// (deploy/compose/example.env): anyone could call the API with it.
func exampleKey(entries []string) error {
	for _, e := range entries {
		_, hash, _ := strings.Cut(strings.TrimSpace(e), ":")
		if secretcheck.IsExample(strings.ToLower(hash)) {
			return errors.New("WANOTIFY_INGEST_API_KEYS: holds the example key's hash from deploy/compose/example.env; configure keys of your own")
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

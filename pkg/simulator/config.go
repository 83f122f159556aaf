package simulator

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wanotify/wanotify/pkg/metawebhook"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/secretcheck"
)

// Environment variables read by ConfigFromEnv. Validate names them.
const (
	EnvAddr     = "WANOTIFY_SIM_ADDR"
	EnvAPIKey   = "WANOTIFY_SIM_API_KEY"
	EnvSendPath = "WANOTIFY_SIM_SEND_PATH"
	EnvWABAID   = "WANOTIFY_SIM_WABA_ID"
	EnvNumbers  = "WANOTIFY_SIM_PHONE_NUMBER_IDS"
	EnvSeed     = "WANOTIFY_SIM_SEED"
	EnvHangFor  = "WANOTIFY_SIM_HANG_FOR"

	EnvAdminToken       = "WANOTIFY_SIM_ADMIN_TOKEN"
	EnvLedgerMaxEntries = "WANOTIFY_SIM_LEDGER_MAX_ENTRIES"

	EnvRateLimit      = "WANOTIFY_SIM_RATE_LIMIT"
	EnvBurst          = "WANOTIFY_SIM_BURST"
	EnvLatency        = "WANOTIFY_SIM_LATENCY"
	EnvRetryableRate  = "WANOTIFY_SIM_FAIL_RETRYABLE"
	EnvPermanentRate  = "WANOTIFY_SIM_FAIL_PERMANENT"
	EnvPermanentCodes = "WANOTIFY_SIM_FAIL_PERMANENT_CODES"
	EnvTimeoutRate    = "WANOTIFY_SIM_FAIL_TIMEOUT"
	EnvTimeoutAccepts = "WANOTIFY_SIM_TIMEOUT_ACCEPTS"
	EnvOutage         = "WANOTIFY_SIM_OUTAGE"
	EnvOutageMode     = "WANOTIFY_SIM_OUTAGE_MODE"

	EnvWebhooks          = "WANOTIFY_SIM_WEBHOOKS"
	EnvSentDelay         = "WANOTIFY_SIM_SENT_DELAY"
	EnvDeliveredDelay    = "WANOTIFY_SIM_DELIVERED_DELAY"
	EnvReadDelay         = "WANOTIFY_SIM_READ_DELAY"
	EnvReadRate          = "WANOTIFY_SIM_READ_RATE"
	EnvAsyncFailRate     = "WANOTIFY_SIM_ASYNC_FAIL_RATE"
	EnvAsyncFailCodes    = "WANOTIFY_SIM_ASYNC_FAIL_CODES"
	EnvOutOfOrderRate    = "WANOTIFY_SIM_OUT_OF_ORDER_RATE"
	EnvSkipDeliveredRate = "WANOTIFY_SIM_SKIP_DELIVERED_RATE"
	EnvDuplicateRate     = "WANOTIFY_SIM_DUPLICATE_RATE"
	EnvIdempotencyKeys   = "WANOTIFY_SIM_IDEMPOTENCY_KEYS"

	EnvWebhookURL             = "WANOTIFY_SIM_WEBHOOK_URL"
	EnvWebhookSecret          = "WANOTIFY_SIM_WEBHOOK_SECRET"
	EnvWebhookSignatureHeader = "WANOTIFY_SIM_WEBHOOK_SIGNATURE_HEADER"
	EnvWebhookWorkers         = "WANOTIFY_SIM_WEBHOOK_WORKERS"
	EnvWebhookQueue           = "WANOTIFY_SIM_WEBHOOK_QUEUE"
	EnvWebhookMaxAttempts     = "WANOTIFY_SIM_WEBHOOK_MAX_ATTEMPTS"
	EnvWebhookBackoff         = "WANOTIFY_SIM_WEBHOOK_BACKOFF"
	EnvWebhookMaxBackoff      = "WANOTIFY_SIM_WEBHOOK_MAX_BACKOFF"
	EnvWebhookTimeout         = "WANOTIFY_SIM_WEBHOOK_TIMEOUT"
)

// Structural defaults: New applies them to zero fields.
const (
	DefaultAddr               = "127.0.0.1:8090"
	DefaultSendPath           = "/api/workspace/v1/messages/send"
	DefaultWABAID             = "sim-waba"
	DefaultHangFor            = 30 * time.Second
	DefaultMaxBodyBytes       = 1 << 20
	DefaultWebhookWorkers     = 8
	DefaultWebhookQueue       = 10000
	DefaultWebhookMaxAttempts = 5
	DefaultWebhookBackoff     = 500 * time.Millisecond
	DefaultWebhookMaxBackoff  = 30 * time.Second
	DefaultWebhookTimeout     = 5 * time.Second
	DefaultLedgerMaxEntries   = 100000
)

// DefaultRateLimit is the simulated provider's per-sender limit in
// messages/s: below Meta's default 80/s, as the design's seed example.
const DefaultRateLimit = 50

// OutageMode is how an outage answers.
type OutageMode string

// Outage modes.
const (
	// OutageHTTP503 answers every send with 503.
	OutageHTTP503 OutageMode = "503"
	// OutageReset closes the connection without an answer.
	OutageReset OutageMode = "reset"
)

// Config configures a Simulator. Start from DefaultConfig for the
// documented defaults; in a zero Config the Behavior is a perfect,
// unlimited provider that sends no webhooks, and New fills the structural
// fields (paths, pool sizes) with their defaults.
type Config struct {
	// Addr is where Start listens. Empty: Start does not listen (serve
	// Handler yourself, e.g. with httptest). DefaultConfig: 127.0.0.1:8090.
	Addr string
	// APIKey is required on every send, as X-API-Key or Bearer, compared
	// in constant time. Empty disables the check.
	APIKey string
	// AdminToken guards /admin/*: every admin call must present it as
	// "Authorization: Bearer <token>" or X-Admin-Token (compared in
	// constant time), else 401. The ledger holds every recipient and
	// message body, and the admin API can switch outages on. Empty: the
	// admin API is open, which Validate allows only on a loopback Addr
	// (or with no Addr, serving Handler in-process).
	AdminToken string
	// LedgerMaxEntries bounds the sends (and, apart, the rejections) the
	// ledger keeps; beyond it the oldest are dropped. Every count of the
	// Snapshot stays exact. Default DefaultLedgerMaxEntries.
	LedgerMaxEntries int
	// SendPath is the Xpressbot send endpoint. Default DefaultSendPath.
	// Meta's POST /{version}/{phone-number-id}/messages is always served.
	SendPath string
	// WABAID is the WhatsApp Business Account id in webhook entries.
	// Default "sim-waba".
	WABAID string
	// PhoneNumberIDs are the account's business numbers: a send from any
	// other phone_number_id is refused as Meta refuses an unknown object
	// (HTTP 400, code 100), so a sender name that reached the
	// provider in place of its number id shows. Empty: any number.
	PhoneNumberIDs []string
	// Seed seeds every random decision (failures, latency, webhook
	// disorder), so a sequential test is reproducible. 0: seeded from the
	// clock.
	Seed uint64
	// HangFor is how long a send injected with a timeout hangs (unless the
	// client leaves first). Default 30s.
	HangFor time.Duration
	// MaxBodyBytes bounds a send request body (413 above). Default 1 MiB.
	MaxBodyBytes int64
	// Webhook is where and how status webhooks are delivered.
	Webhook WebhookConfig
	// Behavior is what the admin API can change at runtime.
	Behavior Behavior
	// Logger: default discard.
	Logger *slog.Logger
}

// WebhookConfig configures status webhook delivery.
type WebhookConfig struct {
	// URL receives the status webhooks. Empty: no webhooks.
	URL string
	// Secret signs every webhook body (HMAC-SHA256). Required with URL.
	Secret string
	// SignatureHeader carries the signature. Default X-Hub-Signature-256.
	SignatureHeader string
	// Workers is the number of concurrent deliveries. Default 8.
	Workers int
	// QueueSize bounds the webhooks waiting (scheduled or being retried);
	// beyond it new ones are dropped and counted, so a slow receiver never
	// blocks or bloats the send path. Default 10000.
	QueueSize int
	// MaxAttempts bounds deliveries of one webhook; non-2xx and transport
	// errors are retried with exponential backoff, as Meta does. Default 5.
	MaxAttempts int
	// Backoff is the first retry delay, doubled each attempt up to
	// MaxBackoff. Defaults 500ms and 30s.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Timeout bounds one delivery. Default 5s.
	Timeout time.Duration
}

// Behavior is the simulated provider's behaviour: set at start, changed at
// runtime through POST /admin/config (a partial JSON object of these
// fields) or Simulator.SetBehavior. Probabilities are in [0, 1].
type Behavior struct {
	// RateLimit is each sender account's token bucket in messages/s; a
	// send above it gets 429 with Meta code 130429 and Retry-After.
	// 0: unlimited. DefaultConfig: 50.
	RateLimit float64 `json:"rate_limit"`
	// Burst is the bucket size. 0: max(1, ceil(RateLimit/5)), i.e. 200 ms
	// worth of tokens. That absorbs network jitter in front of a client
	// pacing itself below the limit, while a client that bursts above the
	// limit is caught within a fraction of a second rather than after a
	// second's worth of excess.
	Burst int `json:"burst"`
	// Latency is added to every send that passed the rate limiter.
	Latency Dist `json:"latency"`

	// RetryableRate of sends fail with 503.
	RetryableRate float64 `json:"retryable_rate"`
	// PermanentRate of sends fail with one of PermanentCodes (HTTP 400).
	// DefaultConfig codes: 131026, 131047, 132001.
	PermanentRate  float64 `json:"permanent_rate"`
	PermanentCodes []int   `json:"permanent_codes"`
	// TimeoutRate of sends hang for Config.HangFor, past any sane client
	// timeout. With TimeoutAccepts the hung message is nevertheless
	// accepted (recorded, webhooks sent), as a real provider whose answer
	// got lost would; otherwise it ends with 504 and is not recorded.
	TimeoutRate    float64 `json:"timeout_rate"`
	TimeoutAccepts bool    `json:"timeout_accepts"`

	// Outage fails every send, per OutageMode (default "503").
	Outage     bool       `json:"outage"`
	OutageMode OutageMode `json:"outage_mode"`

	// Webhooks enables status webhooks (they also need Webhook.URL).
	Webhooks bool `json:"webhooks"`
	// SentDelay runs from acceptance to "sent", DeliveredDelay from sent
	// to "delivered", ReadDelay from delivered to "read".
	SentDelay      Dist `json:"sent_delay"`
	DeliveredDelay Dist `json:"delivered_delay"`
	ReadDelay      Dist `json:"read_delay"`
	// ReadRate of delivered messages are read.
	ReadRate float64 `json:"read_rate"`
	// AsyncFailRate of accepted messages fail after "sent" with one of
	// AsyncFailCodes (e.g. 131026 undeliverable).
	AsyncFailRate  float64 `json:"async_fail_rate"`
	AsyncFailCodes []int   `json:"async_fail_codes"`
	// OutOfOrderRate of messages get their statuses in a shuffled order
	// (timestamps stay in the true order); SkipDeliveredRate never get
	// "delivered"; DuplicateRate is per status: that status is sent twice.
	OutOfOrderRate    float64 `json:"out_of_order_rate"`
	SkipDeliveredRate float64 `json:"skip_delivered_rate"`
	DuplicateRate     float64 `json:"duplicate_rate"`

	// IdempotencyKeys makes the provider honour the Xpressbot request's
	// idempotency_key: a send repeating an accepted key is answered with
	// the first send's message id and nothing is sent again (counted as
	// Snapshot.IdempotentReplays). That is what lets a client retry a call
	// whose answer it never got. DefaultConfig: true. The Cloud API
	// carries no such key.
	IdempotencyKeys bool `json:"idempotency_keys"`

	// Rules are the platform's rules (pair rate, marketing cap, opt-outs,
	// template errors, account faults): all off by default. rules.go.
	Rules
}

// DefaultConfig is the documented default configuration.
func DefaultConfig() Config {
	return Config{
		Addr:     DefaultAddr,
		SendPath: DefaultSendPath,
		WABAID:   DefaultWABAID,
		HangFor:  DefaultHangFor,
		Webhook: WebhookConfig{
			SignatureHeader: metawebhook.DefaultSignatureHeader,
			Workers:         DefaultWebhookWorkers,
			QueueSize:       DefaultWebhookQueue,
			MaxAttempts:     DefaultWebhookMaxAttempts,
			Backoff:         DefaultWebhookBackoff,
			MaxBackoff:      DefaultWebhookMaxBackoff,
			Timeout:         DefaultWebhookTimeout,
		},
		Behavior: Behavior{
			RateLimit:         DefaultRateLimit,
			PermanentCodes:    []int{provider.MetaUndeliverable, provider.MetaReengagement, provider.MetaTemplateMissing},
			OutageMode:        OutageHTTP503,
			Webhooks:          true,
			SentDelay:         Uniform(50*time.Millisecond, 250*time.Millisecond),
			DeliveredDelay:    Uniform(100*time.Millisecond, time.Second),
			ReadDelay:         Uniform(500*time.Millisecond, 3*time.Second),
			ReadRate:          0.6,
			AsyncFailCodes:    []int{provider.MetaUndeliverable},
			OutOfOrderRate:    0.05,
			SkipDeliveredRate: 0.05,
			DuplicateRate:     0.02,
			IdempotencyKeys:   true,
		},
	}
}

func (c Config) withDefaults() Config {
	def := DefaultConfig()
	if c.SendPath == "" {
		c.SendPath = def.SendPath
	}
	if c.WABAID == "" {
		c.WABAID = def.WABAID
	}
	if c.HangFor == 0 {
		c.HangFor = def.HangFor
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.LedgerMaxEntries == 0 {
		c.LedgerMaxEntries = DefaultLedgerMaxEntries
	}
	w, dw := &c.Webhook, def.Webhook
	if w.SignatureHeader == "" {
		w.SignatureHeader = dw.SignatureHeader
	}
	if w.Workers == 0 {
		w.Workers = dw.Workers
	}
	if w.QueueSize == 0 {
		w.QueueSize = dw.QueueSize
	}
	if w.MaxAttempts == 0 {
		w.MaxAttempts = dw.MaxAttempts
	}
	if w.Backoff == 0 {
		w.Backoff = dw.Backoff
	}
	if w.MaxBackoff == 0 {
		w.MaxBackoff = dw.MaxBackoff
	}
	if w.Timeout == 0 {
		w.Timeout = dw.Timeout
	}
	c.Behavior = c.Behavior.withDefaults()
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (b Behavior) withDefaults() Behavior {
	if b.OutageMode == "" {
		b.OutageMode = OutageHTTP503
	}
	if len(b.PermanentCodes) == 0 {
		b.PermanentCodes = DefaultConfig().Behavior.PermanentCodes
	}
	if len(b.AsyncFailCodes) == 0 {
		b.AsyncFailCodes = []int{provider.MetaUndeliverable}
	}
	return b
}

// burst is the effective bucket size.
func (b Behavior) burst() int {
	if b.Burst > 0 {
		return b.Burst
	}
	return max(1, int(math.Ceil(b.RateLimit/5)))
}

// Validate reports every bad field (after defaults), naming the field and
// its environment variable.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(field, env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("simulator.%s (%s): %s", field, env, fmt.Sprintf(format, args...)))
	}
	if !strings.HasPrefix(c.SendPath, "/") || strings.HasPrefix(c.SendPath, "/admin/") || c.SendPath == "/healthz" {
		bad("SendPath", EnvSendPath, "%q must start with / and not collide with /admin or /healthz", c.SendPath)
	}
	if c.HangFor < 0 {
		bad("HangFor", EnvHangFor, "must not be negative")
	}
	if c.MaxBodyBytes < 0 {
		bad("MaxBodyBytes", "", "must not be negative")
	}
	w := c.Webhook
	if w.URL != "" {
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("Webhook.URL", EnvWebhookURL, "%q is not an absolute http(s) URL", w.URL)
		}
		if w.Secret == "" {
			bad("Webhook.Secret", EnvWebhookSecret, "is required when %s is set", EnvWebhookURL)
		}
	}
	if w.Workers < 0 {
		bad("Webhook.Workers", EnvWebhookWorkers, "must be positive")
	}
	if w.QueueSize < 0 {
		bad("Webhook.QueueSize", EnvWebhookQueue, "must be positive")
	}
	if w.MaxAttempts < 0 {
		bad("Webhook.MaxAttempts", EnvWebhookMaxAttempts, "must be positive")
	}
	if w.Backoff < 0 || w.MaxBackoff < 0 || w.Timeout < 0 {
		bad("Webhook.Backoff/MaxBackoff/Timeout", EnvWebhookBackoff, "must not be negative")
	}
	if c.LedgerMaxEntries < 0 {
		bad("LedgerMaxEntries", EnvLedgerMaxEntries, "must not be negative")
	}
	if c.AdminToken != "" {
		if err := secretcheck.Strong(EnvAdminToken, c.AdminToken); err != nil {
			bad("AdminToken", EnvAdminToken, "%v", err)
		}
	}
	// Reachable from other hosts, the simulator is used for real: its
	// admin API must be guarded and its credentials strong, because the
	// same values are the dispatcher's provider key and the webhook
	// receiver's secret.
	if c.Addr != "" && !loopbackAddr(c.Addr) {
		if c.AdminToken == "" {
			bad("AdminToken", EnvAdminToken, "is required when %s (%q) is not a loopback address: /admin/ledger shows every number and message body", EnvAddr, c.Addr)
		}
		if err := secretcheck.Strong(EnvAPIKey, c.APIKey); err != nil {
			bad("APIKey", EnvAPIKey, "%v (required when %s is not a loopback address)", err, EnvAddr)
		}
		if w.URL != "" && w.Secret != "" {
			if err := secretcheck.Strong(EnvWebhookSecret, w.Secret); err != nil {
				bad("Webhook.Secret", EnvWebhookSecret, "%v", err)
			}
		}
	}
	if err := c.Behavior.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// loopbackAddr reports whether host:port addr listens on loopback only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && secretcheck.IsLoopbackHost(host)
}

// Validate reports every bad field of b.
func (b Behavior) Validate() error {
	b = b.withDefaults()
	var errs []error
	bad := func(field, env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("simulator.Behavior.%s (%s): %s", field, env, fmt.Sprintf(format, args...)))
	}
	if b.RateLimit < 0 || math.IsNaN(b.RateLimit) || math.IsInf(b.RateLimit, 0) {
		bad("RateLimit", EnvRateLimit, "must be a finite number >= 0 (0 is unlimited), got %v", b.RateLimit)
	}
	if b.Burst < 0 {
		bad("Burst", EnvBurst, "must be >= 0 (0 is automatic), got %d", b.Burst)
	}
	probs := []struct {
		field, env string
		v          float64
	}{
		{"RetryableRate", EnvRetryableRate, b.RetryableRate},
		{"PermanentRate", EnvPermanentRate, b.PermanentRate},
		{"TimeoutRate", EnvTimeoutRate, b.TimeoutRate},
		{"ReadRate", EnvReadRate, b.ReadRate},
		{"AsyncFailRate", EnvAsyncFailRate, b.AsyncFailRate},
		{"OutOfOrderRate", EnvOutOfOrderRate, b.OutOfOrderRate},
		{"SkipDeliveredRate", EnvSkipDeliveredRate, b.SkipDeliveredRate},
		{"DuplicateRate", EnvDuplicateRate, b.DuplicateRate},
	}
	for _, p := range probs {
		if !(p.v >= 0 && p.v <= 1) {
			bad(p.field, p.env, "is a probability in [0, 1], got %v", p.v)
		}
	}
	if s := b.RetryableRate + b.PermanentRate + b.TimeoutRate; s > 1+1e-9 {
		bad("RetryableRate+PermanentRate+TimeoutRate", EnvRetryableRate, "must not exceed 1, got %v", s)
	}
	for _, c := range b.PermanentCodes {
		if c <= 0 {
			bad("PermanentCodes", EnvPermanentCodes, "code %d must be positive", c)
		}
	}
	for _, c := range b.AsyncFailCodes {
		if c <= 0 {
			bad("AsyncFailCodes", EnvAsyncFailCodes, "code %d must be positive", c)
		}
	}
	if b.OutageMode != OutageHTTP503 && b.OutageMode != OutageReset {
		bad("OutageMode", EnvOutageMode, "%q must be %q or %q", b.OutageMode, OutageHTTP503, OutageReset)
	}
	dists := []struct {
		field, env string
		d          Dist
	}{
		{"Latency", EnvLatency, b.Latency},
		{"SentDelay", EnvSentDelay, b.SentDelay},
		{"DeliveredDelay", EnvDeliveredDelay, b.DeliveredDelay},
		{"ReadDelay", EnvReadDelay, b.ReadDelay},
	}
	for _, d := range dists {
		if err := d.d.validate(); err != nil {
			bad(d.field, d.env, "%v", err)
		}
	}
	errs = append(errs, b.Rules.validate())
	return errors.Join(errs...)
}

// ConfigFromEnv builds a Config from DefaultConfig and the environment
// (pass os.Getenv). Unset variables keep the defaults.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	var errs []error
	str := func(env string, dst *string) {
		if v := getenv(env); v != "" {
			*dst = v
		}
	}
	parse := func(env string, f func(string) error) {
		if v := strings.TrimSpace(getenv(env)); v != "" {
			if err := f(v); err != nil {
				errs = append(errs, fmt.Errorf("simulator (%s=%q): %w", env, v, err))
			}
		}
	}
	float := func(env string, dst *float64) {
		parse(env, func(v string) (err error) { *dst, err = strconv.ParseFloat(v, 64); return })
	}
	integer := func(env string, dst *int) {
		parse(env, func(v string) (err error) { *dst, err = strconv.Atoi(v); return })
	}
	boolean := func(env string, dst *bool) {
		parse(env, func(v string) (err error) { *dst, err = strconv.ParseBool(v); return })
	}
	duration := func(env string, dst *time.Duration) {
		parse(env, func(v string) (err error) { *dst, err = time.ParseDuration(v); return })
	}
	dist := func(env string, dst *Dist) {
		parse(env, func(v string) error { return dst.UnmarshalText([]byte(v)) })
	}
	codes := func(env string, dst *[]int) {
		parse(env, func(v string) error {
			var out []int
			for _, p := range strings.Split(v, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(p))
				if err != nil {
					return err
				}
				out = append(out, n)
			}
			*dst = out
			return nil
		})
	}

	str(EnvAddr, &c.Addr)
	str(EnvAPIKey, &c.APIKey)
	str(EnvAdminToken, &c.AdminToken)
	integer(EnvLedgerMaxEntries, &c.LedgerMaxEntries)
	str(EnvSendPath, &c.SendPath)
	str(EnvWABAID, &c.WABAID)
	if v := strings.TrimSpace(getenv(EnvNumbers)); v != "" {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				c.PhoneNumberIDs = append(c.PhoneNumberIDs, n)
			}
		}
	}
	parse(EnvSeed, func(v string) (err error) { c.Seed, err = strconv.ParseUint(v, 10, 64); return })
	duration(EnvHangFor, &c.HangFor)

	b := &c.Behavior
	float(EnvRateLimit, &b.RateLimit)
	integer(EnvBurst, &b.Burst)
	dist(EnvLatency, &b.Latency)
	float(EnvRetryableRate, &b.RetryableRate)
	float(EnvPermanentRate, &b.PermanentRate)
	codes(EnvPermanentCodes, &b.PermanentCodes)
	float(EnvTimeoutRate, &b.TimeoutRate)
	boolean(EnvTimeoutAccepts, &b.TimeoutAccepts)
	boolean(EnvOutage, &b.Outage)
	parse(EnvOutageMode, func(v string) error { b.OutageMode = OutageMode(strings.ToLower(v)); return nil })
	boolean(EnvWebhooks, &b.Webhooks)
	dist(EnvSentDelay, &b.SentDelay)
	dist(EnvDeliveredDelay, &b.DeliveredDelay)
	dist(EnvReadDelay, &b.ReadDelay)
	float(EnvReadRate, &b.ReadRate)
	float(EnvAsyncFailRate, &b.AsyncFailRate)
	codes(EnvAsyncFailCodes, &b.AsyncFailCodes)
	float(EnvOutOfOrderRate, &b.OutOfOrderRate)
	float(EnvSkipDeliveredRate, &b.SkipDeliveredRate)
	float(EnvDuplicateRate, &b.DuplicateRate)
	boolean(EnvIdempotencyKeys, &b.IdempotencyKeys)
	errs = append(errs, b.Rules.fromEnv(getenv))

	w := &c.Webhook
	str(EnvWebhookURL, &w.URL)
	str(EnvWebhookSecret, &w.Secret)
	str(EnvWebhookSignatureHeader, &w.SignatureHeader)
	integer(EnvWebhookWorkers, &w.Workers)
	integer(EnvWebhookQueue, &w.QueueSize)
	integer(EnvWebhookMaxAttempts, &w.MaxAttempts)
	duration(EnvWebhookBackoff, &w.Backoff)
	duration(EnvWebhookMaxBackoff, &w.MaxBackoff)
	duration(EnvWebhookTimeout, &w.Timeout)

	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, c.Validate()
}

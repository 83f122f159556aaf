package webhook

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/metawebhook"
	"github.com/wanotify/wanotify/pkg/secretcheck"
	"github.com/wanotify/wanotify/pkg/webhook/payload"
)

// Environment variables read by Load. Validate names them.
const (
	EnvAddr            = "WANOTIFY_WEBHOOK_ADDR"
	EnvPath            = "WANOTIFY_WEBHOOK_PATH"
	EnvSecret          = "WANOTIFY_WEBHOOK_SECRET"
	EnvVerifyToken     = "WANOTIFY_WEBHOOK_VERIFY_TOKEN"
	EnvSignatureHeader = "WANOTIFY_WEBHOOK_SIGNATURE_HEADER"
	EnvMaxBody         = "WANOTIFY_WEBHOOK_MAX_BODY"
	EnvProvider        = "WANOTIFY_WEBHOOK_PROVIDER"
	EnvFormat          = "WANOTIFY_WEBHOOK_FORMAT"
	EnvEnvelopeField   = "WANOTIFY_WEBHOOK_ENVELOPE_FIELD"
	EnvProduceTimeout  = "WANOTIFY_WEBHOOK_PRODUCE_TIMEOUT"
	EnvBodyMemory      = "WANOTIFY_WEBHOOK_BODY_MEMORY"
	EnvBodyReadTimeout = "WANOTIFY_WEBHOOK_BODY_READ_TIMEOUT"
)

// Defaults.
const (
	DefaultAddr = "127.0.0.1:8081"
	// DefaultAdminAddr serves /healthz, /readyz and /metrics
	// (WANOTIFY_ADMIN_ADDR), apart from the port the provider reaches.
	DefaultAdminAddr = "127.0.0.1:9467"
	DefaultPath      = "/v1/webhooks/whatsapp"
	// DefaultMaxBodyBytes covers Meta's largest webhook payloads (up to
	// 3 MB, as BSPs document) with room for a provider's wrapper: a
	// payload refused here would be refused on every redelivery until
	// Meta gives up on it.
	DefaultMaxBodyBytes = 4 << 20
	// DefaultBodyMemory bounds the bodies held at once before their
	// signatures are checked: 16 bodies of the largest size, or thousands
	// of typical (few-kilobyte) webhooks. With what a request decodes
	// from its body (at most about the body's size again) and the
	// process's own 30 MiB or so, the worst case stays near 160 MiB, under
	// the chart's 256 MiB memory limit.
	DefaultBodyMemory = 64 << 20
	// DefaultBodyReadTimeout bounds reading one body once its memory is
	// reserved (4 MiB in 10 s is 400 KB/s; Meta uploads far faster), so a
	// slow upload holds its reservation for at most this long.
	DefaultBodyReadTimeout = 10 * time.Second
	DefaultProvider        = "xpressbot"
	DefaultFormat          = payload.FormatAuto
	DefaultEnvelopeField   = "data"
	DefaultProduceTimeout  = 5 * time.Second
)

// bodyWait is how long a webhook waits for body memory before it is
// answered 503 (the provider resends it): long enough to ride out a
// burst, short enough that waiting requests do not pile up.
const bodyWait = time.Second

// DevSecret is the local stack's webhook secret (`make run`, shared with
// its simulator). It is written in this repository, so the receiver
// accepts it only on a loopback WANOTIFY_WEBHOOK_ADDR.
const DevSecret = "wanotify-local-development-webhook-secret"

// maxMaxBodyBytes bounds WANOTIFY_WEBHOOK_MAX_BODY: the whole body is held
// in memory to check its signature.
const maxMaxBodyBytes = 64 << 20

// Config configures a Receiver. Start from DefaultConfig (or Load); the
// zero value is not valid: Secret is required.
type Config struct {
	// Addr is where the service listens. Default 127.0.0.1:8081.
	Addr string
	// Path serves the GET handshake and the POST status webhooks.
	// Default /v1/webhooks/whatsapp.
	Path string
	// Secret is the app secret the provider signs bodies with
	// (HMAC-SHA256). Required: there is no default, so a deployment never
	// runs with a well-known secret. The local stack passes its own
	// development value explicitly.
	Secret string
	// VerifyToken answers the GET subscription handshake. Empty disables
	// the handshake (every attempt gets 403).
	VerifyToken string
	// SignatureHeader carries "sha256=<hex>". Default X-Hub-Signature-256.
	SignatureHeader string
	// MaxBodyBytes bounds a request body; larger ones get 413. Default
	// 4 MiB (DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// BodyMemory bounds the bytes of bodies held at once (see
	// edgehttp.BodyGate); a webhook that finds it full for a second gets
	// 503 with Retry-After. Default 64 MiB; at least MaxBodyBytes.
	BodyMemory int64
	// BodyReadTimeout bounds reading one body. Default 10s.
	BodyReadTimeout time.Duration
	// Provider is stamped on every status event. Default "xpressbot".
	Provider string
	// Format is the body shape. Default payload.FormatAuto.
	Format payload.Format
	// EnvelopeField names the wrapper field holding the Meta payload for
	// FormatEnvelope and FormatAuto. Default "data".
	EnvelopeField string
	// ProduceTimeout bounds the wait for Kafka to acknowledge every
	// status of one request; past it the request gets 503. Default 5s.
	ProduceTimeout time.Duration
}

// DefaultConfig is the documented default configuration, without Secret.
func DefaultConfig() Config {
	return Config{
		Addr:            DefaultAddr,
		Path:            DefaultPath,
		SignatureHeader: metawebhook.DefaultSignatureHeader,
		MaxBodyBytes:    DefaultMaxBodyBytes,
		BodyMemory:      DefaultBodyMemory,
		BodyReadTimeout: DefaultBodyReadTimeout,
		Provider:        DefaultProvider,
		Format:          DefaultFormat,
		EnvelopeField:   DefaultEnvelopeField,
		ProduceTimeout:  DefaultProduceTimeout,
	}
}

// Load reads the WANOTIFY_WEBHOOK_* variables.
func Load(e *config.Env) Config {
	d := DefaultConfig()
	return Config{
		Addr:            e.String(EnvAddr, d.Addr, "listen address of the webhook receiver (/healthz, /readyz and /metrics are on WANOTIFY_ADMIN_ADDR)"),
		Path:            e.String(EnvPath, d.Path, "path of the GET verification handshake and the POST status webhooks"),
		Secret:          e.Secret(EnvSecret, "app secret the provider signs webhook bodies with (HMAC-SHA256); required, at least 32 bytes, no default"),
		VerifyToken:     e.Secret(EnvVerifyToken, "token the GET hub.verify_token handshake must present (empty: handshake disabled)"),
		SignatureHeader: e.String(EnvSignatureHeader, d.SignatureHeader, "header carrying the body signature sha256=<hex>"),
		MaxBodyBytes:    int64(e.Int(EnvMaxBody, int(d.MaxBodyBytes), "largest webhook body in bytes; larger ones get 413 (the default covers Meta's payloads of up to 3 MB)")),
		BodyMemory: int64(e.Int(EnvBodyMemory, int(d.BodyMemory),
			"bytes of webhook bodies held at once before their signatures are checked; past it a webhook waits up to 1 s, then gets 503 with Retry-After (keep it well under the memory limit)")),
		BodyReadTimeout: e.Duration(EnvBodyReadTimeout, d.BodyReadTimeout, "how long reading one webhook body may take once its memory is reserved"),
		Provider:        e.String(EnvProvider, d.Provider, "provider name stamped on status events"),
		Format:          payload.Format(strings.ToLower(e.String(EnvFormat, string(d.Format), "webhook body shape: meta (Meta's payload), envelope (Meta's payload inside a wrapper field) or auto (either)"))),
		EnvelopeField:   e.String(EnvEnvelopeField, d.EnvelopeField, "wrapper field holding Meta's payload for the envelope and auto formats"),
		ProduceTimeout:  e.Duration(EnvProduceTimeout, d.ProduceTimeout, "how long a webhook waits for Kafka to acknowledge its status events before answering 503"),
	}
}

// reservedPaths are the admin endpoints' paths; the webhook path may not
// take them, so that nobody mistakes one listener for the other.
var reservedPaths = []string{"/healthz", "/readyz", "/metrics"}

// Validate reports every bad field, naming it and its variable.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("webhook.%s (%s): %s", field, env, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("Addr", EnvAddr, "%q is not host:port", c.Addr)
	}
	switch {
	case !strings.HasPrefix(c.Path, "/"):
		bad("Path", EnvPath, "%q must start with /", c.Path)
	case strings.ContainsAny(c.Path, "{}?# "):
		bad("Path", EnvPath, "%q must be a plain path (no {, }, ?, # or spaces)", c.Path)
	default:
		for _, p := range reservedPaths {
			if c.Path == p {
				bad("Path", EnvPath, "%q is reserved for the admin endpoints", c.Path)
			}
		}
	}
	// At least 32 bytes, never an example file's value, and the local
	// stack's development value only on loopback.
	if err := errors.Join(secretcheck.Strong(EnvSecret, c.Secret),
		secretcheck.LoopbackOnly(EnvSecret, c.Secret, DevSecret, EnvAddr, c.Addr)); err != nil {
		bad("Secret", EnvSecret, "%v", err)
	}
	if !validHeaderName(c.SignatureHeader) {
		bad("SignatureHeader", EnvSignatureHeader, "%q is not a valid header name", c.SignatureHeader)
	}
	if c.MaxBodyBytes <= 0 || c.MaxBodyBytes > maxMaxBodyBytes {
		bad("MaxBodyBytes", EnvMaxBody, "must be between 1 and %d bytes, got %d", maxMaxBodyBytes, c.MaxBodyBytes)
	}
	if c.BodyMemory < c.MaxBodyBytes+1024 {
		bad("BodyMemory", EnvBodyMemory, "must be at least %s plus 1024 bytes (%d), got %d", EnvMaxBody, c.MaxBodyBytes+1024, c.BodyMemory)
	}
	if c.BodyReadTimeout <= 0 {
		bad("BodyReadTimeout", EnvBodyReadTimeout, "must be positive, got %s", c.BodyReadTimeout)
	}
	// The status schema caps provider at 32 characters.
	if c.Provider == "" || len(c.Provider) > 32 {
		bad("Provider", EnvProvider, "must be 1 to 32 characters, got %q", c.Provider)
	}
	switch c.Format {
	case payload.FormatMeta:
	case payload.FormatEnvelope, payload.FormatAuto:
		if c.EnvelopeField == "" {
			bad("EnvelopeField", EnvEnvelopeField, "is required with format %q", c.Format)
		}
	default:
		bad("Format", EnvFormat, "%q must be %q, %q or %q", c.Format, payload.FormatMeta, payload.FormatEnvelope, payload.FormatAuto)
	}
	if c.ProduceTimeout <= 0 {
		bad("ProduceTimeout", EnvProduceTimeout, "must be positive, got %s", c.ProduceTimeout)
	}
	return errors.Join(errs...)
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

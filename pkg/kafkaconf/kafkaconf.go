// Package kafkaconf turns the shared Kafka settings (brokers, TLS, SASL)
// into franz-go client options, with OpenTelemetry tracing and metrics
// hooks (kotel) so trace context travels in record headers.
package kafkaconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/insecure"
	"github.com/wanotify/wanotify/pkg/phone"
	"github.com/wanotify/wanotify/pkg/secretcheck"
)

// Config is how a service reaches Kafka.
type Config struct {
	Brokers  []string
	ClientID string
	TLS      TLS
	SASL     SASL
	// Tracing adds kotel hooks (producer and consumer spans, header
	// propagation) using the global OpenTelemetry providers.
	Tracing bool
}

// TLS settings; disabled unless Enabled.
type TLS struct {
	Enabled            bool
	CAFile             string
	CertFile           string
	KeyFile            string
	ServerName         string
	InsecureSkipVerify bool
}

// SASL settings; Mechanism is "", "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512".
type SASL struct {
	Mechanism string
	Username  string
	Password  string
	// AllowPlaintext lets PLAIN run without TLS to brokers that are not on
	// loopback: PLAIN sends the password as it is, so anyone on the path
	// reads it. Off, that combination is refused.
	AllowPlaintext bool
}

// EnvAllowInsecureSASL is the variable behind SASL.AllowPlaintext.
const EnvAllowInsecureSASL = "WANOTIFY_KAFKA_ALLOW_INSECURE_SASL"

// plaintextPassword reports whether c sends the SASL password in clear
// over the network.
func (c Config) plaintextPassword() bool {
	return c.SASL.Mechanism == "PLAIN" && !c.TLS.Enabled && !insecure.LoopbackAddrs(c.Brokers)
}

// Load reads the WANOTIFY_KAFKA_* variables.
func Load(e *config.Env, clientID string) Config {
	c := Config{
		Brokers:  e.List("WANOTIFY_KAFKA_BROKERS", []string{"127.0.0.1:9092"}, "Kafka seed brokers, comma-separated host:port"),
		ClientID: e.String("WANOTIFY_KAFKA_CLIENT_ID", clientID, "Kafka client id"),
		TLS: TLS{
			Enabled:            e.Bool("WANOTIFY_KAFKA_TLS", false, "connect to Kafka over TLS"),
			CAFile:             e.String("WANOTIFY_KAFKA_TLS_CA_FILE", "", "PEM CA bundle for the brokers' certificates (system roots when empty)"),
			CertFile:           e.String("WANOTIFY_KAFKA_TLS_CERT_FILE", "", "PEM client certificate for mutual TLS"),
			KeyFile:            e.String("WANOTIFY_KAFKA_TLS_KEY_FILE", "", "PEM client key for mutual TLS"),
			ServerName:         e.String("WANOTIFY_KAFKA_TLS_SERVER_NAME", "", "TLS server name override"),
			InsecureSkipVerify: e.Bool("WANOTIFY_KAFKA_TLS_INSECURE_SKIP_VERIFY", false, "skip certificate verification (testing only)"),
		},
		SASL: SASL{
			Mechanism: strings.ToUpper(e.String("WANOTIFY_KAFKA_SASL_MECHANISM", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: none)")),
			Username:  e.String("WANOTIFY_KAFKA_SASL_USERNAME", "", "SASL user name"),
			Password:  e.Secret("WANOTIFY_KAFKA_SASL_PASSWORD", "SASL password"),
			AllowPlaintext: e.Bool(EnvAllowInsecureSASL, false,
				"allow SASL PLAIN without WANOTIFY_KAFKA_TLS to brokers that are not on loopback (the password crosses the network in clear); off: refused"),
		},
		Tracing: true,
	}
	c.warn(e)
	return c
}

// warn records the insecure settings c was accepted with.
func (c Config) warn(e *config.Env) {
	if c.plaintextPassword() {
		e.Warn(EnvAllowInsecureSASL, "Kafka SASL PLAIN without TLS: the SASL password crosses the network in clear (set WANOTIFY_KAFKA_TLS=true)")
	}
	if c.TLS.Enabled && c.TLS.InsecureSkipVerify {
		e.Warn("WANOTIFY_KAFKA_TLS_INSECURE_SKIP_VERIFY", "Kafka brokers' TLS certificates are not verified: anyone on the path can pose as a broker")
	}
}

// Validate names every bad field by its environment variable.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("WANOTIFY_KAFKA_BROKERS: at least one broker is required"))
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			errs = append(errs, fmt.Errorf("WANOTIFY_KAFKA_BROKERS: %q is not host:port", b))
		}
	}
	switch c.SASL.Mechanism {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.SASL.Username == "" {
			errs = append(errs, errors.New("WANOTIFY_KAFKA_SASL_USERNAME: required when WANOTIFY_KAFKA_SASL_MECHANISM is set"))
		}
		if c.SASL.Password == "" {
			errs = append(errs, errors.New("WANOTIFY_KAFKA_SASL_PASSWORD: required when WANOTIFY_KAFKA_SASL_MECHANISM is set"))
		} else if err := secretcheck.NotExample("WANOTIFY_KAFKA_SASL_PASSWORD", c.SASL.Password); err != nil {
			errs = append(errs, err)
		}
		if c.plaintextPassword() && !c.SASL.AllowPlaintext {
			errs = append(errs, fmt.Errorf("WANOTIFY_KAFKA_SASL_MECHANISM: PLAIN without WANOTIFY_KAFKA_TLS sends the password in clear to %s; enable TLS, use SCRAM-SHA-512, or set %s=true to accept it",
				strings.Join(c.Brokers, ","), EnvAllowInsecureSASL))
		}
	default:
		errs = append(errs, fmt.Errorf("WANOTIFY_KAFKA_SASL_MECHANISM: %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASL.Mechanism))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("WANOTIFY_KAFKA_TLS_CERT_FILE and WANOTIFY_KAFKA_TLS_KEY_FILE: set both or neither"))
	}
	return errors.Join(errs...)
}

// Opts returns the franz-go options for c. Callers append their own
// (consumer group, producer settings) after these.
func (c Config) Opts() ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.ClientID(c.ClientID)}
	if c.TLS.Enabled {
		tc, err := TLSConfig(c.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch c.SASL.Mechanism {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsSha512Mechanism()))
	}
	if c.Tracing {
		k := kotel.NewKotel(
			kotel.WithTracer(Tracer()),
			kotel.WithMeter(kotel.NewMeter(kotel.MeterProvider(otel.GetMeterProvider()))),
		)
		opts = append(opts, kgo.WithHooks(k.Hooks()...))
	}
	opts = append(opts, kgo.RetryTimeout(30*time.Second))
	return opts, nil
}

// Tracer returns a kotel tracer on the global providers, for services that
// create processing spans from consumed records.
func Tracer() *kotel.Tracer {
	return kotel.NewTracer(kotel.TracerProvider(otel.GetTracerProvider()), kotel.TracerPropagator(otel.GetTextMapPropagator()),
		kotel.KeyFormatter(maskedKey))
}

// maskedKey is the record key as spans show it: every topic is keyed by
// the recipient's phone number, which never goes into a span unmasked.
func maskedKey(r *kgo.Record) (string, error) {
	if !utf8.Valid(r.Key) {
		return "", errBinaryKey
	}
	return phone.Mask(string(r.Key)), nil
}

var errBinaryKey = errors.New("binary record key left out of spans")

// TLSConfig builds a *tls.Config from t.
func TLSConfig(t TLS) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in for testing
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA file %s: no certificates found", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

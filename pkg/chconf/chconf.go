// Package chconf turns the shared ClickHouse settings into clickhouse-go/v2
// options.
package chconf

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/kafkaconf"
	"github.com/wanotify/wanotify/pkg/secretcheck"
)

// Config is how a service reaches ClickHouse over the native protocol.
type Config struct {
	Addrs       []string
	Database    string
	Username    string
	Password    string
	TLS         kafkaconf.TLS
	DialTimeout time.Duration
}

// Load reads the WANOTIFY_CLICKHOUSE_* variables.
func Load(e *config.Env) Config {
	c := Config{
		Addrs:    e.List("WANOTIFY_CLICKHOUSE_ADDR", []string{"127.0.0.1:9000"}, "ClickHouse native protocol addresses, comma-separated host:port"),
		Database: e.String("WANOTIFY_CLICKHOUSE_DATABASE", "wanotify", "ClickHouse database"),
		Username: e.String("WANOTIFY_CLICKHOUSE_USERNAME", "default", "ClickHouse user"),
		Password: e.Secret("WANOTIFY_CLICKHOUSE_PASSWORD", "ClickHouse password"),
		TLS: kafkaconf.TLS{
			Enabled:            e.Bool("WANOTIFY_CLICKHOUSE_TLS", false, "connect to ClickHouse over TLS"),
			CAFile:             e.String("WANOTIFY_CLICKHOUSE_TLS_CA_FILE", "", "PEM CA bundle for ClickHouse"),
			CertFile:           e.String("WANOTIFY_CLICKHOUSE_TLS_CERT_FILE", "", "PEM client certificate for ClickHouse"),
			KeyFile:            e.String("WANOTIFY_CLICKHOUSE_TLS_KEY_FILE", "", "PEM client key for ClickHouse"),
			InsecureSkipVerify: e.Bool("WANOTIFY_CLICKHOUSE_TLS_INSECURE_SKIP_VERIFY", false, "skip ClickHouse certificate verification (testing only)"),
		},
		DialTimeout: e.Duration("WANOTIFY_CLICKHOUSE_DIAL_TIMEOUT", 5*time.Second, "ClickHouse connect timeout"),
	}
	if c.TLS.Enabled && c.TLS.InsecureSkipVerify {
		e.Warn("WANOTIFY_CLICKHOUSE_TLS_INSECURE_SKIP_VERIFY", "ClickHouse's TLS certificate is not verified: anyone on the path can pose as the server")
	}
	return c
}

// Validate names every bad field by its environment variable.
func (c Config) Validate() error {
	var errs []error
	if len(c.Addrs) == 0 {
		errs = append(errs, errors.New("WANOTIFY_CLICKHOUSE_ADDR: at least one address is required"))
	}
	for _, a := range c.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("WANOTIFY_CLICKHOUSE_ADDR: %q is not host:port", a))
		}
	}
	if c.Database == "" {
		errs = append(errs, errors.New("WANOTIFY_CLICKHOUSE_DATABASE: required"))
	}
	if err := secretcheck.NotExample("WANOTIFY_CLICKHOUSE_PASSWORD", c.Password); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Options returns clickhouse-go options. The database is left empty so a
// caller can create it first; see Database.
func (c Config) Options() (*clickhouse.Options, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	o := &clickhouse.Options{
		Addr:        c.Addrs,
		Auth:        clickhouse.Auth{Database: c.Database, Username: c.Username, Password: c.Password},
		DialTimeout: c.DialTimeout,
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
	}
	if c.TLS.Enabled {
		tc, err := kafkaconf.TLSConfig(c.TLS)
		if err != nil {
			return nil, err
		}
		o.TLS = tc
	}
	return o, nil
}

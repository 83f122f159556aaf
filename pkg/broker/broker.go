// Package broker runs a Kafka-protocol broker for local development and
// tests, listening on loopback with its log persisted to a data directory:
// by default franz-go's kfake, which speaks the real wire protocol
// (consumer groups, transactions, read_committed) in this process; with
// WANOTIFY_BROKER_KIND=apache the Apache Kafka broker itself, a JVM this
// process owns (pkg/kafkalocal; see apache.go). Production runs Apache
// Kafka.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wanotify/wanotify/pkg/config"
)

// Config of the local broker.
type Config struct {
	// Kind is "kfake" (in this process; also the zero value) or "apache"
	// (a JVM).
	Kind       string
	Port       int
	DataDir    string // empty: in memory only
	SyncWrites bool
	// GroupMinSession is the smallest session timeout a classic group
	// member may ask for; small values make killed members' partitions
	// move quickly.
	GroupMinSession time.Duration
	// Apache Kafka only.
	Apache ApacheConfig
}

// Load reads the WANOTIFY_BROKER_* variables.
func Load(e *config.Env) Config {
	return Config{
		Kind:            e.String("WANOTIFY_BROKER_KIND", KindKfake, "local broker: kfake (in process) or apache (Apache Kafka from scripts/fetch-kafka.sh's jars)"),
		Apache:          loadApache(e),
		Port:            e.Int("WANOTIFY_BROKER_PORT", 9092, "local broker port on 127.0.0.1"),
		DataDir:         e.String("WANOTIFY_BROKER_DATA_DIR", ".data/kafka", "local broker data directory (empty: memory only)"),
		SyncWrites:      e.Bool("WANOTIFY_BROKER_SYNC_WRITES", false, "fsync every write of the local broker"),
		GroupMinSession: e.Duration("WANOTIFY_BROKER_GROUP_MIN_SESSION", time.Second, "smallest consumer-group session timeout the local broker allows"),
	}
}

// Validate names the bad variable.
func (c Config) Validate() error {
	var errs []error
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("WANOTIFY_BROKER_PORT: %d is not a port", c.Port))
	}
	if c.GroupMinSession <= 0 {
		errs = append(errs, fmt.Errorf("WANOTIFY_BROKER_GROUP_MIN_SESSION: must be positive"))
	}
	switch c.Kind {
	case "", KindKfake:
	case KindApache:
		errs = append(errs, c.Apache.validate(c.Port))
	default:
		errs = append(errs, fmt.Errorf("WANOTIFY_BROKER_KIND: %q is neither %s nor %s", c.Kind, KindKfake, KindApache))
	}
	return errors.Join(errs...)
}

// slogLogger hands the broker's warnings and errors (transaction
// timeouts, persistence failures, recovery after a crash) to slog.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		l.log.Error(fmt.Sprintf(format, args...), "source", "kfake")
	case kfake.LogLevelWarn:
		l.log.Warn(fmt.Sprintf(format, args...), "source", "kfake")
	}
}

// Run serves until ctx is cancelled. ready is called with the listen
// address once the broker accepts connections.
func Run(ctx context.Context, c Config, log *slog.Logger, ready func(addr string)) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.Kind == KindApache {
		return runApache(ctx, c, log, ready)
	}
	opts := []kfake.Opt{
		kfake.Ports(c.Port),
		kfake.NumBrokers(1),
		kfake.GroupMinSessionTimeout(c.GroupMinSession),
		kfake.BrokerConfigs(map[string]string{"group.consumer.heartbeat.interval.ms": "500"}),
		kfake.WithLogger(slogLogger{log}),
	}
	if c.DataDir != "" {
		if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
			return fmt.Errorf("WANOTIFY_BROKER_DATA_DIR: %w", err)
		}
		if err := recoverOpenTransactions(ctx, c.DataDir, log); err != nil {
			return fmt.Errorf("recover %s after an unclean shutdown: %w", c.DataDir, err)
		}
		opts = append(opts, kfake.DataDir(c.DataDir))
	}
	if c.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	cl, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("start broker on 127.0.0.1:%d: %w", c.Port, err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(c.Port)
	if addrs := cl.ListenAddrs(); len(addrs) > 0 {
		addr = addrs[0]
	}
	log.Info("broker ready", "addr", addr, "data_dir", c.DataDir)
	if ready != nil {
		ready(addr)
	}
	<-ctx.Done()
	cl.Close()
	log.Info("broker stopped")
	return nil
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/chconf"
	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/kafkaconf"
	"github.com/wanotify/wanotify/pkg/senders"
	"github.com/wanotify/wanotify/pkg/topics"
)

// Environment variables of the harness itself. The WANOTIFY_KAFKA_* and
// WANOTIFY_CLICKHOUSE_* variables of the services select real clusters.
const (
	EnvQuick       = "BENCH_QUICK"        // 1: one short run per row, a smoke test
	EnvRuns        = "BENCH_RUNS"         // runs per row (default 3, quick 1)
	EnvOnly        = "BENCH_ONLY"         // comma-separated row groups to run
	EnvOut         = "BENCH_OUT"          // where to write the report (default BENCHMARKS.md; quick: none)
	EnvProfile     = "BENCH_PROFILE"      // directory: CPU profiles of the services under load
	EnvResetTopics = "BENCH_RESET_TOPICS" // 1: allowed to delete and recreate the wanotify topics of WANOTIFY_KAFKA_BROKERS
	EnvKeepLogs    = "BENCH_KEEP_LOGS"    // 1: keep the work directory with every process's log
	EnvKafka       = "BENCH_KAFKA"        // apache: the sink, dispatcher and e2e rows also run on Apache Kafka (make bench KAFKA=apache)

	envTestCH = "WANOTIFY_TEST_CLICKHOUSE_ADDR" // set by scripts/with-clickhouse.sh
)

// Groups are the row groups, in the order they run.
var Groups = []string{"ingest", "batch", "webhook", "sink", "dispatcher", "slow", "accuracy", "pacing", "retry", "e2e", "dedupe", "lanes", "bulkmem", "halt"}

// Config is what the harness runs against and how.
type Config struct {
	Root  string // repository root
	Work  string // temporary directory: binaries and process logs
	Bin   string // service binaries
	Self  string // the harness binary, re-run for the bare baselines
	Quick bool
	Runs  int
	Only  map[string]bool

	// ExternalKafka is set when WANOTIFY_KAFKA_BROKERS names a cluster;
	// otherwise every run starts a broker process of its own.
	ExternalKafka bool
	kafka         kafkaconf.Config
	// CH connects to ClickHouse (nil: no ClickHouse; the sink rows are
	// reported as not run). CHAddr says where, for the report.
	CH         *clickhouse.Options
	CHAddr     string
	CHExternal bool

	Wrk     string // wrk's path; empty: the Go load generator stands in
	Profile string
	Log     io.Writer
	Topics  *topics.File

	// Kafka is BENCH_KAFKA: kfake (the default) or apache, which runs
	// the compareGroups a second time on an Apache Kafka broker from
	// KafkaLibs (WANOTIFY_KAFKA_LIBS) and pairs the figures.
	Kafka     string
	KafkaLibs string
	apache    *apacheBroker
	onApache  bool // the Apache pass is running: NewCluster uses apache
}

// LoadConfig reads the environment.
func LoadConfig(root string, log io.Writer) (*Config, error) {
	c := &Config{Root: root, Log: log, Runs: 3}
	c.Quick = os.Getenv(EnvQuick) == "1"
	if c.Quick {
		c.Runs = 1
	}
	if v := os.Getenv(EnvRuns); v != "" {
		var n int
		if _, err := fmt.Sscan(v, &n); err != nil || n < 1 || n > 20 {
			return nil, fmt.Errorf("%s: %q is not a number from 1 to 20", EnvRuns, v)
		}
		c.Runs = n
	}
	if v := strings.TrimSpace(os.Getenv(EnvOnly)); v != "" {
		c.Only = map[string]bool{}
		for _, g := range strings.Split(v, ",") {
			g = strings.TrimSpace(g)
			if !contains(Groups, g) {
				return nil, fmt.Errorf("%s: unknown group %q (groups: %s)", EnvOnly, g, strings.Join(Groups, ", "))
			}
			c.Only[g] = true
		}
	}
	c.Profile = os.Getenv(EnvProfile)
	c.Kafka, c.KafkaLibs = os.Getenv(EnvKafka), os.Getenv("WANOTIFY_KAFKA_LIBS")
	switch c.Kafka {
	case "", KafkaKfake:
		c.Kafka = KafkaKfake
	case KafkaApache:
		if c.KafkaLibs == "" {
			return nil, fmt.Errorf("%s=apache: WANOTIFY_KAFKA_LIBS is required (scripts/fetch-kafka.sh | tail -n1; make bench KAFKA=apache sets it)", EnvKafka)
		}
	default:
		return nil, fmt.Errorf("%s: %q is neither %s nor %s", EnvKafka, c.Kafka, KafkaKfake, KafkaApache)
	}

	e := config.New(os.LookupEnv, nil)
	c.kafka = kafkaconf.Load(e, "wanotify-bench")
	if _, set := os.LookupEnv("WANOTIFY_KAFKA_BROKERS"); set {
		c.ExternalKafka = true
		if c.Kafka == KafkaApache {
			return nil, fmt.Errorf("%s=apache compares kfake with an Apache Kafka broker of the harness's own: unset WANOTIFY_KAFKA_BROKERS", EnvKafka)
		}
		if os.Getenv(EnvResetTopics) != "1" {
			return nil, fmt.Errorf("WANOTIFY_KAFKA_BROKERS names a cluster: every run deletes and recreates the wanotify topics there, so set %s=1 to confirm (use a cluster dedicated to benchmarks)", EnvResetTopics)
		}
	}
	chAddr, chExternal := os.Getenv("WANOTIFY_CLICKHOUSE_ADDR"), true
	if chAddr == "" {
		chAddr, chExternal = os.Getenv(envTestCH), false
	}
	if chAddr != "" {
		ce := config.New(func(k string) (string, bool) {
			if k == "WANOTIFY_CLICKHOUSE_ADDR" {
				return chAddr, true
			}
			return os.LookupEnv(k)
		}, nil)
		cc := chconf.Load(ce)
		if err := errors.Join(cc.Validate(), ce.Err()); err != nil {
			return nil, err
		}
		opts, err := cc.Options()
		if err != nil {
			return nil, err
		}
		// The harness names a database on every connection itself. A
		// native handshake naming a database that does not exist aborts the
		// local server (chdb 26.7.2.1), so never default to one.
		opts.Auth.Database = "default"
		c.CH, c.CHAddr, c.CHExternal = opts, chAddr, chExternal
	}
	if err := errors.Join(c.kafka.Validate(), e.Err()); err != nil {
		return nil, err
	}
	f, err := topics.Load(filepath.Join(root, "topics.yaml"))
	if err != nil {
		return nil, err
	}
	c.Topics = f
	if p, err := exec.LookPath("wrk"); err == nil {
		c.Wrk = p
	}
	return c, nil
}

// Selected reports whether group g is to run.
func (c *Config) Selected(g string) bool { return c.Only == nil || c.Only[g] }

func (c *Config) logf(format string, args ...any) {
	fmt.Fprintf(c.Log, "bench: "+format+"\n", args...)
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// Cluster is the Kafka side of one run: a fresh broker process (or the
// external cluster with its topics recreated) with every topic of
// topics.yaml, and a client for the harness.
type Cluster struct {
	Brokers []string
	Client  *kgo.Client
	Adm     *kadm.Client
	proc    *Proc
	cfg     *Config
	// apache: this run is on the harness's Apache Kafka broker.
	apache bool
}

// NewCluster starts a broker (or resets the external cluster's topics) and
// creates the topics.
func (c *Config) NewCluster(ctx context.Context) (*Cluster, error) {
	cl := &Cluster{cfg: c}
	switch {
	case c.onApache:
		cl.Brokers, cl.apache = []string{c.apache.proc.Addr()}, true
	case c.ExternalKafka:
		cl.Brokers = c.kafka.Brokers
	default:
		addr, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		port := addr[strings.LastIndexByte(addr, ':')+1:]
		p, err := Start(c.Work, "broker", filepath.Join(c.Bin, "broker"), nil,
			"WANOTIFY_BROKER_PORT="+port, "WANOTIFY_BROKER_DATA_DIR=", "WANOTIFY_LOG_LEVEL=warn")
		if err != nil {
			return nil, err
		}
		cl.proc = p
		if err := p.WaitTCP(addr, 20*time.Second); err != nil {
			p.Stop(5 * time.Second)
			return nil, err
		}
		cl.Brokers = []string{addr}
	}
	opts, err := cl.opts()
	if err != nil {
		cl.Close()
		return nil, err
	}
	cl.Client, err = kgo.NewClient(append(opts, kgo.MetadataMinAge(100*time.Millisecond))...)
	if err != nil {
		cl.Close()
		return nil, err
	}
	cl.Adm = kadm.NewClient(cl.Client)
	if err := cl.resetTopics(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

// opts connect a client to the cluster (with the TLS and SASL settings of
// WANOTIFY_KAFKA_* for an external one).
func (cl *Cluster) opts() ([]kgo.Opt, error) {
	if !cl.cfg.ExternalKafka {
		return []kgo.Opt{kgo.SeedBrokers(cl.Brokers...)}, nil
	}
	kc := cl.cfg.kafka
	kc.Tracing = false
	return kc.Opts()
}

// NewClient is a client of the cluster with extra options.
func (cl *Cluster) NewClient(extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := cl.opts()
	if err != nil {
		return nil, err
	}
	return kgo.NewClient(append(opts, extra...)...)
}

func (cl *Cluster) resetTopics(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	f := cl.cfg.Topics
	if cl.apache {
		f = cl.cfg.apache.topics
	}
	if cl.cfg.ExternalKafka || cl.apache {
		if _, err := cl.Adm.DeleteTopics(ctx, f.Names()...); err != nil {
			return fmt.Errorf("delete topics: %w", err)
		}
		for {
			// Topics that are gone come back with UNKNOWN_TOPIC_OR_PARTITION
			// (Apache Kafka) or not at all (kfake).
			td, err := cl.Adm.ListTopics(ctx, f.Names()...)
			left := 0
			for _, d := range td {
				if d.Err == nil {
					left++
				}
			}
			if err == nil && left == 0 {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("topics not deleted in time: %w", ctx.Err())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if _, err = topics.Reconcile(ctx, cl.Adm, f, false); err == nil {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("create topics: %w", err)
}

// Env is the environment every service of this run gets.
func (cl *Cluster) Env() []string {
	return []string{
		"WANOTIFY_KAFKA_BROKERS=" + strings.Join(cl.Brokers, ","),
		"WANOTIFY_LOG_LEVEL=warn",
		"WANOTIFY_SHUTDOWN_READINESS_GRACE=0s",
		"WANOTIFY_SHUTDOWN_TIMEOUT=10s",
		"WANOTIFY_SENDERS=" + benchSenders,
	}
}

// benchSenders is the sender registry of every run: the benchmark tenant
// owns the one benchmark sender (its default) and may send anything.
var benchSenders = senders.Inline(senders.File{
	Senders: []senders.Sender{{Name: benchSender, Tenants: []string{ingestTenant}, NumberID: "100000000000002"}},
	Tenants: []senders.Tenant{{Name: ingestTenant, DefaultSender: benchSender, FreeText: true}},
})

// BrokerRSS is the broker process's peak RSS so far (0 for an external
// cluster).
func (cl *Cluster) BrokerRSS() int64 {
	if cl.apache {
		return cl.cfg.apacheRSS()
	}
	if cl.proc == nil {
		return 0
	}
	_, peak := cl.proc.RSS()
	return peak
}

// Close stops the harness's client and the broker process.
func (cl *Cluster) Close() {
	if cl.Client != nil {
		cl.Client.Close()
	}
	if cl.proc != nil {
		cl.proc.Stop(10 * time.Second)
	}
}

// Produce writes recs synchronously in chunks.
func (cl *Cluster) Produce(ctx context.Context, recs []*kgo.Record) error {
	const chunk = 5000
	for i := 0; i < len(recs); i += chunk {
		j := min(i+chunk, len(recs))
		if err := cl.Client.ProduceSync(ctx, recs[i:j]...).FirstErr(); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
	}
	return nil
}

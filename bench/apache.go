package bench

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/wanotify/wanotify/pkg/kafkalocal"
	"github.com/wanotify/wanotify/pkg/topics"
)

// Brokers of BENCH_KAFKA (make bench KAFKA=...).
const (
	KafkaKfake  = "kfake"
	KafkaApache = "apache"
)

// compareGroups are the row groups that, with BENCH_KAFKA=apache, run a
// second time on Apache Kafka right after their run on kfake: the rows
// whose figures depend most on the broker.
var compareGroups = map[string]bool{"sink": true, "dispatcher": true, "e2e": true}

// apacheBroker is the one Apache Kafka broker of a BENCH_KAFKA=apache run.
// It starts once (tens of seconds on two cores, where a kfake process
// starts in milliseconds) and serves every measurement of the Apache
// pass; each measurement deletes and recreates the topics, as against an
// external cluster.
type apacheBroker struct {
	proc    *kafkalocal.Process
	dir     string
	version string
	topics  *topics.File
}

// startApache starts the broker once; later calls return at once.
func (c *Config) startApache(ctx context.Context) error {
	if c.apache != nil {
		return nil
	}
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	dir := filepath.Join(c.Work, "apache-kafka")
	// The topics as a one-broker cluster can hold them (docs/kafka.md,
	// difference 1): Apache Kafka enforces topics.yaml's
	// min.insync.replicas=2 with acks=all, kfake does not.
	f, err := topics.Load(filepath.Join(c.Root, "topics.yaml"))
	if err != nil {
		return err
	}
	for i := range f.Topics {
		f.Topics[i].ReplicationFactor = 1
		if _, ok := f.Topics[i].Configs["min.insync.replicas"]; ok {
			f.Topics[i].Configs["min.insync.replicas"] = "1"
		}
	}
	c.logf("starting Apache Kafka (one KRaft node, %s)", c.KafkaLibs)
	began := time.Now()
	p, err := kafkalocal.Start(ctx, kafkalocal.Options{LibsDir: c.KafkaLibs, DataDir: dir, ClusterID: kafkalocal.NewClusterID(),
		Node: kafkalocal.Node{ID: 1, Port: ports[0], ControllerPort: ports[1]}})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := kafkalocal.WaitReady(rctx, []string{p.Addr()}, 1, p.Done()); err != nil {
		_ = p.Kill()
		return fmt.Errorf("apache kafka (log %s): %w", filepath.Join(dir, "broker.log"), err)
	}
	c.logf("Apache Kafka serving at %s after %s", p.Addr(), time.Since(began).Round(100*time.Millisecond))
	c.apache = &apacheBroker{proc: p, dir: dir, version: kafkaVersion(c.KafkaLibs), topics: f}
	return nil
}

// StopApache stops the Apache Kafka broker, if one was started.
func (c *Config) StopApache() {
	if c.apache != nil {
		_ = c.apache.proc.Stop(30 * time.Second)
	}
}

// kafkaVersion reads the version from the cache layout of
// scripts/fetch-kafka.sh (.../kafka-4.1.1/libs).
func kafkaVersion(libs string) string {
	v := strings.TrimPrefix(filepath.Base(filepath.Dir(filepath.Clean(libs))), "kafka-")
	if v == "" || v == "." {
		return "unknown version"
	}
	return v
}

func freePorts(n int) ([]int, error) {
	var ps []int
	for range n {
		addr, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		var p int
		if _, err := fmt.Sscan(addr[strings.LastIndexByte(addr, ':')+1:], &p); err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	if len(ps) == 2 && ps[0] == ps[1] {
		return freePorts(n)
	}
	return ps, nil
}

// apacheRSS is the Apache Kafka JVM's peak resident set.
func (c *Config) apacheRSS() int64 {
	if c.apache == nil {
		return 0
	}
	_, peak := procRSS(c.apache.proc.Pid())
	return peak
}

// onApacheSuffix marks the rows and memory figures of the Apache pass.
const onApacheSuffix = " [Apache Kafka]"

// runOnApache runs one group again on Apache Kafka and pairs its rows with
// the kfake rows of the same run.
func (b *Bench) runOnApache(ctx context.Context, name, what string, run func(context.Context) ([]Row, error), kfakeRows []Row) []Row {
	b.cfg.logf("== %s, on Apache Kafka", what)
	start := time.Now()
	if err := b.cfg.startApache(ctx); err != nil {
		b.cfg.logf("apache kafka: %v", err)
		b.rep.Warnings = append(b.rep.Warnings, "Apache Kafka did not start: "+firstLine(err.Error()))
		return []Row{{What: what + onApacheSuffix, Figure: "failed: " + firstLine(err.Error()), Verdict: NotRun}}
	}
	b.cfg.onApache, b.rep.rssSuffix = true, onApacheSuffix
	rows, err := run(ctx)
	b.cfg.onApache, b.rep.rssSuffix = false, ""
	if err != nil {
		b.cfg.logf("%s on Apache Kafka failed: %v", name, err)
		b.rep.Warnings = append(b.rep.Warnings, fmt.Sprintf("%s on Apache Kafka: %s", what, firstLine(err.Error())))
		rows = append(rows, Row{What: what, Figure: "failed: " + firstLine(err.Error()), Verdict: NotRun})
	}
	for i := range rows {
		rows[i].What += onApacheSuffix
	}
	b.rep.compare(kfakeRows, rows)
	b.cfg.logf("%s on Apache Kafka took %s", name, time.Since(start).Round(time.Second))
	return rows
}

// Comparison is one figure measured on both brokers in the same run.
type Comparison struct {
	What, Kfake, Apache, Ratio string
}

// compare pairs the rows of a group's two passes by position (a group
// returns its rows in a fixed order) and keeps those with a headline
// value on both sides.
func (r *Report) compare(kfake, apache []Row) {
	for i := range min(len(kfake), len(apache)) {
		k, a := kfake[i], apache[i]
		if k.Value <= 0 || a.Value <= 0 || math.IsNaN(k.Value) || math.IsNaN(a.Value) {
			continue
		}
		better := "higher is better"
		if k.LowerIsBetter {
			better = "lower is better"
		}
		r.Compare = append(r.Compare, Comparison{What: k.What, Kfake: k.Figure, Apache: a.Figure,
			Ratio: fmt.Sprintf("%.2f× (%s %s)", a.Value/k.Value, k.ValueName, better)})
	}
}

// CompareTable renders the comparisons (empty without any).
func (r *Report) CompareTable() string {
	if len(r.Compare) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("| what | kfake | Apache Kafka | Apache Kafka ÷ kfake |\n")
	b.WriteString("|---|---|---|---|\n")
	for _, c := range r.Compare {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", c.What, c.Kfake, c.Apache, c.Ratio)
	}
	return b.String()
}

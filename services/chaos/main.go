// Command chaos runs the reliability scenario of package chaos against the
// binaries `make build` wrote to bin/ (`make chaos`): the whole pipeline
// as separate processes, N notifications published while dispatchers,
// ClickHouse and the broker are killed with SIGKILL and the provider goes
// down, then a table of invariants checked against the simulator's
// ledger, the topics and ClickHouse. It exits 1 when an invariant fails
// and 2 when the scenario could not run.
//
//	chaos [-n 50000] [-duration 4m] [-seed 1] [-short] [-bin-dir bin]
//	      [-work-dir DIR] [-keep] [-ch-lib PATH] [-topics topics.yaml]
//	      [-kafka kfake|apache|apache-cluster] [-kafka-libs DIR]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wanotify/wanotify/pkg/chaos"
	"github.com/wanotify/wanotify/pkg/chlocal"
)

func main() { os.Exit(run()) }

func run() int {
	full := chaos.Full()
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	short := fs.Bool("short", false, "the short scenario of make test (5,000 notifications, short retry delays, 5 s outage); -n and -duration still apply")
	n := fs.Int("n", full.N, "notifications to publish")
	duration := fs.Duration("duration", full.Duration, "how long publishing, and the faults, are spread over")
	seed := fs.Uint64("seed", full.Seed, "seed of every random choice")
	settle := fs.Duration("settle-timeout", full.SettleTimeout, "longest wait after publishing for everything to reach its terminal state")
	binDir := fs.String("bin-dir", "bin", "where make build put the service binaries")
	workDir := fs.String("work-dir", "", "data directories and logs (default: a new temporary directory, removed after a passing run)")
	keep := fs.Bool("keep", false, "keep the work directory after a passing run")
	lib := fs.String("ch-lib", envOr("WANOTIFY_CH_LIB", chlocal.DefaultLibPath()), "libchdb.so (scripts/fetch-clickhouse.sh | tail -n1; env WANOTIFY_CH_LIB)")
	topicsFile := fs.String("topics", "topics.yaml", "the topics file")
	kafka := fs.String("kafka", envOr("KAFKA", chaos.KafkaKfake), "the broker to run and kill: kfake, apache (one broker) or apache-cluster (three nodes, the leading one killed) (env KAFKA)")
	kafkaLibs := fs.String("kafka-libs", os.Getenv("WANOTIFY_KAFKA_LIBS"), "Apache Kafka's jars for -kafka apache and apache-cluster (scripts/fetch-kafka.sh | tail -n1; env WANOTIFY_KAFKA_LIBS)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg := full
	if *short {
		cfg = chaos.Short()
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !*short || set["n"] {
		cfg.N = *n
	}
	if !*short || set["duration"] {
		cfg.Duration = *duration
	}
	if !*short || set["settle-timeout"] {
		cfg.SettleTimeout = *settle
	}
	if *kafka == chaos.KafkaApacheCluster && !set["settle-timeout"] {
		// Every status webhook is an acks=all write to three replicas:
		// on two shared cores the backlog of a full run drains at a
		// few hundred a second, well past the 10 minutes one broker
		// needs.
		cfg.SettleTimeout = max(cfg.SettleTimeout, 30*time.Minute)
	}
	cfg.Seed = *seed
	cfg.Launcher = chaos.BinDir(*binDir)
	cfg.ClickHouseLib = *lib
	cfg.TopicsFile = *topicsFile
	cfg.Kafka = *kafka
	cfg.KafkaLibs = *kafkaLibs
	cfg.Out = os.Stdout

	tmp := *workDir == ""
	if tmp {
		d, err := os.MkdirTemp("", "wanotify-chaos-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			return 2
		}
		*workDir = d
	}
	cfg.WorkDir = *workDir

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("chaos: N=%d duration=%s seed=%d retry delays=%v outage=%s kafka=%s\n", cfg.N, cfg.Duration, cfg.Seed, cfg.RetryDelays, cfg.Outage, cfg.Kafka)
	start := time.Now()
	report, err := chaos.Run(ctx, cfg)
	if report != nil {
		fmt.Println()
		report.Write(os.Stdout)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos: %v (work directory kept: %s)\n", err, cfg.WorkDir)
		return 2
	}
	if !report.OK() {
		fmt.Fprintf(os.Stderr, "chaos: invariants failed after %s (work directory kept: %s)\n", time.Since(start).Round(time.Second), cfg.WorkDir)
		return 1
	}
	if tmp && !*keep {
		_ = os.RemoveAll(cfg.WorkDir)
	} else {
		fmt.Printf("work directory: %s\n", cfg.WorkDir)
	}
	return 0
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

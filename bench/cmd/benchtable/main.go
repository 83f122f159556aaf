// Command benchtable runs wanotify's benchmarks (`make bench`): every row
// of the table next to its baseline from the same run, printed and written
// to BENCHMARKS.md with the machine description and the command.
//
//	go run ./bench/cmd/benchtable              # full run (about 15 minutes on 2 cores)
//	BENCH_QUICK=1 go run ./bench/cmd/benchtable   # smoke run, writes no report
//	BENCH_ONLY=ingest,webhook ...                 # some row groups only
//	BENCH_KAFKA=apache WANOTIFY_KAFKA_LIBS=... ...   # also the sink, dispatcher and
//	                                              # end-to-end rows on Apache Kafka (make bench KAFKA=apache)
//
// The sink rows need ClickHouse: run through scripts/with-clickhouse.sh
// (as `make bench` does) or set WANOTIFY_CLICKHOUSE_ADDR. Setting
// WANOTIFY_KAFKA_BROKERS (with BENCH_RESET_TOPICS=1) runs against a real
// Kafka cluster instead of a local broker process.
//
// The same binary also serves as the bare baselines and, with
// BENCH_PROFILE, as the profiled services (-role).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/wanotify/wanotify/bench"
	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/dispatcher"
	"github.com/wanotify/wanotify/pkg/ingest"
	"github.com/wanotify/wanotify/pkg/kafkaconf"
	"github.com/wanotify/wanotify/pkg/provider/xpressbot"
	"github.com/wanotify/wanotify/pkg/service"
	"github.com/wanotify/wanotify/pkg/sink"
	"github.com/wanotify/wanotify/pkg/webhook"
)

func main() {
	role := flag.String("role", "", "run as a baseline or profiled service instead: bare-ingest, bare-webhook, bare-relay, service")
	addr := flag.String("addr", "", "listen address (bare-ingest, bare-webhook)")
	path := flag.String("path", "/", "webhook path (bare-webhook)")
	sendURL := flag.String("send-url", "", "provider send endpoint (bare-relay)")
	conc := flag.Int("concurrency", 512, "provider calls in flight (bare-relay)")
	svc := flag.String("service", "", "service to run with a CPU profile (role service)")
	flag.Parse()
	if *role != "" {
		os.Exit(runRole(*role, *addr, *path, *sendURL, *conc, *svc))
	}
	os.Exit(run())
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := bench.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	cfg, err := bench.LoadConfig(root, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	if cfg.Wrk == "" {
		fmt.Fprintln(os.Stderr, "bench: wrk is not installed (Debian: apt-get install -y wrk); the maximum-throughput rows use the harness's Go load generator instead")
	}
	if cfg.CH == nil {
		fmt.Fprintln(os.Stderr, "bench: no ClickHouse (run through scripts/with-clickhouse.sh, as `make bench` does, or set WANOTIFY_CLICKHOUSE_ADDR): the sink rows will not run")
	}
	work, err := os.MkdirTemp("", "wanotify-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	keep := os.Getenv(bench.EnvKeepLogs) == "1"
	defer func() {
		if keep {
			fmt.Fprintln(os.Stderr, "bench: process logs kept in", work)
			return
		}
		os.RemoveAll(work)
	}()
	cfg.Work, cfg.Bin = work, filepath.Join(work, "bin")
	if cfg.Self, err = os.Executable(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if cfg.Profile != "" {
		if err := os.MkdirAll(cfg.Profile, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
	}
	fmt.Fprintln(os.Stderr, "bench: building the services")
	if err := bench.Build(ctx, root, cfg.Bin, "./services/broker", "./services/ingest", "./services/webhook",
		"./services/sink", "./services/dispatcher", "./services/simulator"); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}

	rep := &bench.Report{Started: time.Now(), Command: command(cfg)}
	rep.Mode = fmt.Sprintf("%d run(s) per row", cfg.Runs)
	if cfg.Quick {
		rep.Mode = "quick mode (BENCH_QUICK=1): one short run per row, smaller backlogs"
	}
	rep.Machine = bench.DescribeMachine(cfg, clickhouseVersion(ctx, cfg.CH))
	bench.New(cfg, rep).Run(ctx)
	cfg.StopApache()
	// Read when the report is written, so the analysis can follow the run.
	if b, err := os.ReadFile(filepath.Join(root, "bench", "findings.md")); err == nil {
		rep.Findings = string(b)
	}
	rep.AddMemoryRows()
	rep.Elapsed = time.Since(rep.Started)
	rep.Machine = append(rep.Machine, "load average when the run ended: "+bench.LoadAverage())

	fmt.Println()
	fmt.Print(rep.Table())
	if t := rep.CompareTable(); t != "" {
		fmt.Println()
		fmt.Print(t)
	}
	out := os.Getenv(bench.EnvOut)
	if out == "" && !cfg.Quick && cfg.Only == nil {
		out = filepath.Join(root, "BENCHMARKS.md")
	}
	if out != "" {
		if err := os.WriteFile(out, []byte(rep.Markdown()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "bench: wrote", out)
	} else {
		fmt.Fprintf(os.Stderr, "bench: no report written (quick or partial run; set %s=path to write one)\n", bench.EnvOut)
	}
	if ctx.Err() != nil {
		return 130
	}
	return 0
}

// command is how this run was started, for the report.
func command(cfg *bench.Config) string {
	var env []string
	for _, k := range []string{bench.EnvQuick, bench.EnvRuns, bench.EnvOnly, "WANOTIFY_KAFKA_BROKERS", "WANOTIFY_CLICKHOUSE_ADDR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	c := "make bench"
	if cfg.Kafka == bench.KafkaApache {
		c += " KAFKA=apache"
	}
	if len(env) > 0 {
		c = strings.Join(env, " ") + " " + c
	}
	return c + " (bash scripts/with-clickhouse.sh go run ./bench/cmd/benchtable)"
}

func clickhouseVersion(ctx context.Context, opts *clickhouse.Options) string {
	if opts == nil {
		return ""
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return "unknown version"
	}
	defer conn.Close()
	var v string
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return "unknown version"
	}
	return "ClickHouse " + v
}

func runRole(role, addr, path, sendURL string, conc int, svc string) int {
	if role == "service" {
		return runProfiled(svc)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := config.New(os.LookupEnv, nil)
	kc := kafkaconf.Load(e, "wanotify-bench-"+role)
	kc.Tracing = false
	// The provider key comes from the environment, as the dispatcher's
	// does: a flag would show it in ps.
	apiKey := e.Secret(xpressbot.EnvAPIKey, "provider API key (bare-relay)")
	opts, err := kc.Opts()
	if err != nil {
		fmt.Fprintln(os.Stderr, role+":", err)
		return 2
	}
	if path := os.Getenv("BENCH_PROFILE_FILE"); path != "" {
		stopProfile, err := startProfile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, role+":", err)
			return 2
		}
		defer stopProfile()
	}
	switch role {
	case "bare-ingest":
		err = bench.ServeBareIngest(ctx, addr, opts)
	case "bare-webhook":
		err = bench.ServeBareWebhook(ctx, addr, path, opts)
	case "bare-relay":
		err = bench.RunBareRelay(ctx, opts, sendURL, apiKey, conc)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, role+":", err)
		return 1
	}
	return 0
}

// runProfiled runs a service the way its main does, with a CPU profile
// written to BENCH_PROFILE_FILE when it stops.
func runProfiled(name string) int {
	var configure service.Configure
	opts := service.Options{}
	switch name {
	case "ingest":
		configure = func(e *config.Env) (service.Body, error) {
			c := ingest.Load(e)
			if err := c.Validate(); err != nil {
				return nil, err
			}
			return func(ctx context.Context, rt *service.Runtime) error { return ingest.Run(ctx, rt, c, nil) }, nil
		}
		opts.GCPercent, opts.DefaultAdminAddr = ingest.GCPercent, ingest.DefaultAdminAddr
	case "webhook":
		configure, opts.GCPercent, opts.DefaultAdminAddr = webhook.Configure, webhook.GCPercent, webhook.DefaultAdminAddr
	case "sink":
		configure, opts.DefaultAdminAddr = sink.Configure, sink.DefaultAdminAddr
	case "dispatcher":
		configure, opts.DefaultAdminAddr = dispatcher.Configure, "127.0.0.1:9464"
	default:
		fmt.Fprintf(os.Stderr, "no service %q to profile\n", name)
		return 2
	}
	stopProfile, err := startProfile(os.Getenv("BENCH_PROFILE_FILE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return 2
	}
	defer stopProfile()
	service.ApplyRuntimeDefaults(opts.GCPercent)
	return service.Run(context.Background(), name, config.New(os.LookupEnv, nil), configure, opts, nil)
}

// startProfile writes a CPU profile to path until the returned function
// is called.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// Command wanotify-kafka runs an Apache Kafka broker (KRaft, broker and
// controller in one JVM) for tests, benchmarks and the local stack, from the
// jars scripts/fetch-kafka.sh gathers from Maven Central. It is not used in
// production, where wanotify talks to a real Kafka cluster. See package
// pkg/kafkalocal for how it works.
//
// Flags:
//
//	-libs             the broker's class path directory (scripts/fetch-kafka.sh prints it)
//	-data-dir         configuration, log and KRaft storage (formatted on the first start)
//	-port             client port on 127.0.0.1
//	-controller-port  KRaft controller port on 127.0.0.1
//	-heap             JVM heap (default 768m)
//	-parent-pid       stop (as on SIGTERM) when this process, our parent, exits
//	-start-timeout    how long the broker may take to answer metadata
//
// Once the broker answers metadata it prints one line on standard output:
//
//	kafka ready 127.0.0.1:9092 pid=<JVM pid>
//
// SIGTERM or SIGINT stops the broker cleanly (controlled shutdown; killed
// after -stop-timeout); SIGHUP is ignored. If this launcher is killed, the
// kernel kills the JVM too. The JVM's own log is <data-dir>/broker.log.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wanotify/wanotify/pkg/kafkalocal"
)

func main() {
	os.Exit(run())
}

func run() int {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("service", "wanotify-kafka")

	fs := flag.NewFlagSet("wanotify-kafka", flag.ContinueOnError)
	libs := fs.String("libs", os.Getenv("WANOTIFY_KAFKA_LIBS"), "the broker's class path directory (env WANOTIFY_KAFKA_LIBS)")
	dataDir := fs.String("data-dir", "./.data/kafka", "configuration, log and KRaft storage")
	port := fs.Int("port", 9092, "client port on 127.0.0.1")
	cport := fs.Int("controller-port", 9093, "KRaft controller port on 127.0.0.1")
	heap := fs.String("heap", "768m", "JVM heap (-Xmx)")
	parentPID := fs.Int("parent-pid", 0, "if set, stop when this process (which must be our parent) exits, even if it is killed")
	startTimeout := fs.Duration("start-timeout", 120*time.Second, "how long the broker may take to answer metadata")
	stopTimeout := fs.Duration("stop-timeout", 30*time.Second, "how long a clean stop may take before the JVM is killed")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}

	if *parentPID > 0 {
		// The kernel sends SIGTERM when the parent exits, however it ends.
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0, 0, 0); err != nil {
			log.Error("cannot follow the parent process", "error", err.Error())
			return 1
		}
		if ppid := os.Getppid(); ppid != *parentPID {
			log.Error("parent process is gone", "parent_pid", *parentPID, "ppid", ppid)
			return 1
		}
	}
	signal.Ignore(syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	// The cluster id is kept with the data, so a restart on the same
	// directory finds the id its storage was formatted with.
	idFile := *dataDir + "/cluster.id"
	id, err := os.ReadFile(idFile)
	if err != nil {
		id = []byte(kafkalocal.NewClusterID())
		if err := os.MkdirAll(*dataDir, 0o755); err == nil {
			err = os.WriteFile(idFile, id, 0o644)
		}
	}
	opts := kafkalocal.Options{
		LibsDir:   *libs,
		DataDir:   *dataDir,
		ClusterID: string(id),
		Node:      kafkalocal.Node{ID: 1, Port: *port, ControllerPort: *cport},
		Heap:      *heap,
		Logger:    log,
	}
	p, err := kafkalocal.Start(ctx, opts)
	if err != nil {
		log.Error("kafka failed to start", "error", err.Error())
		return 1
	}
	rctx, cancel := context.WithTimeout(ctx, *startTimeout)
	err = kafkalocal.WaitReady(rctx, []string{p.Addr()}, 1, p.Done())
	cancel()
	if err != nil {
		log.Error("kafka not ready", "error", err.Error(), "log", opts.LogPath())
		_ = p.Stop(*stopTimeout)
		return 1
	}
	fmt.Printf("kafka ready %s pid=%d\n", p.Addr(), p.Pid())

	select {
	case <-ctx.Done():
		stop() // a second signal ends the launcher at once (and, with it, the JVM)
		log.Info("stopping kafka", "pid", p.Pid())
		if err := p.Stop(*stopTimeout); err != nil {
			log.Error("kafka stop", "error", err.Error())
			return 1
		}
		return 0
	case <-p.Done():
		log.Error("kafka exited on its own", "error", fmt.Sprint(p.Err()), "log", opts.LogPath())
		return 1
	}
}

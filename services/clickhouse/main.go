// Command wanotify-clickhouse runs a real ClickHouse server (26.7) for local
// development and tests, from the libchdb.so that scripts/fetch-clickhouse.sh
// downloads. It is not used in production, where wanotify talks to a real
// ClickHouse cluster. See package pkg/chlocal for how it works.
//
// Configuration (flags override environment variables):
//
//	-lib       WANOTIFY_CH_LIB        path to libchdb.so (default: the fetch script's cache path)
//	-data-dir  WANOTIFY_CH_DATA_DIR   data directory (default ./.data/clickhouse)
//	-tcp-port  WANOTIFY_CH_TCP_PORT   native protocol port (default 9000)
//	-http-port WANOTIFY_CH_HTTP_PORT  HTTP interface port (default 8123)
//	-parent-pid                       stop (as on SIGTERM) when this process, our parent, exits
//
// Once both listeners answer it prints one line on standard output:
//
//	clickhouse ready tcp=127.0.0.1:9000 http=127.0.0.1:8123
//
// SIGTERM or SIGINT stops the server cleanly (a second one kills at once);
// SIGHUP is ignored so that the server outlives the shell that started it.
// Logs are JSON on standard error.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/wanotify/wanotify/pkg/chlocal"
)

func main() {
	os.Exit(run())
}

func run() int {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("service", "wanotify-clickhouse")
	slog.SetDefault(log)

	fs := flag.NewFlagSet("wanotify-clickhouse", flag.ContinueOnError)
	lib := fs.String("lib", envString("WANOTIFY_CH_LIB", chlocal.DefaultLibPath()), "path to libchdb.so (env WANOTIFY_CH_LIB)")
	dataDir := fs.String("data-dir", envString("WANOTIFY_CH_DATA_DIR", "./.data/clickhouse"), "data directory (env WANOTIFY_CH_DATA_DIR)")
	tcpPort := fs.Int("tcp-port", 9000, "native protocol port (env WANOTIFY_CH_TCP_PORT)")
	httpPort := fs.Int("http-port", 8123, "HTTP interface port (env WANOTIFY_CH_HTTP_PORT)")
	parentPID := fs.Int("parent-pid", 0, "if set, stop when this process (which must be our parent) exits, even if it is killed")
	for _, e := range []struct {
		env string
		dst *int
	}{{"WANOTIFY_CH_TCP_PORT", tcpPort}, {"WANOTIFY_CH_HTTP_PORT", httpPort}} {
		if v := os.Getenv(e.env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				log.Error("invalid environment variable", "name", e.env, "value", v)
				return 2
			}
			*e.dst = n
		}
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}

	opts := chlocal.Options{
		LibPath:  *lib,
		DataDir:  *dataDir,
		TCPPort:  *tcpPort,
		HTTPPort: *httpPort,
		Logger:   log,
		OnReady: func(tcpAddr, httpAddr string) {
			fmt.Printf("clickhouse ready tcp=%s http=%s\n", tcpAddr, httpAddr)
		},
	}
	if err := opts.Validate(); err != nil {
		log.Error("invalid configuration", "error", err.Error())
		return 2
	}

	if *parentPID > 0 {
		// The kernel sends SIGTERM when the parent exits, however it ends,
		// so a killed supervisor does not leave the server behind.
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0, 0, 0); err != nil {
			log.Error("cannot follow the parent process", "error", err.Error())
			return 1
		}
		if ppid := os.Getppid(); ppid != *parentPID {
			log.Error("parent process is gone", "parent_pid", *parentPID, "ppid", ppid)
			return 1
		}
	}

	// Survive the hang-up of the shell or terminal that started us; the
	// supervisor (a script, make, CI) stops us with SIGTERM.
	signal.Ignore(syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	go func() {
		// After the first signal, restore default handling so a second one
		// terminates immediately.
		<-ctx.Done()
		stop()
	}()

	if err := chlocal.Run(ctx, opts); err != nil {
		log.Error("clickhouse failed", "error", err.Error())
		return 1
	}
	return 0
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

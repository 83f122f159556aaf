package chlocal

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wanotify/wanotify/pkg/testinfra"
)

func TestValidateNamesBadFields(t *testing.T) {
	lib := filepath.Join(t.TempDir(), "libchdb.so")
	if err := os.WriteFile(lib, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := Options{LibPath: lib, DataDir: t.TempDir(), TCPPort: 9000, HTTPPort: 8123}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}

	cases := []struct {
		name   string
		mutate func(*Options)
		want   []string
	}{
		{"empty lib", func(o *Options) { o.LibPath = "" }, []string{"LibPath", "fetch-clickhouse.sh"}},
		{"missing lib", func(o *Options) { o.LibPath = filepath.Join(t.TempDir(), "nope.so") }, []string{"LibPath", "nope.so"}},
		{"lib is dir", func(o *Options) { o.LibPath = t.TempDir() }, []string{"LibPath", "not a regular file"}},
		{"empty data dir", func(o *Options) { o.DataDir = "" }, []string{"DataDir"}},
		{"zero tcp port", func(o *Options) { o.TCPPort = 0 }, []string{"TCPPort"}},
		{"huge http port", func(o *Options) { o.HTTPPort = 70000 }, []string{"HTTPPort"}},
		{"same ports", func(o *Options) { o.HTTPPort = o.TCPPort }, []string{"TCPPort and HTTPPort"}},
		{"bad host", func(o *Options) { o.ListenHost = "localhost" }, []string{"ListenHost"}},
		{"negative timeout", func(o *Options) { o.StopTimeout = -time.Second }, []string{"StopTimeout"}},
		{"several at once", func(o *Options) { o.DataDir = ""; o.TCPPort = -1; o.HTTPPort = 0 },
			[]string{"DataDir", "TCPPort", "HTTPPort"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.mutate(&o)
			err := o.Validate()
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
		})
	}
}

func TestRunRejectsInvalidOptions(t *testing.T) {
	err := Run(context.Background(), Options{})
	if err == nil || !strings.Contains(err.Error(), "LibPath") {
		t.Fatalf("Run(empty options) = %v, want a LibPath error", err)
	}
	if started.Load() {
		t.Fatal("invalid options must not use up the process's single Run")
	}
}

func TestDefaultLibPath(t *testing.T) {
	t.Setenv("WANOTIFY_CACHE", "/c")
	if got, want := DefaultLibPath(), "/c/chdb-"+LibVersion+"/libchdb.so"; got != want {
		t.Errorf("DefaultLibPath() = %q, want %q", got, want)
	}
	t.Setenv("WANOTIFY_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/x")
	if got, want := DefaultLibPath(), "/x/wanotify/chdb-"+LibVersion+"/libchdb.so"; got != want {
		t.Errorf("DefaultLibPath() = %q, want %q", got, want)
	}
}

func TestEscapeStripper(t *testing.T) {
	in := "\x1b[?2004h\x1b[?2004lBye.\n\x1b]0;title\x07plain \x1b[1;31mred\x1b[0m\n\x1b]8;;x\x1b\\link\x1b(B"
	want := "Bye.\nplain red\nlink"
	// Feed one byte at a time: the state must survive split sequences.
	var out bytes.Buffer
	s := &escapeStripper{w: &out}
	for i := range len(in) {
		if _, err := s.Write([]byte{in[i]}); err != nil {
			t.Fatal(err)
		}
	}
	if out.String() != want {
		t.Errorf("stripped = %q, want %q", out.String(), want)
	}
}

func TestEscapeStripperKeepsDrainingAfterWriteError(t *testing.T) {
	s := &escapeStripper{w: failingWriter{}}
	for range 3 {
		if n, err := s.Write([]byte("hello\n")); err != nil || n != 6 {
			t.Fatalf("Write = %d, %v; want 6, nil", n, err)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestCheckPortFree(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := checkPortFree(l.Addr().String()); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("checkPortFree(busy) = %v, want EADDRINUSE", err)
	}
}

func TestWaitReadyHonoursContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := WaitReady(ctx, freeAddr(t))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReady(nothing listening) = %v, want DeadlineExceeded", err)
	}
}

// helperEnv makes the test binary act as a server process for
// TestRunServesAndStops (see TestHelperServer).
const helperEnv = "WANOTIFY_CHLOCAL_TEST_HELPER"

// TestRunServesAndStops starts the real library in a child process (the test
// binary re-executed as TestHelperServer), queries it over HTTP and native
// TCP, stops it with SIGTERM and checks Run returned cleanly. A child keeps
// this test binary safe from the library's process-wide state. It needs
// WANOTIFY_CH_LIB, which scripts/with-clickhouse.sh exports.
func TestRunServesAndStops(t *testing.T) {
	lib := os.Getenv("WANOTIFY_CH_LIB")
	if lib == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("WANOTIFY_CH_LIB is not set; in CI run the tests through scripts/with-clickhouse.sh (make test)")
		}
		t.Skip("set WANOTIFY_CH_LIB or run via make test")
	}
	tcpPort, httpPort := freePort(t), freePort(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServer$", "-test.v")
	cmd.Env = append(os.Environ(),
		helperEnv+"=1",
		"HELPER_DATA_DIR="+t.TempDir(),
		"HELPER_TCP_PORT="+strconv.Itoa(tcpPort),
		"HELPER_HTTP_PORT="+strconv.Itoa(httpPort),
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	var seen []string
	waitLine := func(prefix string, timeout time.Duration) string {
		t.Helper()
		deadline := time.After(timeout)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("helper ended before %q; stdout:\n%s\nstderr:\n%s", prefix, strings.Join(seen, "\n"), stderr.String())
				}
				seen = append(seen, l)
				if strings.HasPrefix(l, prefix) {
					return l
				}
			case <-deadline:
				t.Fatalf("no %q from helper within %s; stdout:\n%s", prefix, timeout, strings.Join(seen, "\n"))
			}
		}
	}

	ready := waitLine("HELPER READY ", DefaultStartTimeout+10*time.Second)
	t.Logf("%s after %s", ready, time.Since(start))
	httpAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort))
	if got, want := ready, "HELPER READY tcp=127.0.0.1:"+strconv.Itoa(tcpPort)+" http="+httpAddr; got != want {
		t.Errorf("ready line = %q, want %q", got, want)
	}

	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + httpAddr + "/?query=" + url.QueryEscape("SELECT version()"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Leave no connection open: the server would wait for it when stopping.
	client.CloseIdleConnections()
	if v := strings.TrimSpace(string(body)); !strings.HasPrefix(v, "26.7.") {
		t.Errorf("version() = %q, want 26.7.x", v)
	}
	if l := waitLine("HELPER SECOND_RUN ", 5*time.Second); l != "HELPER SECOND_RUN already-started" {
		t.Errorf("second Run in the same process: %q", l)
	}

	stopAt := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if l := waitLine("HELPER STOPPED ", DefaultStopTimeout+10*time.Second); l != "HELPER STOPPED err=<nil> stdin-restored=true" {
		t.Errorf("stop: %q", l)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("helper exit: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("helper did not exit after stopping")
	}
	t.Logf("stopped and exited %s after SIGTERM", time.Since(stopAt))
	if c, err := net.DialTimeout("tcp", httpAddr, time.Second); err == nil {
		c.Close()
		t.Error("HTTP port still accepts connections after the helper exited")
	}
	if all := strings.Join(seen, "\n") + stderr.String(); strings.Contains(all, "\x1b") {
		t.Errorf("escape codes leaked into the helper's output: %q", all)
	}
}

// TestHelperServer is the child process of TestRunServesAndStops; it does
// nothing in a normal test run.
func TestHelperServer(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process for TestRunServesAndStops")
	}
	var before unix.Stat_t
	if err := unix.Fstat(0, &before); err != nil {
		t.Fatalf("fstat stdin: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	tcpPort, _ := strconv.Atoi(os.Getenv("HELPER_TCP_PORT"))
	httpPort, _ := strconv.Atoi(os.Getenv("HELPER_HTTP_PORT"))
	opts := Options{
		LibPath:  os.Getenv("WANOTIFY_CH_LIB"),
		DataDir:  os.Getenv("HELPER_DATA_DIR"),
		TCPPort:  tcpPort,
		HTTPPort: httpPort,
	}
	opts.OnReady = func(tcp, http string) {
		fmt.Printf("HELPER READY tcp=%s http=%s\n", tcp, http)
		second := "unexpected"
		if err := Run(ctx, opts); errors.Is(err, ErrAlreadyStarted) {
			second = "already-started"
		} else {
			second = fmt.Sprint(err)
		}
		fmt.Printf("HELPER SECOND_RUN %s\n", second)
	}
	err := Run(ctx, opts)
	var after unix.Stat_t
	restored := unix.Fstat(0, &after) == nil && before.Dev == after.Dev && before.Ino == after.Ino
	fmt.Printf("HELPER STOPPED err=%v stdin-restored=%v\n", err, restored)
}

func freePort(t testing.TB) int { return testinfra.FreePort(t) }

func freeAddr(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
}

package chlocal

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// TestRunServesAndStops starts the real library in this test process (it is
// loaded once per process), queries it, and stops it through the context.
// It needs WANOTIFY_CH_LIB, which scripts/with-clickhouse.sh exports.
func TestRunServesAndStops(t *testing.T) {
	lib := os.Getenv("WANOTIFY_CH_LIB")
	if lib == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("WANOTIFY_CH_LIB is not set; in CI run the tests through scripts/with-clickhouse.sh (make test)")
		}
		t.Skip("set WANOTIFY_CH_LIB or run via make test")
	}
	var before unix.Stat_t
	if err := unix.Fstat(0, &before); err != nil {
		t.Fatalf("fstat stdin: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan [2]string, 1)
	opts := Options{
		LibPath:  lib,
		DataDir:  t.TempDir(),
		TCPPort:  freePort(t),
		HTTPPort: freePort(t),
		OnReady:  func(tcp, http string) { ready <- [2]string{tcp, http} },
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()

	var httpAddr string
	select {
	case addrs := <-ready:
		httpAddr = addrs[1]
		t.Logf("ready in %s (tcp=%s http=%s)", time.Since(start), addrs[0], addrs[1])
	case err := <-done:
		t.Fatalf("Run returned before ready: %v", err)
	case <-time.After(DefaultStartTimeout + 5*time.Second):
		t.Fatal("Run never became ready")
	}

	if err := WaitReady(ctx, httpAddr); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	resp, err := http.Get("http://" + httpAddr + "/?query=" + url.QueryEscape("SELECT version()"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if v := strings.TrimSpace(string(body)); !strings.HasPrefix(v, "26.7.") {
		t.Errorf("version() = %q, want 26.7.x", v)
	}

	if err := Run(ctx, opts); !errors.Is(err, ErrAlreadyStarted) {
		t.Errorf("second Run = %v, want ErrAlreadyStarted", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(DefaultStopTimeout + 5*time.Second):
		t.Fatal("Run did not return after cancel")
	}

	var after unix.Stat_t
	if err := unix.Fstat(0, &after); err != nil {
		t.Fatalf("fstat stdin after Run: %v", err)
	}
	if before.Dev != after.Dev || before.Ino != after.Ino {
		t.Error("Run did not restore the original standard input on fd 0")
	}
	if _, err := net.DialTimeout("tcp", httpAddr, time.Second); err == nil {
		t.Error("HTTP port still accepts connections after Run returned")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func freeAddr(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
}

package sink

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/wanotify/wanotify/pkg/chlocal"
	"github.com/wanotify/wanotify/pkg/testinfra"
)

// chProcess is a ClickHouse server this test owns, so it can be killed and
// restarted: the launcher binary (services/clickhouse) in its own session,
// with its own data directory and ports. Only this process is ever
// signalled, by its pid.
type chProcess struct {
	t                 testing.TB
	bin, lib, dataDir string
	logPath           string
	tcpPort, httpPort int
	cmd               *exec.Cmd
	exited            chan struct{}
}

func startOwnClickHouse(t testing.TB) *chProcess {
	t.Helper()
	lib := os.Getenv("WANOTIFY_CH_LIB")
	if lib == "" {
		lib = chlocal.DefaultLibPath()
	}
	if _, err := os.Stat(lib); err != nil {
		testinfra.RequireCI(t, "ClickHouse library not found at "+lib+" (run scripts/fetch-clickhouse.sh, or the tests through scripts/with-clickhouse.sh)")
	}
	dir := t.TempDir()
	p := &chProcess{t: t, bin: buildLauncher(t, dir), lib: lib, dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "launcher.log")}
	t.Cleanup(p.stop)
	for attempt := 1; ; attempt++ {
		p.tcpPort, p.httpPort = freePort(t), freePort(t)
		err := p.start()
		if err == nil {
			return p
		}
		if attempt == 3 || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("start ClickHouse: %v", err)
		}
	}
}

// buildLauncher builds services/clickhouse into dir: a private copy, so a
// concurrent `scripts/with-clickhouse.sh` rebuilding ./bin cannot replace
// it under this test.
func buildLauncher(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "wanotify-clickhouse")
	cmd := exec.Command("go", "build", "-o", bin, "./services/clickhouse")
	cmd.Dir = testinfra.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the ClickHouse launcher: %v\n%s", err, out)
	}
	return bin
}

func freePort(t testing.TB) int { return testinfra.FreePort(t) }

func (p *chProcess) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.tcpPort)) }

func (p *chProcess) options(database string) *clickhouse.Options {
	return &clickhouse.Options{Addr: []string{p.addr()}, Auth: clickhouse.Auth{Database: database, Username: "default"},
		DialTimeout: 2 * time.Second}
}

// start runs the launcher on p's data directory and ports and waits for
// its ready line.
func (p *chProcess) start() error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(p.bin, "-lib", p.lib, "-data-dir", p.dataDir,
		"-tcp-port", strconv.Itoa(p.tcpPort), "-http-port", strconv.Itoa(p.httpPort))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "clickhouse ready ") {
				close(ready)
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p.cmd, p.exited = cmd, exited
	select {
	case <-ready:
		return nil
	case <-exited:
		log, _ := os.ReadFile(p.logPath)
		return fmt.Errorf("launcher exited before it was ready: %s", lastLines(string(log), 5))
	case <-time.After(90 * time.Second):
		p.kill()
		return errors.New("launcher not ready within 90s")
	}
}

// kill stops the server the hard way (SIGKILL) and waits for it to be gone.
func (p *chProcess) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	p.cmd = nil
}

// stop stops the server cleanly, or kills it if it does not stop in time.
func (p *chProcess) stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		p.cmd = nil
	case <-time.After(30 * time.Second):
		p.t.Logf("ClickHouse %d did not stop within 30s; killing it", p.cmd.Process.Pid)
		p.kill()
	}
}

// waitUp waits until the server answers a query.
func (p *chProcess) waitUp(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := chlocal.WaitReady(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(p.httpPort))); err != nil {
		t.Fatal(err)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proc is one service running as a child process of the test binary (see
// TestMain), stopped with SIGTERM at cleanup.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	// base serves /readyz and /metrics.
	base string
	done chan error
}

// startProc starts service name with env (and nothing else of the
// test's WANOTIFY_* environment); adminAddr is where it serves /readyz
// and /metrics.
func startProc(t *testing.T, name, adminAddr string, env map[string]string) *proc {
	t.Helper()
	p := &proc{name: name, logPath: filepath.Join(t.TempDir(), name+".log"), base: "http://" + adminAddr, done: make(chan error, 1)}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(os.Args[0])
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WANOTIFY_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, serviceEnv+"="+name)
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait(); logf.Close() }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop sends SIGTERM to the process this test started (by its pid), and
// SIGKILL if it has not stopped after 20 s; on a failed test it prints
// the end of the service's log.
func (p *proc) stop(t *testing.T) {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			if err != nil {
				t.Logf("%s exited after SIGTERM: %v", p.name, err)
			}
		case <-time.After(20 * time.Second):
			t.Logf("%s did not stop within 20s of SIGTERM; killing pid %d", p.name, p.cmd.Process.Pid)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if t.Failed() {
		t.Logf("--- end of the %s log:\n%s", p.name, p.logTail(60))
	}
}

func (p *proc) logTail(lines int) string {
	b, _ := os.ReadFile(p.logPath)
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// log is the service's whole log so far.
func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// waitReady polls /readyz until it answers 200.
func (p *proc) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("%s exited before it was ready: %v\n%s", p.name, err, p.logTail(40))
		default:
		}
		resp, err := http.Get(p.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %s\n%s", p.name, timeout, p.logTail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scrape GETs /metrics.
func (p *proc) scrape(t *testing.T) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", p.name, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatalf("scrape %s: %v", p.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d %s", p.name, resp.StatusCode, b.String())
	}
	return b.Bytes()
}

// freeAddr returns a loopback address with a port free at the moment.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func must(t *testing.T, err error, what string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}

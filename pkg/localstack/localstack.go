// Package localstack supervises the whole pipeline on one machine for
// `make run`: the local broker, the ClickHouse server, topic creation, the
// provider simulator and every wanotify service, each as its own process,
// with one log stream prefixed by component, readiness printed with the
// addresses, a component that exits restarted with back-off (as an
// orchestrator would; the others keep running), and a clean stop of
// everything, in reverse order, only on Ctrl-C.
package localstack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Component is one process of the stack.
type Component struct {
	Name string
	Bin  string   // binary name in BinDir
	Args []string // extra arguments
	Env  []string // extra environment (KEY=VALUE)
	// Ready is polled until it returns nil (or ReadyTimeout passes).
	Ready        func(ctx context.Context) error
	ReadyTimeout time.Duration
	// OneShot components run to completion before the next starts.
	OneShot bool
	// Optional components are skipped when their binary is missing.
	Optional bool
	// Setsid detaches the process from the terminal's process group, so
	// Ctrl-C reaches only the supervisor, which stops it in order.
	Address string // shown in the readiness summary
	// NoRestart: when the process exits on its own the stack stops,
	// instead of restarting it.
	NoRestart bool
	// RestartNote is logged when the component is restarted: what a
	// restart costs (for example state it kept in memory).
	RestartNote string
}

// Stack is an ordered set of components.
type Stack struct {
	BinDir     string
	Components []Component
	Out        io.Writer
	StopGrace  time.Duration
	// Restart spaces the restarts of components that exit.
	Restart Backoff

	mu       sync.Mutex
	stopping bool
	running  []*proc
	started  []Component
	outMu    sync.Mutex
}

type proc struct {
	c       Component
	cmd     *exec.Cmd
	done    chan error
	started time.Time
}

// ErrComponentDied is returned when a long-running component marked
// NoRestart exits on its own.
var ErrComponentDied = errors.New("component exited")

// Run starts every component in order and supervises them until ctx is
// cancelled, restarting any that exits (see supervise); then it stops them
// in reverse order. It returns early with an error when a component fails
// to start or to become ready, or a NoRestart component exits.
func (s *Stack) Run(ctx context.Context) error {
	if s.Out == nil {
		s.Out = os.Stdout
	}
	if s.StopGrace == 0 {
		s.StopGrace = 20 * time.Second
	}
	died := make(chan string, len(s.Components))
	defer s.stopAll()
	// Supervisors stop before stopAll runs (deferred calls run last in,
	// first out), also when Run returns with an error.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, c := range s.Components {
		bin := filepath.Join(s.BinDir, c.Bin)
		if _, err := os.Stat(bin); err != nil {
			if c.Optional {
				s.logf("stack", "skipping %s: %s not built", c.Name, bin)
				continue
			}
			return fmt.Errorf("%s: %w", c.Name, err)
		}
		p, err := s.start(c, bin)
		if err != nil {
			return err
		}
		if c.OneShot {
			select {
			case err := <-p.done:
				s.forget(p)
				if err != nil {
					return fmt.Errorf("%s failed: %w", c.Name, err)
				}
				continue
			case <-ctx.Done():
				return nil
			}
		}
		if c.Ready != nil {
			if err := s.waitReady(ctx, c, p); err != nil {
				return err
			}
		}
		go s.supervise(ctx, c, bin, p, died)
		s.started = append(s.started, c)
	}
	s.summary()
	select {
	case <-ctx.Done():
		s.logf("stack", "stopping")
		return nil
	case who := <-died:
		return fmt.Errorf("%w: %s", ErrComponentDied, who)
	}
}

func (s *Stack) start(c Component, bin string) (*proc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.spawn(c, bin)
	if err != nil {
		return nil, err
	}
	s.running = append(s.running, p)
	return p, nil
}

// spawn starts c's process; the caller registers it in s.running under
// s.mu.
func (s *Stack) spawn(c Component, bin string) (*proc, error) {
	cmd := exec.Command(bin, c.Args...)
	cmd.Env = append(os.Environ(), c.Env...)
	// Own process group: the terminal's Ctrl-C goes to the supervisor
	// only, which then stops components in reverse order. The ClickHouse
	// launcher also must not receive the terminal's hang-up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", c.Name, err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.pipe(c.Name, stdout) }()
	go func() { defer wg.Done(); s.pipe(c.Name, stderr) }()
	p := &proc{c: c, cmd: cmd, done: make(chan error, 2), started: time.Now()}
	go func() {
		wg.Wait()
		p.done <- cmd.Wait()
	}()
	s.logf("stack", "started %s (pid %d)", c.Name, cmd.Process.Pid)
	return p, nil
}

func (s *Stack) forget(p *proc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, q := range s.running {
		if q == p {
			s.running = append(s.running[:i], s.running[i+1:]...)
			return
		}
	}
}

func (s *Stack) waitReady(ctx context.Context, c Component, p *proc) error {
	timeout := c.ReadyTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.Ready(rctx)
		cancel()
		if err == nil {
			s.logf("stack", "%s ready %s", c.Name, c.Address)
			return nil
		}
		select {
		case perr := <-p.done:
			p.done <- perr
			return fmt.Errorf("%s exited before it was ready: %v", c.Name, perr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %v", c.Name, timeout, err)
		}
	}
}

// stopAll sends SIGTERM to each running component in reverse start order
// and waits for it, escalating to SIGKILL after StopGrace. Only processes
// this supervisor started are signalled, by pid.
func (s *Stack) stopAll() {
	s.mu.Lock()
	s.stopping = true
	procs := append([]*proc(nil), s.running...)
	s.running = nil
	s.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		if p.cmd.ProcessState != nil {
			continue
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			s.logf("stack", "stopped %s", p.c.Name)
		case <-time.After(s.StopGrace):
			_ = p.cmd.Process.Kill()
			<-p.done
			s.logf("stack", "killed %s after %s", p.c.Name, s.StopGrace)
		}
	}
}

func (s *Stack) pipe(name string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := stripANSI(sc.Text())
		if strings.TrimSpace(line) == "" {
			continue
		}
		s.outMu.Lock()
		fmt.Fprintf(s.Out, "%-10s | %s\n", name, line)
		s.outMu.Unlock()
	}
}

func (s *Stack) logf(name, format string, args ...any) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.Out, "%-10s | %s\n", name, fmt.Sprintf(format, args...))
}

func (s *Stack) summary() {
	var b strings.Builder
	b.WriteString("wanotify is up:\n")
	for _, c := range s.started {
		if c.Address != "" {
			fmt.Fprintf(&b, "    %-12s %s\n", c.Name, c.Address)
		}
	}
	b.WriteString("    Ctrl-C stops everything")
	s.logf("stack", "%s", b.String())
}

func stripANSI(s string) string {
	if !strings.Contains(s, "\x1b") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			// skip CSI sequence ESC [ ... final byte
			if i+1 < len(s) && s[i+1] == '[' {
				i += 2
				for i < len(s) && (s[i] < 0x40 || s[i] > 0x7e) {
					i++
				}
				continue
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// TCPReady succeeds once addr accepts a connection.
func TCPReady(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

var probeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// HTTPReady succeeds once url answers 200.
func HTTPReady(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		// No keep-alive: an idle probe connection would hold up the
		// ClickHouse server's shutdown.
		resp, err := probeClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
}

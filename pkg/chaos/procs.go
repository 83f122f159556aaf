package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Roles name the components; BinDir expects a binary of each name.
const (
	RoleBroker     = "broker"
	RoleClickHouse = "clickhouse"
	RoleSimulator  = "simulator"
	RoleWebhook    = "webhook"
	RoleSink       = "sink"
	RoleDispatcher = "dispatcher"
)

// Launcher makes the command that runs one component. env is the
// component's whole environment; the launcher may add to it.
type Launcher interface {
	Command(role string, env []string) (*exec.Cmd, error)
}

// BinDir launches the binaries `go build -o DIR ./services/...` wrote to
// DIR (make build writes bin/).
type BinDir string

// Command implements Launcher.
func (d BinDir) Command(role string, env []string) (*exec.Cmd, error) {
	p := filepath.Join(string(d), role)
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("binary of %s: %w (run make build)", role, err)
	}
	cmd := exec.Command(p)
	cmd.Env = env
	return cmd, nil
}

// proc is one component and its current process. Only processes started
// here are ever signalled, by their pid.
type proc struct {
	name  string
	role  string
	env   []string
	ready func(context.Context) error
	// restart: started again when it exits on its own (as a process
	// supervisor in production would).
	restart bool

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current process exited
	expected bool          // the current process is being killed or stopped on purpose
	held     bool          // killed on purpose and kept down until start
	starts   int
	crashes  int
}

// supervisor starts, kills and restarts the components.
type supervisor struct {
	launcher Launcher
	logDir   string
	baseEnv  []string
	say      func(format string, args ...any)
	closing  atomic.Bool
	wg       sync.WaitGroup // restarts in progress

	mu    sync.Mutex
	procs []*proc
}

func newSupervisor(l Launcher, logDir string, say func(string, ...any)) *supervisor {
	var base []string
	for _, kv := range os.Environ() {
		// Nothing of the caller's wanotify configuration leaks into the
		// components: each gets exactly the stack's settings.
		if !strings.HasPrefix(kv, "WANOTIFY_") {
			base = append(base, kv)
		}
	}
	return &supervisor{launcher: l, logDir: logDir, baseEnv: base, say: say}
}

func (s *supervisor) add(p *proc) *proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.procs = append(s.procs, p)
	return p
}

// start runs p's process (its log is appended to <name>.log).
func (s *supervisor) start(p *proc) error {
	env := append(append([]string{}, s.baseEnv...), p.env...)
	cmd, err := s.launcher.Command(p.role, env)
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(s.logDir, p.name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	p.mu.Lock()
	if p.done != nil && !isClosed(p.done) {
		// Already running (a crash restart and a scheduled restart met).
		p.mu.Unlock()
		logf.Close()
		return nil
	}
	p.held = false
	p.starts++
	fmt.Fprintf(logf, "=== start %d of %s at %s ===\n", p.starts, p.name, time.Now().Format(time.RFC3339Nano))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a Ctrl-C at the terminal reaches the runner only,
	// which then stops the components itself. Pdeathsig: a runner that is
	// killed outright does not leave its components behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		logf.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.expected = cmd, done, false
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		expected := p.expected
		if !expected {
			p.crashes++
		}
		p.mu.Unlock()
		close(done)
		if expected || s.closing.Load() {
			return
		}
		s.say("%s exited on its own (%v)", p.name, err)
		if !p.restart {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			time.Sleep(time.Second)
			p.mu.Lock()
			held := p.held
			p.mu.Unlock()
			if s.closing.Load() || held {
				return
			}
			s.say("restarting %s", p.name)
			if err := s.start(p); err != nil {
				s.say("restart of %s failed: %v", p.name, err)
			}
		}()
	}()
	return nil
}

// pid is the current process id (0 when none runs).
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done != nil && !isClosed(p.done)
}

// signal sends sig to p's current process and waits up to wait for it to
// exit; it reports whether it did.
func (p *proc) signal(sig syscall.Signal, wait time.Duration) bool {
	p.mu.Lock()
	if p.cmd == nil || p.done == nil {
		p.mu.Unlock()
		return true
	}
	done := p.done
	select {
	case <-done:
		p.mu.Unlock()
		return true
	default:
	}
	p.expected = true
	_ = p.cmd.Process.Signal(sig)
	p.mu.Unlock()
	select {
	case <-done:
		return true
	case <-time.After(wait):
		return false
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL, time.Minute)
}

// killHold is kill, and keeps p down (no crash restart) until the next
// start.
func (p *proc) killHold() {
	p.mu.Lock()
	p.held = true
	p.mu.Unlock()
	p.kill()
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and, after grace, SIGKILL.
func (p *proc) stop(grace time.Duration) {
	if !p.signal(syscall.SIGTERM, grace) {
		p.kill()
	}
}

// waitReady polls p.ready until it succeeds or timeout passes.
func (p *proc) waitReady(ctx context.Context, timeout time.Duration) error {
	if p.ready == nil {
		return nil
	}
	deadline := time.Now().Add(timeout)
	var last error
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = p.ready(rctx)
		cancel()
		if last == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %w", p.name, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stopAll stops every component in reverse start order.
func (s *supervisor) stopAll(grace time.Duration) {
	s.closing.Store(true)
	s.wg.Wait()
	s.mu.Lock()
	procs := append([]*proc(nil), s.procs...)
	s.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		// The nodes of a Kafka cluster stop together: one at a time, the
		// last ones would wait out their grace for a quorum already gone.
		j := i
		for j > 0 && procs[i].role == RoleBroker && procs[j-1].role == RoleBroker {
			j--
		}
		var wg sync.WaitGroup
		for _, p := range procs[j : i+1] {
			wg.Go(func() { p.stop(grace) })
		}
		wg.Wait()
		i = j
	}
}

// crashes counts exits nobody asked for, per component name.
func (s *supervisor) crashes() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, p := range s.procs {
		p.mu.Lock()
		if p.crashes > 0 {
			out[p.name] = p.crashes
		}
		p.mu.Unlock()
	}
	return out
}

// logTail is the end of a component's log, for a failed run.
func (s *supervisor) logTail(name string, lines int) string {
	b, err := os.ReadFile(filepath.Join(s.logDir, name+".log"))
	if err != nil {
		return err.Error()
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

var errStopped = errors.New("run stopped")

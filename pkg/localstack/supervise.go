package localstack

import (
	"context"
	"fmt"
	"time"
)

// Backoff spaces the restarts of a component that keeps exiting, the way
// an orchestrator does (Kubernetes' CrashLoopBackOff): the first restart
// waits Initial, each further one twice as long up to Max, and a process
// that ran ResetAfter before it exited starts the count afresh.
type Backoff struct {
	Initial    time.Duration // default 500ms
	Max        time.Duration // default 30s
	ResetAfter time.Duration // default 1m
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = 500 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 30 * time.Second
	}
	if b.ResetAfter <= 0 {
		b.ResetAfter = time.Minute
	}
	return b
}

// supervise watches a running, ready component until ctx ends. When its
// process exits on its own it is started again after a back-off, and
// only it: the other components keep running (their clients reconnect),
// so state held in their memory, such as the simulator's ledger, stays.
// A component marked NoRestart instead reports its death on died, which
// stops the stack.
func (s *Stack) supervise(ctx context.Context, c Component, bin string, p *proc, died chan<- string) {
	b := s.Restart.withDefaults()
	delay := b.Initial
	restarts := 0
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case err = <-p.done:
			p.done <- err // stopAll waits for it too
		}
		if s.isStopping() || ctx.Err() != nil {
			return
		}
		ran := time.Since(p.started)
		if c.NoRestart {
			select {
			case died <- fmt.Sprintf("%s (%v)", c.Name, exitText(err)):
			default:
			}
			return
		}
		if ran >= b.ResetAfter {
			delay = b.Initial
		}
		restarts++
		s.logf("stack", "%s exited (%s) after %s; restart %d in %s", c.Name, exitText(err), ran.Round(time.Millisecond), restarts, delay)
		if c.RestartNote != "" {
			s.logf("stack", "%s: %s", c.Name, c.RestartNote)
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, b.Max)
			np, err := s.restart(c, bin, p)
			if err == nil {
				p = np
				break
			}
			if s.isStopping() {
				return
			}
			s.logf("stack", "restart of %s failed: %v; next try in %s", c.Name, err, delay)
		}
		if c.Ready != nil {
			s.awaitReadyAgain(ctx, c, p)
		}
	}
}

// awaitReadyAgain logs when a restarted component is ready; it gives up
// quietly when the process exits first (supervise then restarts it).
func (s *Stack) awaitReadyAgain(ctx context.Context, c Component, p *proc) {
	timeout := c.ReadyTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.Ready(rctx)
		cancel()
		if err == nil {
			s.logf("stack", "%s ready again", c.Name)
			return
		}
		select {
		case <-ctx.Done():
			return
		case perr := <-p.done:
			p.done <- perr
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	s.logf("stack", "%s not ready %s after its restart", c.Name, timeout)
}

// restart starts c again in old's place, so the stop order stays the
// start order. It refuses once the stack is stopping.
func (s *Stack) restart(c Component, bin string, old *proc) (*proc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return nil, fmt.Errorf("stack is stopping")
	}
	np, err := s.spawn(c, bin)
	if err != nil {
		return nil, err
	}
	for i, q := range s.running {
		if q == old {
			s.running[i] = np
			return np, nil
		}
	}
	s.running = append(s.running, np)
	return np, nil
}

func (s *Stack) isStopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

// PID returns the process id of the running component name, 0 when none
// runs.
func (s *Stack) PID(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.running {
		if p.c.Name == name && p.cmd.Process != nil {
			return p.cmd.Process.Pid
		}
	}
	return 0
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

package chaos

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// scripts launches each role as a shell script.
type scripts map[string]string

func (s scripts) Command(role string, env []string) (*exec.Cmd, error) {
	body, ok := s[role]
	if !ok {
		return nil, errors.New("no script for " + role)
	}
	cmd := exec.Command("/bin/sh", "-c", body)
	cmd.Env = env
	return cmd, nil
}

type lines struct {
	mu sync.Mutex
	l  []string
}

func (l *lines) say(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.l = append(l.l, format)
}

func (l *lines) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.l {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSupervisorKillsRestartsAndStopsOnlyItsOwn(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "up")
	// "svc" writes its environment's MARK into a file and sleeps; it
	// exits on SIGTERM. "flaky" dies on its own once.
	once := filepath.Join(dir, "once")
	l := scripts{
		"svc":   `trap 'echo term; exit 0' TERM; echo "$MARK" >> ` + marker + `; while true; do sleep 0.05; done`,
		"flaky": `if [ ! -e ` + once + ` ]; then touch ` + once + `; exit 3; fi; trap 'exit 0' TERM; while true; do sleep 0.05; done`,
	}
	out := &lines{}
	t.Setenv("WANOTIFY_LEAK", "must not reach the components")
	sup := newSupervisor(l, dir, out.say)
	svc := sup.add(&proc{name: "svc", role: "svc", env: []string{"MARK=one"}, restart: true,
		ready: func(context.Context) error {
			if _, err := os.Stat(marker); err != nil {
				return err
			}
			return nil
		}})
	flaky := sup.add(&proc{name: "flaky", role: "flaky", restart: true})
	defer sup.stopAll(5 * time.Second)

	if err := sup.start(svc); err != nil {
		t.Fatal(err)
	}
	if err := svc.waitReady(context.Background(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, kv := range svc.cmd.Env {
		if strings.HasPrefix(kv, "WANOTIFY_") {
			t.Errorf("component got the caller's %s", kv)
		}
	}
	// Starting what runs is a no-op, not a second process.
	pid := svc.pid()
	if err := sup.start(svc); err != nil || svc.pid() != pid {
		t.Fatalf("second start: %v, pid %d -> %d", err, pid, svc.pid())
	}

	// A kill on purpose is not restarted until asked.
	svc.killHold()
	if svc.running() {
		t.Fatal("still running after SIGKILL")
	}
	time.Sleep(1500 * time.Millisecond)
	if svc.running() {
		t.Fatal("a component killed on purpose was restarted by the crash handling")
	}
	if err := sup.start(svc); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "svc back", svc.running)

	// An exit nobody asked for is counted and restarted.
	if err := sup.start(flaky); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "flaky restarted", func() bool {
		flaky.mu.Lock()
		defer flaky.mu.Unlock()
		return flaky.starts == 2
	})
	waitFor(t, "flaky running", flaky.running)
	if c := sup.crashes(); c["flaky"] != 1 || c["svc"] != 0 {
		t.Fatalf("crashes %v, want flaky 1 and svc none", c)
	}

	sup.stopAll(5 * time.Second)
	if svc.running() || flaky.running() {
		t.Fatal("stopAll left a component running")
	}
	if !strings.Contains(sup.logTail("svc", 10), "term") {
		t.Errorf("svc was not stopped with SIGTERM:\n%s", sup.logTail("svc", 10))
	}
	if got := sup.logTail("svc", 10); strings.Count(got, "=== start") != 2 {
		t.Errorf("svc log should show 2 starts (the first and the one after the kill):\n%s", got)
	}
	if out.count("%s exited on its own") != 1 {
		t.Errorf("want one unexpected exit reported, got %d", out.count("%s exited on its own"))
	}
}

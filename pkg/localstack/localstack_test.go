package localstack

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func script(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestStartsInOrderStopsInReverseAndPrefixesLogs(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ready")
	// "a" becomes ready by creating a file; on SIGTERM it logs and exits.
	script(t, dir, "a", `trap 'echo a-term; exit 0' TERM; echo "a up"; touch `+marker+`; while true; do sleep 0.05; done`)
	script(t, dir, "once", `echo "one shot ran"`)
	script(t, dir, "b", `trap 'echo b-term; exit 0' TERM; echo "b up"; while true; do sleep 0.05; done`)
	out := &syncBuf{}
	st := &Stack{BinDir: dir, Out: out, StopGrace: 5 * time.Second, Components: []Component{
		{Name: "a", Bin: "a", Address: "addr-a", Ready: func(context.Context) error {
			if _, err := os.Stat(marker); err != nil {
				return err
			}
			return nil
		}},
		{Name: "once", Bin: "once", OneShot: true},
		{Name: "missing", Bin: "nope", Optional: true},
		{Name: "b", Bin: "b", Address: "addr-b"},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "wanotify is up") {
		if time.Now().After(deadline) {
			t.Fatalf("stack never came up:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for !strings.Contains(out.String(), "b          | b up") {
		if time.Now().After(deadline) {
			t.Fatalf("b never logged:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	log := out.String()
	for _, want := range []string{"a          | a up", "once       | one shot ran", "skipping missing", "addr-a", "addr-b"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if ia, ib := strings.Index(log, "stopped a"), strings.Index(log, "stopped b"); ia < 0 || ib < 0 || ib > ia {
		t.Errorf("want b stopped before a:\n%s", log)
	}
}

func TestADyingNoRestartComponentStopsTheStack(t *testing.T) {
	dir := t.TempDir()
	script(t, dir, "a", `trap 'exit 0' TERM; while true; do sleep 0.05; done`)
	script(t, dir, "b", `sleep 0.3; echo bye; exit 3`)
	st := &Stack{BinDir: dir, Out: &syncBuf{}, Components: []Component{{Name: "a", Bin: "a"}, {Name: "b", Bin: "b", NoRestart: true}}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := st.Run(ctx)
	if !errors.Is(err, ErrComponentDied) || !strings.Contains(err.Error(), "b") {
		t.Fatalf("err = %v, want b reported dead", err)
	}
}

func TestStripANSI(t *testing.T) {
	if got := stripANSI("\x1b[1;32mok\x1b[0m done"); got != "ok done" {
		t.Fatalf("%q", got)
	}
}

package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/simulator"
)

// roleEnv makes the test binary play a component of the stack: the
// supervisor under test starts it as a separate OS process.
const roleEnv = "LOCALSTACK_TEST_ROLE"

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "simulator" {
		if err := runSimulator(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// runSimulator is services/simulator in short: the provider simulator
// with its in-memory ledger, until SIGTERM.
func runSimulator() error {
	cfg, err := simulator.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	sim, err := simulator.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := sim.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return sim.Shutdown(sctx)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitFor(t *testing.T, what string, timeout time.Duration, out *syncBuf, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s\n%s", what, timeout, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAKilledComponentIsRestartedAndTheOthersStay: kill -9 of one
// component (twice) restarts it with a growing back-off, logged; the
// simulator and another component keep their processes, so the
// simulator's ledger still holds what it received; only cancelling the
// supervisor (Ctrl-C) stops the stack.
func TestAKilledComponentIsRestartedAndTheOthersStay(t *testing.T) {
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(dir, "simulator")); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "dispatcher.pid")
	// The dispatcher stand-in writes its pid when it is up.
	script(t, dir, "dispatcher", `trap 'exit 0' TERM; echo "up"; echo $$ > `+marker+`; while true; do sleep 0.05; done`)
	script(t, dir, "sink", `trap 'exit 0' TERM; while true; do sleep 0.05; done`)
	simAddr := freeAddr(t)
	simURL := "http://" + simAddr
	out := &syncBuf{}
	st := &Stack{BinDir: dir, Out: out, StopGrace: 5 * time.Second,
		Restart: Backoff{Initial: 200 * time.Millisecond, Max: 2 * time.Second, ResetAfter: time.Minute}}
	st.Components = []Component{
		{Name: "simulator", Bin: "simulator", Env: []string{roleEnv + "=simulator", "WANOTIFY_SIM_ADDR=" + simAddr, "WANOTIFY_SIM_API_KEY=k"},
			Ready: HTTPReady(simURL + "/healthz"), RestartNote: "its ledger starts empty"},
		{Name: "sink", Bin: "sink"},
		{Name: "dispatcher", Bin: "dispatcher", Ready: func(context.Context) error {
			b, err := os.ReadFile(marker)
			if err != nil {
				return err
			}
			if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid == 0 || pid != st.PID("dispatcher") {
				return fmt.Errorf("dispatcher pid %q not the running one", b)
			}
			return nil
		}},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	waitFor(t, "stack up", 30*time.Second, out, func() bool { return strings.Contains(out.String(), "wanotify is up") })

	// The provider receives one send; its ledger holds it.
	body, _ := json.Marshal(map[string]any{"phone_number_id": "pn", "to": "+447700900123", "type": "text",
		"text": map[string]any{"body": "hi"}, "biz_opaque_callback_data": "n-before-kill", "idempotency_key": "k-1"})
	req, _ := http.NewRequest(http.MethodPost, simURL+simulator.DefaultSendPath, bytes.NewReader(body))
	req.Header.Set("X-API-Key", "k")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("send to the simulator: %s", resp.Status)
	}
	ledgerHas := func() bool {
		resp, err := http.Get(simURL + "/admin/ledger?notification_id=n-before-kill")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var l simulator.NotificationLedger
		b, _ := io.ReadAll(resp.Body)
		return json.Unmarshal(b, &l) == nil && len(l.Sends) == 1
	}
	if !ledgerHas() {
		t.Fatal("the simulator's ledger lacks the send")
	}

	simPID, sinkPID := st.PID("simulator"), st.PID("sink")
	for round := 1; round <= 2; round++ {
		old := st.PID("dispatcher")
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("dispatcher restarted (round %d)", round), 30*time.Second, out, func() bool {
			return strings.Count(out.String(), "dispatcher ready again") == round
		})
		if pid := st.PID("dispatcher"); pid == old || pid == 0 {
			t.Fatalf("round %d: dispatcher pid %d, killed %d", round, pid, old)
		}
	}
	log := out.String()
	for _, want := range []string{
		"dispatcher exited (signal: killed)",
		"restart 1 in 200ms", "restart 2 in 400ms", // the back-off doubles
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if st.PID("simulator") != simPID || st.PID("sink") != sinkPID {
		t.Fatalf("other components were restarted: simulator %d→%d, sink %d→%d", simPID, st.PID("simulator"), sinkPID, st.PID("sink"))
	}
	if strings.Contains(log, "its ledger starts empty") {
		t.Fatalf("the simulator was restarted:\n%s", log)
	}
	if !ledgerHas() {
		t.Fatal("the simulator's ledger lost the send when the dispatcher was killed")
	}
	select {
	case err := <-done:
		t.Fatalf("the stack stopped by itself: %v\n%s", err, out)
	default:
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("stack did not stop\n%s", out)
	}
	for _, name := range []string{"dispatcher", "sink", "simulator"} {
		if !strings.Contains(out.String(), "stopped "+name) {
			t.Errorf("%s not stopped:\n%s", name, out)
		}
	}
	if pid := st.PID("dispatcher"); pid != 0 {
		t.Fatalf("a component runs after the stop: pid %d", pid)
	}
}

// TestADyingComponentIsRestartedWithItsNote: a component that exits by
// itself (the simulator, say) is restarted too, and the log says what
// that costs.
func TestADyingComponentIsRestartedWithItsNote(t *testing.T) {
	dir := t.TempDir()
	script(t, dir, "a", `echo started; sleep 0.2; exit 3`)
	out := &syncBuf{}
	st := &Stack{BinDir: dir, Out: out, Restart: Backoff{Initial: 50 * time.Millisecond},
		Components: []Component{{Name: "a", Bin: "a", RestartNote: "its ledger starts empty"}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	waitFor(t, "two restarts", 20*time.Second, out, func() bool { return strings.Contains(out.String(), "restart 2 in 100ms") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a exited (exit status 3)", "a: its ledger starts empty"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/testinfra"
)

// The test binary doubles as the broker process, so the test can SIGKILL it.
const (
	envChild = "WANOTIFY_BROKER_TEST_CHILD"
	envPort  = "WANOTIFY_BROKER_TEST_PORT"
	envDir   = "WANOTIFY_BROKER_TEST_DIR"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		port, _ := strconv.Atoi(os.Getenv(envPort))
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		log := slog.New(slog.NewTextHandler(os.Stderr, nil))
		err := Run(ctx, Config{Port: port, DataDir: os.Getenv(envDir), GroupMinSession: time.Second}, log, func(addr string) {
			fmt.Println("ready", addr)
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type child struct {
	cmd  *exec.Cmd
	addr string
}

func startChild(t *testing.T, port int, dir string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envPort+"="+strconv.Itoa(port), envDir+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, addr: "127.0.0.1:" + strconv.Itoa(port)}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	ready := make(chan error, 1)
	go func() {
		buf := make([]byte, 256)
		n, err := out.Read(buf)
		if err != nil {
			ready <- err
			return
		}
		if string(buf[:5]) != "ready" {
			ready <- fmt.Errorf("broker printed %q", buf[:n])
			return
		}
		ready <- nil
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("broker did not start: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("broker did not start within 30s")
	}
	return c
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
}

func freePort(t testing.TB) int { return testinfra.FreePort(t) }

// A transaction left open by a broker crash is aborted on restart. The
// producer's later, committed transactions on the same partition must
// stay visible to read_committed consumers: the abort needs its marker in
// the log, or a consumer that fetches across the aborted range drops the
// producer's following batches while it waits for that marker.
func TestCommittedAfterCrashAbortedTransactionIsVisible(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	port, dir := freePort(t), t.TempDir()
	const topic = "crash-txn"

	b := startChild(t, port, dir)
	adm, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	adm.Close()

	txnClient := func() *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.TransactionalID("crash-txn-producer"),
			kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RetryTimeout(20*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	// Committed before the crash.
	p := txnClient()
	produce := func(cl *kgo.Client, prefix string, n int) {
		t.Helper()
		for i := range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}).FirstErr(); err != nil {
				t.Fatalf("produce %s-%d: %v", prefix, i, err)
			}
		}
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(p, "before", 3)
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	// Open at the crash: its records are on disk, its marker is not.
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(p, "open", 3)
	b.kill(t)
	p.Close()

	b = startChild(t, port, dir)
	// The producer comes back (same transactional id, so the same producer
	// id) and commits more on the same partition.
	p = txnClient()
	defer p.Close()
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(p, "after", 3)
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}

	c, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && len(got) < 6 {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		fs := c.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	want := []string{"before-0", "before-1", "before-2", "after-0", "after-1", "after-2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read_committed after the crash saw %v, want %v", got, want)
	}
}

// After a clean shutdown the broker restores open transactions as open
// (their producers may still commit them): recovery must leave them alone.
// After a SIGKILL it must find exactly the one left without a marker.
func TestRecoveryFindsOnlyTransactionsACrashLeftOpen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	port, dir := freePort(t), t.TempDir()
	const topic = "clean-txn"
	b := startChild(t, port, dir)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.TransactionalID("clean-txn-producer"),
		kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Wait(); err != nil {
		t.Fatalf("clean shutdown: %v", err)
	}
	open, err := findOpenTransactions(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 0 {
		t.Fatalf("after a clean shutdown recovery would abort %+v", open)
	}

	b = startChild(t, port, dir)
	if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte("y")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	b.kill(t)
	open, err = findOpenTransactions(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].topic != topic || open[0].partition != 1 {
		t.Fatalf("after a SIGKILL found %+v, want the one transaction open in %s-1", open, topic)
	}
}

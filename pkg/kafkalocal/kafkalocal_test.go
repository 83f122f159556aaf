package kafkalocal_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/kafkalocal"
	"github.com/wanotify/wanotify/pkg/testinfra"
)

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ps []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ps = append(ps, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ps
}

func libs(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("WANOTIFY_KAFKA_LIBS")
	if dir == "" {
		testinfra.RequireCI(t, "WANOTIFY_KAFKA_LIBS not set (run the tests through scripts/with-kafka.sh, as make test does)")
	}
	return dir
}

func start(t *testing.T, o kafkalocal.Options) *kafkalocal.Process {
	t.Helper()
	p, err := kafkalocal.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := kafkalocal.WaitReady(ctx, []string{p.Addr()}, 1, p.Done()); err != nil {
		log, _ := os.ReadFile(o.LogPath())
		t.Fatalf("%v\n%s", err, log)
	}
	return p
}

// A SIGKILLed Apache Kafka broker, restarted on its data directory,
// completes the transaction a producer left open at the crash by itself:
// a read_committed consumer gets past it to the records committed after,
// with no project code involved (kfake needs pkg/broker's recovery for
// this). The JVM is gone after Kill, and a restart reuses the storage.
func TestKilledBrokerRecoversOpenTransactions(t *testing.T) {
	dir := libs(t)
	ports := freePorts(t, 2)
	o := kafkalocal.Options{LibsDir: dir, DataDir: filepath.Join(t.TempDir(), "node"), ClusterID: kafkalocal.NewClusterID(),
		Node: kafkalocal.Node{ID: 1, Port: ports[0], ControllerPort: ports[1]}, Heap: "512m"}
	p := start(t, o)
	addr := []string{p.Addr()}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	adm := kadm.NewClient(testinfra.Client(t, addr))
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "t"); err != nil || r.Err != nil {
		t.Fatalf("create topic: %v %v", err, r.Err)
	}
	txn := func(id string, value string, commit bool) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr...), kgo.TransactionalID(id), kgo.TransactionTimeout(2*time.Second),
			kgo.DefaultProduceTopic("t"))
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(value)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if commit {
			if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatal(err)
			}
		}
		// Left open: the client goes away without ending it, as a
		// crashed producer does.
		cl.Close()
	}
	txn("a", "committed-before", true)
	txn("b", "open-at-crash", false)

	pid := p.Pid()
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("JVM %d still running after Kill", pid)
	}
	if !o.Formatted() {
		t.Fatal("storage not formatted after the first start")
	}
	start(t, o)
	txn("c", "committed-after", true)

	cons := testinfra.Client(t, addr, kgo.ConsumeTopics("t"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < 2 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed consumer got %q before the deadline; want the two committed records", got)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if got[0] != "committed-before" || got[1] != "committed-after" || len(got) != 2 {
		t.Fatalf("read_committed consumer got %q", got)
	}
}

// Options name what is missing.
func TestValidateNamesTheField(t *testing.T) {
	err := (&kafkalocal.Options{}).Validate()
	for _, f := range []string{"LibsDir", "DataDir", "ClusterID", "Node"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("Validate() = %v, want it to name %s", err, f)
		}
	}
	// One id in 64 would start with '-' if drawn blindly; the storage
	// tool then reads it as an option and refuses to format.
	for range 5000 {
		if id := kafkalocal.NewClusterID(); len(id) != 22 || id[0] == '-' {
			t.Fatalf("cluster id %q: want 22 base64url characters, not starting with '-'", id)
		}
	}
}

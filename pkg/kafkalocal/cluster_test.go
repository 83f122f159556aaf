package kafkalocal_test

import (
	"context"
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

// A three-node cluster runs as production does: internal topics and new
// topics get three replicas, min.insync.replicas is 2, and when the node
// leading the most partitions dies their leadership moves to the two
// survivors, which keep taking acks=all writes and transactions; the node
// restarted on its data directory rejoins. Stop leaves no JVM behind.
func TestClusterSurvivesItsLeadersCrash(t *testing.T) {
	if os.Getenv("WANOTIFY_TEST_KAFKA_CLUSTER") == "" {
		// Three JVMs take one to two minutes to start on a loaded
		// two-core machine: outside make test (make chaos
		// KAFKA=apache-cluster covers the cluster too).
		t.Skip("set WANOTIFY_TEST_KAFKA_CLUSTER=1 to start a three-node Apache Kafka cluster")
	}
	dir := libs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	began := time.Now()
	c, err := kafkalocal.StartCluster(ctx, kafkalocal.ClusterOptions{Size: 3, LibsDir: dir, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, n := range c.Nodes() {
		pids = append(pids, c.Process(n.ID).Pid())
	}
	defer func() {
		c.Stop(30 * time.Second)
		for _, n := range c.Nodes() {
			pid := c.Process(n.ID).Pid()
			if err := syscall.Kill(pid, 0); err == nil {
				t.Errorf("node %d's JVM %d still running after Stop", n.ID, pid)
			}
		}
	}()
	t.Logf("three nodes serving %s after %s", strings.Join(c.Addrs(), ","), time.Since(began).Round(100*time.Millisecond))

	adm := kadm.NewClient(testinfra.Client(t, c.Addrs()))
	if r, err := adm.CreateTopic(ctx, 6, -1, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, "t"); err != nil || r.Err != nil {
		t.Fatalf("create topic: %v %v", err, r.Err)
	}
	prod := testinfra.Client(t, c.Addrs(), kgo.TransactionalID("p"), kgo.DefaultProduceTopic("t"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	commit := func(n int) {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for range n {
			if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	commit(12)

	td, err := adm.ListTopicsWithInternal(ctx, "t", "__transaction_state", "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range td.Sorted() {
		for _, p := range topic.Partitions {
			if len(p.Replicas) != 3 {
				t.Fatalf("%s/%d has replicas %v, want 3", topic.Topic, p.Partition, p.Replicas)
			}
		}
	}
	dc, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"min.insync.replicas": "2", "transaction.state.log.min.isr": "2", "default.replication.factor": "3",
		"offsets.topic.replication.factor": "3", "transaction.state.log.replication.factor": "3"}
	for _, rc := range dc {
		for _, cfg := range rc.Configs {
			if w, ok := want[cfg.Key]; ok {
				if cfg.Value == nil || *cfg.Value != w {
					t.Fatalf("broker config %s = %v, want %s", cfg.Key, cfg.Value, w)
				}
				delete(want, cfg.Key)
			}
		}
	}
	if len(want) > 0 {
		t.Fatalf("broker configs missing from the answer: %v", want)
	}

	lead, err := kafkalocal.Leadership(ctx, adm, "t", "__transaction_state")
	if err != nil {
		t.Fatal(err)
	}
	victim, most := int32(0), -1
	for _, n := range c.Nodes() {
		if k := lead["t"][int32(n.ID)] + lead["__transaction_state"][int32(n.ID)]; k > most {
			victim, most = int32(n.ID), k
		}
	}
	t.Logf("leadership before the kill: %v; killing node %d (%d partitions)", lead, victim, most)
	if err := c.Kill(int(victim)); err != nil {
		t.Fatal(err)
	}
	moved := time.Now()
	for {
		l, err := kafkalocal.Leadership(ctx, adm, "t", "__transaction_state")
		if err == nil && l["t"][victim] == 0 && l["__transaction_state"][victim] == 0 && l["t"][-1] == 0 && l["__transaction_state"][-1] == 0 {
			t.Logf("leadership moved in %s: %v", time.Since(moved).Round(100*time.Millisecond), l)
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("leadership did not leave node %d: %v %v", victim, l, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Two of three replicas meet min.insync.replicas=2: writes go on.
	commit(12)

	if err := c.Restart(ctx, int(victim)); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pids[victim-1], 0); err == nil {
		t.Fatalf("the killed JVM %d still runs", pids[victim-1])
	}
	commit(12)
	cons := testinfra.Client(t, c.Addrs(), kgo.ConsumeTopics("t"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < 36 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of 36 committed records", got)
		}
		got += fs.NumRecords()
	}
	if got != 36 {
		t.Fatalf("read %d committed records, want 36", got)
	}
	t.Logf("done after %s", time.Since(began).Round(100*time.Millisecond))
}

// Voter lists round-trip and name what is wrong.
func TestVoters(t *testing.T) {
	nodes := []kafkalocal.Node{{ID: 1, ControllerPort: 9093}, {ID: 2, ControllerPort: 9095}}
	s := kafkalocal.Voters(nodes)
	if s != "1@127.0.0.1:9093,2@127.0.0.1:9095" {
		t.Fatalf("Voters = %q", s)
	}
	back, err := kafkalocal.ParseVoters(s)
	if err != nil || len(back) != 2 || back[1] != nodes[1] {
		t.Fatalf("ParseVoters(%q) = %v, %v", s, back, err)
	}
	for _, bad := range []string{"", "1@127.0.0.1", "x@127.0.0.1:1", "1@10.0.0.1:9093", "1@127.0.0.1:9093,1@127.0.0.1:9094", "1@127.0.0.1:9093,2@127.0.0.1:9093"} {
		if _, err := kafkalocal.ParseVoters(bad); err == nil {
			t.Errorf("ParseVoters(%q): no error", bad)
		}
	}
	o := kafkalocal.Options{LibsDir: "x", DataDir: filepath.Join(t.TempDir(), "n"), ClusterID: "c",
		Node: kafkalocal.Node{ID: 3, Port: 1, ControllerPort: 2}, Voters: nodes}
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "Voters") {
		t.Fatalf("Validate() = %v, want it to name Voters", err)
	}
}

package cli_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/cli"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

func TestTopicsApplyAndDescribe(t *testing.T) {
	brokers := testinfra.Kafka(t)
	t.Setenv("WANOTIFY_KAFKA_BROKERS", strings.Join(brokers, ","))
	file := filepath.Join(testinfra.RepoRoot(), "topics.yaml")
	f := testinfra.TopicsFile(t)

	type change struct{ Topic, Action, Detail string }
	var out struct {
		DryRun  bool     `json:"dry_run"`
		Changes []change `json:"changes"`
	}
	runJSON(t, cli.ExitOK, &out, "topics", "apply", "--file", file, "--dry-run")
	if !out.DryRun || len(out.Changes) != len(f.Topics) {
		t.Fatalf("dry run: %+v", out)
	}
	var describe []struct {
		Name       string            `json:"name"`
		Exists     bool              `json:"exists"`
		Partitions int               `json:"partitions"`
		Records    int64             `json:"end_offset_sum"`
		Configs    map[string]string `json:"configs"`
		Lag        map[string]int64  `json:"lag_by_group"`
	}
	runJSON(t, cli.ExitOK, &describe, "topics", "describe", "--file", file)
	for _, d := range describe {
		if d.Exists {
			t.Fatalf("dry run created %s", d.Name)
		}
	}

	runJSON(t, cli.ExitOK, &out, "topics", "apply", "--file", file)
	if out.DryRun || len(out.Changes) != len(f.Topics) {
		t.Fatalf("apply: %+v", out)
	}
	runJSON(t, cli.ExitOK, &out, "topics", "apply", "--file", file)
	if len(out.Changes) != 0 {
		t.Fatalf("second apply changed %+v", out.Changes)
	}

	// Three records on requested, a group that has read one of them.
	cl := testinfra.Client(t, brokers, kgo.DefaultProduceTopic(topics.Requested), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: topics.Requested, Partition: 0, At: 1})
	if _, err := kadm.NewClient(cl).CommitOffsets(ctx, "reader", offs); err != nil {
		t.Fatal(err)
	}
	runJSON(t, cli.ExitOK, &describe, "topics", "describe", "--file", file)
	if len(describe) != len(f.Topics) {
		t.Fatalf("describe lists %d topics, want %d", len(describe), len(f.Topics))
	}
	for i, d := range describe {
		want := f.Topics[i]
		if d.Name != want.Name || !d.Exists || d.Partitions != int(want.Partitions) || d.Configs["retention.ms"] != want.Configs["retention.ms"] {
			t.Errorf("describe %+v, want %s with %d partitions", d, want.Name, want.Partitions)
		}
		if d.Name == topics.Requested && (d.Records != 3 || d.Lag["reader"] != 2) {
			t.Errorf("requested: end offsets %d (want 3), lag %v (want reader=2)", d.Records, d.Lag)
		}
	}
	r := run(t, "", "topics", "describe", "--file", file)
	if r.code != 0 || !strings.Contains(r.stdout, "reader=2") {
		t.Fatalf("describe table: %s", r)
	}
	if r := run(t, "", "topics", "apply", "--file", filepath.Join(t.TempDir(), "missing.yaml")); r.code != cli.ExitUsage {
		t.Fatalf("missing file: %s", r)
	}
}

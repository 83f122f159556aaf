package topics_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

func TestRepositoryFileListsEveryTopic(t *testing.T) {
	f := testinfra.TopicsFile(t)
	want := []string{topics.Requested, topics.Retry5s, topics.Retry15s, topics.Retry45s, topics.Deferred, topics.Held, topics.DLQ, topics.Status, topics.Dedupe, topics.Pacing, topics.Senders}
	got := map[string]topics.Topic{}
	for _, tp := range f.Topics {
		got[tp.Name] = tp
	}
	for _, n := range want {
		if _, ok := got[n]; !ok {
			t.Errorf("topics.yaml lacks %s", n)
		}
	}
	// Co-partitioning: every co-partitioned topic has the same count.
	for _, tp := range f.Topics {
		if tp.CoPartitioned() && tp.Partitions != got[topics.Requested].Partitions {
			t.Errorf("%s has %d partitions, %s has %d: co-partitioning needs equal counts", tp.Name, tp.Partitions, topics.Requested, got[topics.Requested].Partitions)
		}
	}
	if got[topics.Dedupe].Configs["cleanup.policy"] != "compact" {
		t.Error("the dedupe changelog must be compacted")
	}
	// The pacing changelog keeps each pair's latest time (compact) and
	// nothing older than its short retention (delete).
	if p := got[topics.Pacing].Configs; p["cleanup.policy"] != "compact,delete" || p["retention.ms"] == "" {
		t.Errorf("the pacing changelog must be compact,delete with a retention, got %v", p)
	}
	// The sender state table: every dispatcher reads all of it, so one
	// partition of its own, compacted (the latest state per sender).
	s := got[topics.Senders]
	if s.CoPartitioned() || s.Partitions != 1 || s.Configs["cleanup.policy"] != "compact" {
		t.Errorf("%s: partitioning %q, %d partitions, cleanup.policy %q; want own, 1, compact", topics.Senders, s.Partitioning, s.Partitions, s.Configs["cleanup.policy"])
	}
	for _, n := range want[:len(want)-1] {
		if !got[n].CoPartitioned() {
			t.Errorf("%s is keyed by recipient but not co-partitioned", n)
		}
	}
}

// TestPartitioning: co-partitioned topics must agree on their count, a
// topic of its own may differ, and SetPartitions scales only the
// co-partitioned ones.
func TestPartitioning(t *testing.T) {
	const head = "defaults: {partitions: 6, replication_factor: 1}\ntopics:\n  - name: a\n"
	_, err := topics.Parse([]byte(head + "  - name: b\n    partitions: 3\n"))
	if err == nil || !strings.Contains(err.Error(), `topic "b": partitions: 3, but co-partitioned topic "a" has 6`) {
		t.Fatalf("co-partitioned topics with two counts: err = %v", err)
	}
	_, err = topics.Parse([]byte(head + "  - name: b\n    partitioning: mine\n"))
	if err == nil || !strings.Contains(err.Error(), `topic "b": partitioning: "mine"`) {
		t.Fatalf("unknown partitioning: err = %v", err)
	}
	f, err := topics.Parse([]byte(head + "  - name: b\n    partitions: 1\n    partitioning: own\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.SetPartitions(4)
	if f.Topics[0].Partitions != 4 || f.Topics[1].Partitions != 1 {
		t.Fatalf("SetPartitions(4): a has %d, b (own) has %d; want 4 and 1", f.Topics[0].Partitions, f.Topics[1].Partitions)
	}
}

func TestBadFilesNameTopicAndField(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"zero partitions": {"topics:\n  - name: a\n    partitions: 0\n    replication_factor: 1\n", `topic "a": partitions`},
		"bad name":        {"defaults: {partitions: 1, replication_factor: 1}\ntopics:\n  - name: 'a b'\n", `topic "a b": name`},
		"duplicate":       {"defaults: {partitions: 1, replication_factor: 1}\ntopics:\n  - name: a\n  - name: a\n", `topic "a": name: listed twice`},
		"bad rf":          {"defaults: {partitions: 1}\ntopics:\n  - name: a\n    replication_factor: -3\n", `topic "a": replication_factor`},
		"unknown field":   {"topics:\n  - name: a\n    partitons: 3\n", "partitons"},
		"not yaml":        {"topics: [", "topics file"},
		"empty":           {"defaults: {partitions: 1}\n", "lists no topics"},
	} {
		_, err := topics.Parse([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, tc.want)
		}
	}
}

func TestReconcileIdempotentGrowRefuseShrink(t *testing.T) {
	brokers := testinfra.Kafka(t)
	adm := kadm.NewClient(testinfra.Client(t, brokers))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := testinfra.TopicsFile(t)
	f.SetPartitions(3)
	// kgo answers metadata from a cache younger than MetadataMinAge
	// (10 ms in testinfra); runs of a real operator are seconds apart.
	reconcile := func() ([]topics.Change, error) {
		time.Sleep(20 * time.Millisecond)
		return topics.Reconcile(ctx, adm, f, false)
	}

	changes, err := reconcile()
	if err != nil {
		t.Fatal(err)
	}
	creates := 0
	for _, c := range changes {
		if c.Action == "create" {
			creates++
		}
	}
	if creates != len(f.Topics) {
		t.Fatalf("first run created %d topics, want %d: %v", creates, len(f.Topics), changes)
	}
	time.Sleep(20 * time.Millisecond)
	details, err := adm.ListTopics(ctx, f.Names()...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range f.Topics {
		if got := len(details[tp.Name].Partitions); got != int(tp.Partitions) {
			t.Errorf("%s: %d partitions, want %d", tp.Name, got, tp.Partitions)
		}
	}

	again, err := reconcile()
	if err != nil || len(again) != 0 {
		t.Fatalf("second run changed %v (err %v), want nothing", again, err)
	}

	// Grow one topic.
	f.Topics[0].Partitions = 5
	grown, err := reconcile()
	if err != nil || len(grown) != 1 || grown[0].Action != "add-partitions" {
		t.Fatalf("grow: %v, %v", grown, err)
	}
	time.Sleep(20 * time.Millisecond)
	details, _ = adm.ListTopics(ctx, f.Topics[0].Name)
	if got := len(details[f.Topics[0].Name].Partitions); got != 5 {
		t.Fatalf("after grow %d partitions, want 5", got)
	}

	// Config drift is corrected.
	f.Topics[1].Configs["retention.ms"] = "1234567"
	drift, err := reconcile()
	if err != nil || len(drift) != 1 || drift[0].Action != "set-config" {
		t.Fatalf("config: %v, %v", drift, err)
	}
	if again, _ := reconcile(); len(again) != 0 {
		t.Fatalf("config not applied, still differs: %v", again)
	}

	// Shrink refused, naming topic and field.
	f.Topics[0].Partitions = 2
	_, err = reconcile()
	if !errors.Is(err, topics.ErrShrink) || !strings.Contains(err.Error(), f.Topics[0].Name) || !strings.Contains(err.Error(), "partitions") {
		t.Fatalf("shrink: err = %v", err)
	}
}

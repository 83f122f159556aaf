// Package testinfra starts the real infrastructure tests run against: a
// Kafka broker (an in-process kfake cluster on random loopback ports, or the
// Apache Kafka broker that scripts/with-kafka.sh started for the run) and the
// ClickHouse server that `make test` starts once per run.
package testinfra

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/topics"
)

// Kafka returns the seed brokers of a broker the test has to itself: with
// WANOTIFY_TEST_KAFKA=apache (scripts/with-kafka.sh), the shared Apache
// Kafka broker, emptied for this test and leased to it until cleanup (see
// apache.go); otherwise a new kfake cluster. Extra kfake options (faults,
// seeded topics, broker configs) mean the test needs kfake itself: it then
// gets a kfake cluster whatever the environment says.
func Kafka(t testing.TB, opts ...kfake.Opt) []string {
	t.Helper()
	if len(opts) == 0 && KafkaIsApache() {
		return apacheKafka(t)
	}
	return kfakeCluster(t, opts...)
}

// kfakeCluster starts a kfake cluster for the test with fast group
// timeouts; opts are appended to those defaults.
func kfakeCluster(t testing.TB, opts ...kfake.Opt) []string {
	t.Helper()
	base := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.GroupMinSessionTimeout(500 * time.Millisecond),
		kfake.BrokerConfigs(map[string]string{"group.consumer.heartbeat.interval.ms": "500"}),
	}
	c, err := kfake.NewCluster(append(base, opts...)...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// KafkaWithTopics gives the test a broker (as Kafka does) and creates every
// topic of topics.yaml, with partitions overriding the file's count of
// the co-partitioned topics when > 0 (a topic with a count of its own,
// notifications.senders, keeps it).
func KafkaWithTopics(t testing.TB, partitions int32) []string {
	t.Helper()
	return withTopics(t, Kafka(t), partitions)
}

// KfakeWithTopics is KafkaWithTopics on a kfake cluster whatever the
// environment says, for the few tests that measure the pipeline's own
// scheduling against a broker that answers in microseconds (docs/kafka.md
// says where Apache Kafka's latency changes their figures).
func KfakeWithTopics(t testing.TB, partitions int32) []string {
	t.Helper()
	return withTopics(t, kfakeCluster(t), partitions)
}

func withTopics(t testing.TB, brokers []string, partitions int32) []string {
	t.Helper()
	f := TopicsFile(t)
	if partitions > 0 {
		f.SetPartitions(partitions)
	}
	if KafkaIsApache() {
		// Harmless on kfake, which ignores min.insync.replicas.
		SingleBrokerTopics(f)
	}
	cl := Client(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := topics.Reconcile(ctx, kadm.NewClient(cl), f, false); err != nil {
		t.Fatalf("create topics: %v", err)
	}
	return brokers
}

// SingleBrokerTopics adapts a topics file to a one-broker cluster, as
// deploy/compose/topics.yaml does for docker-compose.yml: topics.yaml asks
// for min.insync.replicas=2, which Apache Kafka enforces (acks=all produces
// fail with NOT_ENOUGH_REPLICAS on one replica) and kfake ignores.
func SingleBrokerTopics(f *topics.File) {
	for i := range f.Topics {
		f.Topics[i].ReplicationFactor = 1
		if _, ok := f.Topics[i].Configs["min.insync.replicas"]; ok {
			f.Topics[i].Configs["min.insync.replicas"] = "1"
		}
	}
}

// Client returns a plain client on brokers, closed at cleanup.
func Client(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	// A short metadata age: kgo caches metadata answers, and tests look at
	// topics right after changing them.
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(10 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TopicsFile loads the repository's topics.yaml.
func TopicsFile(t testing.TB) *topics.File {
	t.Helper()
	f, err := topics.Load(filepath.Join(RepoRoot(), "topics.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// RepoRoot is the repository's top folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// RequireCI fails the test when CI=true and skips it otherwise, with why.
func RequireCI(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("infrastructure missing in CI: %s", why)
	}
	t.Skip(why)
}

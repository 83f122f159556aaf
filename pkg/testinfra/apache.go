package testinfra

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The environment scripts/with-kafka.sh sets for the command it runs.
const (
	// EnvKafka chooses the broker of testinfra.Kafka: "apache" for the
	// Apache Kafka broker at EnvKafkaBrokers, anything else for kfake.
	EnvKafka = "WANOTIFY_TEST_KAFKA"
	// EnvKafkaBrokers is the bootstrap address of that broker.
	EnvKafkaBrokers = "WANOTIFY_TEST_KAFKA_BROKERS"
)

// KafkaIsApache reports whether tests run against Apache Kafka.
func KafkaIsApache() bool { return os.Getenv(EnvKafka) == "apache" }

// ApacheBrokers is the bootstrap address scripts/with-kafka.sh exported,
// nil when there is none.
func ApacheBrokers() []string {
	v := strings.TrimSpace(os.Getenv(EnvKafkaBrokers))
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// A test on Apache Kafka shares one broker with every other test of the
// run: other packages' test binaries run at the same time, and the
// pipeline's topic names and group ids are fixed. So a test leases the
// whole broker: an exclusive lock on a file named after the broker,
// taken before the test empties the broker (every topic and every group
// of the previous test gone) and released after the test's own cleanups
// have stopped its clients. Tests on Apache Kafka therefore run one at a
// time, each on an empty broker, as each kfake test has a cluster of its
// own.
var leases = struct {
	sync.Mutex
	held map[string]bool // test names holding the lease in this process
}{held: map[string]bool{}}

// LeaseWait bounds how long a test waits for the broker.
const LeaseWait = 20 * time.Minute

func apacheKafka(t testing.TB) []string {
	t.Helper()
	brokers := ApacheBrokers()
	if len(brokers) == 0 {
		t.Fatalf("%s=apache but %s is empty: run the tests through scripts/with-kafka.sh", EnvKafka, EnvKafkaBrokers)
	}
	if !heldByAncestor(t.Name()) {
		lease(t, brokers)
	}
	if err := emptyBroker(brokers); err != nil {
		t.Fatalf("Apache Kafka at %s: empty the broker for this test: %v", strings.Join(brokers, ","), err)
	}
	return brokers
}

// heldByAncestor reports whether this test or one of its parents holds the
// lease (a subtest runs inside its parent's lease).
func heldByAncestor(name string) bool {
	leases.Lock()
	defer leases.Unlock()
	for n := name; ; {
		if leases.held[n] {
			return true
		}
		i := strings.LastIndexByte(n, '/')
		if i < 0 {
			return false
		}
		n = n[:i]
	}
}

func lease(t testing.TB, brokers []string) {
	t.Helper()
	name := "wanotify-kafka-" + strings.NewReplacer(":", "_", ",", "+", "/", "_").Replace(strings.Join(brokers, ",")) + ".lock"
	path := filepath.Join(os.TempDir(), name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("broker lease: %v", err)
	}
	deadline := time.Now().Add(LeaseWait)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			t.Fatalf("broker lease %s: %v", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			t.Fatalf("broker lease %s: still held by another test after %v", path, LeaseWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
	leases.Lock()
	leases.held[t.Name()] = true
	leases.Unlock()
	// Registered first, so it runs after every cleanup the test adds later
	// (clients closed, services stopped).
	t.Cleanup(func() {
		leases.Lock()
		delete(leases.held, t.Name())
		leases.Unlock()
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}

// emptyBroker deletes every topic and every consumer group left by the
// previous test. Groups whose members have not left yet (a member that
// was killed rather than closed) are retried until their session expires.
func emptyBroker(brokers []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// Groups first: a group's committed offsets would otherwise outlive
	// the topics they refer to until the broker cleans them.
	for {
		listed, err := adm.ListGroups(ctx)
		if err != nil {
			return fmt.Errorf("list groups: %w", err)
		}
		if len(listed) == 0 {
			break
		}
		resps, err := adm.DeleteGroups(ctx, listed.Groups()...)
		if err != nil {
			return fmt.Errorf("delete groups: %w", err)
		}
		var busy []string
		for g, r := range resps {
			switch {
			case r.Err == nil, errors.Is(r.Err, kerr.GroupIDNotFound):
			case errors.Is(r.Err, kerr.NonEmptyGroup), errors.Is(r.Err, kerr.CoordinatorLoadInProgress), errors.Is(r.Err, kerr.NotCoordinator):
				busy = append(busy, g)
			default:
				return fmt.Errorf("delete group %q: %w", g, r.Err)
			}
		}
		if len(busy) == 0 {
			break
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("groups %v still have members: %w", busy, err)
		}
	}

	for {
		td, err := adm.ListTopics(ctx)
		if err != nil {
			return fmt.Errorf("list topics: %w", err)
		}
		names := td.Names()
		if len(names) == 0 {
			return nil
		}
		resps, err := adm.DeleteTopics(ctx, names...)
		if err != nil {
			return fmt.Errorf("delete topics: %w", err)
		}
		for _, r := range resps {
			if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
				return fmt.Errorf("delete topic %q: %w", r.Topic, r.Err)
			}
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return fmt.Errorf("topics %v not deleted: %w", names, err)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

package testinfra_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/testinfra"
)

// On the shared Apache Kafka broker each test gets the broker to itself,
// empty: tests running at the same time never see each other's topics or
// groups, and nothing of an earlier test is left.
func TestApacheBrokerIsLeasedEmptyToOneTestAtATime(t *testing.T) {
	if !testinfra.KafkaIsApache() {
		t.Skip("the shared broker exists only with WANOTIFY_TEST_KAFKA=apache (scripts/with-kafka.sh)")
	}
	for i := range 3 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			brokers := testinfra.Kafka(t)
			cl := testinfra.Client(t, brokers, kgo.ConsumerGroup(fmt.Sprintf("lease-group-%d", i)))
			adm := kadm.NewClient(cl)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			groups, err := adm.ListGroups(ctx)
			if err != nil {
				t.Fatal(err)
			}
			td, err := adm.ListTopics(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(td.Names()) != 0 || len(groups) != 0 {
				t.Fatalf("the broker is not empty: topics %v, groups %v", td.Names(), groups.Groups())
			}
			mine := fmt.Sprintf("lease-%d", i)
			if r, err := adm.CreateTopic(ctx, 1, 1, nil, mine); err != nil || r.Err != nil {
				t.Fatalf("create %s: %v %v", mine, err, r.Err)
			}
			// A committed offset leaves a group behind for the next test.
			// (Retried: the new topic reaches the broker's metadata a
			// moment after CreateTopics answers.)
			for {
				err := adm.CommitAllOffsets(ctx, fmt.Sprintf("lease-group-%d", i), kadm.Offsets{mine: {0: {At: 0}}})
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					t.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			// Hold the lease a moment: a parallel test that got the broker
			// too would find this topic.
			time.Sleep(300 * time.Millisecond)
			td, err = adm.ListTopics(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if names := td.Names(); len(names) != 1 || names[0] != mine {
				t.Fatalf("topics while leased: %v, want only %s", names, mine)
			}
		})
	}
}

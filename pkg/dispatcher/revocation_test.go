package dispatcher

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

// owned lists the notifications.requested partitions d works on.
func (d *Dispatcher) owned() []int32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ps []int32
	for k, p := range d.parts {
		if k.topic == topics.Requested && !p.dead.Load() {
			ps = append(ps, k.partition)
		}
	}
	slices.Sort(ps)
	return ps
}

// Two rebalances in a row with nothing to commit in between: kgo's
// GroupTransactSession hands only the first revocation after an End to
// OnPartitionsRevoked, so without an End between them a dispatcher would
// keep working on partitions the second rebalance gave to another member
// (seen in the chaos scenario as duplicate sends and 429s). Every
// dispatcher must work on exactly the partitions the group assigned it.
func TestBackToBackRebalancesLeaveNoPartitionWithTwoOwners(t *testing.T) {
	e := newEnv(t, 12, simulator.Behavior{})
	adm := kadm.NewClient(testinfra.Client(t, e.brokers))
	var ds []*running
	check := func(n int) {
		t.Helper()
		e.waitMembers(t, n, 30*time.Second)
		deadline := time.Now().Add(20 * time.Second)
		for {
			problem := ""
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			gs, err := adm.DescribeGroups(ctx, DefaultConfig().Group)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			assigned := 0
			for _, m := range gs[DefaultConfig().Group].Members {
				a, _ := m.Assigned.AsConsumer()
				for _, tp := range a.Topics {
					if tp.Topic == topics.Requested {
						assigned += len(tp.Partitions)
					}
				}
			}
			owners := map[int32][]int{}
			total := 0
			for i, r := range ds {
				for _, p := range r.d.owned() {
					owners[p] = append(owners[p], i)
					total++
				}
			}
			for p, os := range owners {
				if len(os) > 1 {
					problem = fmt.Sprintf("partition %d is worked on by dispatchers %v", p, os)
				}
			}
			if problem == "" && (assigned != 12 || total != 12) {
				problem = fmt.Sprintf("the group assigned %d partitions, the dispatchers work on %d", assigned, total)
			}
			if problem == "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("with %d dispatchers: %s", n, problem)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Nothing is published: no transaction ever has records to commit.
	for i := range 3 {
		ds = append(ds, e.start(testConfig(fmt.Sprintf("t-rebalance-%d", i))))
		check(i + 1)
	}
}

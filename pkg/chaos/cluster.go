package chaos

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/kafkalocal"
	"github.com/wanotify/wanotify/pkg/topics"
)

// transactionState is Kafka's internal topic of transaction coordinators:
// the leader of a transactional id's partition is its coordinator.
const transactionState = "__transaction_state"

// leaderTopics are the partitions whose leaders decide which node the
// cluster scenario kills: the dispatchers' input, and the coordinators
// of their transactions.
var leaderTopics = []string{topics.Requested, transactionState}

// clusterBrokers lays out the three nodes of an Apache Kafka cluster:
// node i+1 listens on client[i] (first) and extra's ports, each with its
// own data directory, all with one cluster id and voter list. Every node
// is a broker and a controller, each a services/broker process owning its
// JVM, so a SIGKILL of the process is a crash of the node.
func (st *stack) clusterBrokers(cfg Config, env func(...string) []string, first string, extra []string) {
	// extra: the single broker's controller slot, then the other nodes'
	// client ports, then the remaining controller ports.
	clients := append([]string{first}, extra[1:clusterSize]...)
	controllers := append([]string{extra[0]}, extra[clusterSize:2*clusterSize-1]...)
	nodes := make([]kafkalocal.Node, clusterSize)
	for i := range nodes {
		cp, _ := strconv.Atoi(port(controllers[i]))
		nodes[i] = kafkalocal.Node{ID: i + 1, ControllerPort: cp}
	}
	voters, id := kafkalocal.Voters(nodes), kafkalocal.NewClusterID()
	for i, addr := range clients {
		name := fmt.Sprintf("broker-%d", i+1)
		p := st.sup.add(&proc{name: name, role: RoleBroker, restart: true,
			env: env("WANOTIFY_BROKER_KIND=apache", "WANOTIFY_KAFKA_LIBS="+cfg.KafkaLibs,
				"WANOTIFY_BROKER_PORT="+port(addr), "WANOTIFY_BROKER_DATA_DIR="+filepath.Join(cfg.WorkDir, name),
				"WANOTIFY_BROKER_NODE_ID="+strconv.Itoa(i+1), "WANOTIFY_BROKER_VOTERS="+voters, "WANOTIFY_BROKER_CLUSTER_ID="+id,
				"WANOTIFY_BROKER_GROUP_MIN_SESSION=1s", "WANOTIFY_ADMIN_ADDR=",
				// Three JVMs beside ClickHouse and the pipeline on two
				// cores; a restart recovers its log under that load.
				"WANOTIFY_BROKER_HEAP=512m", "WANOTIFY_BROKER_START_TIMEOUT=5m"),
			ready: brokerReady(addr)})
		st.brokers = append(st.brokers, p)
	}
	st.broker = st.brokers[0]
	st.brokerAddr = strings.Join(clients, ",")
}

// leadership counts the partitions of leaderTopics each node leads, as
// the cluster answers now (-1: partitions without a leader).
func leadership(ctx context.Context, brokers string) (map[string]map[int32]int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds(brokers)...), kgo.RequestRetries(1))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return kafkalocal.Leadership(ctx, kadm.NewClient(cl), leaderTopics...)
}

// mostLeading is the node leading the most partitions of leaderTopics
// (the lowest id among equals) and how many it leads.
func mostLeading(l map[string]map[int32]int, nodes int) (int32, int) {
	best, most := int32(1), -1
	for id := int32(1); id <= int32(nodes); id++ {
		n := 0
		for _, t := range leaderTopics {
			n += l[t][id]
		}
		if n > most {
			best, most = id, n
		}
	}
	return best, most
}

// ledBy is how many partitions of leaderTopics node leads.
func ledBy(l map[string]map[int32]int, node int32) int {
	n := 0
	for _, t := range leaderTopics {
		n += l[t][node]
	}
	return n
}

// formatLeadership prints counts as "notifications.requested 1:4 2:4
// 3:4; __transaction_state 1:3 2:3 3:4" (node:partitions, none: without
// a leader).
func formatLeadership(l map[string]map[int32]int) string {
	if l == nil {
		return "unknown"
	}
	var parts []string
	for _, t := range leaderTopics {
		ids := slices.Sorted(func(yield func(int32) bool) {
			for id := range l[t] {
				if !yield(id) {
					return
				}
			}
		})
		var cs []string
		for _, id := range ids {
			name := "node " + strconv.Itoa(int(id))
			if id < 0 {
				name = "no leader"
			}
			cs = append(cs, fmt.Sprintf("%s %d", name, l[t][id]))
		}
		parts = append(parts, t+": "+strings.Join(cs, ", "))
	}
	return strings.Join(parts, "; ")
}

// leaderKill is what the cluster's broker fault did and saw.
type leaderKill struct {
	node int32
	pid  int
	// led is how many partitions of leaderTopics the node led when it
	// was killed.
	led                 int
	before, moved, back map[string]map[int32]int
	// movedAfter is how long after the kill no partition was left led
	// by the dead node or without a leader (-1: not within the wait);
	// backAfter how long after its restart it led partitions again.
	movedAfter, backAfter time.Duration
	restartedAfter        time.Duration
}

// killLeader is the cluster's broker fault: SIGKILL the node leading the
// most partitions of notifications.requested and __transaction_state,
// watch leadership move to the survivors, restart the node after
// cfg.BrokerDown and watch it lead again (the controller's preferred
// leader election, every 30 s on the test cluster).
func killLeader(ctx context.Context, cfg Config, st *stack, log *faultLog, say func(string, ...any)) {
	fail := func(err error) {
		log.add(func(f *faultLog) { f.errors = append(f.errors, err.Error()) })
		say("cluster broker fault: %v", err)
	}
	before, err := leadership(ctx, st.brokerAddr)
	if err != nil {
		fail(fmt.Errorf("leadership before the kill: %w", err))
		return
	}
	node, led := mostLeading(before, len(st.brokers))
	p := st.brokers[node-1]
	k := &leaderKill{node: node, pid: p.pid(), led: led, before: before, movedAfter: -1, backAfter: -1}
	log.add(func(f *faultLog) { f.leader = k })
	p.killHold()
	killed := time.Now()
	log.add(func(f *faultLog) { f.brokerKill++ })
	say("SIGKILL %s (node %d, pid %d), leader of %d partitions (%s); back in %s", p.name, node, k.pid, led, formatLeadership(before), cfg.BrokerDown)

	// Poll the survivors until every partition has a leader other than
	// the dead node (the controller fences it after the broker session
	// timeout, 9 s by default, and elects leaders from the ISR).
	for time.Since(killed) < 2*time.Minute && ctx.Err() == nil {
		l, err := leadership(ctx, st.brokerAddr)
		if err == nil && ledBy(l, node) == 0 && ledBy(l, -1) == 0 {
			k.moved, k.movedAfter = l, time.Since(killed)
			break
		}
		sleepCtx(ctx, 250*time.Millisecond)
	}
	if k.movedAfter < 0 {
		say("leadership did not leave node %d within 2 minutes", node)
	} else {
		say("leadership moved off node %d in %s: %s", node, k.movedAfter.Round(100*time.Millisecond), formatLeadership(k.moved))
	}
	sleepCtx(ctx, cfg.BrokerDown-time.Since(killed))
	// Restarted even when the run is being cancelled: stopping expects it.
	if err := st.startReady(context.WithoutCancel(ctx), p, 5*time.Minute); err != nil {
		fail(fmt.Errorf("restart %s: %w", p.name, err))
		return
	}
	restarted := time.Now()
	k.restartedAfter = restarted.Sub(killed)
	say("%s back (pid %d), serving %s after its kill", p.name, p.pid(), k.restartedAfter.Round(100*time.Millisecond))
	for time.Since(restarted) < 2*time.Minute && ctx.Err() == nil {
		l, err := leadership(ctx, st.brokerAddr)
		if err == nil && ledBy(l, node) > 0 {
			k.back, k.backAfter = l, time.Since(restarted)
			break
		}
		sleepCtx(ctx, time.Second)
	}
	if k.backAfter < 0 {
		say("node %d led nothing within 2 minutes of its restart", node)
		return
	}
	say("node %d leads again %s after its restart: %s", node, k.backAfter.Round(100*time.Millisecond), formatLeadership(k.back))
}

// clusterReport adds what the cluster's broker fault did to r: a check
// that the fault did what the scenario claims (the killed node led
// partitions and they moved to the survivors while it was down), and
// the leadership counts as facts.
func clusterReport(r *Report, k *leaderKill, end map[string]map[int32]int) {
	inv := Invariant{Name: "the leading broker's partitions moved to the survivors while it was down"}
	if k == nil {
		inv.Count = "no broker killed"
		inv.Problems = []string{"the cluster's broker fault did not run (see fault errors)"}
		inv.Total = 1
		r.Invariants = append(r.Invariants, inv)
		return
	}
	inv.Count = fmt.Sprintf("%d of %d", 0, k.led)
	if k.movedAfter >= 0 {
		inv.Count = fmt.Sprintf("%d of %d", k.led, k.led)
	}
	inv.OK = k.led > 0 && k.movedAfter >= 0
	inv.Detail = fmt.Sprintf("node %d killed; no partition left on it or without a leader %s after the kill", k.node, durText(k.movedAfter))
	if !inv.OK {
		inv.Total = 1
		inv.Problems = []string{fmt.Sprintf("node %d led %d partitions; leadership moved: %s", k.node, k.led, durText(k.movedAfter))}
	}
	r.Invariants = append(r.Invariants, inv)
	r.Facts = append(r.Facts,
		Fact{"Kafka cluster", "3 Apache Kafka nodes (KRaft, broker and controller each), replication factor 3, min.insync.replicas 2, transaction.state.log min ISR 2"},
		Fact{"broker killed", fmt.Sprintf("node %d (its services/broker process %d, the JVM with it), leading %d partitions; serving again %s after its kill", k.node, k.pid, k.led, durText(k.restartedAfter))},
		Fact{"leaders before the kill", formatLeadership(k.before)},
		Fact{"leaders while it was down", fmt.Sprintf("%s (moved in %s)", formatLeadership(k.moved), durText(k.movedAfter))},
		Fact{"leaders after its restart", fmt.Sprintf("%s (%s after the restart)", formatLeadership(k.back), durText(k.backAfter))},
		Fact{"leaders at the end", formatLeadership(end)},
	)
}

func durText(d time.Duration) string {
	if d < 0 {
		return "not within the wait"
	}
	return d.Round(100 * time.Millisecond).String()
}

package chaos

import (
	"strings"
	"testing"
	"time"
)

// The node killed is the one leading the most partitions of the two
// topics together (the lowest id among equals); the check on the fault
// fails when the node led nothing or its partitions never moved.
func TestClusterFaultPicksTheLeaderAndChecksTheMove(t *testing.T) {
	l := map[string]map[int32]int{
		"notifications.requested": {1: 4, 2: 5, 3: 3},
		transactionState:          {1: 4, 2: 2, 3: 4},
	}
	if node, n := mostLeading(l, 3); node != 1 || n != 8 {
		t.Fatalf("mostLeading = node %d with %d, want node 1 with 8 (ties go to the lowest id)", node, n)
	}
	l[transactionState][2] = 4
	if node, n := mostLeading(l, 3); node != 2 || n != 9 {
		t.Fatalf("mostLeading = node %d with %d, want node 2 with 9", node, n)
	}
	if got := formatLeadership(map[string]map[int32]int{"notifications.requested": {-1: 2, 1: 10}, transactionState: {2: 10}}); got != "notifications.requested: no leader 2, node 1 10; __transaction_state: node 2 10" {
		t.Errorf("formatLeadership = %q", got)
	}

	for name, tc := range map[string]struct {
		k    *leaderKill
		pass bool
	}{
		"moved":         {&leaderKill{node: 2, led: 9, movedAfter: 12 * time.Second, backAfter: -1}, true},
		"never moved":   {&leaderKill{node: 2, led: 9, movedAfter: -1, backAfter: -1}, false},
		"led nothing":   {&leaderKill{node: 2, led: 0, movedAfter: time.Second, backAfter: -1}, false},
		"fault not run": {nil, false},
	} {
		r := &Report{Invariants: []Invariant{{Name: "x", OK: true}}}
		clusterReport(r, tc.k, nil)
		inv := r.Invariants[len(r.Invariants)-1]
		if inv.OK != tc.pass || r.OK() != tc.pass {
			t.Errorf("%s: invariant %+v, report OK %t; want %t", name, inv, r.OK(), tc.pass)
		}
		if !tc.pass && len(inv.Problems) == 0 {
			t.Errorf("%s: a failed check names no problem", name)
		}
	}
}

// The cluster's nodes each get their own client port, controller port
// and data directory, one voter list and one cluster id; the services'
// bootstrap list names all three.
func TestClusterLayout(t *testing.T) {
	cfg := Short()
	cfg.Kafka, cfg.KafkaLibs, cfg.WorkDir = KafkaApacheCluster, "/libs", t.TempDir()
	st, err := newStack(cfg, newSupervisor(BinDir("bin"), t.TempDir(), func(string, ...any) {}))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.brokers) != clusterSize || st.broker != st.brokers[0] || len(seeds(st.brokerAddr)) != clusterSize {
		t.Fatalf("brokers %d, bootstrap %q", len(st.brokers), st.brokerAddr)
	}
	seen := map[string]bool{}
	var voters, ids []string
	for _, p := range st.brokers {
		env := map[string]string{}
		for _, kv := range p.env {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		for _, k := range []string{"WANOTIFY_BROKER_PORT", "WANOTIFY_BROKER_DATA_DIR"} {
			if seen[env[k]] {
				t.Errorf("%s %s shared", k, env[k])
			}
			seen[env[k]] = true
		}
		voters, ids = append(voters, env["WANOTIFY_BROKER_VOTERS"]), append(ids, env["WANOTIFY_BROKER_CLUSTER_ID"])
	}
	if voters[0] != voters[1] || voters[1] != voters[2] || ids[0] != ids[1] || ids[1] != ids[2] || ids[0] == "" {
		t.Errorf("voters %q, cluster ids %q: want one of each", voters, ids)
	}
	for _, v := range strings.Split(voters[0], ",") {
		_, addr, _ := strings.Cut(v, "@")
		if seen[port(addr)] || strings.Contains(st.brokerAddr, addr) {
			t.Errorf("controller %s shares a port", addr)
		}
	}
	for _, d := range st.dispatchers {
		if !strings.Contains(strings.Join(d.env, " "), "WANOTIFY_KAFKA_BROKERS="+st.brokerAddr) {
			t.Errorf("%s does not bootstrap from every node", d.name)
		}
	}
}

package kafkalocal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// ClusterOptions configure a cluster of Size KRaft nodes, each a broker
// and a controller in one JVM, on loopback. Size 3 gives what production
// runs: replication factor 3 for every topic (internal ones included),
// min.insync.replicas and transaction.state.log.min.isr 2 (Defaults).
type ClusterOptions struct {
	Size    int
	Java    string
	LibsDir string
	// DataDir holds one directory per node (node-1, node-2, ...).
	DataDir string
	// Heap of each JVM (default "512m": three of them share two cores
	// and the machine with ClickHouse).
	Heap   string
	Config map[string]string
	Logger *slog.Logger
}

// Cluster is a running cluster. Its nodes' ports stay fixed across
// restarts, so clients keep their bootstrap list.
type Cluster struct {
	mu    sync.Mutex
	opts  []Options
	procs []*Process
}

// StartCluster formats and starts every node at once (a KRaft quorum of
// three elects its leader only once two voters run) and waits until the
// cluster answers metadata listing all of them, or ctx ends. On failure
// every JVM it started is killed.
func StartCluster(ctx context.Context, co ClusterOptions) (*Cluster, error) {
	if co.Size < 1 {
		return nil, fmt.Errorf("kafkalocal: ClusterOptions.Size: %d must be at least 1", co.Size)
	}
	if co.Heap == "" {
		co.Heap = "512m"
	}
	ports, err := freePorts(2 * co.Size)
	if err != nil {
		return nil, fmt.Errorf("kafkalocal: %w", err)
	}
	nodes := make([]Node, co.Size)
	for i := range nodes {
		nodes[i] = Node{ID: i + 1, Port: ports[2*i], ControllerPort: ports[2*i+1]}
	}
	c := &Cluster{}
	id := NewClusterID()
	for _, n := range nodes {
		c.opts = append(c.opts, Options{Java: co.Java, LibsDir: co.LibsDir, DataDir: filepath.Join(co.DataDir, "node-"+strconv.Itoa(n.ID)),
			ClusterID: id, Node: n, Voters: nodes, Heap: co.Heap, Config: co.Config, Logger: co.Logger})
	}
	c.procs = make([]*Process, co.Size)
	// The nodes format their storage (a JVM each) in parallel too.
	var wg sync.WaitGroup
	errs := make([]error, co.Size)
	for i := range c.opts {
		wg.Go(func() { c.procs[i], errs[i] = Start(ctx, c.opts[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.killAll()
		return nil, err
	}
	if err := c.WaitReady(ctx); err != nil {
		c.killAll()
		return nil, err
	}
	return c, nil
}

// freePorts are loopback ports free at the moment, all distinct.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ps := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ps = append(ps, l.Addr().(*net.TCPAddr).Port)
	}
	return ps, nil
}

// WaitReady waits until the cluster answers metadata listing every node
// and a controller; a node that exits ends the wait with an error.
func (c *Cluster) WaitReady(ctx context.Context) error {
	c.mu.Lock()
	procs := append([]*Process(nil), c.procs...)
	c.mu.Unlock()
	dead := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	var once sync.Once
	for _, p := range procs {
		go func() {
			select {
			case <-p.Done():
				once.Do(func() { close(dead) })
			case <-stop:
			}
		}()
	}
	return WaitReady(ctx, c.Addrs(), len(procs), dead)
}

// Addrs are the nodes' client addresses: a bootstrap list.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.opts))
	for i, o := range c.opts {
		out[i] = o.Node.Addr()
	}
	return out
}

// Nodes are the cluster's nodes (ids 1..Size).
func (c *Cluster) Nodes() []Node {
	out := make([]Node, len(c.opts))
	for i, o := range c.opts {
		out[i] = o.Node
	}
	return out
}

// Process is node id's current JVM.
func (c *Cluster) Process(id int) *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[id-1]
}

// Kill ends node id's JVM with SIGKILL, as a crash would.
func (c *Cluster) Kill(id int) error { return c.Process(id).Kill() }

// Restart starts node id again on its data directory (after Kill or
// Stop) and waits until the whole cluster answers metadata again.
func (c *Cluster) Restart(ctx context.Context, id int) error {
	p, err := Start(ctx, c.opts[id-1])
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.procs[id-1] = p
	c.mu.Unlock()
	return c.WaitReady(ctx)
}

// Stop stops every node cleanly (each killed after timeout), all at once:
// one at a time, the last controllers would wait for a quorum that is
// already gone.
func (c *Cluster) Stop(timeout time.Duration) {
	c.mu.Lock()
	procs := append([]*Process(nil), c.procs...)
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() { _ = p.Stop(timeout) })
	}
	wg.Wait()
}

func (c *Cluster) killAll() {
	for _, p := range c.procs {
		if p != nil {
			_ = p.Kill()
		}
	}
}

// Leadership counts, per node id, the partitions of topics it leads;
// key -1 counts partitions without a leader. Internal topics such as
// __transaction_state may be named.
func Leadership(ctx context.Context, adm *kadm.Client, topics ...string) (map[string]map[int32]int, error) {
	md, err := adm.Metadata(ctx, topics...)
	if err != nil {
		return nil, err
	}
	out := map[string]map[int32]int{}
	for _, t := range topics {
		td, ok := md.Topics[t]
		if !ok {
			return nil, fmt.Errorf("metadata of %s: not in the answer", t)
		}
		if td.Err != nil {
			return nil, fmt.Errorf("metadata of %s: %w", t, td.Err)
		}
		counts := map[int32]int{}
		for _, p := range td.Partitions {
			if p.Err != nil || p.Leader < 0 {
				counts[-1]++
				continue
			}
			counts[p.Leader]++
		}
		out[t] = counts
	}
	return out, nil
}

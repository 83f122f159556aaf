package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/kafkalocal"
)

// Broker kinds (WANOTIFY_BROKER_KIND).
const (
	KindKfake  = "kfake"
	KindApache = "apache"
)

// ApacheConfig is the Apache Kafka broker's own settings.
type ApacheConfig struct {
	// LibsDir is the broker's class path (scripts/fetch-kafka.sh).
	LibsDir string
	// ControllerPort is the KRaft controller's port (0: Port+1).
	ControllerPort int
	// Heap is the JVM's heap (-Xmx).
	Heap string
	// StartTimeout bounds the start, log recovery included.
	StartTimeout time.Duration
	// StopTimeout bounds a clean stop before the JVM is killed.
	StopTimeout time.Duration
	// NodeID, Voters and ClusterID make this broker one node of a local
	// cluster: every node gets the same Voters (id@127.0.0.1:port, this
	// node's controller port included) and ClusterID. Empty Voters: a
	// cluster of this one node.
	NodeID    int
	Voters    string
	ClusterID string
}

func loadApache(e *config.Env) ApacheConfig {
	return ApacheConfig{
		LibsDir:        e.String("WANOTIFY_KAFKA_LIBS", "", "Apache Kafka's jars for WANOTIFY_BROKER_KIND=apache (scripts/fetch-kafka.sh prints the directory)"),
		ControllerPort: e.Int("WANOTIFY_BROKER_CONTROLLER_PORT", 0, "KRaft controller port of the local Apache Kafka broker (0: WANOTIFY_BROKER_PORT+1)"),
		Heap:           e.String("WANOTIFY_BROKER_HEAP", "768m", "JVM heap of the local Apache Kafka broker"),
		StartTimeout:   e.Duration("WANOTIFY_BROKER_START_TIMEOUT", 3*time.Minute, "how long the local Apache Kafka broker may take to start (log recovery included)"),
		StopTimeout:    e.Duration("WANOTIFY_BROKER_STOP_TIMEOUT", 30*time.Second, "how long a clean stop of the local Apache Kafka broker may take before it is killed"),
		NodeID:         e.Int("WANOTIFY_BROKER_NODE_ID", 1, "KRaft node id of the local Apache Kafka broker"),
		Voters:         e.String("WANOTIFY_BROKER_VOTERS", "", "every controller of a local Apache Kafka cluster, id@127.0.0.1:port comma-separated, this node included (empty: a one-node cluster)"),
		ClusterID:      e.String("WANOTIFY_BROKER_CLUSTER_ID", "", "cluster id every node of a local Apache Kafka cluster shares (empty: a new one, kept in the data directory)"),
	}
}

func (a ApacheConfig) validate(port int) error {
	var errs []error
	if a.LibsDir == "" {
		errs = append(errs, errors.New("WANOTIFY_KAFKA_LIBS: required with WANOTIFY_BROKER_KIND=apache (run scripts/fetch-kafka.sh)"))
	}
	if a.ControllerPort < 0 || a.ControllerPort > 65535 || (a.ControllerPort != 0 && a.ControllerPort == port) {
		errs = append(errs, fmt.Errorf("WANOTIFY_BROKER_CONTROLLER_PORT: %d is not a free port beside WANOTIFY_BROKER_PORT", a.ControllerPort))
	}
	if a.NodeID < 0 {
		errs = append(errs, fmt.Errorf("WANOTIFY_BROKER_NODE_ID: %d must not be negative", a.NodeID))
	}
	if a.Voters != "" {
		if _, err := a.voters(port); err != nil {
			errs = append(errs, fmt.Errorf("WANOTIFY_BROKER_VOTERS: %w", err))
		}
	}
	if a.StartTimeout <= 0 || a.StopTimeout <= 0 {
		errs = append(errs, errors.New("WANOTIFY_BROKER_START_TIMEOUT, WANOTIFY_BROKER_STOP_TIMEOUT: must be positive"))
	}
	return errors.Join(errs...)
}

// voters parses Voters and finds this node in it: its controller port is
// the one listed (WANOTIFY_BROKER_CONTROLLER_PORT, when set, must agree).
func (a ApacheConfig) voters(port int) ([]kafkalocal.Node, error) {
	nodes, err := kafkalocal.ParseVoters(a.Voters)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if n.ID != a.NodeID {
			continue
		}
		if a.ControllerPort != 0 && a.ControllerPort != n.ControllerPort {
			return nil, fmt.Errorf("lists node %d on port %d, WANOTIFY_BROKER_CONTROLLER_PORT says %d", n.ID, n.ControllerPort, a.ControllerPort)
		}
		if n.ControllerPort == port {
			return nil, fmt.Errorf("node %d's controller port is WANOTIFY_BROKER_PORT %d", n.ID, port)
		}
		return nodes, nil
	}
	return nil, fmt.Errorf("does not list WANOTIFY_BROKER_NODE_ID %d", a.NodeID)
}

// runApache runs the Apache Kafka broker until ctx ends, then stops it
// cleanly. The JVM dies with this process however it ends (a SIGKILL of
// this process is a SIGKILL of the broker: the chaos scenario's broker
// crash), and the next start on the same data directory recovers its log
// and transactions with Kafka's own recovery, nothing of this project's.
func runApache(ctx context.Context, c Config, log *slog.Logger, ready func(addr string)) error {
	dir := c.DataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "wanotify-kafka-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("WANOTIFY_BROKER_DATA_DIR: %w", err)
	}
	// The storage is formatted once with a cluster id; restarts must
	// present the same one.
	idFile := filepath.Join(dir, "cluster.id")
	id, err := os.ReadFile(idFile)
	if err != nil {
		id = []byte(kafkalocal.NewClusterID())
		if c.Apache.ClusterID != "" {
			id = []byte(c.Apache.ClusterID)
		}
		if err := os.WriteFile(idFile, id, 0o644); err != nil {
			return fmt.Errorf("WANOTIFY_BROKER_DATA_DIR: %w", err)
		}
	}
	if c.Apache.ClusterID != "" && string(id) != c.Apache.ClusterID {
		return fmt.Errorf("WANOTIFY_BROKER_CLUSTER_ID: %s was formatted for cluster %s", dir, id)
	}
	cport := c.Apache.ControllerPort
	if cport == 0 {
		cport = c.Port + 1
	}
	var voters []kafkalocal.Node
	if c.Apache.Voters != "" {
		// Validate checked the list and that it names this node.
		voters, _ = c.Apache.voters(c.Port)
		for _, v := range voters {
			if v.ID == c.Apache.NodeID {
				cport = v.ControllerPort
			}
		}
	}
	opts := kafkalocal.Options{
		LibsDir:   c.Apache.LibsDir,
		DataDir:   dir,
		ClusterID: string(id),
		Node:      kafkalocal.Node{ID: c.Apache.NodeID, Port: c.Port, ControllerPort: cport},
		Voters:    voters,
		Heap:      c.Apache.Heap,
		Config:    map[string]string{"group.min.session.timeout.ms": strconv.FormatInt(c.GroupMinSession.Milliseconds(), 10)},
		Logger:    log,
	}
	p, err := kafkalocal.Start(ctx, opts)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, c.Apache.StartTimeout)
	err = kafkalocal.WaitReady(rctx, []string{p.Addr()}, 1, p.Done())
	cancel()
	if err != nil {
		_ = p.Stop(c.Apache.StopTimeout)
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("apache kafka (log %s): %w", opts.LogPath(), err)
	}
	log.Info("broker ready", "kind", KindApache, "addr", p.Addr(), "pid", p.Pid(), "data_dir", dir)
	if ready != nil {
		ready(p.Addr())
	}
	select {
	case <-ctx.Done():
		if err := p.Stop(c.Apache.StopTimeout); err != nil {
			return err
		}
		log.Info("broker stopped")
		return nil
	case <-p.Done():
		return fmt.Errorf("apache kafka exited on its own (%v); its log: %s", p.Err(), opts.LogPath())
	}
}

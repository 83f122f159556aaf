// Package kafkalocal runs Apache Kafka brokers (KRaft, broker and
// controller in one JVM) from the jars scripts/fetch-kafka.sh gathers from
// Maven Central, for tests, benchmarks, the chaos scenario and the local
// stack on machines without Docker. It formats a node's storage once,
// starts kafka.Kafka with settings fit for a test machine, waits until the
// cluster answers metadata, and stops or kills the JVM it started, and only
// that one. Production runs a real Kafka cluster; nothing here is used
// there.
package kafkalocal

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

//go:embed log4j2.properties
var log4j2Config []byte

// Node is one KRaft node of a cluster: its id, client port and controller
// port, all on 127.0.0.1.
type Node struct {
	ID             int
	Port           int
	ControllerPort int
}

// Addr is the node's client (bootstrap) address.
func (n Node) Addr() string { return "127.0.0.1:" + strconv.Itoa(n.Port) }

// Options configure one node.
type Options struct {
	// Java is the java executable (default: "java" on PATH).
	Java string
	// LibsDir holds the broker's class path (scripts/fetch-kafka.sh).
	LibsDir string
	// DataDir holds the node's configuration, log and KRaft storage. It is
	// formatted on the first start and reused after (a restart recovers
	// its log, as a broker does after a crash).
	DataDir string
	// ClusterID is the same for every node of a cluster (NewClusterID).
	ClusterID string
	// Node is this node.
	Node Node
	// Voters are every controller of the cluster, this node included;
	// empty means a single-node cluster of Node.
	Voters []Node
	// Heap is the JVM's heap size, as -Xmx takes it (default "768m").
	Heap string
	// Config overrides broker settings (after Defaults).
	Config map[string]string
	// Logger receives the launcher's own messages (default: discard).
	Logger *slog.Logger
}

// Defaults are broker settings for a test machine with replicas replicas
// per partition (1 for a single node; the cluster's size otherwise):
// replication factors and minimum ISRs that the cluster can meet, no
// rebalance delay, no automatic topic creation, the short group session
// timeouts the tests use, and fewer threads and buffers than a production
// broker (two shared cores, beside ClickHouse).
func Defaults(replicas int) map[string]string {
	rf := strconv.Itoa(replicas)
	minISR := "1"
	if replicas >= 3 {
		minISR = "2"
	}
	return map[string]string{
		"auto.create.topics.enable":                "false",
		"num.partitions":                           "1",
		"default.replication.factor":               rf,
		"min.insync.replicas":                      minISR,
		"offsets.topic.replication.factor":         rf,
		"offsets.topic.num.partitions":             "10",
		"transaction.state.log.replication.factor": rf,
		"transaction.state.log.min.isr":            minISR,
		"transaction.state.log.num.partitions":     "10",
		"group.initial.rebalance.delay.ms":         "0",
		// The tests' classic groups use 1-3 s sessions (Apache Kafka's
		// default minimum is 6 s); KIP-848 groups get quick heartbeats.
		"group.min.session.timeout.ms":             "500",
		"group.consumer.min.session.timeout.ms":    "1000",
		"group.consumer.session.timeout.ms":        "10000",
		"group.consumer.min.heartbeat.interval.ms": "500",
		"group.consumer.heartbeat.interval.ms":     "500",
		"num.network.threads":                      "2",
		"num.io.threads":                           "4",
		"background.threads":                       "4",
		"num.recovery.threads.per.data.dir":        "2",
		"log.cleaner.threads":                      "1",
		"log.cleaner.dedupe.buffer.size":           "16777216",
		"unclean.leader.election.enable":           "false",
		// A restarted node of a cluster leads its preferred partitions
		// again within half a minute (the default checks every 5 min).
		"leader.imbalance.check.interval.seconds": "30",
		// A crashed producer's open transaction is aborted soon after its
		// timeout, not up to 10 s later.
		"transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
	}
}

// NewClusterID returns a random KRaft cluster id (a base64url UUID, as
// kafka-storage.sh random-uuid prints). Like Kafka's Uuid.randomUuid it
// never starts with '-': the storage tool's argument parser would take
// such an id for an option ("--cluster-id: expected one argument").
func NewClusterID() string {
	for {
		var b [16]byte
		_, _ = rand.Read(b[:])
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id
		}
	}
}

// Voters formats nodes as controller.quorum.voters lists them:
// id@127.0.0.1:controllerPort, comma-separated.
func Voters(nodes []Node) string {
	vs := make([]string, len(nodes))
	for i, v := range nodes {
		vs[i] = fmt.Sprintf("%d@127.0.0.1:%d", v.ID, v.ControllerPort)
	}
	return strings.Join(vs, ",")
}

// ParseVoters reads a list Voters wrote (the nodes' client ports are not
// part of it and stay 0). Ids and controller ports must be distinct.
func ParseVoters(s string) ([]Node, error) {
	var nodes []Node
	ids, ports := map[int]bool{}, map[int]bool{}
	for _, v := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(v), "@")
		host, p, ok2 := strings.Cut(addr, ":")
		n, err1 := strconv.Atoi(id)
		cp, err2 := strconv.Atoi(p)
		if !ok || !ok2 || err1 != nil || err2 != nil || n < 0 || cp <= 0 || cp > 65535 || host != "127.0.0.1" {
			return nil, fmt.Errorf("voter %q: want id@127.0.0.1:port", v)
		}
		if ids[n] || ports[cp] {
			return nil, fmt.Errorf("voter %q: id or port listed twice", v)
		}
		ids[n], ports[cp] = true, true
		nodes = append(nodes, Node{ID: n, ControllerPort: cp})
	}
	return nodes, nil
}

// Validate names every missing or wrong field.
func (o *Options) Validate() error {
	var errs []error
	if o.LibsDir == "" {
		errs = append(errs, errors.New("LibsDir: required (scripts/fetch-kafka.sh prints it)"))
	} else if jars, _ := filepath.Glob(filepath.Join(o.LibsDir, "kafka_2.13-*.jar")); len(jars) == 0 {
		errs = append(errs, fmt.Errorf("LibsDir: %s holds no kafka_2.13 jar (run scripts/fetch-kafka.sh)", o.LibsDir))
	}
	if o.DataDir == "" {
		errs = append(errs, errors.New("DataDir: required"))
	}
	if o.ClusterID == "" {
		errs = append(errs, errors.New("ClusterID: required (NewClusterID)"))
	}
	if o.Node.Port <= 0 || o.Node.ControllerPort <= 0 || o.Node.Port == o.Node.ControllerPort {
		errs = append(errs, fmt.Errorf("Node: needs two distinct ports, got %d and %d", o.Node.Port, o.Node.ControllerPort))
	}
	if len(o.Voters) > 0 && !slices.ContainsFunc(o.Voters, func(v Node) bool { return v.ID == o.Node.ID && v.ControllerPort == o.Node.ControllerPort }) {
		errs = append(errs, fmt.Errorf("Voters: %s does not list node %d with controller port %d", Voters(o.Voters), o.Node.ID, o.Node.ControllerPort))
	}
	return errors.Join(errs...)
}

func (o *Options) voters() []Node {
	if len(o.Voters) == 0 {
		return []Node{o.Node}
	}
	return o.Voters
}

func (o *Options) properties() []byte {
	voters := o.voters()
	props := Defaults(len(voters))
	maps.Copy(props, map[string]string{
		"process.roles":                             "broker,controller",
		"node.id":                                   strconv.Itoa(o.Node.ID),
		"controller.quorum.voters":                  Voters(voters),
		"listeners":                                 fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", o.Node.Port, o.Node.ControllerPort),
		"advertised.listeners":                      fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", o.Node.Port),
		"controller.listener.names":                 "CONTROLLER",
		"inter.broker.listener.name":                "PLAINTEXT",
		"listener.security.protocol.map":            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"log.dirs":                                  filepath.Join(o.DataDir, "log"),
		"controlled.shutdown.enable":                "true",
		"transaction.partition.verification.enable": "true",
	})
	maps.Copy(props, o.Config)
	var b bytes.Buffer
	b.WriteString("# Written by pkg/kafkalocal on every start.\n")
	for _, k := range slices.Sorted(maps.Keys(props)) {
		fmt.Fprintf(&b, "%s=%s\n", k, props[k])
	}
	return b.Bytes()
}

func (o *Options) java() string {
	if o.Java != "" {
		return o.Java
	}
	return "java"
}

func (o *Options) jvmArgs(main string, heap string) []string {
	return []string{
		"-Xms" + heap, "-Xmx" + heap,
		"-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError",
		"-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + filepath.Join(o.DataDir, "log4j2.properties"),
		"-cp", filepath.Join(o.LibsDir, "*"),
		main,
	}
}

// writeConfig writes server.properties and log4j2.properties into DataDir.
func (o *Options) writeConfig() (string, error) {
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return "", err
	}
	props := filepath.Join(o.DataDir, "server.properties")
	if err := os.WriteFile(props, o.properties(), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(o.DataDir, "log4j2.properties"), log4j2Config, 0o644); err != nil {
		return "", err
	}
	return props, nil
}

// Formatted reports whether the node's storage was formatted.
func (o *Options) Formatted() bool {
	_, err := os.Stat(filepath.Join(o.DataDir, "log", "meta.properties"))
	return err == nil
}

// format runs kafka.tools.StorageTool once per data directory.
func (o *Options) format(ctx context.Context, props string) error {
	if o.Formatted() {
		return nil
	}
	args := append(o.jvmArgs("kafka.tools.StorageTool", "128m"), "format", "-t", o.ClusterID, "-c", props)
	cmd := exec.CommandContext(ctx, o.java(), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("format %s: %w\n%s", o.DataDir, err, out)
	}
	return nil
}

// Process is one running broker JVM.
type Process struct {
	opts Options
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error // set before done is closed
}

// Start formats the node's storage if needed and starts its JVM. It does
// not wait for the broker to serve: see WaitReady. The JVM's output goes to
// DataDir/broker.log. The kernel kills the JVM when the process that
// started it ends, however it ends (PR_SET_PDEATHSIG), so no JVM outlives a
// killed launcher or test.
func Start(ctx context.Context, o Options) (*Process, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("kafkalocal: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Heap == "" {
		o.Heap = "768m"
	}
	props, err := o.writeConfig()
	if err != nil {
		return nil, fmt.Errorf("kafkalocal: %w", err)
	}
	if err := o.format(ctx, props); err != nil {
		return nil, fmt.Errorf("kafkalocal: %w", err)
	}
	logf, err := os.OpenFile(o.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kafkalocal: %w", err)
	}
	fmt.Fprintf(logf, "---- kafkalocal: starting node %d at %s\n", o.Node.ID, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(o.java(), append(o.jvmArgs("kafka.Kafka", o.Heap), props)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	p := &Process{opts: o, cmd: cmd, log: logf, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that started the JVM ends, not
		// the process: this goroutine keeps that thread, and lives until
		// the JVM has exited.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	if err := <-started; err != nil {
		logf.Close()
		return nil, fmt.Errorf("kafkalocal: start java: %w", err)
	}
	o.Logger.Info("kafka started", "node", o.Node.ID, "pid", cmd.Process.Pid, "addr", o.Node.Addr())
	return p, nil
}

// LogPath is where the node's JVM writes its output.
func (o *Options) LogPath() string { return filepath.Join(o.DataDir, "broker.log") }

// Pid is the JVM's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Addr is the node's bootstrap address.
func (p *Process) Addr() string { return p.opts.Node.Addr() }

// Done is closed when the JVM has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the JVM exited (valid after Done).
func (p *Process) Err() error { return p.err }

// Stop asks the broker to shut down (SIGTERM: a controlled shutdown that
// moves leadership away and closes the log cleanly) and kills it when it
// has not exited within timeout.
func (p *Process) Stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		p.opts.Logger.Warn("kafka did not stop in time; killing it", "node", p.opts.Node.ID, "pid", p.Pid(), "timeout", timeout)
		return p.Kill()
	}
}

// Kill ends the JVM at once (SIGKILL, as a crash would) and waits for it.
func (p *Process) Kill() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	return nil
}

// WaitReady waits until the cluster at addrs answers metadata listing at
// least brokers brokers and a controller, or ctx ends. dead, when not nil,
// ends the wait early with an error (a JVM that exited).
func WaitReady(ctx context.Context, addrs []string, brokers int, dead <-chan struct{}) error {
	var last error
	for {
		// A new client each time: one client kept across the polls went
		// on counting fewer brokers than a three-node cluster had
		// registered long after every node served.
		last = probeMetadata(ctx, addrs, brokers)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka at %s not ready: %w (last: %v)", strings.Join(addrs, ","), ctx.Err(), last)
		case <-dead:
			return fmt.Errorf("kafka at %s exited before it was ready (last: %v)", strings.Join(addrs, ","), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func probeMetadata(ctx context.Context, addrs []string, brokers int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	md, err := kadm.NewClient(cl).BrokerMetadata(rctx)
	switch {
	case err != nil:
		return err
	case len(md.Brokers) < brokers:
		return fmt.Errorf("%d of %d brokers registered", len(md.Brokers), brokers)
	case md.Controller < 0:
		return errors.New("no active controller")
	}
	return nil
}

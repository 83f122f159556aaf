package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/simulator"
)

// Names of the stack's objects.
const (
	dispatcherGroup = "wanotify-dispatcher"
	sinkGroup       = "wanotify-sink"
	database        = "wanotify"
	webhookPath     = "/v1/webhooks/whatsapp"
)

// stack is the pipeline's processes and their addresses.
type stack struct {
	sup *supervisor

	// brokerAddr is the bootstrap list, comma-separated (one address
	// per node of a cluster).
	brokerAddr, chTCP, chHTTP, simAddr, webhookAddr, sinkAdmin, webhookAdmin string
	simKey, webhookSecret                                                    string

	clickhouse, broker, simulator, webhook, sink *proc
	dispatchers                                  []*proc
	// brokers are every broker process: broker alone, or the nodes of
	// an Apache Kafka cluster (node id i+1 at index i; broker is the
	// first).
	brokers []*proc
}

// seeds splits a comma-separated bootstrap list.
func seeds(addrs string) []string { return strings.Split(addrs, ",") }

// freeAddr is a loopback address with a port free at the moment.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func freeAddrs(n int) ([]string, error) {
	// Listen on all of them at once so no two are the same.
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	out := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func secret() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newStack lays out the components of cfg on free loopback ports under
// cfg.WorkDir. Nothing starts yet.
func newStack(cfg Config, sup *supervisor) (*stack, error) {
	// Beyond the components' own: a controller port for one Apache Kafka
	// broker, or two more client ports and three controller ports for a
	// cluster.
	addrs, err := freeAddrs(8 + cfg.Dispatchers + 2*(clusterSize-1))
	if err != nil {
		return nil, fmt.Errorf("free ports: %w", err)
	}
	st := &stack{sup: sup,
		brokerAddr: addrs[0], chTCP: addrs[1], chHTTP: addrs[2], simAddr: addrs[3], webhookAddr: addrs[4], sinkAdmin: addrs[5], webhookAdmin: addrs[6],
		simKey: secret(), webhookSecret: secret(),
	}
	common := []string{"WANOTIFY_LOG_LEVEL=info", "WANOTIFY_TRACE_SAMPLE_RATIO=0", "WANOTIFY_SHUTDOWN_READINESS_GRACE=0s"}
	env := func(kv ...string) []string { return append(append([]string{}, common...), kv...) }
	if cfg.Kafka == KafkaApacheCluster {
		st.clusterBrokers(cfg, env, addrs[0], addrs[7+cfg.Dispatchers:])
	}
	kafka := "WANOTIFY_KAFKA_BROKERS=" + st.brokerAddr

	st.clickhouse = sup.add(&proc{name: "clickhouse", role: RoleClickHouse, restart: true,
		env: env("WANOTIFY_CH_LIB="+cfg.ClickHouseLib, "WANOTIFY_CH_DATA_DIR="+filepath.Join(cfg.WorkDir, "clickhouse"),
			"WANOTIFY_CH_TCP_PORT="+port(st.chTCP), "WANOTIFY_CH_HTTP_PORT="+port(st.chHTTP)),
		ready: httpOK("http://" + st.chHTTP + "/ping")})
	if cfg.Kafka != KafkaApacheCluster {
		brokerEnv := env("WANOTIFY_BROKER_PORT="+port(st.brokerAddr), "WANOTIFY_BROKER_DATA_DIR="+filepath.Join(cfg.WorkDir, "kafka"),
			"WANOTIFY_BROKER_GROUP_MIN_SESSION=1s", "WANOTIFY_ADMIN_ADDR=")
		if cfg.Kafka == KafkaApache {
			brokerEnv = append(brokerEnv, "WANOTIFY_BROKER_KIND=apache", "WANOTIFY_KAFKA_LIBS="+cfg.KafkaLibs,
				"WANOTIFY_BROKER_CONTROLLER_PORT="+port(addrs[7+cfg.Dispatchers]))
		}
		st.broker = sup.add(&proc{name: "broker", role: RoleBroker, restart: true, env: brokerEnv,
			ready: brokerReady(st.brokerAddr)})
		st.brokers = []*proc{st.broker}
	}
	// The simulator holds the ledger the checks read: it is never
	// restarted, and its death fails the run.
	st.simulator = sup.add(&proc{name: "simulator", role: RoleSimulator,
		env: env("WANOTIFY_SIM_ADDR="+st.simAddr, "WANOTIFY_SIM_API_KEY="+st.simKey,
			"WANOTIFY_SIM_SEED="+strconv.FormatUint(cfg.Seed, 10),
			"WANOTIFY_SIM_LATENCY=uniform:10ms,40ms",
			// The provider's bucket holds half a second of its limit
			// (the default holds 200 ms). Three dispatchers, ClickHouse
			// and the broker share two cores here, and a scheduling
			// stall of a few hundred milliseconds releases the sends
			// paced during it together; a sustained excess, as from two
			// owners of one partition, still drains it within seconds.
			"WANOTIFY_SIM_RATE_LIMIT=50",
			"WANOTIFY_SIM_BURST=25",
			"WANOTIFY_SIM_FAIL_RETRYABLE="+strconv.FormatFloat(cfg.RetryableRate, 'f', -1, 64),
			"WANOTIFY_SIM_FAIL_PERMANENT="+strconv.FormatFloat(cfg.PermanentRate, 'f', -1, 64),
			// A provider that does not deduplicate by idempotency key:
			// every call the pipeline repeats shows in the ledger.
			"WANOTIFY_SIM_IDEMPOTENCY_KEYS=false",
			"WANOTIFY_SIM_PHONE_NUMBER_IDS="+numberIDs(cfg.Senders),
			// The checks read every accepted send: keep them all.
			"WANOTIFY_SIM_LEDGER_MAX_ENTRIES="+strconv.Itoa(max(simulator.DefaultLedgerMaxEntries, 20*cfg.N)),
			"WANOTIFY_SIM_WEBHOOK_URL=http://"+st.webhookAddr+webhookPath,
			"WANOTIFY_SIM_WEBHOOK_SECRET="+st.webhookSecret,
			// Webhooks must outlive a broker outage (the receiver answers
			// 503 until its status events are durable), and the queue
			// must hold every status of the run's backlog.
			"WANOTIFY_SIM_WEBHOOK_WORKERS="+strconv.Itoa(webhookWorkers(cfg)),
			"WANOTIFY_SIM_WEBHOOK_QUEUE=2000000",
			"WANOTIFY_SIM_WEBHOOK_MAX_ATTEMPTS=60",
			"WANOTIFY_SIM_WEBHOOK_MAX_BACKOFF=5s"),
		ready: httpOK("http://" + st.simAddr + "/healthz")})
	st.webhook = sup.add(&proc{name: "webhook", role: RoleWebhook, restart: true,
		env: env(kafka, "WANOTIFY_WEBHOOK_ADDR="+st.webhookAddr, "WANOTIFY_ADMIN_ADDR="+st.webhookAdmin,
			"WANOTIFY_WEBHOOK_SECRET="+st.webhookSecret),
		ready: httpOK("http://" + st.webhookAdmin + "/readyz")})
	st.sink = sup.add(&proc{name: "sink", role: RoleSink, restart: true,
		env: env(kafka, "WANOTIFY_ADMIN_ADDR="+st.sinkAdmin, "WANOTIFY_CLICKHOUSE_ADDR="+st.chTCP,
			"WANOTIFY_CLICKHOUSE_DATABASE="+database, "WANOTIFY_SINK_RETRY_MAX_BACKOFF=2s"),
		ready: httpOK("http://" + st.sinkAdmin + "/readyz")})
	for i := range cfg.Dispatchers {
		admin := addrs[7+i]
		name := fmt.Sprintf("dispatcher-%d", i+1)
		st.dispatchers = append(st.dispatchers, sup.add(&proc{name: name, role: RoleDispatcher, restart: true,
			env: env(kafka, "WANOTIFY_ADMIN_ADDR="+admin,
				"WANOTIFY_DISPATCHER_TRANSACTIONAL_ID=chaos-"+name,
				"WANOTIFY_DISPATCHER_SESSION_TIMEOUT="+cfg.SessionTimeout.String(),
				"WANOTIFY_DISPATCHER_REBALANCE_TIMEOUT="+(2*cfg.SessionTimeout).String(),
				"WANOTIFY_DISPATCHER_TRANSACTION_TIMEOUT="+(2*cfg.SessionTimeout).String(),
				"WANOTIFY_DISPATCHER_RETRY_DELAYS="+durationList(cfg.RetryDelays),
				"WANOTIFY_DISPATCHER_BREAKER_OPEN_TIMEOUT="+cfg.BreakerOpenTimeout.String(),
				"WANOTIFY_DISPATCHER_HALT_PROBE_INTERVAL="+cfg.HaltProbe.String(),
				"WANOTIFY_DISPATCHER_OUTCOME_UNKNOWN_WINDOW="+cfg.UnknownWindow.String(),
				"WANOTIFY_DISPATCHER_OUTCOME_UNKNOWN_RESEND="+eventType,
				"WANOTIFY_XPRESSBOT_BASE_URL=http://"+st.simAddr,
				"WANOTIFY_XPRESSBOT_API_KEY="+st.simKey,
				"WANOTIFY_XPRESSBOT_TIMEOUT=5s",
				"WANOTIFY_XPRESSBOT_IDEMPOTENCY_KEYS=false",
				"WANOTIFY_SENDERS="+registry(cfg.Senders)),
			ready: httpOK("http://" + admin + "/readyz")}))
	}
	return st, nil
}

// webhookWorkers is how many status webhooks the simulator delivers at
// once. Each delivery waits for the receiver's acks=all write: on three
// replicas and two shared cores, 32 workers drained 200-300 webhooks a
// second, less than a full run produces, so the queue grew through the
// run and webhooks landed minutes late (the first full cluster run; see
// docs/kafka.md). That is the fake provider's limit, not the pipeline's:
// Meta delivers over many connections.
func webhookWorkers(cfg Config) int {
	if cfg.Kafka == KafkaApacheCluster {
		return 128
	}
	return 32
}

var probe = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}

// httpOK succeeds once url answers 200.
func httpOK(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := probe.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
}

// brokerReady succeeds once the broker answers a metadata request.
func brokerReady(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds(addr)...))
		if err != nil {
			return err
		}
		defer cl.Close()
		_, err = kadm.NewClient(cl).ListBrokers(ctx)
		return err
	}
}

// startAll starts the components in dependency order, each once the one
// before is ready.
func (st *stack) startAll(ctx context.Context, topics func(context.Context) error) error {
	if err := st.startReady(ctx, st.clickhouse, 2*time.Minute); err != nil {
		return err
	}
	// The brokers all at once: a KRaft quorum of three elects its
	// leader, and a node registers, only once two voters run.
	for _, p := range st.brokers {
		if err := st.sup.start(p); err != nil {
			return err
		}
	}
	for _, p := range st.brokers {
		if err := p.waitReady(ctx, 5*time.Minute); err != nil {
			return fmt.Errorf("%w\n--- end of the %s log:\n%s", err, p.name, st.sup.logTail(p.name, 30))
		}
	}
	if err := topics(ctx); err != nil {
		return err
	}
	rest := append([]*proc{st.simulator, st.webhook, st.sink}, st.dispatchers...)
	for _, p := range rest {
		if err := st.startReady(ctx, p, 2*time.Minute); err != nil {
			return err
		}
	}
	return nil
}

func (st *stack) startReady(ctx context.Context, p *proc, timeout time.Duration) error {
	if err := st.sup.start(p); err != nil {
		return err
	}
	if err := p.waitReady(ctx, timeout); err != nil {
		return fmt.Errorf("%w\n--- end of the %s log:\n%s", err, p.name, st.sup.logTail(p.name, 30))
	}
	return nil
}

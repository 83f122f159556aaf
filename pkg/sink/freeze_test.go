package sink

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

// freezeProxy is a loopback TCP proxy in front of ClickHouse that can
// stop answering, like a server that hangs: while frozen, connections are
// accepted but no byte moves in either direction. Thawing ends every
// connection of the freeze (their clients gave up on them long before)
// without passing on what they held, so ClickHouse only ever sees whole
// exchanges; connections made after the thaw work normally.
type freezeProxy struct {
	ln       net.Listener
	upstream string

	mu       sync.Mutex
	frozen   bool
	thawed   chan struct{} // closed on thaw
	frozenAt time.Time
	pairs    map[*proxyPair]bool
	closed   bool
	wg       sync.WaitGroup
}

// proxyPair is one proxied connection.
type proxyPair struct {
	client, server net.Conn
	dropped        atomic.Bool // ended by a thaw: nothing held is passed on
}

func (c *proxyPair) close() { _ = c.client.Close(); _ = c.server.Close() }

func newFreezeProxy(t testing.TB, upstream string) *freezeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln, upstream: upstream, thawed: make(chan struct{}), pairs: map[*proxyPair]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *freezeProxy) addr() string { return p.ln.Addr().String() }

func (p *freezeProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		pair := &proxyPair{client: c, server: u}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			pair.close()
			return
		}
		p.pairs[pair] = true
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(pair, u, c)
		go p.pipe(pair, c, u)
	}
}

// pipe copies src to dst, each chunk waiting while the proxy is frozen.
func (p *freezeProxy) pipe(pair *proxyPair, dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		pair.close()
		p.mu.Lock()
		delete(p.pairs, pair)
		p.mu.Unlock()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.wait()
			if pair.dropped.Load() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *freezeProxy) wait() {
	p.mu.Lock()
	frozen, thawed := p.frozen, p.thawed
	p.mu.Unlock()
	if frozen {
		<-thawed
	}
}

// freeze stops every byte, on the connections open now and on new ones.
func (p *freezeProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.frozen {
		p.frozen, p.frozenAt = true, time.Now()
	}
}

// thaw ends the connections of the freeze and lets bytes move again.
func (p *freezeProxy) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.frozen {
		return
	}
	for pair := range p.pairs {
		pair.dropped.Store(true)
		pair.close()
	}
	p.frozen = false
	close(p.thawed)
	p.thawed = make(chan struct{})
}

func (p *freezeProxy) close() {
	p.thaw()
	p.mu.Lock()
	p.closed = true
	for pair := range p.pairs {
		pair.close()
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	p.wg.Wait()
}

// statusRecords are n valid dispatcher status events of distinct
// notifications, as the sink consumes them.
func statusRecords(t testing.TB, prefix string, n int, at time.Time) []*kgo.Record {
	t.Helper()
	out := make([]*kgo.Record, n)
	for i := range out {
		id := fmt.Sprintf("%s-%05d", prefix, i)
		ev := contract.StatusEvent{SchemaVersion: contract.SchemaVersion, EventID: contract.DispatcherEventID(id, contract.StatusAccepted, 1),
			NotificationID: id, ProviderMessageID: "wamid." + id, Provider: "xpressbot", Tenant: "acme", EventType: "otp",
			Recipient: fmt.Sprintf("+1555%07d", i), Status: contract.StatusAccepted, Attempt: 1,
			OccurredAt: at.Add(time.Duration(i) * time.Millisecond), Emitter: contract.EmitterDispatcher}
		v, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = &kgo.Record{Topic: topics.Status, Key: []byte(ev.Recipient), Value: v}
	}
	return out
}

// TestHungClickHouseMakesSinkNotReadyAndLosesNothing puts a proxy that
// can freeze between the sink and ClickHouse. Frozen while the pipeline is
// idle, the sink's probe makes it not ready within the insert timeout and
// a probe interval, counting a ping timeout, and ready again after the
// thaw. Frozen while records arrive, the sink is not ready within the
// insert timeout (not the driver's minutes) and counts insert timeouts;
// nothing is committed while the batch is retried, and after the thaw
// every event is in notification_events exactly once (merges are stopped,
// so a doubled insert would show) and the sink is ready again.
func TestHungClickHouseMakesSinkNotReadyAndLosesNothing(t *testing.T) {
	// A server of its own: the test leaves connections half-answered.
	ch := startOwnClickHouse(t)
	proxy := newFreezeProxy(t, ch.addr())
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(ch.logPath)
			t.Logf("ClickHouse launcher log:\n%s", lastLines(string(b), 60))
			select {
			case <-ch.exited:
				t.Logf("ClickHouse launcher exited: %v", ch.cmd.ProcessState)
			default:
			}
		}
	})
	brokers := testinfra.KafkaWithTopics(t, 1)
	cl := testinfra.Client(t, brokers)
	adm := kadm.NewClient(cl)
	m := collectMetrics(t)

	const database = "wanotify_hung"
	opts := ch.options(database)
	opts.Addr = []string{proxy.addr()}
	opts.DialTimeout = time.Second
	const insertTimeout = 1500 * time.Millisecond
	const group = "sink-hung"
	s := startSink(t, Config{Group: group, BatchRows: 1000, BatchInterval: 50 * time.Millisecond, InsertTimeout: insertTimeout,
		RetryInitialBackoff: 50 * time.Millisecond, RetryMaxBackoff: 300 * time.Millisecond}, opts, brokers)
	waitFor(t, 60*time.Second, "sink ready", s.Ready)

	timeouts := opCounter(t)
	at := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	before := statusRecords(t, "warm", 100, at)
	produce(t, cl, before)
	waitConsumed(t, adm, group, time.Minute)

	// ClickHouse hangs while the pipeline is idle: the probe notices.
	proxy.freeze()
	frozenAt := time.Now()
	waitFor(t, insertTimeout+10*time.Second, "sink not ready while idle and ClickHouse does not answer", func() bool { return !s.Ready() })
	idleNotReady := time.Since(frozenAt)
	t.Logf("idle: not ready %s after ClickHouse stopped answering (insert timeout %s)", idleNotReady.Round(time.Millisecond), insertTimeout)
	if idleNotReady > insertTimeout+maxProbeInterval+2*time.Second {
		t.Errorf("idle sink turned not ready %s after ClickHouse hung; want within the insert timeout %s and a probe interval", idleNotReady, insertTimeout)
	}
	waitFor(t, 10*time.Second, "ping timeouts counted", func() bool { return timeouts(t, "ping") >= 1 })
	proxy.thaw()
	waitFor(t, 30*time.Second, "sink ready again once ClickHouse answers", s.Ready)
	conn, err := clickhouse.Open(ch.options(database))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := conn.Exec(ctx, "SYSTEM STOP MERGES notification_events"); err != nil {
		t.Fatal(err)
	}

	// ClickHouse hangs, then records arrive.
	proxy.freeze()
	frozenAt = time.Now()
	during := statusRecords(t, "frozen", 1000, at.Add(time.Hour))
	produce(t, cl, during)
	waitFor(t, insertTimeout+10*time.Second, "sink not ready while ClickHouse does not answer", func() bool { return !s.Ready() })
	notReadyAfter := time.Since(frozenAt)
	t.Logf("not ready %s after ClickHouse stopped answering (insert timeout %s)", notReadyAfter.Round(time.Millisecond), insertTimeout)
	if notReadyAfter > insertTimeout+2*time.Second {
		t.Errorf("sink turned not ready %s after ClickHouse hung; want within the insert timeout %s", notReadyAfter, insertTimeout)
	}
	waitFor(t, 10*time.Second, "insert timeouts counted", func() bool { return timeouts(t, "insert") >= 1 })
	if errs := m.counter(t, "wanotify.sink.insert.errors"); errs < 1 {
		t.Errorf("insert.errors = %d while ClickHouse hangs", errs)
	}
	c1, err := committedTotal(ctx, adm, group)
	if err != nil {
		t.Fatal(err)
	}
	// Let a few more attempts time out while frozen.
	time.Sleep(2 * insertTimeout)
	if s.Ready() {
		t.Error("sink ready again while ClickHouse still does not answer")
	}
	c2, err := committedTotal(ctx, adm, group)
	if err != nil {
		t.Fatal(err)
	}
	if c2 != c1 {
		t.Errorf("offsets committed while ClickHouse did not answer: %d then %d", c1, c2)
	}
	inserts := timeouts(t, "insert")

	proxy.thaw()
	waitConsumed(t, adm, group, time.Minute)
	waitFor(t, 10*time.Second, "sink ready again", s.Ready)
	t.Logf("%d insert timeouts while frozen", inserts)
	if inserts < 2 {
		t.Errorf("clickhouse.timeouts{op=insert} = %d; the frozen batch should have been retried", inserts)
	}

	want := uint64(len(before) + len(during))
	if got := queryUint(t, conn, "SELECT count() FROM notification_events"); got != want {
		t.Errorf("notification_events has %d rows, want %d: a retried insert was not deduplicated", got, want)
	}
	if got := queryUint(t, conn, "SELECT uniqExact(event_id) FROM notification_events"); got != want {
		t.Errorf("notification_events has %d distinct events, want %d", got, want)
	}
	if got := queryUint(t, conn, "SELECT count() FROM communication_logs WHERE status = 'accepted'"); got != want {
		t.Errorf("communication_logs has %d accepted notifications, want %d", got, want)
	}
}

// opCounter reads wanotify.sink.clickhouse.timeouts for one op, relative
// to its value when opCounter was called.
func opCounter(t testing.TB) func(testing.TB, string) int64 {
	t.Helper()
	collectMetrics(t)
	read := func(t testing.TB, op string) int64 {
		t.Helper()
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if d, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "wanotify.sink.clickhouse.timeouts" {
					for _, dp := range d.DataPoints {
						if v, ok := dp.Attributes.Value("op"); ok && v.AsString() == op {
							n += dp.Value
						}
					}
				}
			}
		}
		return n
	}
	base := map[string]int64{"insert": read(t, "insert"), "ping": read(t, "ping")}
	return func(t testing.TB, op string) int64 { return read(t, op) - base[op] }
}

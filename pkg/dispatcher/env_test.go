package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/provider/providertest"
	"github.com/wanotify/wanotify/pkg/provider/xpressbot"
	"github.com/wanotify/wanotify/pkg/senders"
	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

const simKey = "test-key"

// testConfig is DefaultConfig scaled for tests: short retry delays,
// quick flushes and fast group membership.
func testConfig(txnID string) Config {
	c := DefaultConfig()
	c.TransactionalID = txnID
	c.FlushInterval = 50 * time.Millisecond
	c.FetchMaxWait = 100 * time.Millisecond
	c.SessionTimeout = 3 * time.Second
	c.RebalanceTimeout = 10 * time.Second
	c.TransactionTimeout = 10 * time.Second
	c.RetryDelays = []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}
	c.Breaker.OpenTimeout = 300 * time.Millisecond
	c.Limits.Rate = 2000
	c.Limits.Burst = 20
	c.DrainTimeout = 10 * time.Second
	c.Senders = testSenders
	// Pair pacing (one message per recipient per 6 s) would stretch every
	// retry and ordering test to the pair interval; its own tests turn it
	// on (pacing_test.go).
	c.PairRate.Interval = 0
	return c
}

// testSenders is the registry of the tests' tenant acme: every sender the
// tests name, free text allowed.
var testSenders = func() *senders.Registry {
	r, err := senders.New(testSendersFile, "test")
	if err != nil {
		panic(err)
	}
	return r
}()

// testSendersFile is testSenders' document (WANOTIFY_SENDERS of the
// tests' dispatcher processes).
var testSendersFile = func() senders.File {
	f := senders.File{Tenants: []senders.Tenant{{Name: "acme", DefaultSender: "sender-1", FreeText: true},
		{Name: "globex", DefaultSender: "sender-1", FreeText: true}}}
	for _, s := range []string{"sender-1", "sender-a", "sender-b", "sender-c", "s1", "sender-bad", "sender-good"} {
		f.Senders = append(f.Senders, senders.Sender{Name: s, Tenants: []string{"acme", "globex"}, NumberID: s})
	}
	return f
}()

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("WANOTIFY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

type env struct {
	t       *testing.T
	brokers []string
	sim     *simulator.Simulator
	simURL  string
	prod    *kgo.Client
}

func newEnv(t *testing.T, partitions int32, b simulator.Behavior) *env {
	t.Helper()
	return newEnvOn(t, testinfra.KafkaWithTopics(t, partitions), b)
}

// newEnvOn is newEnv on the given brokers.
func newEnvOn(t *testing.T, brokers []string, b simulator.Behavior) *env {
	t.Helper()
	cfg := simulator.Config{APIKey: simKey, Behavior: b, Seed: 7}
	sim, url := providertest.StartSimulator(t, cfg)
	prod := testinfra.Client(t, brokers, kgo.ProducerLinger(0))
	return &env{t: t, brokers: brokers, sim: sim, simURL: url, prod: prod}
}

func (e *env) kafkaOpts() []kgo.Opt {
	return []kgo.Opt{kgo.SeedBrokers(e.brokers...), kgo.MetadataMinAge(250 * time.Millisecond)}
}

func (e *env) provider() *xpressbot.Client {
	e.t.Helper()
	// A generous timeout: a timed-out call that the provider did accept
	// is retried (timeouts are transient), which a loaded test machine
	// must not turn into a duplicate.
	p, err := xpressbot.New(xpressbot.Options{BaseURL: e.simURL, APIKey: simKey, Timeout: 30 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(p.Close)
	return p
}

// running is a Dispatcher started in the background.
type running struct {
	d      *Dispatcher
	cancel context.CancelFunc
	done   chan error
}

func (e *env) start(cfg Config) *running {
	e.t.Helper()
	return e.startWith(cfg, e.provider())
}

func (e *env) startWith(cfg Config, prov provider.Provider) *running {
	e.t.Helper()
	d, err := New(cfg, prov, e.kafkaOpts(), testLogger(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{d: d, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

func (r *running) stop(t testing.TB) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Errorf("Run did not return after cancel")
	}
}

var recipientSeq = struct {
	sync.Mutex
	n int
}{}

// notification builds a valid notification; key is its idempotency key.
func notification(key, recipient, sender, body string) *contract.Notification {
	now := time.Now().UTC()
	return &contract.Notification{
		ID: contract.NotificationID("acme", key), IdempotencyKey: key, Tenant: "acme", SourceService: "billing",
		EventType: "invoice.reminder", Recipient: recipient, Sender: sender,
		Text: &contract.Text{Body: body}, CreatedAt: now,
	}
}

func recipient(i int) string { return fmt.Sprintf("+1555%07d", i) }

func (e *env) publish(ns ...*contract.Notification) {
	e.t.Helper()
	e.publishTo(topics.Requested, ns...)
}

// publishTo publishes to one topic (a lane's).
func (e *env) publishTo(topic string, ns ...*contract.Notification) {
	e.t.Helper()
	recs := make([]*kgo.Record, 0, len(ns))
	for _, n := range ns {
		v, err := n.Encode()
		if err != nil {
			e.t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: n.Key(), Value: v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) publishRaw(key, value []byte) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.prod.ProduceSync(ctx, &kgo.Record{Topic: topics.Requested, Key: key, Value: value}).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// watcher reads output topics (read_committed) in the background.
type watcher struct {
	mu       sync.Mutex
	statuses map[string][]contract.StatusEvent
	events   map[string]int // event id -> count
	retries  []*kgo.Record
	dlq      []*kgo.Record
	changed  chan struct{}
	cl       *kgo.Client
}

func (e *env) watch() *watcher {
	e.t.Helper()
	cl := testinfra.Client(e.t, e.brokers,
		kgo.ConsumeTopics(append([]string{topics.Status, topics.DLQ, topics.Deferred}, topics.RetryTiers...)...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	w := &watcher{statuses: map[string][]contract.StatusEvent{}, events: map[string]int{}, changed: make(chan struct{}, 1), cl: cl}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	e.t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			w.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				switch r.Topic {
				case topics.Status:
					ev, err := contract.DecodeStatusEvent(r.Value)
					if err != nil {
						e.t.Errorf("status event invalid: %v", err)
						return
					}
					w.statuses[ev.NotificationID] = append(w.statuses[ev.NotificationID], *ev)
					w.events[ev.EventID]++
				case topics.DLQ:
					w.dlq = append(w.dlq, r)
				default:
					w.retries = append(w.retries, r)
				}
			})
			w.mu.Unlock()
			select {
			case w.changed <- struct{}{}:
			default:
			}
		}
	}()
	return w
}

// terminal returns the notification ids with a terminal status.
func (w *watcher) terminal() map[string]contract.Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]contract.Status{}
	for id, evs := range w.statuses {
		for _, ev := range evs {
			if ev.Status.Terminal() {
				out[id] = ev.Status
			}
		}
	}
	return out
}

// waitTerminal waits until every id has a terminal status.
func (w *watcher) waitTerminal(t *testing.T, ids []string, timeout time.Duration) map[string]contract.Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		term := w.terminal()
		missing := 0
		var example string
		for _, id := range ids {
			if _, ok := term[id]; !ok {
				missing++
				example = id
			}
		}
		if missing == 0 {
			return term
		}
		if time.Now().After(deadline) {
			w.mu.Lock()
			evs := w.statuses[example]
			w.mu.Unlock()
			t.Fatalf("%d of %d notifications without a terminal status after %s (e.g. %s: %+v)", missing, len(ids), timeout, example, evs)
		}
		select {
		case <-w.changed:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (w *watcher) snapshot() (map[string][]contract.StatusEvent, []*kgo.Record, []*kgo.Record) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := make(map[string][]contract.StatusEvent, len(w.statuses))
	for k, v := range w.statuses {
		st[k] = append([]contract.StatusEvent(nil), v...)
	}
	return st, append([]*kgo.Record(nil), w.retries...), append([]*kgo.Record(nil), w.dlq...)
}

// checkRetriesNotEarly checks every send the simulator saw against the
// due time of the retry record it came from: no attempt ran before due.
// Sends are matched by notification id and attempt order.
func checkRetriesNotEarly(t *testing.T, sim *simulator.Simulator, retries []*kgo.Record) int {
	t.Helper()
	due := map[string][]time.Time{} // notification id -> due of attempt 2, 3, 4
	for _, r := range retries {
		f, err := envelope.Parse(r.Headers)
		if err != nil {
			t.Fatalf("retry record with invalid headers: %v", err)
		}
		if f.DueAt.IsZero() {
			t.Fatal("retry record without a due time")
		}
		if idx := f.Attempt - 1; idx >= 0 {
			for len(due[f.NotificationID]) <= idx {
				due[f.NotificationID] = append(due[f.NotificationID], time.Time{})
			}
			due[f.NotificationID][idx] = f.DueAt
		}
	}
	led := sim.Ledger()
	calls := map[string][]time.Time{}
	for _, e := range led.Entries {
		calls[e.NotificationID] = append(calls[e.NotificationID], e.Time)
	}
	for _, r := range led.Rejections {
		calls[r.NotificationID] = append(calls[r.NotificationID], r.Time)
	}
	checked := 0
	for id, ts := range calls {
		sortTimes(ts)
		for i := 1; i < len(ts); i++ {
			ds := due[id]
			if i-1 >= len(ds) || ds[i-1].IsZero() {
				continue
			}
			checked++
			if ts[i].Before(ds[i-1]) {
				t.Errorf("notification %s attempt %d ran at %s, before its due time %s", id, i+1, ts[i].Format(time.RFC3339Nano), ds[i-1].Format(time.RFC3339Nano))
			}
		}
	}
	return checked
}

func sortTimes(ts []time.Time) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j].Before(ts[j-1]); j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// checkExactlyOnce checks the committed outputs: every status event id
// once, one retry record per notification and attempt, one DLQ record per
// notification.
func checkExactlyOnce(t *testing.T, w *watcher) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, n := range w.events {
		if n != 1 {
			t.Errorf("status event %s committed %d times", id, n)
		}
	}
	seen := map[string]bool{}
	for _, r := range w.retries {
		f, err := envelope.Parse(r.Headers)
		if err != nil {
			t.Errorf("retry headers: %v", err)
			continue
		}
		k := f.NotificationID + "/" + strconv.Itoa(f.Attempt)
		if seen[k] {
			t.Errorf("retry record %s committed twice", k)
		}
		seen[k] = true
	}
	dlq := map[string]bool{}
	for _, r := range w.dlq {
		f, err := envelope.Parse(r.Headers)
		if err != nil {
			t.Errorf("DLQ headers: %v", err)
			continue
		}
		if f.NotificationID != "" && dlq[f.NotificationID] {
			t.Errorf("DLQ record of %s committed twice", f.NotificationID)
		}
		dlq[f.NotificationID] = true
	}
}

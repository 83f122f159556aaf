package halt_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/wanotify/wanotify/pkg/dispatcher/halt"
	"github.com/wanotify/wanotify/pkg/dispatcher/sched"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/provider/providertest"
	"github.com/wanotify/wanotify/pkg/provider/xpressbot"
	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var token = halt.Reason{Code: "meta_190", Message: "access token expired or invalid"}

// changes records a store's OnChange calls.
type changes struct {
	mu  sync.Mutex
	got []halt.Change
}

func (c *changes) add(ch halt.Change) { c.mu.Lock(); c.got = append(c.got, ch); c.mu.Unlock() }

func (c *changes) list() []halt.Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]halt.Change(nil), c.got...)
}

// open starts a store of instance on brokers; it is closed at cleanup.
func open(t *testing.T, brokers []string, instance string, mod ...func(*halt.Config)) *halt.Store {
	t.Helper()
	cfg := halt.Config{Opts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, Instance: instance, ProbeInterval: time.Minute}
	for _, m := range mod {
		m(&cfg)
	}
	s, err := halt.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("start %s: %v", instance, err)
	}
	return s
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A halt written by one instance is seen by another within about a
// second, and a resume written elsewhere (notifyctl) releases both.
func TestHaltReachesEveryInstance(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 1)
	var seenB changes
	a := open(t, brokers, "dispatcher-a")
	b := open(t, brokers, "dispatcher-b", func(c *halt.Config) { c.OnChange = seenB.add })
	ctl := open(t, brokers, "notifyctl")

	began := time.Now()
	if err := a.Halt(ctxT(t), "acme-main", token); err != nil {
		t.Fatal(err)
	}
	if why, _, ok := a.Halted("acme-main"); !ok || why != token {
		t.Fatalf("the halting instance: halted %v why %v", ok, why)
	}
	eventually(t, 3*time.Second, "instance b sees the halt", func() bool { _, _, ok := b.Halted("acme-main"); return ok })
	t.Logf("halt reached the other instance in %s", time.Since(began).Round(time.Millisecond))
	why, since, _ := b.Halted("acme-main")
	if why != token || since.Before(began.Add(-time.Second)) || since.After(time.Now()) {
		t.Fatalf("instance b: why %v since %v", why, since)
	}
	if _, _, ok := b.Halted("acme-bulk"); ok {
		t.Fatal("another sender is halted too")
	}
	st := b.States()
	if len(st) != 1 || st[0].Sender != "acme-main" || st[0].By != "dispatcher-a" || st[0].State != halt.StateHalted || st[0].ProbeAfter == nil {
		t.Fatalf("states on b: %+v", st)
	}
	// A second account fault of the same kind writes nothing new and
	// keeps the halt's start.
	if err := b.Halt(ctxT(t), "acme-main", token); err != nil {
		t.Fatal(err)
	}
	if _, s2, _ := b.Halted("acme-main"); !s2.Equal(since) {
		t.Fatalf("since moved from %v to %v", since, s2)
	}

	if err := ctl.Resume(ctxT(t), "acme-main", "notifyctl"); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*halt.Store{"a": a, "b": b} {
		eventually(t, 3*time.Second, "instance "+name+" sees the resume", func() bool { _, _, ok := s.Halted("acme-main"); return !ok })
	}
	eventually(t, 3*time.Second, "b's change callback saw halt then resume", func() bool { return len(seenB.list()) == 2 })
	got := seenB.list()
	if !got[0].Halted || got[0].Reason != token || got[0].By != "dispatcher-a" || got[1].Halted || got[1].By != "notifyctl" {
		t.Fatalf("changes seen by b: %+v", got)
	}
}

// A restarted store restores the halts written before it started, and
// the resumes: halts hold across restarts with no state but Kafka's.
func TestRestartRestoresHalt(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 1)
	a := open(t, brokers, "dispatcher-a")
	for _, s := range []string{"s1", "s2", "s3"} {
		if err := a.Halt(ctxT(t), s, halt.Reason{Code: "meta_131042", Message: "payment issue"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Resume(ctxT(t), "s2", "notifyctl"); err != nil {
		t.Fatal(err)
	}
	// Noise that must not release a halt: an unreadable state, a record
	// under an unknown key.
	cl := testinfra.Client(t, brokers, kgo.DefaultProduceTopic(topics.Senders))
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Key: []byte("s3"), Value: []byte("{not json")},
		&kgo.Record{Key: []byte("x/y"), Value: []byte("{}")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	a.Close()

	// Start returns only once everything before it is applied: no
	// polling here.
	b := open(t, brokers, "dispatcher-a")
	for s, want := range map[string]bool{"s1": true, "s2": false, "s3": true, "s4": false} {
		why, _, ok := b.Halted(s)
		if ok != want || (ok && why.Code != "meta_131042") {
			t.Errorf("after restart %s: halted %v (%v), want %v", s, ok, why, want)
		}
	}
	st := b.States()
	if len(st) != 3 || st[1].Sender != "s2" || st[1].By != "notifyctl" || st[1].Message != "resumed by notifyctl" {
		t.Fatalf("states after restart: %+v", st)
	}
}

// Start refuses a missing topic and a topic of several partitions,
// saying what to do.
func TestStartRefusesAMissingOrPartitionedTopic(t *testing.T) {
	brokers := testinfra.Kafka(t)
	s, err := halt.New(halt.Config{Opts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, Instance: "d"})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(ctxT(t))
	s.Close()
	if err == nil || !strings.Contains(err.Error(), topics.Senders) || !strings.Contains(err.Error(), "notifyctl topics apply") {
		t.Fatalf("missing topic: %v", err)
	}
	adm := kadm.NewClient(testinfra.Client(t, brokers))
	if _, err := adm.CreateTopic(ctxT(t), 3, 1, nil, topics.Senders); err != nil {
		t.Fatal(err)
	}
	s, _ = halt.New(halt.Config{Opts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, Instance: "d"})
	eventually(t, 5*time.Second, "the topic is seen", func() bool {
		err = s.Start(ctxT(t))
		return err == nil || strings.Contains(err.Error(), "partitions")
	})
	s.Close()
	if err == nil || !strings.Contains(err.Error(), "has 3 partitions") {
		t.Fatalf("three partitions: %v", err)
	}
	if _, err := halt.New(halt.Config{Instance: "d", ProbeInterval: -time.Second}); err == nil ||
		!strings.Contains(err.Error(), "WANOTIFY_DISPATCHER_HALT_PROBE_INTERVAL") || !strings.Contains(err.Error(), "Opts") {
		t.Fatalf("bad config: %v", err)
	}
}

// The probe schedule: none before the interval, one once it passed (a
// little later per instance), the next an interval after the one taken,
// and every instance follows the probe one instance took.
func TestProbeInterval(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 1)
	const interval = time.Minute
	spread := interval / 10
	a := open(t, brokers, "dispatcher-a")
	b := open(t, brokers, "dispatcher-b")
	if a.ProbeDue("acme-main", time.Now().Add(time.Hour)) {
		t.Fatal("a running sender has a probe due")
	}
	if err := a.Halt(ctxT(t), "acme-main", token); err != nil {
		t.Fatal(err)
	}
	_, since, _ := a.Halted("acme-main")
	eventually(t, 3*time.Second, "b sees the halt", func() bool { _, _, ok := b.Halted("acme-main"); return ok })
	for name, s := range map[string]*halt.Store{"a": a, "b": b} {
		if s.ProbeDue("acme-main", since.Add(interval-time.Second)) {
			t.Errorf("%s: probe due before the interval", name)
		}
		if !s.ProbeDue("acme-main", since.Add(interval+spread)) {
			t.Errorf("%s: no probe due an interval (plus the spread) after the halt", name)
		}
	}
	taken := since.Add(interval + spread)
	a.ProbeTaken("acme-main", taken)
	if a.ProbeDue("acme-main", taken.Add(interval-time.Second)) || !a.ProbeDue("acme-main", taken.Add(interval+spread)) {
		t.Fatal("a: the next probe is not one interval after the one taken")
	}
	eventually(t, 3*time.Second, "b follows the probe a took", func() bool { return !b.ProbeDue("acme-main", taken.Add(time.Second)) })
	if !b.ProbeDue("acme-main", taken.Add(interval+spread)) {
		t.Fatal("b: no probe an interval after a's")
	}
	// The probe time survives a restart.
	a.Close()
	c := open(t, brokers, "dispatcher-a")
	if c.ProbeDue("acme-main", taken.Add(interval-time.Second)) || !c.ProbeDue("acme-main", taken.Add(interval+spread)) {
		t.Fatal("after restart the probe schedule is lost")
	}
}

type item struct{ sender, recipient string }

func (i *item) Sender() string    { return i.sender }
func (i *item) Recipient() string { return i.recipient }
func (i *item) Tenant() string    { return "acme" }

// The gate: a running sender's items go; a halted sender's are diverted
// with the halt's reason, except one probe per interval; a probe given
// back lets the next item probe; the probe's answer settles the halt.
func TestGateVerdicts(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 1)
	const interval = time.Minute
	s := open(t, brokers, "dispatcher-a")
	g := s.Gate()
	var _ sched.Gate = g
	one, two, three := &item{"acme-main", "+447700900001"}, &item{"acme-main", "+447700900002"}, &item{"acme-main", "+447700900003"}
	other := &item{"acme-bulk", "+447700900004"}
	now := time.Now()
	if v := g.Check(one, now); v.Kind != sched.Go {
		t.Fatalf("running sender: %+v", v)
	}
	if err := s.Halt(ctxT(t), "acme-main", token); err != nil {
		t.Fatal(err)
	}
	_, since, _ := s.Halted("acme-main")
	v := g.Check(one, since)
	var he *halt.HaltedError
	if v.Kind != sched.Divert || !errors.Is(v.Why, halt.ErrHalted) || !errors.As(v.Why, &he) || he.Reason != token || he.Sender != "acme-main" || !he.Since.Equal(since) {
		t.Fatalf("halted sender: %+v", v)
	}
	if !strings.Contains(v.Why.Error(), "meta_190") {
		t.Fatalf("the reason does not say the fault: %v", v.Why)
	}
	if info := he.Info(); info.Code != "meta_190" || !info.Retryable || !strings.Contains(info.Message, token.Message) || !strings.Contains(info.Message, "acme-main") {
		t.Fatalf("status event error of a halted sender: %+v", info)
	}
	if v := g.Check(other, since); v.Kind != sched.Go {
		t.Fatalf("another sender is held too: %+v", v)
	}
	due := since.Add(interval + interval/10)
	if v := g.Check(one, due); v.Kind != sched.Go {
		t.Fatalf("probe due: %+v", v)
	}
	if v := g.Check(two, due); v.Kind != sched.Divert {
		t.Fatalf("a second probe in the same interval: %+v", v)
	}
	// Given back (a later gate held it): the next item probes at once.
	g.Release(two) // holds no probe: nothing happens
	if v := g.Check(three, due); v.Kind != sched.Divert {
		t.Fatalf("release of an item without the probe freed it: %+v", v)
	}
	g.Release(one)
	if v := g.Check(two, due); v.Kind != sched.Go {
		t.Fatalf("probe given back, next item: %+v", v)
	}
	// The probe's call fails with the account fault again: still halted,
	// since unchanged, and the next probe an interval later.
	fault := &provider.Error{Class: provider.AccountFault, Code: "meta_190", Message: "access token expired or invalid"}
	if err := s.Outcome(ctxT(t), "acme-main", due, fault); err != nil {
		t.Fatal(err)
	}
	g.Release(two) // after the call: the probe stays taken
	if _, s2, ok := s.Halted("acme-main"); !ok || !s2.Equal(since) {
		t.Fatalf("after a failed probe: halted %v since %v (was %v)", ok, s2, since)
	}
	if v := g.Check(three, due.Add(time.Second)); v.Kind != sched.Divert {
		t.Fatalf("a probe right after a failed one: %+v", v)
	}
	// A retryable failure of a probe changes nothing; a success of a call
	// that started before the halt does not resume it.
	if err := s.Outcome(ctxT(t), "acme-main", due, &provider.Error{Class: provider.Retryable, Code: "http_503"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Outcome(ctxT(t), "acme-main", since.Add(-time.Second), nil); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.Halted("acme-main"); !ok {
		t.Fatal("resumed by a retryable failure or by a call older than the halt")
	}
	// The next probe succeeds: resumed, everything goes.
	due2 := due.Add(interval + interval/10)
	if v := g.Check(three, due2); v.Kind != sched.Go {
		t.Fatalf("second probe: %+v", v)
	}
	if err := s.Outcome(ctxT(t), "acme-main", due2, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.Halted("acme-main"); ok {
		t.Fatal("a successful probe did not resume the sender")
	}
	if v := g.Check(one, due2); v.Kind != sched.Go {
		t.Fatalf("resumed sender: %+v", v)
	}
	st := s.States()
	if len(st) != 1 || st[0].By != "dispatcher-a" || st[0].Message != "probe succeeded" {
		t.Fatalf("state after the probe: %+v", st)
	}
	// An account fault learnt from a call halts the sender.
	if err := s.Outcome(ctxT(t), "acme-bulk", time.Now(), wrapped(fault)); err != nil {
		t.Fatal(err)
	}
	if why, _, ok := s.Halted("acme-bulk"); !ok || why.Code != "meta_190" {
		t.Fatalf("account fault of a call: halted %v why %v", ok, why)
	}
}

func wrapped(err error) error { return errors.Join(errors.New("send"), err) }

// The halted gauge: 1 while halted, 0 once resumed, per sender.
func TestHaltedGauge(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 1)
	s := open(t, brokers, "dispatcher-a")
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	reg, err := s.RegisterMetrics(mp.Meter("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reg.Unregister() }()
	gauge := func() map[string]int64 {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name != "wanotify.dispatcher.sender.halted" {
					continue
				}
				for _, p := range m.Data.(metricdata.Gauge[int64]).DataPoints {
					v, _ := p.Attributes.Value(attribute.Key("sender"))
					out[v.AsString()] = p.Value
				}
			}
		}
		return out
	}
	if g := gauge(); len(g) != 0 {
		t.Fatalf("before any halt: %v", g)
	}
	if err := s.Halt(ctxT(t), "acme-main", token); err != nil {
		t.Fatal(err)
	}
	if g := gauge(); len(g) != 1 || g["acme-main"] != 1 {
		t.Fatalf("halted: %v", g)
	}
	if err := s.Resume(ctxT(t), "acme-main", "notifyctl"); err != nil {
		t.Fatal(err)
	}
	if g := gauge(); len(g) != 1 || g["acme-main"] != 0 {
		t.Fatalf("resumed: %v", g)
	}
}

// Reports: written every interval, read by every store, ignored once
// stale, withdrawn on a clean stop.
func TestReports(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 1)
	a := open(t, brokers, "dispatcher-a")
	reader := open(t, brokers, "notifyctl")
	var mu sync.Mutex
	queued := 7
	rep := a.NewReporter(100*time.Millisecond, func() []halt.Figures {
		mu.Lock()
		defer mu.Unlock()
		return []halt.Figures{{Sender: "acme-main", Rate: 40, Share: 20, Breaker: "closed", Queued: queued}, {Sender: "acme-bulk", Rate: 10, Share: 5, Breaker: "open"}}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rep.Run(ctx) }()
	defer func() { cancel(); <-done }()

	eventually(t, 5*time.Second, "the reader sees both reports", func() bool { return len(reader.Reports(time.Now())) == 2 })
	r := reader.Reports(time.Now())
	if r[0].Sender != "acme-bulk" || r[0].Breaker != "open" || r[1].Sender != "acme-main" || r[1].Instance != "dispatcher-a" ||
		r[1].Rate != 40 || r[1].Share != 20 || r[1].Queued != 7 || r[1].Breaker != "closed" {
		t.Fatalf("reports: %+v", r)
	}
	mu.Lock()
	queued = 3
	mu.Unlock()
	eventually(t, 5*time.Second, "the next report replaces the first", func() bool {
		r := reader.Reports(time.Now())
		return len(r) == 2 && r[1].Queued == 3
	})
	if n := len(reader.Reports(time.Now().Add(time.Minute))); n != 0 {
		t.Fatalf("%d reports a minute on, want none (stale)", n)
	}
	cancel()
	<-done
	eventually(t, 5*time.Second, "a clean stop withdraws the reports", func() bool { return len(reader.Reports(time.Now())) == 0 })
}

// A halt whose write failed still holds here, and the next fault of the
// same kind writes it again, so the other instances learn of it.
func TestHaltWriteFailureIsWrittenAgain(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 1)
	a := open(t, brokers, "dispatcher-a")
	b := open(t, brokers, "dispatcher-b")
	dead, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Halt(dead, "acme-main", token); err == nil {
		t.Fatal("a halt written with a cancelled context reported success")
	}
	if _, _, ok := a.Halted("acme-main"); !ok {
		t.Fatal("a halt whose write failed does not hold locally")
	}
	if err := a.Halt(ctxT(t), "acme-main", token); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "b sees the halt written again", func() bool { _, _, ok := b.Halted("acme-main"); return ok })
	// A tombstone of the sender's key releases it, as a resume does.
	cl := testinfra.Client(t, brokers, kgo.DefaultProduceTopic(topics.Senders))
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Key: []byte("acme-main")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "a tombstone releases the sender", func() bool { _, _, ok := b.Halted("acme-main"); return !ok })
}

// The chain from the provider to the halt and back, with the simulator's
// account-fault switch: a 190 answer halts the sender (and only it) on
// every instance; once the account is fixed, the next probe goes through
// and resumes it everywhere.
func TestSimulatedAccountFaultHaltsAndProbeResumes(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 1)
	const interval = time.Minute
	a := open(t, brokers, "dispatcher-a")
	b := open(t, brokers, "dispatcher-b")
	sim, url := providertest.StartSimulator(t, simulator.Config{APIKey: providertest.APIKey, Seed: 1})
	cl, err := xpressbot.New(xpressbot.Options{BaseURL: url, APIKey: providertest.APIKey})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const other = "106540352242999"
	if err := sim.SetAccountFault(providertest.Sender, provider.MetaAccessToken); err != nil {
		t.Fatal(err)
	}
	g := a.Gate()
	n := 0
	// call runs one item through the gate and, if it may go, the provider,
	// reporting the answer as the call stage does.
	call := func(sender string, now time.Time) (sched.Verdict, error) {
		n++
		it := &item{sender, providertest.Recipient}
		v := g.Check(it, now)
		if v.Kind != sched.Go {
			return v, nil
		}
		m := providertest.TextMessage(n, "hello")
		m.Sender = sender
		started := time.Now()
		_, err := cl.Send(ctxT(t), m)
		if oerr := a.Outcome(ctxT(t), sender, started, err); oerr != nil {
			t.Fatal(oerr)
		}
		return v, err
	}
	if _, err := call(providertest.Sender, time.Now()); err == nil {
		t.Fatal("the simulator's account fault did not fail the call")
	}
	why, since, ok := a.Halted(providertest.Sender)
	if !ok || why.Code != "meta_190" {
		t.Fatalf("after a 190: halted %v, why %+v", ok, why)
	}
	eventually(t, 3*time.Second, "b sees the halt", func() bool { _, _, ok := b.Halted(providertest.Sender); return ok })
	if v, _ := call(providertest.Sender, time.Now()); v.Kind != sched.Divert {
		t.Fatalf("halted sender's next item: %+v", v)
	}
	if v, err := call(other, time.Now()); v.Kind != sched.Go || err != nil {
		t.Fatalf("another sender: %+v, %v", v, err)
	}
	// Still broken at the probe: stays halted, same start.
	due := since.Add(interval + interval/10)
	if v, err := call(providertest.Sender, due); v.Kind != sched.Go || err == nil {
		t.Fatalf("probe into a broken account: %+v, %v", v, err)
	}
	if _, s2, ok := a.Halted(providertest.Sender); !ok || !s2.Equal(since) {
		t.Fatalf("after a failed probe: halted %v since %v", ok, s2)
	}
	// Fixed: the next probe resumes it everywhere.
	if err := sim.SetAccountFault(providertest.Sender, 0); err != nil {
		t.Fatal(err)
	}
	if v, err := call(providertest.Sender, due.Add(interval+interval/10)); v.Kind != sched.Go || err != nil {
		t.Fatalf("probe into a fixed account: %+v, %v", v, err)
	}
	for name, s := range map[string]*halt.Store{"a": a, "b": b} {
		eventually(t, 3*time.Second, name+" sees the resume", func() bool { _, _, ok := s.Halted(providertest.Sender); return !ok })
	}
}

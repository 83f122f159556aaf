// Package halt keeps the state of every sender: running, or halted by an
// account fault (an expired token, a payment problem, a policy block:
// the rows of class account_fault in pkg/provider's error table). A
// halted sender sends nothing; its records wait in Kafka, no attempt
// spent and nothing dead-lettered, until one probe notification per probe
// interval gets through or an operator resumes it (notifyctl sender
// resume).
//
// The state lives in Kafka only, like the dedupe changelog: the
// compacted topic notifications.senders holds one record per sender
// (key: the sender; value: State, versioned JSON) and one report per
// dispatcher instance and sender (key report/<instance>/<sender>: its
// rate, breaker and queued count, for notifyctl sender list). Every
// dispatcher instance runs a Store: it reads the topic to its end before
// the dispatcher sends anything, then tails it with a plain consumer (no
// group), so a halt written by one instance, or a resume written by
// notifyctl, reaches every instance within about a second, and halts
// hold across restarts.
//
// Reading "to the end" of a compacted topic cannot trust the end offset
// (the record before it may have been compacted away): Start writes a
// record of its own (key sync/<instance>) and reads until it has read
// that one. The topic therefore has exactly one partition; Start refuses
// another count.
//
// In a dispatcher: New and Start before the first fetch; the Gate (one
// per Store) in every sender's scheduler; Outcome after every provider
// call; OnChange to release a resumed sender's records; RegisterMetrics
// for the halted gauge; a Reporter's Run alongside, stopped before
// Close.
package halt

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/topics"
)

// Defaults.
const (
	// DefaultProbeInterval is how often a halted sender gets one probe
	// (WANOTIFY_DISPATCHER_HALT_PROBE_INTERVAL).
	DefaultProbeInterval = 5 * time.Minute
	// DefaultReportMaxAge: reports older than this are ignored (their
	// instance stopped without tombstoning them, e.g. kill -9).
	DefaultReportMaxAge = 30 * time.Second
	// DefaultReportInterval is how often a Reporter writes.
	DefaultReportInterval = 5 * time.Second
	// tailWait bounds one fetch of the tail: how late a state written
	// elsewhere may arrive here, besides the broker's own latency.
	tailWait = 250 * time.Millisecond
	// maxSpread caps the per-instance offset of probe times (see
	// ProbeDue).
	maxSpread = 30 * time.Second
)

// Config configures a Store.
type Config struct {
	// Opts connect to the cluster (seed brokers, TLS, SASL) and nothing
	// else: no transactional id, no consumer group. The Store adds its
	// producer and consumer options.
	Opts []kgo.Opt
	// Topic is the state table; default topics.Senders.
	Topic string
	// Instance names who writes: the dispatcher instance (its
	// transactional id, stable across restarts) or "notifyctl".
	// Required.
	Instance string
	// ProbeInterval is how often a halted sender gets one probe; default
	// DefaultProbeInterval.
	ProbeInterval time.Duration
	// ReportMaxAge: older reports are ignored; default
	// DefaultReportMaxAge.
	ReportMaxAge time.Duration
	// OnChange, when set, is called after a sender's halt begins, its
	// reason changes, or it resumes — whether this instance wrote the
	// change or read it from the topic. It is called without locks held,
	// from the goroutine that applied the change, and must not block for
	// long (hand the change to the scheduler's own goroutine).
	OnChange func(Change)
	// Logger: default discard.
	Logger *slog.Logger
}

// Change is a change of one sender's halt.
type Change struct {
	Sender string
	// Halted is the new state; Reason and Since describe the halt (when
	// Halted) or the resume.
	Halted bool
	Reason Reason
	Since  time.Time
	By     string
}

func (c Config) withDefaults() Config {
	if c.Topic == "" {
		c.Topic = topics.Senders
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.ReportMaxAge == 0 {
		c.ReportMaxAge = DefaultReportMaxAge
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// Validate names the field (and its variable) of every problem.
func (c Config) Validate() error {
	var errs []error
	if c.Instance == "" {
		errs = append(errs, errors.New("halt: Instance is required"))
	}
	if c.ProbeInterval < 0 {
		errs = append(errs, fmt.Errorf("WANOTIFY_DISPATCHER_HALT_PROBE_INTERVAL: %s must be positive", c.ProbeInterval))
	}
	if c.ReportMaxAge < 0 {
		errs = append(errs, fmt.Errorf("halt: ReportMaxAge %s must be positive", c.ReportMaxAge))
	}
	if len(c.Opts) == 0 {
		errs = append(errs, errors.New("halt: Opts: no connection options (seed brokers)"))
	}
	return errors.Join(errs...)
}

// Store is one instance's view of the sender state table. Its methods
// are safe for concurrent use. Lifecycle: New, Start (reads the table to
// its end; call it before anything is sent), then the queries, Halt,
// Resume and Outcome; Close stops the tail.
type Store struct {
	cfg    Config
	log    *slog.Logger
	spread time.Duration

	prod *kgo.Client
	cons *kgo.Client

	mu      sync.Mutex
	states  map[string]*entry
	reports map[string]Report // by key

	// read is the offset after the last record the tail applied;
	// progress is signalled (without blocking) after each poll.
	read     atomic.Int64
	progress chan struct{}
	tailErr  atomic.Pointer[error]

	stop    context.CancelFunc
	done    chan struct{}
	started atomic.Bool
	isReady atomic.Bool // Start returned nil
	closed  sync.Once

	gateOnce sync.Once
	gate     *Gate
}

// entry is one sender's state as applied here.
type entry struct {
	st State
	// offset is the place on the topic of the newest record of the key
	// applied (or acknowledged, for a local write); records at or below
	// it are older than what is applied.
	offset int64
	// pending counts local writes not yet acknowledged; later is the
	// newest record of the key read meanwhile (see applyTail).
	pending int
	later   *deferred
	// unsaved: the last local write of the state failed.
	unsaved bool
	// probeAfter is when the next probe may go (ProbeDue); zero when
	// running.
	probeAfter time.Time
}

// New validates cfg and connects (lazily: nothing is read until Start).
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Store{
		cfg: cfg, log: cfg.Logger, states: map[string]*entry{}, reports: map[string]Report{},
		progress: make(chan struct{}, 1), done: make(chan struct{}),
	}
	s.spread = min(cfg.ProbeInterval/10, maxSpread)
	var err error
	s.prod, err = kgo.NewClient(append(append([]kgo.Opt{}, cfg.Opts...),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0))...)
	if err != nil {
		return nil, fmt.Errorf("halt: producer: %w", err)
	}
	s.cons, err = kgo.NewClient(append(append([]kgo.Opt{}, cfg.Opts...),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(tailWait))...)
	if err != nil {
		s.prod.Close()
		return nil, fmt.Errorf("halt: consumer: %w", err)
	}
	return s, nil
}

// Start reads the table to its end and starts tailing it. It returns
// once every state written before it began is applied here (the halts
// hold across restarts), or with an error: the topic is missing or has
// more than one partition, or ctx ended first. Close the Store after a
// failed Start too.
func (s *Store) Start(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("halt: Start called twice")
	}
	if err := s.checkTopic(ctx); err != nil {
		return err
	}
	tctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go s.tail(tctx)
	// The barrier: a record of our own, then read until it is read.
	key := []byte(syncPrefix + s.cfg.Instance)
	val := []byte(fmt.Sprintf(`{"v":%d,"at":%q}`, Version, time.Now().UTC().Format(time.RFC3339Nano)))
	r, err := s.prod.ProduceSync(ctx, &kgo.Record{Key: key, Value: val}).First()
	if err != nil {
		return fmt.Errorf("halt: write to %s: %w", s.cfg.Topic, err)
	}
	for s.read.Load() <= r.Offset {
		if p := s.tailErr.Load(); p != nil {
			return *p
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("halt: reading %s to its end (offset %d, at %d): %w", s.cfg.Topic, r.Offset, s.read.Load(), ctx.Err())
		case <-s.progress:
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.isReady.Store(true)
	return nil
}

func (s *Store) checkTopic(ctx context.Context) error {
	td, err := kadm.NewClient(s.prod).ListTopics(ctx, s.cfg.Topic)
	if err != nil {
		return fmt.Errorf("halt: describe %s: %w", s.cfg.Topic, err)
	}
	d, ok := td[s.cfg.Topic]
	switch {
	case !ok || d.Err != nil:
		err := fmt.Errorf("topic %s is missing", s.cfg.Topic)
		if ok {
			err = fmt.Errorf("topic %s: %w", s.cfg.Topic, d.Err)
		}
		return fmt.Errorf("halt: %w (notifyctl topics apply creates it)", err)
	case len(d.Partitions) != 1:
		return fmt.Errorf("halt: topic %s has %d partitions; the sender state table needs exactly 1 (topics.yaml)", s.cfg.Topic, len(d.Partitions))
	}
	return nil
}

// tail applies every record of the topic, from its start, until Close.
func (s *Store) tail(ctx context.Context) {
	defer close(s.done)
	for {
		fs := s.cons.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			s.log.Warn("sender state table: fetch failed", "topic", t, "partition", p, "err", err)
			if !s.isReady.Load() {
				err = fmt.Errorf("halt: read %s: %w", t, err)
				s.tailErr.Store(&err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			s.apply(r)
			s.read.Store(r.Offset + 1)
		})
		select {
		case s.progress <- struct{}{}:
		default:
		}
	}
}

func (s *Store) apply(r *kgo.Record) {
	switch keyKind(r.Key) {
	case kindSync:
	case kindReport:
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.Value == nil {
			delete(s.reports, string(r.Key))
			return
		}
		rep, err := DecodeReport(r.Key, r.Value)
		if err != nil {
			s.log.Warn("sender state table: unreadable report skipped", "offset", r.Offset, "err", err)
			return
		}
		s.reports[string(r.Key)] = rep
	case kindState:
		if r.Value == nil {
			// A tombstone: the sender has no state, so it runs.
			s.applyTail(string(r.Key), State{Sender: string(r.Key), State: StateRunning, Since: r.Timestamp}, r.Offset)
			return
		}
		st, err := DecodeState(r.Key, r.Value)
		if err != nil {
			// Kept as it was: an unreadable record says nothing either
			// way, and releasing a halted sender on garbage would send
			// into a broken account.
			s.log.Warn("sender state table: unreadable state skipped", "offset", r.Offset, "err", err)
			return
		}
		s.applyTail(st.Sender, st, r.Offset)
	default:
		s.log.Warn("sender state table: record with an unknown key skipped", "offset", r.Offset)
	}
}

// Ordering. A sender's state is the last record of its key in the log,
// and every instance applies records in log order. A state this instance
// writes applies here at once, before the broker has placed it; records
// of that key read meanwhile (older ones, or a newer one by another
// writer) are held until the write is acknowledged, and then only one
// placed after it applies. So the log's order wins here too, without a
// moment where an older record read late undoes the newer local one.

// deferred is a record of a key read while a local write was pending.
type deferred struct {
	st     State
	offset int64
}

// applyTail applies a state read from the topic at offset.
func (s *Store) applyTail(sender string, st State, offset int64) {
	s.mu.Lock()
	e := s.entryLocked(sender)
	if offset <= e.offset {
		s.mu.Unlock()
		return
	}
	if e.pending > 0 {
		if e.later == nil || offset > e.later.offset {
			e.later = &deferred{st: st, offset: offset}
		}
		s.mu.Unlock()
		return
	}
	e.offset, e.unsaved = offset, false
	ch := s.setLocked(sender, e, st)
	s.mu.Unlock()
	s.notify(ch)
}

// applyLocal applies a state this instance is about to write; settle
// must follow with the write's result.
func (s *Store) applyLocal(sender string, st State) {
	s.mu.Lock()
	e := s.entryLocked(sender)
	e.pending++
	ch := s.setLocked(sender, e, st)
	s.mu.Unlock()
	s.notify(ch)
}

// settle records the result of a local write of sender's state: its
// offset, or err. A record of the key read meanwhile and placed after
// it applies now.
func (s *Store) settle(sender string, offset int64, err error) {
	s.mu.Lock()
	e := s.entryLocked(sender)
	e.pending--
	if err == nil {
		e.offset, e.unsaved = max(e.offset, offset), false
	} else {
		// Halt writes it again on the next fault.
		e.unsaved = true
	}
	var ch *Change
	if e.pending == 0 && e.later != nil {
		l := e.later
		e.later = nil
		if l.offset > e.offset {
			e.offset, e.unsaved = l.offset, false
			ch = s.setLocked(sender, e, l.st)
		}
	}
	s.mu.Unlock()
	s.notify(ch)
}

func (s *Store) entryLocked(sender string) *entry {
	e := s.states[sender]
	if e == nil {
		e = &entry{offset: -1}
		s.states[sender] = e
	}
	return e
}

// setLocked makes st the state of e and returns the change, if the halt
// began, ended or changed its reason.
func (s *Store) setLocked(sender string, e *entry, st State) *Change {
	was, oldReason := e.st.Halted(), e.st.Reason()
	e.st = st
	e.probeAfter = time.Time{}
	if st.Halted() {
		e.probeAfter = st.Since.Add(s.cfg.ProbeInterval)
		if st.ProbeAfter != nil {
			e.probeAfter = *st.ProbeAfter
		}
	}
	if was == st.Halted() && (!was || st.Reason() == oldReason) {
		return nil
	}
	return &Change{Sender: sender, Halted: st.Halted(), Reason: st.Reason(), Since: st.Since, By: st.By}
}

// notify logs a change and hands it to OnChange (no lock held).
func (s *Store) notify(ch *Change) {
	if ch == nil {
		return
	}
	if ch.Halted {
		s.log.Warn("sender halted", "sender", ch.Sender, "code", ch.Reason.Code, "reason", ch.Reason.Message, "since", ch.Since, "by", ch.By)
	} else {
		s.log.Info("sender resumed", "sender", ch.Sender, "by", ch.By, "how", ch.Reason.Message)
	}
	if s.cfg.OnChange != nil {
		s.cfg.OnChange(*ch)
	}
}

// writeLocal applies st here and writes it, synchronously (acks=all).
func (s *Store) writeLocal(ctx context.Context, st State) error {
	s.applyLocal(st.Sender, st)
	r, err := s.prod.ProduceSync(ctx, &kgo.Record{Key: []byte(st.Sender), Value: EncodeState(st)}).First()
	if err != nil {
		s.settle(st.Sender, -1, err)
		return fmt.Errorf("write %s to %s: %w", st.Sender, s.cfg.Topic, err)
	}
	s.settle(st.Sender, r.Offset, nil)
	return nil
}

// Halt halts sender for why. It applies here at once (so nothing more
// starts even if Kafka is slow), then writes the halt with acks=all and
// returns once every instance can read it. A sender already halted stays
// halted since its first halt; only a different reason is written again
// (or the same one, if writing it failed before).
func (s *Store) Halt(ctx context.Context, sender string, why Reason) error {
	now := time.Now().UTC()
	s.mu.Lock()
	since := now
	if e := s.states[sender]; e != nil && e.st.Halted() {
		if e.st.Code == why.Code && !e.unsaved {
			s.mu.Unlock()
			return nil
		}
		since = e.st.Since
	}
	s.mu.Unlock()
	probe := now.Add(s.cfg.ProbeInterval)
	st := State{V: Version, Sender: sender, State: StateHalted, Code: why.Code, Message: why.Message, Since: since, By: s.cfg.Instance, ProbeAfter: &probe}
	if err := s.writeLocal(ctx, st); err != nil {
		return fmt.Errorf("halt %s: %w", sender, err)
	}
	return nil
}

// Resume releases sender; by says who (an instance, "notifyctl"). It is
// written even when the sender looks running here, since another
// instance may know of a halt this one has not read yet.
func (s *Store) Resume(ctx context.Context, sender, by string) error {
	return s.resume(ctx, sender, by, "resumed by "+by)
}

func (s *Store) resume(ctx context.Context, sender, by, how string) error {
	st := State{V: Version, Sender: sender, State: StateRunning, Message: how, Since: time.Now().UTC(), By: by}
	if err := s.writeLocal(ctx, st); err != nil {
		return fmt.Errorf("resume %s: %w", sender, err)
	}
	return nil
}

// Halted reports whether sender is halted, why and since when.
func (s *Store) Halted(sender string) (why Reason, since time.Time, halted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.states[sender]
	if e == nil || !e.st.Halted() {
		return Reason{}, time.Time{}, false
	}
	return e.st.Reason(), e.st.Since, true
}

// ProbeDue reports whether a halted sender may send one probe now. Each
// instance waits a little past the shared probe time (a spread of up to
// a tenth of the interval, at most 30 s, fixed per instance and sender),
// so the first to probe has written its ProbeTaken before the others'
// turn: one probe per interval across instances.
func (s *Store) ProbeDue(sender string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.states[sender]
	if e == nil || !e.st.Halted() {
		return false
	}
	return !now.Before(e.probeAfter.Add(s.spreadOf(sender)))
}

func (s *Store) spreadOf(sender string) time.Duration {
	if s.spread <= 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = io.WriteString(h, s.cfg.Instance+"\x00"+sender)
	return time.Duration(h.Sum64() % uint64(s.spread))
}

// ProbeTaken records that a probe of sender starts now: the next may go
// one interval later, on every instance. It does not block: the new
// probe time is written in the background.
func (s *Store) ProbeTaken(sender string, now time.Time) {
	s.setProbe(sender, now.Add(s.cfg.ProbeInterval))
}

// setProbe moves sender's next probe to at, here and on the topic.
func (s *Store) setProbe(sender string, at time.Time) {
	s.mu.Lock()
	e := s.states[sender]
	if e == nil || !e.st.Halted() {
		s.mu.Unlock()
		return
	}
	st := e.st
	at = at.UTC()
	st.ProbeAfter = &at
	e.pending++
	s.setLocked(sender, e, st) // the same halt: no change to report
	s.mu.Unlock()
	s.prod.Produce(context.Background(), &kgo.Record{Key: []byte(sender), Value: EncodeState(st)}, func(r *kgo.Record, err error) {
		if err != nil {
			// Other instances probe on the old schedule: at worst one
			// more probe.
			s.log.Warn("sender state table: probe time not written", "sender", sender, "err", err)
			s.settle(sender, -1, err)
			return
		}
		s.settle(sender, r.Offset, nil)
	})
}

// probeAfter is sender's next probe time (zero when running).
func (s *Store) probeAfter(sender string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.states[sender]; e != nil {
		return e.probeAfter
	}
	return time.Time{}
}

// ReasonOf returns the halt reason err carries: it is an account fault
// of the provider error table.
func ReasonOf(err error) (Reason, bool) {
	if err == nil {
		return Reason{}, false
	}
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Class != provider.AccountFault {
		return Reason{}, false
	}
	return Reason{Code: pe.Code, Message: pe.Message}, true
}

// Outcome is what the call stage reports of every provider call of
// sender that started at started (once the call was made, before any
// Release of its item): an account fault halts the sender (returning
// Halt's error); a success of a call that started after the halt began
// (a probe) resumes it. Anything else changes nothing: a retryable
// failure of a probe leaves the sender halted until the next probe.
func (s *Store) Outcome(ctx context.Context, sender string, started time.Time, err error) error {
	s.Gate().settled(sender)
	if why, ok := ReasonOf(err); ok {
		return s.Halt(ctx, sender, why)
	}
	if err != nil {
		return nil
	}
	if _, since, halted := s.Halted(sender); halted && started.After(since) {
		return s.resume(ctx, sender, s.cfg.Instance, "probe succeeded")
	}
	return nil
}

// States lists every sender the table has a state for, by name.
func (s *Store) States() []State {
	s.mu.Lock()
	out := make([]State, 0, len(s.states))
	for _, e := range s.states {
		st := e.st
		if st.Halted() {
			pa := e.probeAfter
			st.ProbeAfter = &pa
		}
		out = append(out, st)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Sender < out[j].Sender })
	return out
}

// Reports lists the live reports (younger than ReportMaxAge at now), by
// sender then instance.
func (s *Store) Reports(now time.Time) []Report {
	s.mu.Lock()
	out := make([]Report, 0, len(s.reports))
	for _, r := range s.reports {
		if now.Sub(r.At) <= s.cfg.ReportMaxAge {
			out = append(out, r)
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Sender != out[j].Sender {
			return out[i].Sender < out[j].Sender
		}
		return out[i].Instance < out[j].Instance
	})
	return out
}

// Close stops the tail and closes the clients; records written in the
// background (probe times) are flushed first, for up to 5 s.
func (s *Store) Close() {
	s.closed.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.prod.Flush(ctx)
		cancel()
		if s.stop != nil {
			s.stop()
			<-s.done
		}
		s.cons.Close()
		s.prod.Close()
	})
}

// NextProbe is when this instance may next probe halted sender (its
// shared probe time plus this instance's spread); zero when the sender
// runs.
func (s *Store) NextProbe(sender string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.states[sender]
	if e == nil || !e.st.Halted() {
		return time.Time{}
	}
	return e.probeAfter.Add(s.spreadOf(sender))
}

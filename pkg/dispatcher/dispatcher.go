package dispatcher

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/dispatcher/admit"
	"github.com/wanotify/wanotify/pkg/dispatcher/answer"
	"github.com/wanotify/wanotify/pkg/dispatcher/bulkread"
	"github.com/wanotify/wanotify/pkg/dispatcher/dedupe"
	"github.com/wanotify/wanotify/pkg/dispatcher/halt"
	"github.com/wanotify/wanotify/pkg/dispatcher/order"
	"github.com/wanotify/wanotify/pkg/dispatcher/pairrate"
	"github.com/wanotify/wanotify/pkg/dispatcher/parking"
	"github.com/wanotify/wanotify/pkg/dispatcher/ratelimit"
	"github.com/wanotify/wanotify/pkg/dispatcher/unknown"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/lanes"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/topics"
)

// tp names a topic-partition.
type tp struct {
	topic     string
	partition int32
}

// part is one assigned input partition.
type part struct {
	tp   tp
	tier int // -1 for notifications.requested, else the retry tier index (len(RetryTiers) for a parking topic)
	// rule says how far a parking topic's partition is read (nil for the
	// others); stopped is set while it waits at a record it may not take
	// yet, until wake fires or a change is announced.
	rule    parking.Rule
	stopped bool
	// bulk is how far a bulk partition is read (nil for the other
	// topics): up to its part of MaxBulkBuffered, a few partitions with a
	// backlog at a time (package bulkread).
	bulk *bulkread.Part
	wake *time.Timer
	// rescan is, for a held partition woken by a resume, the end it had
	// then (rescanPending until the next fetch tells): records before it
	// are taken even of senders still halted, which sends them back to
	// the end of the topic.
	rescan int64
	tr     *order.Partition
	store  *dedupe.Partition
	held   dueHeap // retry records not yet due
	timer  *time.Timer
	dead   atomic.Bool // given up (revoked, lost or reset); its records are dropped
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup // goroutines working on its records
}

// rec is the state of one consumed record (order.Item.Value).
type rec struct {
	item    *order.Item
	part    *part
	r       *kgo.Record
	env     *envelope.Failure // failure context of a retry record
	envErr  error
	due     time.Time
	n       *contract.Notification
	hash    dedupe.Hash
	attempt int // the provider attempt this record asks for (1-based)
	origin  envelope.Origin
	// prev is the dedupe state before this record's pending marker, so a
	// call the breaker refused can be undone.
	prev    dedupe.Record
	hasPrev bool
	// ctx carries the attempt span, so outputs continue the trace.
	ctx context.Context
	// brk is the breaker the scheduler's breaker gate found for the
	// record, and probe whether it holds one of its half-open probes.
	brk   *breaker
	probe bool
	// lane is the notification's lane (package lanes), set by the admit
	// stage; queued is when it entered its sender's scheduler.
	lane   lanes.Lane
	queued time.Time
	// fo is the record's failover state (failover_stage.go).
	fo routeState
}

// Dispatcher consumes notifications.requested and the retry topics and
// delivers through a provider. See the package documentation.
type Dispatcher struct {
	cfg    Config
	prov   provider.Provider
	log    *slog.Logger
	kopts  []kgo.Opt
	sess   *kgo.GroupTransactSession
	cl     *kgo.Client
	clog   *kgo.Client // dedupe changelog producer, outside the transactions
	adm    *kadm.Client
	limits *ratelimit.Set
	rules  admit.Rule // the admit stage: refused records are settled, never queued
	// answers judges the provider's answers (the call stage).
	answers answer.Policy
	brk     *breakers
	met     *metrics
	// halts is the sender state table (halts.go); heldRule reads
	// notifications.held partitions only as far as their senders run.
	halts    *halt.Store
	heldRule *parking.Held
	// pairs paces each sender's messages to one recipient (pacing.go);
	// pacing is its changelog, nil when pacing is off.
	pairs  *pairrate.Gate
	pacing *pairrate.Changelog
	// finder looks for the webhook that settles an interrupted call
	// (policy verify).
	finder unknown.Finder
	tracer trace.Tracer

	mu          sync.Mutex
	parts       map[tp]*part
	stores      map[int32]*dedupe.Partition
	keys        *order.Keys
	senders     map[string]*senderQueue
	buffered    int
	pausedAll   bool
	paused      map[tp]bool
	openBreaker map[string]bool // breakers not closed
	total       int             // partitions of notifications.requested

	sem            chan struct{}
	inflight       atomic.Int64
	work           sync.WaitGroup // every goroutine working on a record
	stopping       atomic.Bool
	dispatchCtx    context.Context
	dispatchCancel context.CancelFunc

	// endDue is set by a revocation or loss and cleared by the next End
	// (see endEmpty).
	endDue atomic.Bool

	// abortEvery makes every n-th transaction abort instead of commit;
	// tests use it to prove that aborted work is redone exactly once.
	abortEvery     int64
	flushes        atomic.Int64
	missingCommits atomic.Int64
	// mostBulkBacklogsRead is the most bulk partitions with a backlog any
	// plan has read at once (d.mu).
	mostBulkBacklogsRead int
	// rederived counts records whose outcome was re-emitted from the
	// dedupe state instead of calling (consumed again after an abort,
	// crash or rebalance).
	rederived atomic.Int64
}

// inputs are the topics the dispatcher consumes.
var inputs = append(append([]string{topics.Critical, topics.Requested, topics.Bulk}, topics.RetryTiers...), topics.Deferred, topics.Held)

// New validates cfg and builds a Dispatcher on prov. kafkaOpts connect to
// the cluster (seed brokers, TLS, SASL, hooks); New adds the group,
// transaction and producer options. Nothing runs until Run.
func New(cfg Config, prov provider.Provider, kafkaOpts []kgo.Opt, logger *slog.Logger) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if prov == nil {
		return nil, errors.New("dispatcher: a provider is required")
	}
	if logger == nil {
		logger = cfg.Logger
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// The registry's senders are the only ones paced: their rates, and
	// Limits.Rate for those that set none.
	limits := cfg.Limits
	limits.PerSender = cfg.Senders.Rates()
	d := &Dispatcher{
		cfg: cfg, prov: prov, log: logger, kopts: kafkaOpts,
		limits: ratelimit.New(limits),
		rules:  admit.Rules{admit.Ownership{Registry: cfg.Senders}},
		answers: answer.Policy{Delays: cfg.RetryDelays, Keyed: provider.DeduplicatesByKey(prov),
			Resend: cfg.OutcomeUnknownPolicy == PolicyResend, DeferDelay: cfg.DeferDelay, DeferMax: cfg.DeferMax},
		tracer:      otel.Tracer(meterName),
		parts:       map[tp]*part{},
		stores:      map[int32]*dedupe.Partition{},
		keys:        order.NewKeys(),
		senders:     map[string]*senderQueue{},
		paused:      map[tp]bool{},
		openBreaker: map[string]bool{},
		sem:         make(chan struct{}, cfg.Concurrency),
		finder:      &unknown.StatusScan{Opts: kafkaOpts, Topic: topics.Status},
	}
	d.brk = &breakers{m: map[string]*breaker{}, cfg: cfg.Breaker, on: d.onBreakerState,
		created: func(b *breaker) {
			if d.met != nil {
				d.met.setBreaker(b.name, 0)
			}
		}}
	return d, nil
}

// Run consumes until ctx is cancelled, then drains: it stops fetching and
// starting provider calls, waits for calls in flight (up to DrainTimeout),
// commits what finished in a final transaction and leaves the group.
// Records not finished are handed back uncommitted to the next owner.
func (d *Dispatcher) Run(ctx context.Context) error {
	stopPacing, err := d.startPacing()
	if err != nil {
		return err
	}
	defer stopPacing()
	met, err := newMetrics(d)
	if err != nil {
		return fmt.Errorf("dispatcher metrics: %w", err)
	}
	d.met = met
	defer met.close()
	d.dispatchCtx, d.dispatchCancel = context.WithCancel(context.WithoutCancel(ctx))
	defer d.dispatchCancel()

	clog, err := kgo.NewClient(append(append([]kgo.Opt{}, d.kopts...),
		kgo.DefaultProduceTopic(topics.Dedupe),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)...)
	if err != nil {
		return fmt.Errorf("dispatcher changelog client: %w", err)
	}
	defer clog.Close()
	d.clog = clog
	d.adm = kadm.NewClient(clog)

	// Halts hold across instances and restarts: the state table is read
	// to its end before anything is consumed.
	stopHalts, err := d.startHalts(ctx)
	if err != nil {
		return err
	}
	defer stopHalts()

	sess, err := kgo.NewGroupTransactSession(append(append([]kgo.Opt{}, d.kopts...),
		kgo.ConsumerGroup(d.cfg.Group),
		kgo.ConsumeTopics(inputs...),
		// Range gives one member the same partition numbers of every
		// input topic (they all have the same count), so a recipient's
		// requested and retry records and its dedupe partition live in
		// one instance.
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(d.onAssigned),
		kgo.OnPartitionsRevoked(d.onRevoked),
		kgo.OnPartitionsLost(d.onRevoked),
		kgo.SessionTimeout(d.cfg.SessionTimeout),
		// Several heartbeats per session timeout (kgo's default of 3s
		// equals a short session timeout), so a rebalance is noticed
		// quickly and a live member is never expired.
		kgo.HeartbeatInterval(min(3*time.Second, max(100*time.Millisecond, d.cfg.SessionTimeout/10))),
		kgo.RebalanceTimeout(d.cfg.RebalanceTimeout),
		kgo.TransactionalID(d.cfg.TransactionalID),
		kgo.TransactionTimeout(d.cfg.TransactionTimeout),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(d.cfg.FetchMaxWait),
		kgo.FetchMaxPartitionBytes(int32(d.cfg.FetchPartitionBytes)),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		return fmt.Errorf("dispatcher group session: %w", err)
	}
	d.sess = sess
	d.cl = sess.Client()

	sweep := time.NewTicker(d.cfg.DedupeSweepInterval)
	defer sweep.Stop()
	nextFlush := time.Now().Add(d.cfg.FlushInterval)
	var runErr error
	for ctx.Err() == nil {
		room := d.room()
		pollCtx, cancel := context.WithDeadline(ctx, nextFlush)
		fs := sess.PollRecords(pollCtx, room)
		cancel()
		if fs.IsClientClosed() {
			runErr = errors.New("dispatcher: Kafka client closed")
			break
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				d.log.Warn("fetch error", "topic", t, "partition", p, "err", err)
			}
		})
		d.ingest(fs)
		sess.AllowRebalance()
		if !time.Now().Before(nextFlush) {
			// A transaction is not cut short by shutdown: an abort would
			// only make the next owner redo its records.
			fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			err := d.flush(fctx)
			fcancel()
			if err != nil {
				d.log.Error("transaction failed", "err", err)
				if fatalTxnErr(err) {
					runErr = fmt.Errorf("dispatcher: transactional producer unusable: %w", err)
					break
				}
			}
			nextFlush = time.Now().Add(d.cfg.FlushInterval)
		}
		d.reconcilePause()
		select {
		case <-sweep.C:
			d.sweep()
		default:
		}
	}
	return errors.Join(runErr, d.drain())
}

// drain is the clean shutdown after the poll loop stopped.
func (d *Dispatcher) drain() error {
	d.stopping.Store(true)
	d.dispatchCancel()
	done := make(chan struct{})
	go func() { d.work.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d.cfg.DrainTimeout):
		d.log.Warn("drain timeout: provider calls still in flight are handed back", "inflight", d.inflight.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ferr := d.flush(ctx)
	if errors.Is(ferr, errAborted) && !fatalTxnErr(ferr) {
		// Typically the group moved on already (this member was expelled
		// or a rebalance started): the next owner redoes what was not
		// committed, from the dedupe state.
		d.log.Warn("final transaction aborted; unfinished records are handed back", "err", ferr)
		ferr = nil
	} else if ferr != nil {
		d.log.Error("final transaction failed", "err", ferr)
	}
	d.sess.Close()
	d.log.Info("dispatcher stopped")
	return ferr
}

func (d *Dispatcher) room() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return max(1, d.cfg.MaxBuffered-d.buffered)
}

// ingest adds polled records to their partitions (poll goroutine). A
// parking partition whose rule stops at a record is set back to it and
// paused here, on the poll goroutine, as kgo asks of SetOffsets.
func (d *Dispatcher) ingest(fs kgo.Fetches) {
	rewind := d.ingestLocked(fs)
	if len(rewind) == 0 {
		return
	}
	pause := map[string][]int32{}
	for t, ps := range rewind {
		for p := range ps {
			pause[t] = append(pause[t], p)
		}
	}
	d.cl.PauseFetchPartitions(pause)
	d.cl.SetOffsets(rewind)
}

func (d *Dispatcher) ingestLocked(fs kgo.Fetches) map[string]map[int32]kgo.EpochOffset {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	var rewind map[string]map[int32]kgo.EpochOffset
	stopAt := func(k tp, off int64) {
		if rewind == nil {
			rewind = map[string]map[int32]kgo.EpochOffset{}
		}
		if rewind[k.topic] == nil {
			rewind[k.topic] = map[int32]kgo.EpochOffset{}
		}
		rewind[k.topic][k.partition] = kgo.EpochOffset{Epoch: -1, Offset: off}
		d.paused[k] = true
	}
	perBulk := d.bulkShareLocked()
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		k := tp{fp.Topic, fp.Partition}
		p := d.parts[k]
		if len(fp.Records) == 0 {
			return
		}
		last := fp.Records[len(fp.Records)-1].Offset
		if d.met != nil {
			d.met.setLag(k, max(0, fp.HighWatermark-last-1))
		}
		if p != nil && p.rescan == rescanPending {
			p.rescan = fp.HighWatermark
		}
		if p == nil || p.dead.Load() || p.stopped || (p.bulk != nil && p.bulk.Full) {
			// A stopped parking partition's records are read again from
			// where it stopped once it is woken.
			return
		}
		if p.bulk != nil {
			p.bulk.Fetched(last, fp.HighWatermark, now)
		}
		for _, r := range fp.Records {
			if p.bulk != nil && p.tr.Unfinished() >= perBulk {
				// The bulk lane holds what its senders can send soon, each
				// partition an equal part, so every partition's tenants
				// are reached; the rest of the campaign stays in Kafka.
				p.bulk.Cut(r.Offset, fp.HighWatermark)
				stopAt(k, r.Offset)
				break
			}
			var env *envelope.Failure
			var envErr error
			if p.tier >= 0 {
				env, envErr = envelope.Parse(r.Headers)
			}
			if p.rule != nil && envErr == nil {
				pr := parking.Record{Offset: r.Offset, Env: env, Rescan: r.Offset < p.rescan}
				if k.topic == topics.Held {
					pr.Sender = contract.SenderOf(r.Value)
				}
				if ok, wake := p.rule.Take(pr, now); !ok {
					d.stopLocked(p, wake)
					stopAt(k, r.Offset)
					break
				}
			}
			it := &order.Item{Offset: r.Offset, Key: string(r.Key)}
			rc := &rec{item: it, part: p, r: r, env: env, envErr: envErr}
			it.Value = rc
			if !p.tr.Add(it) {
				continue
			}
			d.buffered++
			if p.tier >= 0 {
				if rc.envErr == nil && rc.env.DueAt.After(now) {
					rc.due = rc.env.DueAt
					heap.Push(&p.held, rc)
					continue
				}
				if rc.envErr == nil {
					rc.due = rc.env.DueAt
				}
			}
			d.release(rc)
		}
		if p.held.Len() > 0 {
			d.armHeld(p)
		}
	})
	return rewind
}

// bulkShareLocked is how many records each owned bulk partition may
// hold: an equal part of MaxBulkBuffered (d.mu held).
func (d *Dispatcher) bulkShareLocked() int {
	n := 0
	for k, p := range d.parts {
		if k.topic == topics.Bulk && !p.dead.Load() {
			n++
		}
	}
	return max(1, d.cfg.MaxBulkBuffered/max(n, 1))
}

// stopLocked stops reading parking partition p until wake, or until a
// change is announced when wake is zero (d.mu held).
func (d *Dispatcher) stopLocked(p *part, wake time.Time) {
	p.stopped = true
	if p.wake != nil {
		p.wake.Stop()
		p.wake = nil
	}
	if wake.IsZero() {
		return
	}
	p.wake = time.AfterFunc(max(time.Until(wake), 0)+time.Millisecond, func() { d.wakeParked(p) })
}

// wakeParked reads a stopped parking partition again.
func (d *Dispatcher) wakeParked(p *part) {
	d.mu.Lock()
	if p.dead.Load() || !p.stopped {
		d.mu.Unlock()
		return
	}
	p.stopped = false
	d.mu.Unlock()
	d.reconcilePause()
}

// release queues rc behind its key (d.mu held).
func (d *Dispatcher) release(rc *rec) {
	if a := d.keys.Push(rc.item); a != nil {
		d.activate(a.Value.(*rec))
	}
}

// activate starts work on the active record of a key (d.mu held).
func (d *Dispatcher) activate(rc *rec) {
	rc.part.wg.Add(1)
	d.work.Add(1)
	go func() {
		defer d.work.Done()
		defer rc.part.wg.Done()
		d.prepare(rc)
	}()
}

// armHeld sets p's timer to its earliest due retry (d.mu held).
func (d *Dispatcher) armHeld(p *part) {
	if p.held.Len() == 0 {
		return
	}
	wait := time.Until(p.held[0].due)
	if p.timer != nil {
		p.timer.Stop()
	}
	p.timer = time.AfterFunc(max(wait, 0)+time.Millisecond, func() { d.releaseDue(p) })
}

// releaseDue moves retry records that are due into their key queues. A
// record is never released before its due time: the timer may fire early
// by clock granularity, so the check is against the clock, not the timer.
func (d *Dispatcher) releaseDue(p *part) {
	d.mu.Lock()
	if p.dead.Load() {
		d.mu.Unlock()
		return
	}
	now := time.Now()
	for p.held.Len() > 0 && !p.held[0].due.After(now) {
		d.release(heap.Pop(&p.held).(*rec))
	}
	d.armHeld(p)
	d.mu.Unlock()
	d.reconcilePause()
}

// finish records rc's outputs and activates the next record of its key.
func (d *Dispatcher) finish(rc *rec, outputs []*kgo.Record) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := rc.part
	if p.dead.Load() {
		return
	}
	p.tr.Finish(rc.item, outputs)
	d.buffered--
	if next := d.keys.Done(rc.item, isDead); next != nil {
		d.activate(next.Value.(*rec))
	}
}

// planBulkLocked says which bulk partitions are read now (d.mu held).
func (d *Dispatcher) planBulkLocked() map[*part]bool {
	var ps []*part
	for k, p := range d.parts {
		if k.topic == topics.Bulk && p.bulk != nil && !p.dead.Load() {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, func(a, b *part) int { return cmp.Compare(a.tp.partition, b.tp.partition) })
	bs := make([]*bulkread.Part, len(ps))
	for i, p := range ps {
		p.bulk.Unfinished = p.tr.Unfinished()
		bs[i] = p.bulk
	}
	rule := bulkread.Rule{Share: d.bulkShareLocked(), Readers: d.cfg.BulkReaders, Settle: 2*d.cfg.FetchMaxWait + time.Second}
	read := map[*part]bool{}
	backlogs := 0
	for i, ok := range rule.Plan(bs, d.pausedAll, time.Now()) {
		read[ps[i]] = ok
		if ok && (bs[i].Lag < 0 || bs[i].Lag >= int64(rule.Share)) {
			backlogs++
		}
	}
	d.mostBulkBacklogsRead = max(d.mostBulkBacklogsRead, backlogs)
	return read
}

func isDead(it *order.Item) bool { return it.Value.(*rec).part.dead.Load() }

// reconcilePause pauses or resumes fetching: everything while a breaker is
// not closed or too much is buffered, and each retry partition while it
// holds records not yet due.
func (d *Dispatcher) reconcilePause() {
	if d.cl == nil {
		return
	}
	d.mu.Lock()
	switch {
	case len(d.openBreaker) > 0:
		d.pausedAll = true
	case d.buffered >= d.cfg.MaxBuffered:
		d.pausedAll = true
	case d.pausedAll && d.buffered <= d.cfg.MaxBuffered*3/4:
		d.pausedAll = false
	}
	// The bulk lane is read only as far as its senders can send soon, a
	// few partitions with a backlog at a time (package bulkread): a
	// campaign of a million costs no more memory than its bound. The
	// critical lane is paused only at twice MaxBuffered, so an OTP is read
	// while a provider outage or a backlog pauses the rest.
	readBulk := d.planBulkLocked()
	criticalPaused := d.buffered >= 2*d.cfg.MaxBuffered
	pause, resume := map[string][]int32{}, map[string][]int32{}
	for k, p := range d.parts {
		all := d.pausedAll
		if k.topic == topics.Critical {
			all = criticalPaused
		}
		want := all || p.held.Len() > 0 || p.stopped
		if p.bulk != nil {
			want = !readBulk[p]
		}
		if want != d.paused[k] {
			if want {
				pause[k.topic] = append(pause[k.topic], k.partition)
			} else {
				resume[k.topic] = append(resume[k.topic], k.partition)
			}
			d.paused[k] = want
		}
	}
	d.mu.Unlock()
	if len(pause) > 0 {
		d.cl.PauseFetchPartitions(pause)
	}
	if len(resume) > 0 {
		d.cl.ResumeFetchPartitions(resume)
	}
}

func (d *Dispatcher) newPart(k tp) *part {
	tier := -1
	for i, t := range topics.RetryTiers {
		if t == k.topic {
			tier = i
		}
	}
	var rule parking.Rule
	switch k.topic {
	case topics.Deferred:
		tier, rule = len(topics.RetryTiers), parking.Due{}
	case topics.Held:
		tier, rule = len(topics.RetryTiers), d.heldRule
	}
	ctx, cancel := context.WithCancel(d.dispatchCtx)
	var bulk *bulkread.Part
	if k.topic == topics.Bulk {
		bulk = &bulkread.Part{Lag: -1}
	}
	return &part{tp: k, tier: tier, rule: rule, bulk: bulk, rescan: -1, tr: order.NewPartition(), store: d.stores[k.partition], ctx: ctx, stop: cancel}
}

// giveUp stops work on partitions: their records are dropped (uncommitted
// ones are consumed again by whoever owns the partition next) after every
// provider call in flight for them finished and wrote its marker.
func (d *Dispatcher) giveUp(ps []*part) {
	d.mu.Lock()
	for _, p := range ps {
		if p.dead.Swap(true) {
			continue
		}
		p.stop()
		if p.timer != nil {
			p.timer.Stop()
		}
		if p.wake != nil {
			p.wake.Stop()
		}
		d.buffered -= p.tr.Unfinished()
	}
	d.mu.Unlock()
	for _, p := range ps {
		p.wg.Wait()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range ps {
		for _, it := range p.tr.Items() {
			if d.keys.Active(it) {
				if next := d.keys.Done(it, isDead); next != nil {
					d.activate(next.Value.(*rec))
				}
			}
		}
	}
	d.keys.Remove(isDead)
}

// sweep forgets keys past the dedupe window and tombstones them.
func (d *Dispatcher) sweep() {
	cutoff := time.Now().Add(-d.cfg.DedupeWindow)
	d.mu.Lock()
	stores := make(map[int32]*dedupe.Partition, len(d.stores))
	for n, s := range d.stores {
		stores[n] = s
	}
	d.mu.Unlock()
	for n, s := range stores {
		if hs := s.Sweep(cutoff); len(hs) > 0 {
			d.tombstone(n, hs)
		}
	}
}

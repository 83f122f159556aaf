package dispatcher

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/dispatcher/admit"
	"github.com/wanotify/wanotify/pkg/dispatcher/dedupe"
	"github.com/wanotify/wanotify/pkg/dispatcher/order"
	"github.com/wanotify/wanotify/pkg/dispatcher/ratelimit"
	"github.com/wanotify/wanotify/pkg/dispatcher/unknown"
	"github.com/wanotify/wanotify/pkg/envelope"
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
	tp    tp
	tier  int // -1 for notifications.requested, else the retry tier index
	tr    *order.Partition
	store *dedupe.Partition
	held  dueHeap // retry records not yet due
	timer *time.Timer
	dead  atomic.Bool // given up (revoked, lost or reset); its records are dropped
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup // goroutines working on its records
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
}

// senderQueue holds the records of one sender waiting for a token.
type senderQueue struct {
	sender  string
	items   []*rec
	running bool
	// ahead bounds the sender's calls that wrote their pending marker and
	// wait for a token (about 100 ms of the sender's rate). Taking the
	// token after the marker keeps the marker's latency out of the pacing
	// (a burst of late markers would otherwise bunch calls up at the
	// provider); the bound keeps one sender from occupying the shared
	// concurrency, and keeps the records a crash leaves pending, and so
	// reported outcome_unknown, to the calls in flight plus about 100 ms
	// of the sender's traffic.
	ahead chan struct{}
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
	brk    *breakers
	met    *metrics
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
}

// inputs are the topics the dispatcher consumes.
var inputs = append([]string{topics.Requested}, topics.RetryTiers...)

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
		limits:      ratelimit.New(limits),
		rules:       admit.Rules{admit.Ownership{Registry: cfg.Senders}},
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

// errAborted marks a transaction that ended in an abort: nothing is lost,
// the records since the last commit are consumed again.
var errAborted = errors.New("transaction aborted; records since the last commit are consumed again")

// errTxnUnusable marks a transaction that failed to begin or end: the
// session's state is unknown and it must not be used again.
var errTxnUnusable = errors.New("transactional session unusable")

// fatalTxnErr reports errors after which the transactional producer can
// never commit again: another instance took over the transactional id, the
// id is not authorised, or the session failed to begin or end a
// transaction.
func fatalTxnErr(err error) bool {
	return errors.Is(err, errTxnUnusable) || errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed) || errors.Is(err, kerr.InvalidTxnState)
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

// ingest adds polled records to their partitions (poll goroutine).
func (d *Dispatcher) ingest(fs kgo.Fetches) {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
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
		if p == nil || p.dead.Load() {
			return
		}
		for _, r := range fp.Records {
			it := &order.Item{Offset: r.Offset, Key: string(r.Key)}
			rc := &rec{item: it, part: p, r: r}
			it.Value = rc
			if !p.tr.Add(it) {
				continue
			}
			d.buffered++
			if p.tier >= 0 {
				rc.env, rc.envErr = envelope.Parse(r.Headers)
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
	pause, resume := map[string][]int32{}, map[string][]int32{}
	for k, p := range d.parts {
		want := d.pausedAll || p.held.Len() > 0
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

// flush commits, in one transaction, the outputs of every finished record
// below its partition's lowest unfinished record together with the
// offsets after them.
func (d *Dispatcher) flush(ctx context.Context) error {
	type drained struct {
		p *part
		d order.Drained
	}
	var list []drained
	commits := map[tp]int64{}
	var outs []*kgo.Record
	d.mu.Lock()
	for k, p := range d.parts {
		if dr, ok := p.tr.Drain(); ok {
			list = append(list, drained{p, dr})
			commits[k] = dr.Commit
			for _, o := range dr.Outputs {
				if o != nil {
					outs = append(outs, o.([]*kgo.Record)...)
				}
			}
		}
	}
	d.mu.Unlock()
	if len(list) == 0 {
		if d.endDue.Swap(false) {
			return d.endEmpty(ctx)
		}
		return nil
	}
	d.endDue.Store(false)
	parts := make([]*part, len(list))
	for i, x := range list {
		parts[i] = x.p
	}
	if err := d.sess.Begin(); err != nil {
		d.resetAfterAbort(parts)
		return fmt.Errorf("%w: begin transaction: %w", errTxnUnusable, err)
	}
	var perrMu sync.Mutex
	var perr error
	for _, r := range outs {
		d.sess.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				perrMu.Lock()
				perr = errors.Join(perr, err)
				perrMu.Unlock()
			}
		})
	}
	ferr := d.cl.Flush(ctx)
	perrMu.Lock()
	produceErr := errors.Join(ferr, perr)
	perrMu.Unlock()
	commitCtx := kgo.PreTxnCommitFnContext(ctx, func(req *kmsg.TxnOffsetCommitRequest) error {
		// The session would commit everything polled; commit only below
		// the lowest unfinished record of each partition.
		used := map[tp]bool{}
		topicsOut := req.Topics[:0]
		for _, t := range req.Topics {
			ps := t.Partitions[:0]
			for _, p := range t.Partitions {
				k := tp{t.Topic, p.Partition}
				if c, ok := commits[k]; ok {
					p.Offset = c
					p.LeaderEpoch = -1
					ps = append(ps, p)
					used[k] = true
				}
			}
			if len(ps) > 0 {
				t.Partitions = ps
				topicsOut = append(topicsOut, t)
			}
		}
		req.Topics = topicsOut
		// The session lists only partitions polled past its last
		// commit. A partition whose fetch position was rewound by an
		// aborted transaction and that has not been polled since (a
		// paused retry partition) is missing although records drained
		// here belong to it; left out, its outputs would commit without
		// its offset and be produced again after the next rewind.
		for k, c := range commits {
			if used[k] {
				continue
			}
			d.missingCommits.Add(1)
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = k.partition, c, -1, &req.MemberID
			added := false
			for i := range req.Topics {
				if req.Topics[i].Topic == k.topic {
					req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
					added = true
					break
				}
			}
			if !added {
				rt := kmsg.NewTxnOffsetCommitRequestTopic()
				rt.Topic = k.topic // no topic id: the session sends such a commit by name (v5)
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
			}
		}
		return nil
	})
	try := kgo.TryCommit
	nth := d.flushes.Add(1)
	if produceErr != nil || (d.abortEvery > 0 && nth%d.abortEvery == 0) {
		try = kgo.TryAbort
	}
	committed, err := d.sess.End(commitCtx, try)
	if committed && err == nil {
		for _, x := range list {
			for _, it := range x.d.Items {
				rc := it.Value.(*rec)
				if rc.n != nil {
					x.p.store.Committed(rc.hash, rc.r.Topic, rc.r.Offset)
				}
			}
		}
		return nil
	}
	d.resetAfterAbort(parts)
	if err != nil {
		// End failed outright (not an abort it chose): kgo says no such
		// error is retryable, and one that ran out of time (a broker
		// down longer than the flush's 30 s, as an Apache Kafka broker
		// recovering its log can be) leaves the session inside the
		// transaction, so every later Begin would fail. The process
		// exits and is restarted; its successor fences this producer
		// and redoes the uncommitted records from the dedupe state.
		err = fmt.Errorf("%w: end transaction: %w", errTxnUnusable, err)
	}
	return errors.Join(produceErr, err, errAborted)
}

// endEmpty ends an empty transaction after a revocation or loss. kgo's
// GroupTransactSession hands only the first revocation (and the first
// loss) after an End on to OnPartitionsRevoked (OnPartitionsLost): were a
// second rebalance to come before the next End, its revocation would go
// unseen, and this instance would keep sending for partitions another
// member owns (duplicate sends, and two instances spending one rate
// budget). Nothing is produced or committed; the session rewinds fetching
// to the last commit, and records fetched again are ignored.
func (d *Dispatcher) endEmpty(ctx context.Context) error {
	if err := d.sess.Begin(); err != nil {
		return fmt.Errorf("%w: begin empty transaction: %w", errTxnUnusable, err)
	}
	if _, err := d.sess.End(ctx, kgo.TryAbort); err != nil {
		return fmt.Errorf("%w: end empty transaction: %w", errTxnUnusable, err)
	}
	return nil
}

// resetAfterAbort restarts partitions whose drained outputs were lost in
// an aborted transaction: the session rewound their fetch position to the
// last commit, so their records come again and are re-derived from the
// dedupe state (no provider call is repeated). In-flight calls are let
// finish first so their markers are written.
func (d *Dispatcher) resetAfterAbort(ps []*part) {
	var victims []*part
	d.mu.Lock()
	for _, p := range ps {
		if cur := d.parts[p.tp]; cur == p && !p.dead.Load() {
			victims = append(victims, p)
		}
	}
	d.mu.Unlock()
	if len(victims) == 0 {
		return
	}
	d.giveUp(victims)
	d.mu.Lock()
	for _, p := range victims {
		d.parts[p.tp] = d.newPart(p.tp)
		delete(d.paused, p.tp)
	}
	d.mu.Unlock()
	// The rewound partitions must not stay paused from before.
	resume := map[string][]int32{}
	for _, p := range victims {
		resume[p.tp.topic] = append(resume[p.tp.topic], p.tp.partition)
	}
	d.cl.ResumeFetchPartitions(resume)
}

func (d *Dispatcher) newPart(k tp) *part {
	tier := -1
	for i, t := range topics.RetryTiers {
		if t == k.topic {
			tier = i
		}
	}
	ctx, cancel := context.WithCancel(d.dispatchCtx)
	return &part{tp: k, tier: tier, tr: order.NewPartition(), store: d.stores[k.partition], ctx: ctx, stop: cancel}
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

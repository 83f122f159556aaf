// Package sink writes what the pipeline produces into ClickHouse: a
// consumer group over notifications.requested, notifications.status and
// notifications.dlq that decodes each record into one row, writes rows in
// large column-wise batches, and commits Kafka offsets only after
// ClickHouse accepted the batch.
//
// Lifecycle of Run: apply the schema migrations (waiting for ClickHouse
// with backoff), join the group, then loop: poll, decode, and hand the
// batch to the writer when it holds BatchRows records or its first record
// is BatchInterval old. The writer, a goroutine of its own, inserts one
// batch and commits its offsets while the loop polls and decodes the next
// one: at most two batches are held (one being written, one filling),
// batches are written and committed in the order they were cut, and a
// batch's offsets are committed only after ClickHouse accepted it and
// every batch before it. A flush that ClickHouse refuses, or does not
// answer within InsertTimeout, makes the sink not ready, pauses fetching,
// keeps the batch and retries it with exponential backoff and jitter until
// it succeeds; nothing is committed meanwhile, and rebalances wait until
// no batch is held (the records held belong to partitions still owned: a
// pending rebalance makes the loop stop polling, hand over what it holds
// and wait for the writer). When Run's context ends, the batch being
// written and the one being filled get one bounded last flush and commit
// (DrainTimeout for both together), then the client leaves the group.
//
// While no batch is being written, a probe pings ClickHouse every second
// (health.go), so a server that hangs while the pipeline is idle also
// makes the sink not ready.
//
// Delivery is at least once; the ClickHouse model (see package
// migrations) makes a record written twice count once.
package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/cenkalti/backoff/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/wanotify/wanotify/pkg/chmigrate"
	"github.com/wanotify/wanotify/pkg/phone"
	"github.com/wanotify/wanotify/pkg/privacy"
	"github.com/wanotify/wanotify/pkg/sink/migrations"
)

// phoneLike matches what could be a phone number inside a decoder message
// (schema errors quote the offending value).
var phoneLike = regexp.MustCompile(`\+?[0-9][0-9 ()-]{5,}[0-9]`)

// maskPhones masks phone-number-like runs in s, for logs.
func maskPhones(s string) string {
	return phoneLike.ReplaceAllStringFunc(s, phone.Mask)
}

// Sink consumes the pipeline's topics into ClickHouse. Create it with New
// and call Run once.
type Sink struct {
	cfg       Config
	ch        *clickhouse.Options
	kafkaOpts []kgo.Opt
	log       *slog.Logger
	topics    []string
	dec       decoder
	m         *metrics
	tracer    trace.Tracer
	health    health
	started   atomic.Bool
	// writing is set while the writer holds a batch: the idle probe
	// leaves ClickHouse to the insert then.
	writing atomic.Bool
	// rebalancing is set when a rebalance waits for the batches held;
	// wake cuts the poll loop's current poll short (a rebalance waits, or
	// the writer finished a batch).
	rebalancing atomic.Bool
	wake        pollWaker
}

// New checks the configuration and returns a sink that writes to the
// database named in ch (created if missing) and consumes with kafkaOpts
// (brokers, TLS, SASL, hooks: see kafkaconf.Config.Opts) plus its own group
// options. Nothing connects until Run.
func New(cfg Config, ch *clickhouse.Options, kafkaOpts []kgo.Opt, log *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if ch == nil {
		return nil, errors.New("sink: ClickHouse options are required")
	}
	if ch.Auth.Database == "" {
		return nil, errors.New("sink: WANOTIFY_CLICKHOUSE_DATABASE: a database is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{
		cfg:    cfg,
		ch:     ch,
		log:    log,
		topics: []string{cfg.CriticalTopic, cfg.RequestedTopic, cfg.BulkTopic, cfg.StatusTopic, cfg.DLQTopic},
		dec: decoder{requested: cfg.RequestedTopic, critical: cfg.CriticalTopic, bulk: cfg.BulkTopic,
			status: cfg.StatusTopic, dlq: cfg.DLQTopic,
			maxValue: cfg.MaxValueBytes,
			red:      privacy.New(privacy.Policy{StoreContentTenants: cfg.StoreContentTenants, HashKey: cfg.ContentHashKey})},
		tracer: otel.Tracer(instrumentation),
	}
	s.kafkaOpts = append(append([]kgo.Opt(nil), kafkaOpts...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(s.topics...),
		// A new group reads the topics from the start: the sink is the
		// record of everything, not of what happened since it first ran.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Records of aborted transactions (the dispatcher produces
		// transactionally) must never reach ClickHouse.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) {
			log.Info("rebalance waiting for the current batch to be written")
			s.rebalancing.Store(true)
			s.wake.wake()
		}),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
			if s.m != nil {
				s.m.assign(assigned)
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			if s.m != nil {
				s.m.forget(lost)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			if s.m != nil {
				s.m.forget(lost)
			}
		}),
	)
	if err := kgo.ValidateOpts(s.kafkaOpts...); err != nil {
		return nil, fmt.Errorf("sink: Kafka options: %w", err)
	}
	return s, nil
}

// Ready reports whether migrations are applied, the sink is consuming and
// ClickHouse accepts its inserts and answers within InsertTimeout.
func (s *Sink) Ready() bool { return s.health.ready.Load() }

// Run applies the migrations, then consumes until ctx ends. It returns nil
// after a clean stop, or the error that stopped it (a migration that
// cannot be applied, a Kafka client that cannot start).
func (s *Sink) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("sink: Run called twice")
	}
	s.health.onChange = s.cfg.OnReady
	defer s.health.update(func(h *health) { h.consuming = false })
	m, err := newMetrics(s.cfg.Group)
	if err != nil {
		return fmt.Errorf("sink: metrics: %w", err)
	}
	s.m = m
	defer m.close()

	conn, err := s.prepare(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer conn.Close()

	cl, err := kgo.NewClient(s.kafkaOpts...)
	if err != nil {
		return fmt.Errorf("sink: Kafka client: %w", err)
	}
	defer cl.CloseAllowingRebalance()
	tctx, stopTracking := context.WithCancel(ctx)
	tracked := make(chan struct{})
	go func() { defer close(tracked); s.trackEnds(tctx, cl) }()
	defer func() { stopTracking(); <-tracked }()
	s.log.Info("sink consuming", "group", s.cfg.Group, "topics", s.topics, "database", s.ch.Auth.Database,
		"batch_rows", s.cfg.BatchRows, "batch_interval", s.cfg.BatchInterval.String())
	pctx, stopProbe := context.WithCancel(ctx)
	probed := make(chan struct{})
	go func() { defer close(probed); s.probe(pctx, conn) }()
	defer func() { stopProbe(); <-probed }()
	s.health.update(func(h *health) { h.consuming = true })
	return s.consume(ctx, cl, NewClickHouseWriter(conn, s.ch.Auth.Database))
}

// prepare connects, creates the database and applies migrations and the
// retention setting, retrying while ClickHouse is unreachable.
func (s *Sink) prepare(ctx context.Context) (driver.Conn, error) {
	ms, err := chmigrate.Load(migrations.FS, migrations.Dir)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	bo := s.backoff()
	for {
		conn, err := s.migrate(ctx, ms)
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if permanent(err) {
			return nil, fmt.Errorf("sink: %w", err)
		}
		wait := bo.NextBackOff()
		s.log.Warn("ClickHouse not available for migrations; retrying", "err", err, "retry_in", wait.String())
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (s *Sink) migrate(ctx context.Context, ms []chmigrate.Migration) (driver.Conn, error) {
	if err := chmigrate.EnsureDatabase(ctx, s.ch); err != nil {
		return nil, err
	}
	conn, err := clickhouse.Open(s.ch)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = conn.Close()
		}
	}()
	if _, err := chmigrate.Apply(ctx, conn, ms, s.log); err != nil {
		return nil, err
	}
	if err := applyRetention(ctx, conn, s.ch.Auth.Database, s.cfg.RetentionDays, s.cfg.ErrorRetentionDays); err != nil {
		return nil, err
	}
	ok = true
	return conn, nil
}

// permanent reports errors that waiting will not fix: an edited migration,
// or a statement the server rejects for what it says rather than for its
// own state.
func permanent(err error) bool {
	if errors.Is(err, chmigrate.ErrChecksum) {
		return true
	}
	var exc *clickhouse.Exception
	if !errors.As(err, &exc) {
		return false
	}
	switch exc.Code {
	case 159, 160, 164, 202, 203, 209, 210, 241, 242, 252, 253, 285, 319, 425, 439, 473, 999:
		// timeouts, too many queries/parts, memory, read-only, network
		// and keeper trouble: the server may recover.
		return false
	}
	return true
}

// cappedBackoff is exponential backoff with ±50% jitter whose waits never
// exceed the configured maximum (the library's jitter may go above it).
type cappedBackoff struct {
	bo  *backoff.ExponentialBackOff
	max time.Duration
}

func (c *cappedBackoff) NextBackOff() time.Duration { return min(c.bo.NextBackOff(), c.max) }

func (s *Sink) backoff() *cappedBackoff {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = s.cfg.RetryInitialBackoff
	bo.MaxInterval = s.cfg.RetryMaxBackoff
	bo.Multiplier = 2
	bo.RandomizationFactor = 0.5
	bo.Reset()
	return &cappedBackoff{bo: bo, max: s.cfg.RetryMaxBackoff}
}

// endsInterval is how often the sink lists end and committed offsets, so
// the lag metric keeps growing while fetching is paused.
const endsInterval = 5 * time.Second

// trackEnds keeps the lag metric's end and committed offsets current for
// the partitions this member owns.
func (s *Sink) trackEnds(ctx context.Context, cl *kgo.Client) {
	adm := kadm.NewClient(cl)
	t := time.NewTicker(endsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		owned := map[topicPartition]bool{}
		for _, tp := range s.m.owned() {
			owned[tp] = true
		}
		if len(owned) == 0 {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, endsInterval)
		ends, err := adm.ListCommittedOffsets(lctx, s.topics...)
		var group kadm.OffsetResponses
		if err == nil {
			group, err = adm.FetchOffsets(lctx, s.cfg.Group)
		}
		cancel()
		if err != nil {
			continue
		}
		ends.Each(func(o kadm.ListedOffset) {
			if tp := (topicPartition{o.Topic, o.Partition}); o.Err == nil && owned[tp] {
				s.m.observeEnd(tp, o.Offset)
			}
		})
		group.Each(func(o kadm.OffsetResponse) {
			if tp := (topicPartition{o.Topic, o.Partition}); o.Err == nil && owned[tp] && o.At >= 0 {
				s.m.observeGroup(tp, o.At)
			}
		})
	}
}

// job is a batch handed to the writer; err is set before done is closed.
type job struct {
	b    *Batch
	err  error
	done chan struct{}
}

// finished reports whether the writer is done with j.
func (j *job) finished() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// pollWaker cuts the current poll short. A wake that arrives while no poll
// is armed cancels the next one at once, so none is lost.
type pollWaker struct {
	mu      sync.Mutex
	cancel  context.CancelFunc
	pending bool
}

// arm makes cancel the function a wake calls, until disarm.
func (p *pollWaker) arm(cancel context.CancelFunc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending {
		p.pending = false
		cancel()
		return
	}
	p.cancel = cancel
}

func (p *pollWaker) disarm() {
	p.mu.Lock()
	p.cancel = nil
	p.mu.Unlock()
}

func (p *pollWaker) wake() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancel != nil {
		p.cancel()
		p.cancel = nil
		return
	}
	p.pending = true
}

// consume is the poll loop: it polls and decodes into a batch while the
// writer (runWriter) inserts and commits the previous one.
func (s *Sink) consume(ctx context.Context, cl *kgo.Client, w Writer) error {
	// The writer outlives ctx by at most DrainTimeout (see finish), so the
	// batches held at shutdown get their bounded last flush.
	wctx, stopWriting := context.WithCancel(context.WithoutCancel(ctx))
	jobs := make(chan *job, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		s.runWriter(wctx, cl, w, jobs)
	}()
	defer func() {
		stopWriting()
		close(jobs)
		<-exited
	}()

	b := newBatch()
	var (
		flushAt time.Time
		writing *job // the batch the writer holds, if any
	)
	for {
		if writing != nil && writing.finished() {
			if writing.err != nil {
				// Only the end of the writer's context fails a flush: the
				// batch is dropped uncommitted and consumed again later.
				return nil
			}
			writing = nil
		}
		if ctx.Err() != nil {
			return s.finish(stopWriting, jobs, writing, b)
		}
		rebalancing := s.rebalancing.Load()
		due := b.records >= s.cfg.BatchRows || (b.records > 0 && (rebalancing || !time.Now().Before(flushAt)))
		if due && writing == nil {
			writing = &job{b: b, done: make(chan struct{})}
			jobs <- writing // never blocks: the writer holds no other job
			b = newBatch()
		}
		if b.records == 0 && writing == nil {
			// Nothing is held: a rebalance may proceed.
			s.rebalancing.Store(false)
			cl.AllowRebalance()
		}
		if b.records >= s.cfg.BatchRows || (rebalancing && writing != nil) {
			// The batch is full, or a rebalance waits for what is held:
			// wait for the writer instead of polling more.
			select {
			case <-writing.done:
			case <-ctx.Done():
			}
			continue
		}

		// The poll ends when records arrive, when the batch is due (if the
		// writer is free to take it), or when the writer finishes or a
		// rebalance waits (wake).
		var (
			pollCtx context.Context
			cancel  context.CancelFunc
		)
		if b.records > 0 && writing == nil {
			pollCtx, cancel = context.WithDeadline(ctx, flushAt)
		} else {
			pollCtx, cancel = context.WithCancel(ctx)
		}
		s.wake.arm(cancel)
		fetches := cl.PollRecords(pollCtx, s.cfg.BatchRows-b.records)
		s.wake.disarm()
		cancel()
		if fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			s.log.Warn("fetch error", "topic", topic, "partition", partition, "err", err)
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			tp := topicPartition{p.Topic, p.Partition}
			end := p.LastStableOffset
			if end < 0 {
				end = p.HighWatermark
			}
			if end >= 0 {
				s.m.observeEnd(tp, end)
			}
			if len(p.Records) > 0 {
				s.m.observeConsumed(tp, p.Records[0].Offset)
			}
		})
		recs := fetches.Records()
		if len(recs) == 0 {
			continue
		}
		if b.records == 0 {
			flushAt = time.Now().Add(s.cfg.BatchInterval)
		}
		for topic, n := range s.dec.decodeInto(b, recs) {
			s.m.decodeErrors.Add(ctx, int64(n), metric.WithAttributes(attribute.String("topic", topic)))
		}
	}
}

// finish hands the batch being filled to the writer after the one it is
// writing, and waits for both, within DrainTimeout.
func (s *Sink) finish(stopWriting context.CancelFunc, jobs chan<- *job, writing *job, b *Batch) error {
	deadline := time.AfterFunc(s.cfg.DrainTimeout, stopWriting)
	defer deadline.Stop()
	if writing != nil {
		<-writing.done
		if writing.err != nil {
			return nil
		}
	}
	if b.records > 0 {
		last := &job{b: b, done: make(chan struct{})}
		jobs <- last
		<-last.done
	}
	return nil
}

// runWriter flushes the batches of jobs in order until jobs is closed.
// Once a flush fails (ctx ended), no later batch is written: committing
// it would cover the records of the one that was not.
func (s *Sink) runWriter(ctx context.Context, cl *kgo.Client, w Writer, jobs <-chan *job) {
	var failed error
	for j := range jobs {
		if failed == nil {
			if failed = s.flush(ctx, cl, w, j.b); failed != nil {
				s.log.Warn("batch not written before shutdown; its records will be consumed again", "records", j.b.records, "err", failed)
			}
		}
		j.err = failed
		close(j.done)
		s.wake.wake()
	}
}

// flush writes b until ClickHouse accepts it, then commits its offsets.
func (s *Sink) flush(ctx context.Context, cl *kgo.Client, w Writer, b *Batch) error {
	b.seal()
	ctx, span := s.tracer.Start(ctx, "sink.flush", trace.WithLinks(b.links...), trace.WithAttributes(
		attribute.Int("wanotify.sink.records", b.records),
		attribute.Int("wanotify.sink.events", len(b.Events)),
		attribute.Int("wanotify.sink.errors", len(b.Errors)),
		attribute.Int("wanotify.sink.dead_letters", len(b.DeadLetters)),
	))
	defer span.End()
	begin := time.Now()
	s.writing.Store(true)
	err := s.writeWithRetry(ctx, cl, w, b)
	s.writing.Store(false)
	if err != nil {
		span.RecordError(err)
		return err
	}
	done := time.Now()
	s.m.batchDuration.Record(ctx, done.Sub(begin).Seconds())
	s.m.batchSize.Record(ctx, int64(b.records))
	for table, n := range map[string]int{TableEvents: len(b.Events), TableErrors: len(b.Errors), TableDeadLetters: len(b.DeadLetters)} {
		if n > 0 {
			s.m.rows.Add(ctx, int64(n), metric.WithAttributes(attribute.String("table", table)))
		}
	}
	for i := range b.Events {
		s.m.freshness.Record(ctx, done.Sub(b.Events[i].OccurredAt).Seconds())
	}

	if len(b.Errors) > 0 {
		// One line per batch, not per record: a misbehaving producer must
		// not flood the logs; ingest_errors has every record.
		e := b.Errors[0]
		s.log.Warn("undecodable records written to ingest_errors", "count", len(b.Errors), "first_topic", e.Topic,
			"first_partition", e.Partition, "first_offset", e.Offset, "first_reason", maskPhones(truncate(e.Reason, 300)))
	}
	last := b.lastRecords()
	// The rows are written: commit even if shutdown began meanwhile, so
	// the next owner does not consume them again.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := cl.CommitRecords(cctx, last...); err != nil {
		// The rows are in ClickHouse; an uncommitted range is consumed
		// again (after a rebalance, by whoever owns it) and deduplicated.
		s.m.commitErrors.Add(ctx, 1)
		s.log.Warn("offset commit failed after the batch was written; its records will be consumed again", "err", err)
		return nil
	}
	for _, r := range last {
		s.m.observeCommitted(topicPartition{r.Topic, r.Partition}, r.Offset+1)
	}
	s.log.Debug("batch written", "records", b.records, "events", len(b.Events), "errors", len(b.Errors),
		"dead_letters", len(b.DeadLetters), "elapsed", done.Sub(begin).String())
	return nil
}

// isTimeout reports a server that did not answer in time: the driver puts
// deadlines on the socket (the attempt's, and the dial timeout during a
// connection's handshake), so the error may be a network timeout rather
// than the context's own.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// writeWithRetry retries until success or ctx ends. While ClickHouse
// refuses or does not answer within InsertTimeout, fetching is paused (no
// more records pile up in memory), readiness is false and nothing is
// committed. Every attempt writes the same batch under the same
// deduplication token (Batch.Token), so an attempt that ClickHouse
// completed after the sink gave up on it is dropped by the next one.
func (s *Sink) writeWithRetry(ctx context.Context, cl *kgo.Client, w Writer, b *Batch) error {
	var (
		bo     *cappedBackoff
		paused bool
	)
	for attempt := 1; ; attempt++ {
		// Each attempt is bounded, so a ClickHouse that stops answering
		// (rather than refusing) turns the sink not ready within
		// InsertTimeout instead of hanging on one insert.
		deadline := time.Now().Add(s.cfg.InsertTimeout)
		actx, cancel := context.WithDeadline(ctx, deadline)
		err := w.Write(actx, b)
		timedOut := err != nil && ctx.Err() == nil && (!time.Now().Before(deadline) || isTimeout(err))
		cancel()
		if err == nil {
			if paused {
				cl.ResumeFetchTopics(s.topics...)
				// ClickHouse answered: the probe's failure is over too.
				s.health.update(func(h *health) { h.insertsFailing, h.probeFailing = false, false })
				s.log.Info("ClickHouse accepted the batch again; consuming resumed", "attempts", attempt, "records", b.records)
			}
			return nil
		}
		s.m.insertErrors.Add(ctx, 1)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if timedOut {
			s.m.timeouts.Add(ctx, 1, opInsert)
			err = fmt.Errorf("ClickHouse did not answer within %s (WANOTIFY_SINK_INSERT_TIMEOUT): %w", s.cfg.InsertTimeout, err)
		}
		if !paused {
			cl.PauseFetchTopics(s.topics...)
			paused = true
			s.health.update(func(h *health) { h.insertsFailing = true })
			bo = s.backoff()
		}
		wait := bo.NextBackOff()
		s.log.Warn("ClickHouse refused the batch; fetching paused, retrying", "attempt", attempt,
			"records", b.records, "retry_in", wait.String(), "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

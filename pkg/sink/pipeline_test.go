package sink

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/testinfra"
)

// The tests of this file run the poll loop and its writer (consume) against
// an in-process broker with a Writer of their own, so they can hold,
// refuse and inspect every batch.

// pipeline is a consume loop started by startPipeline.
type pipeline struct {
	s      *Sink
	cancel context.CancelFunc // ends the loop's context
	stop   func()             // cancels the loop's context and waits for consume to return
}

func startPipeline(t testing.TB, cfg Config, brokers []string, w Writer) *pipeline {
	t.Helper()
	s, lw := newTestSink(t, cfg, &clickhouse.Options{Auth: clickhouse.Auth{Database: "unused"}}, brokers)
	m, err := newMetrics(s.cfg.Group)
	if err != nil {
		t.Fatal(err)
	}
	s.m = m
	cl, err := kgo.NewClient(s.kafkaOpts...)
	if err != nil {
		t.Fatal(err)
	}
	cancel, stop := runUntilStopped(t, "consume", func(ctx context.Context) error { return s.consume(ctx, cl, w) }, func() {
		cl.CloseAllowingRebalance()
		m.close()
		lw.stop()
	})
	return &pipeline{s: s, cancel: cancel, stop: stop}
}

// span is the range of offsets a batch holds in one partition.
type span struct{ first, last int64 }

func batchSpans(b *Batch) map[topicPartition]span {
	out := map[topicPartition]span{}
	see := func(src Source) {
		tp := topicPartition{src.Topic, src.Partition}
		sp, ok := out[tp]
		if !ok {
			sp = span{src.Offset, src.Offset}
		}
		sp.first, sp.last = min(sp.first, src.Offset), max(sp.last, src.Offset)
		out[tp] = sp
	}
	for i := range b.Events {
		see(b.Events[i].Source)
	}
	for i := range b.DeadLetters {
		see(b.DeadLetters[i].Source)
	}
	for i := range b.Errors {
		see(b.Errors[i].Source)
	}
	return out
}

// checkingWriter checks, on every call, that batches arrive in offset
// order without gaps and that the group's committed offsets never go
// beyond the batches it acknowledged. before, if set, runs first and may
// hold or refuse the batch.
type checkingWriter struct {
	t      *testing.T
	adm    *kadm.Client
	group  string
	before func(ctx context.Context, call int, b *Batch) error

	mu      sync.Mutex
	calls   int
	acked   map[topicPartition]int64 // next offset after the acknowledged batches
	written int                      // records acknowledged
}

func (w *checkingWriter) Write(ctx context.Context, b *Batch) error {
	w.mu.Lock()
	w.calls++
	call := w.calls
	w.mu.Unlock()
	w.checkCommitted("before writing batch " + fmt.Sprint(call))
	spans := batchSpans(b)
	w.mu.Lock()
	for tp, sp := range spans {
		if want := w.acked[tp]; sp.first != want {
			w.t.Errorf("batch %d starts %s/%d at offset %d, want %d (the end of the batches acknowledged before it)",
				call, tp.topic, tp.partition, sp.first, want)
		}
	}
	w.mu.Unlock()
	if w.before != nil {
		if err := w.before(ctx, call, b); err != nil {
			w.checkCommitted(fmt.Sprintf("while batch %d is refused", call))
			return err
		}
	}
	w.mu.Lock()
	for tp, sp := range spans {
		w.acked[tp] = sp.last + 1
	}
	w.written += b.Records()
	w.mu.Unlock()
	return nil
}

// checkCommitted fails the test if the group committed beyond what was
// acknowledged.
func (w *checkingWriter) checkCommitted(when string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := w.adm.FetchOffsets(ctx, w.group)
	if err != nil {
		return // the group does not exist before its first commit
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.At > w.acked[topicPartition{o.Topic, o.Partition}] {
			w.t.Errorf("%s: %s/%d committed at %d, but only offsets below %d were acknowledged by the writer",
				when, o.Topic, o.Partition, o.At, w.acked[topicPartition{o.Topic, o.Partition}])
		}
	})
}

func (w *checkingWriter) state() (calls, written int, acked map[topicPartition]int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	acked = map[topicPartition]int64{}
	for tp, o := range w.acked {
		acked[tp] = o
	}
	return w.calls, w.written, acked
}

// committedOffsets is the group's committed offset per partition.
func committedOffsets(t *testing.T, adm *kadm.Client, group string) map[topicPartition]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[topicPartition]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.At > 0 {
			out[topicPartition{o.Topic, o.Partition}] = o.At
		}
	})
	return out
}

func equalOffsets(a, b map[topicPartition]int64) bool {
	for tp, o := range a {
		if o != 0 && b[tp] != o {
			return false
		}
	}
	for tp, o := range b {
		if o != 0 && a[tp] != o {
			return false
		}
	}
	return true
}

// TestPipelineCommitsOnlyAcknowledgedBatchesInOrder streams records
// through the loop while the writer is slow and refuses every fifth
// attempt: batches reach the writer in offset order without gaps, retried
// batches are the same batch, the committed offsets never pass what the
// writer acknowledged, and in the end everything is written once and
// committed.
func TestPipelineCommitsOnlyAcknowledgedBatchesInOrder(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 3)
	cl := testinfra.Client(t, brokers)
	adm := kadm.NewClient(cl)
	recs := lifecycles(t, "order", 1500, time.Now())
	const group = "pipeline-order"
	refused := 0 // only the writer goroutine counts
	var tokens sync.Map
	w := &checkingWriter{t: t, adm: adm, group: group, acked: map[topicPartition]int64{},
		before: func(_ context.Context, call int, b *Batch) error {
			if prev, ok := tokens.Load(b); ok && prev != b.Token {
				t.Errorf("batch %d retried with token %s, first written with %s", call, b.Token, prev)
			}
			tokens.Store(b, b.Token)
			time.Sleep(15 * time.Millisecond) // a slow insert: the loop fills the next batch meanwhile
			if call%5 == 0 {
				refused++
				return errors.New("refused by the test")
			}
			return nil
		}}
	p := startPipeline(t, Config{Group: group, BatchRows: 400, BatchInterval: 20 * time.Millisecond,
		RetryInitialBackoff: 5 * time.Millisecond, RetryMaxBackoff: 20 * time.Millisecond}, brokers, w)
	progress := stream(t, cl, recs)
	waitProduced(progress, len(recs))
	waitConsumed(t, adm, group, 2*time.Minute)
	p.stop()

	calls, written, acked := w.state()
	if written != len(recs) {
		t.Errorf("writer acknowledged %d records, want each of the %d once", written, len(recs))
	}
	if refused == 0 || calls < 10 {
		t.Errorf("%d writes, %d refused: the stream did not exercise the pipeline", calls, refused)
	}
	if got := committedOffsets(t, adm, group); !equalOffsets(got, acked) {
		t.Errorf("committed %v, acknowledged %v", got, acked)
	}
}

// TestPipelineShutdownFinishesTheBatchBeingWritten stops the loop while the
// writer holds a batch: the batch is still written and committed (within
// DrainTimeout, not aborted by the shutdown), and so is the one being
// filled, if the loop had polled any.
func TestPipelineShutdownFinishesTheBatchBeingWritten(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 3)
	cl := testinfra.Client(t, brokers)
	adm := kadm.NewClient(cl)
	const group = "pipeline-drain"
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	w := &checkingWriter{t: t, adm: adm, group: group, acked: map[topicPartition]int64{},
		before: func(ctx context.Context, call int, _ *Batch) error {
			if call == 1 {
				once.Do(func() { close(entered) })
				<-release
				// An insert whose context ended is aborted.
				return ctx.Err()
			}
			return nil
		}}
	p := startPipeline(t, Config{Group: group, BatchRows: 300, BatchInterval: 10 * time.Millisecond, DrainTimeout: 30 * time.Second}, brokers, w)
	produce(t, cl, lifecycles(t, "drain", 400, time.Now()))
	<-entered
	// Shutdown begins while the writer holds batch 1.
	p.cancel()
	close(release)
	p.stop()

	calls, written, acked := w.state()
	if written == 0 {
		t.Errorf("%d writes, none acknowledged: the batch held at shutdown was given up", calls)
	}
	if got := committedOffsets(t, adm, group); len(got) == 0 || !equalOffsets(got, acked) {
		t.Errorf("after shutdown committed %v, acknowledged %v", got, acked)
	}
}

// TestPipelineShutdownWithAHungWriterCommitsNothingAfterIt stops the loop
// while ClickHouse does not answer: the batch is given up after
// DrainTimeout and the batch behind it is not written, since committing it
// would cover the records of the one that was not.
func TestPipelineShutdownWithAHungWriterCommitsNothingAfterIt(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 3)
	cl := testinfra.Client(t, brokers)
	adm := kadm.NewClient(cl)
	const group = "pipeline-hung"
	entered := make(chan struct{})
	var once sync.Once
	var afterHung atomic.Int32
	w := &checkingWriter{t: t, adm: adm, group: group, acked: map[topicPartition]int64{},
		before: func(ctx context.Context, call int, _ *Batch) error {
			switch {
			case call == 2:
				once.Do(func() { close(entered) })
				<-ctx.Done() // hangs until the sink gives up
				return ctx.Err()
			case call > 2:
				afterHung.Add(1)
			}
			return nil
		}}
	p := startPipeline(t, Config{Group: group, BatchRows: 300, BatchInterval: 10 * time.Millisecond, DrainTimeout: 300 * time.Millisecond,
		RetryInitialBackoff: 5 * time.Millisecond, RetryMaxBackoff: 20 * time.Millisecond}, brokers, w)
	produce(t, cl, lifecycles(t, "hung", 500, time.Now()))
	<-entered
	waitFor(t, 30*time.Second, "batch 1 committed", func() bool {
		_, _, acked := w.state()
		c, err := committedTotal(context.Background(), adm, group)
		var sum int64
		for _, o := range acked {
			sum += o
		}
		return err == nil && c == sum && c > 0
	})
	p.stop()

	if n := afterHung.Load(); n != 0 {
		t.Errorf("%d batches written after the one ClickHouse never acknowledged", n)
	}
	_, written, acked := w.state()
	if got := committedOffsets(t, adm, group); !equalOffsets(got, acked) {
		t.Errorf("committed %v, acknowledged %v (%d records)", got, acked, written)
	}
}

// TestPipelineRebalanceIsNotStarvedByABacklog has a second member join
// while the first works through a backlog with a slow writer. The
// pipeline always holds a batch while records keep coming, so the pending
// rebalance must make it stop and release its partitions; otherwise the
// first member would keep everything until the backlog is gone.
func TestPipelineRebalanceIsNotStarvedByABacklog(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 3)
	cl := testinfra.Client(t, brokers)
	adm := kadm.NewClient(cl)
	const group = "pipeline-rebalance"
	produce(t, cl, lifecycles(t, "rebalance", 5000, time.Now()))
	var secondGot atomic.Int64
	var firstRows atomic.Int64
	first := writerFunc(func(_ context.Context, b *Batch) error {
		firstRows.Add(int64(b.Records()))
		if secondGot.Load() == 0 {
			time.Sleep(100 * time.Millisecond) // slow enough that the backlog lasts
		}
		return nil
	})
	second := writerFunc(func(_ context.Context, b *Batch) error {
		secondGot.Add(int64(b.Records()))
		return nil
	})
	cfg := Config{Group: group, BatchRows: 100, BatchInterval: 20 * time.Millisecond}
	startPipeline(t, cfg, brokers, first)
	waitFor(t, 30*time.Second, "the first member to write", func() bool { return firstRows.Load() > 0 })
	startPipeline(t, cfg, brokers, second)
	waitConsumed(t, adm, group, 2*time.Minute)
	if secondGot.Load() == 0 {
		t.Errorf("the second member wrote nothing: the first (%d records) kept its partitions for the whole backlog", firstRows.Load())
	}
	if total := firstRows.Load() + secondGot.Load(); total < 20000 {
		t.Errorf("%d records written, want all 20000", total)
	}
}

type writerFunc func(context.Context, *Batch) error

func (f writerFunc) Write(ctx context.Context, b *Batch) error { return f(ctx, b) }

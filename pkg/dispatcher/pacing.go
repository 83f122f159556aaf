package dispatcher

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/wanotify/wanotify/pkg/dispatcher/answer"
	"github.com/wanotify/wanotify/pkg/dispatcher/pairrate"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/topics"
)

// Pair-rate pacing (package pairrate): a gate of every sender's scheduler
// holds a record whose recipient got a message from the sender less than
// WANOTIFY_DISPATCHER_PAIR_INTERVAL ago, before any marker is written or
// token taken; the call stage tells it when the provider answered (and
// when it answered 131056 all the same); group membership restores the
// pairs of newly assigned partitions from notifications.pacing and
// flushes this instance's notes before partitions are given up.

// pacingFlushTimeout bounds the wait for the pacing notes of revoked
// partitions: they are small and asynchronous, and a note that is lost
// costs at most one 131056 answer, which the gate learns from.
const pacingFlushTimeout = 5 * time.Second

// Partition is the partition of rc's record, where its pair's pacing is
// written (pairrate.Partitioned).
func (rc *rec) Partition() int32 { return rc.r.Partition }

// startPacing builds the gate and, when pacing is on, its changelog
// producer; stop flushes and closes it.
func (d *Dispatcher) startPacing() (stop func(), err error) {
	if !d.cfg.PairRate.Enabled() {
		d.pairs = pairrate.New(d.cfg.PairRate, nil)
		return func() {}, nil
	}
	clog, err := pairrate.NewChangelog(d.kopts, topics.Pacing, d.log)
	if err != nil {
		return nil, fmt.Errorf("dispatcher pacing: %w", err)
	}
	d.pacing = clog
	d.pairs = pairrate.New(d.cfg.PairRate, clog)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), pacingFlushTimeout)
		defer cancel()
		clog.Close(ctx)
	}, nil
}

// restorePacing reads the pacing of newly assigned partitions before their
// records are fetched. A failure is logged, not fatal: the pairs of those
// partitions are then paced from their next message on, and a provider
// that still counts one answers 131056, which the gate learns from.
func (d *Dispatcher) restorePacing(ctx context.Context, partitions []int32) {
	if d.pacing == nil || len(partitions) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, d.cfg.RebalanceTimeout)
	defer cancel()
	start := time.Now()
	st, err := pairrate.Restore(rctx, pairrate.RestoreConfig{Opts: d.kopts, Topic: topics.Pacing}, partitions, d.pairs)
	if err != nil {
		d.log.Warn("pair pacing not restored; those partitions' pairs are paced from their next message", "partitions", partitions, "err", err)
		return
	}
	d.log.Info("pair pacing restored", "partitions", len(partitions), "records", st.Records, "pairs", st.Pairs,
		"unreadable", st.Bad, "took", time.Since(start).String())
}

// flushPacing waits until the pacing notes written so far are in Kafka,
// so the next owner of a revoked partition restores them.
func (d *Dispatcher) flushPacing() {
	if d.pacing == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), pacingFlushTimeout)
	defer cancel()
	if err := d.pacing.Flush(ctx); err != nil {
		d.log.Warn("pair pacing notes not flushed before giving partitions up", "err", err)
	}
}

// paced tells the pair gate how rc's call ended. WhatsApp counts the
// messages it sent, not the attempts: an accepted call, and a call that
// got no answer (the provider may have sent it), take the pair's slot,
// counted from the answer; a pair-rate answer pushes the pair out; any
// other refusal (and a call the breaker refused) sent nothing and gives
// the slot back, so a retry after a failure is not held by pacing.
func (d *Dispatcher) paced(rc *rec, err error, dec answer.Decision, at time.Time) {
	pair, p := pairrate.PairOf(rc), rc.Partition()
	switch {
	case err == nil:
		d.pairs.Sent(pair, p, at)
	case dec.Code == pairRateCode:
		d.pairs.PairLimited(pair, p, at)
	case dec.Class != "" && provider.AsError(err).Ambiguous():
		d.pairs.Sent(pair, p, at)
	default:
		d.pairs.Give(pair)
	}
}

var pairRateCode = fmt.Sprintf("meta_%d", provider.MetaPairRate)

// pacingInstruments are the pair gate's metrics (observed in metrics.go's
// callback).
func pacingInstruments(meter metric.Meter) (held metric.Int64ObservableCounter, pairs metric.Int64ObservableGauge,
	notesFailed metric.Int64ObservableCounter, err error) {
	if held, err = meter.Int64ObservableCounter("wanotify.dispatcher.pair.held", metric.WithUnit("{notification}"),
		metric.WithDescription("times a record was held aside by pair-rate pacing until its recipient was free")); err != nil {
		return
	}
	if pairs, err = meter.Int64ObservableGauge("wanotify.dispatcher.pair.remembered", metric.WithUnit("{pair}"),
		metric.WithDescription("sender and recipient pairs the pair-rate gate remembers (messaged within the pair interval times burst)")); err != nil {
		return
	}
	notesFailed, err = meter.Int64ObservableCounter("wanotify.dispatcher.pair.notes_failed", metric.WithUnit("{note}"),
		metric.WithDescription("pair pacing notes that could not be written to notifications.pacing"))
	return
}

func (d *Dispatcher) observePacing(o metric.Observer, held metric.Int64ObservableCounter, pairs metric.Int64ObservableGauge, notesFailed metric.Int64ObservableCounter) {
	if d.pairs == nil {
		return
	}
	o.ObserveInt64(held, d.pairs.Held())
	o.ObserveInt64(pairs, int64(d.pairs.Len()))
	var failed int64
	if d.pacing != nil {
		failed = d.pacing.Failed()
	}
	o.ObserveInt64(notesFailed, failed)
}

package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/wanotify/wanotify/pkg/dispatcher/order"
)

// The commit stage: finished records' outputs and offsets in one
// transaction. See the package documentation, stage 6.

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
	// The rewound partitions must not stay paused from before, except bulk
	// ones: they are read when the bulk plan gives them a turn.
	resume, pause := map[string][]int32{}, map[string][]int32{}
	d.mu.Lock()
	for _, p := range victims {
		np := d.newPart(p.tp)
		d.parts[p.tp] = np
		delete(d.paused, p.tp)
		if np.bulk != nil {
			d.paused[p.tp] = true
			pause[p.tp.topic] = append(pause[p.tp.topic], p.tp.partition)
		} else {
			resume[p.tp.topic] = append(resume[p.tp.topic], p.tp.partition)
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

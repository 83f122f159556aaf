package dispatcher

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/dispatcher/dedupe"
	"github.com/wanotify/wanotify/pkg/dispatcher/ratelimit"
	"github.com/wanotify/wanotify/pkg/topics"
)

// Group membership: what an assignment restores before fetching, and what
// a revocation waits for before the partitions are released. Both are the
// reason a recipient's dedupe state is complete wherever its partition
// goes (the package documentation, "Dedupe state").

// onAssigned restores the dedupe state of newly assigned partition
// numbers before any of their records is fetched.
func (d *Dispatcher) onAssigned(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
	nums := map[int32]bool{}
	for _, ps := range assigned {
		for _, p := range ps {
			nums[p] = true
		}
	}
	restore := map[int32]*dedupe.Partition{}
	d.mu.Lock()
	for p := range nums {
		if d.stores[p] == nil {
			restore[p] = dedupe.NewPartition()
		}
	}
	d.mu.Unlock()
	if len(restore) > 0 {
		if err := d.restore(ctx, restore); err != nil {
			// Without the dedupe state a partition cannot be processed
			// safely; leave the group so another member (or a later
			// attempt of ours) takes it.
			d.log.Error("dedupe restore failed; leaving the group", "err", err)
			go d.cl.LeaveGroup()
			return
		}
	}
	newNums := make([]int32, 0, len(restore))
	for p := range restore {
		newNums = append(newNums, p)
	}
	d.restorePacing(ctx, newNums)
	total := d.requestedPartitions(ctx)
	d.mu.Lock()
	for p, s := range restore {
		d.stores[p] = s
	}
	pause := map[string][]int32{}
	for t, ps := range assigned {
		for _, p := range ps {
			k := tp{t, p}
			if old := d.parts[k]; old != nil && !old.dead.Load() {
				continue
			}
			d.parts[k] = d.newPart(k)
			delete(d.paused, k)
			if d.parts[k].bulk != nil {
				// Read only once the bulk plan gives it a turn.
				d.paused[k] = true
				pause[t] = append(pause[t], p)
			}
		}
	}
	if total > 0 {
		d.total = total
	}
	d.updateShareLocked()
	n := len(d.parts)
	d.mu.Unlock()
	if len(pause) > 0 {
		d.cl.PauseFetchPartitions(pause)
	}
	d.log.Info("partitions assigned", "assigned", assigned, "owned", n, "share", d.limits.CurrentShare())
}

func (d *Dispatcher) restore(ctx context.Context, parts map[int32]*dedupe.Partition) error {
	rctx, cancel := context.WithTimeout(ctx, d.cfg.RebalanceTimeout)
	defer cancel()
	offs, err := d.adm.FetchOffsets(rctx, d.cfg.Group)
	if err != nil {
		return fmt.Errorf("fetch committed offsets: %w", err)
	}
	start := time.Now()
	stale, stats, err := dedupe.Restore(rctx, dedupe.RestoreConfig{
		Opts: d.kopts, Topic: topics.Dedupe, Window: d.cfg.DedupeWindow,
		KeepDetail: func(p int32, topic string, off int64) bool {
			c, ok := offs.Lookup(topic, p)
			return !ok || c.At < 0 || off >= c.At
		},
	}, parts)
	if err != nil {
		return err
	}
	d.log.Info("dedupe state restored", "partitions", len(parts), "records", stats.Records, "keys", stats.Keys,
		"details", stats.Details, "stale", stats.Stale, "took", time.Since(start).String())
	for p, hs := range stale {
		d.tombstone(p, hs)
	}
	return nil
}

func (d *Dispatcher) tombstone(p int32, hs []dedupe.Hash) {
	for _, h := range hs {
		d.clog.Produce(context.Background(), &kgo.Record{Topic: topics.Dedupe, Partition: p, Key: h.RecordKey()}, func(_ *kgo.Record, err error) {
			if err != nil {
				d.log.Warn("dedupe tombstone failed", "partition", p, "err", err)
			}
		})
	}
}

func (d *Dispatcher) requestedPartitions(ctx context.Context) int {
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	td, err := d.adm.ListTopics(tctx, topics.Requested)
	if err != nil {
		d.log.Warn("list topics", "err", err)
		return 0
	}
	t, ok := td[topics.Requested]
	if !ok || t.Err != nil {
		return 0
	}
	return len(t.Partitions)
}

// updateShareLocked sets the limiter share from the owned
// notifications.requested partitions (d.mu held).
func (d *Dispatcher) updateShareLocked() {
	n := 0
	for k, p := range d.parts {
		if k.topic == topics.Requested && !p.dead.Load() {
			n++
		}
	}
	d.limits.SetShare(ratelimit.Share(n, d.total))
}

// onRevoked gives up revoked (or lost) partitions: provider calls in
// flight finish and write their markers first, so the next owner's
// restored dedupe state is complete.
func (d *Dispatcher) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	d.endDue.Store(true)
	var ps []*part
	d.mu.Lock()
	for t, parts := range revoked {
		for _, n := range parts {
			k := tp{t, n}
			if p := d.parts[k]; p != nil {
				ps = append(ps, p)
			}
		}
	}
	d.mu.Unlock()
	d.giveUp(ps)
	d.flushPacing()
	d.mu.Lock()
	for _, p := range ps {
		if d.parts[p.tp] == p {
			delete(d.parts, p.tp)
			delete(d.paused, p.tp)
			if d.met != nil {
				d.met.dropLag(p.tp)
			}
		}
	}
	owned := map[int32]bool{}
	for k := range d.parts {
		owned[k.partition] = true
	}
	for n := range d.stores {
		if !owned[n] {
			delete(d.stores, n)
		}
	}
	d.updateShareLocked()
	d.mu.Unlock()
	// A paused partition stays paused in the client across assignments.
	resume := map[string][]int32{}
	for _, p := range ps {
		resume[p.tp.topic] = append(resume[p.tp.topic], p.tp.partition)
	}
	if len(resume) > 0 {
		d.cl.ResumeFetchPartitions(resume)
	}
	if len(ps) > 0 {
		d.log.Info("partitions revoked", "revoked", revoked, "share", d.limits.CurrentShare())
	}
}

package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/topics"
)

// heldBySender counts, per sender, the records on notifications.held the
// dispatchers' group has not committed past: a halted sender's records
// wait there (a running sender's pass through in moments). It reads
// committed data only (read_committed, up to the last stable offset), so
// a record of an aborted transaction is not counted, and one of a
// transaction still open is counted once it commits.
func heldBySender(ctx context.Context, opts []kgo.Opt, group string) (map[string]int, error) {
	adm, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	ka := kadm.NewClient(adm)
	ends, err := ka.ListCommittedOffsets(ctx, topics.Held)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topics.Held, err)
	}
	starts, err := ka.ListStartOffsets(ctx, topics.Held)
	if err != nil {
		return nil, fmt.Errorf("start offsets of %s: %w", topics.Held, err)
	}
	committed, err := ka.FetchOffsets(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("offsets of group %s: %w", group, err)
	}
	from, end := map[int32]kgo.Offset{}, map[int32]int64{}
	var errs []error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			errs = append(errs, fmt.Errorf("%s/%d: %w", o.Topic, o.Partition, o.Err))
			return
		}
		at := int64(0)
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok && s.Err == nil {
			at = s.Offset
		}
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.Err == nil && c.At > at {
			at = c.At
		}
		if at < o.Offset {
			from[o.Partition], end[o.Partition] = kgo.NewOffset().At(at), o.Offset
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	counts := map[string]int{}
	if len(from) == 0 {
		return counts, nil
	}
	// Control records are kept so the read reaches each partition's last
	// offset even when a transaction marker is that offset.
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topics.Held: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for len(end) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading %s to its end (%d partitions left): %w", topics.Held, len(end), err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("%s/%d: %w", t, p, err) })
		if ferr != nil {
			return nil, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			last, ok := end[r.Partition]
			if !ok || r.Offset >= last {
				return
			}
			if !r.Attrs.IsControl() {
				counts[contract.SenderOf(r.Value)]++
			}
			if r.Offset == last-1 {
				delete(end, r.Partition)
			}
		})
	}
	return counts, nil
}

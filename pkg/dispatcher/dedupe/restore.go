package dedupe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// RestoreConfig says what to read and what to keep.
type RestoreConfig struct {
	// Opts connect to the cluster (seed brokers, TLS, SASL). Consumer
	// options are added by Restore.
	Opts []kgo.Opt
	// Topic is the changelog topic.
	Topic string
	// Window is how long a key is remembered; older terminal entries are
	// skipped and reported as stale so they can be tombstoned.
	Window time.Duration
	// Now is the restore time (time.Now when zero).
	Now time.Time
	// KeepDetail reports whether the consumed record that led to a state
	// may be consumed again (its offset is not committed), so the detail
	// needed to re-emit the outcome must be kept.
	KeepDetail func(partition int32, topic string, offset int64) bool
}

// RestoreStats describes one restore.
type RestoreStats struct {
	Records int
	Keys    int
	Details int
	Stale   int
}

// Restore reads changelog partitions from their start to their current
// end into parts (keyed by partition; each is emptied first) and returns
// the hashes of stale entries per partition.
//
// The changelog is only written by a non-transactional producer, so the
// isolation level is moot; Restore reads to the high watermark taken when
// it starts. Callers make sure no one writes the partitions meanwhile
// (the previous owner finished its in-flight calls before giving them up).
func Restore(ctx context.Context, cfg RestoreConfig, parts map[int32]*Partition) (map[int32][]Hash, RestoreStats, error) {
	var stats RestoreStats
	if len(parts) == 0 {
		return nil, stats, nil
	}
	now := cfg.Now
	if now.IsZero() {
		now = time.Now()
	}
	cutoff := now.Add(-cfg.Window).Unix()

	adm, err := kgo.NewClient(cfg.Opts...)
	if err != nil {
		return nil, stats, fmt.Errorf("dedupe restore client: %w", err)
	}
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, cfg.Topic)
	adm.Close()
	if err != nil {
		return nil, stats, fmt.Errorf("dedupe restore: list end offsets of %s: %w", cfg.Topic, err)
	}
	if err := ends.Error(); err != nil {
		return nil, stats, fmt.Errorf("dedupe restore: list end offsets of %s: %w", cfg.Topic, err)
	}
	want := map[int32]int64{} // partition -> last offset to read
	consume := map[int32]kgo.Offset{}
	for p, store := range parts {
		store.mu.Lock()
		clear(store.entries)
		clear(store.details)
		store.mu.Unlock()
		lo, ok := ends.Lookup(cfg.Topic, p)
		if !ok {
			return nil, stats, fmt.Errorf("dedupe restore: %s partition %d does not exist", cfg.Topic, p)
		}
		if lo.Offset > 0 {
			want[p] = lo.Offset - 1
			consume[p] = kgo.NewOffset().AtStart()
		}
	}
	stale := map[int32][]Hash{}
	if len(want) == 0 {
		return stale, stats, nil
	}
	opts := append(append([]kgo.Opt{}, cfg.Opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: consume}),
		kgo.FetchMaxWait(200*time.Millisecond))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, stats, fmt.Errorf("dedupe restore client: %w", err)
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, stats, fmt.Errorf("dedupe restore of %s: %w", cfg.Topic, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("dedupe restore: fetch %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return nil, stats, ferr
		}
		fs.EachRecord(func(rec *kgo.Record) {
			last, reading := want[rec.Partition]
			if !reading || rec.Offset > last {
				return
			}
			if rec.Offset == last {
				delete(want, rec.Partition)
			}
			stats.Records++
			store := parts[rec.Partition]
			r, ok, err := Decode(rec.Key, rec.Value)
			if err != nil {
				// An unreadable entry cannot be trusted either way; the
				// key is forgotten, as after a tombstone.
				return
			}
			if !ok {
				store.Delete(r.Hash)
				return
			}
			if int64(r.Created) < cutoff && (r.State.Terminal() || r.State == StateNone) {
				store.Delete(r.Hash)
				stale[rec.Partition] = append(stale[rec.Partition], r.Hash)
				return
			}
			keep := cfg.KeepDetail != nil && cfg.KeepDetail(rec.Partition, r.SourceTopic, r.SourceOffset)
			store.Put(r, keep)
		})
	}
	for p, store := range parts {
		stats.Keys += store.Len()
		stats.Details += store.Details()
		// A key that was stale early in the log may have been written
		// again later; only tombstone what is really gone.
		kept := stale[p][:0]
		for _, h := range stale[p] {
			if _, _, ok := store.Get(h); !ok {
				kept = append(kept, h)
			}
		}
		stale[p] = kept
		stats.Stale += len(kept)
	}
	return stale, stats, nil
}

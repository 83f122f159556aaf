package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/wanotify/wanotify/pkg/dispatcher/dedupe"
)

// dedupeBytesPerKey fills the dispatcher's dedupe store (12 partitions,
// as the dispatcher keeps one per partition) with keys settled keys and
// returns the heap it holds per key, measured after a full GC before and
// after. Settled keys keep no detail: the steady state of a store whose
// offsets are committed.
func dedupeBytesPerKey(keys int) float64 {
	parts := make([]*dedupe.Partition, 12)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range parts {
		parts[i] = dedupe.NewPartition()
	}
	created := uint32(time.Now().Unix())
	for i := range keys {
		h := dedupe.HashKey(ingestTenant, fmt.Sprintf("user-%d/otp/2026-11-28T10:00:00Z", i))
		parts[i%len(parts)].Put(dedupe.Record{Hash: h, Entry: dedupe.Entry{Origin: int64(i), Created: created,
			State: dedupe.StateAccepted, Attempt: 1}}, false)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(parts)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(keys)
}

func (b *Bench) dedupe(ctx context.Context) ([]Row, error) {
	const keys = 1_000_000
	var figs []float64
	var runs []string
	for range b.cfg.Runs {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		v := dedupeBytesPerKey(keys)
		figs = append(figs, v)
		runs = append(runs, fmt.Sprintf("%.1f B/key", v))
	}
	v := Median(figs)
	perMillion := v * 1e6 / 1e6 // bytes per key × 1M keys, in MB
	return []Row{{What: "dedupe state per million keys", Figure: fmt.Sprintf("%.0f MB (%.1f bytes per key)", perMillion, v),
		Target: "≤ 100 MB per million keys", Verdict: verdict(perMillion <= 100), Runs: runs,
		Note: "In the harness's own process: 1,000,000 idempotency keys put into the dispatcher's dedupe store (pkg/dispatcher/dedupe, 12 partitions, settled keys without detail, as after their offsets are committed); heap in use measured after a full GC before and after (runtime.MemStats)."}}, nil
}

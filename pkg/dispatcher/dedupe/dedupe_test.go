package dedupe

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	r := Record{
		Hash:  HashKey("acme", "user-1:otp:2026-01-01T00:00:00Z"),
		Entry: Entry{Origin: 42, Fingerprint: 0xfedc, Created: uint32(now.Unix()), State: StateRetrying, Attempt: 2},
		Detail: Detail{NotificationID: "n-1", ErrorCode: "http_503", ErrorMessage: "unavailable", ErrorClass: "retryable",
			FailedAt: now, DueAt: now.Add(15 * time.Second), UpdatedAt: now, SourceTopic: topics.Retry5s, SourceOffset: 7},
	}
	got, ok, err := Decode(r.Hash.RecordKey(), Encode(r))
	if err != nil || !ok {
		t.Fatalf("decode: ok=%v err=%v", ok, err)
	}
	if got.Hash != r.Hash || got.Entry != r.Entry || got.Detail != r.Detail {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
	}
	if _, ok, err := Decode(r.Hash.RecordKey(), nil); ok || err != nil {
		t.Fatalf("tombstone: ok=%v err=%v", ok, err)
	}
	if _, _, err := Decode([]byte("short"), []byte("{}")); err == nil {
		t.Fatal("bad key accepted")
	}
	if _, _, err := Decode(r.Hash.RecordKey(), []byte(`{"st":"bogus"}`)); err == nil {
		t.Fatal("unknown state accepted")
	}
}

// A value written before fingerprints decodes with none, and a key it
// owns is never taken for a reuse.
func TestValuesWithoutFingerprintStillDecode(t *testing.T) {
	h := HashKey("acme", "k")
	old := `{"v":1,"nid":"n-1","oo":42,"st":"accepted","a":1,"ct":1764324000,"ut":1764324000123,"src":"notifications.requested","so":42,"pm":"wamid.1"}`
	r, ok, err := Decode(h.RecordKey(), []byte(old))
	if err != nil || !ok || r.Fingerprint != 0 || r.Origin != 42 || r.State != StateAccepted {
		t.Fatalf("old value: %+v, %v, %v", r, ok, err)
	}
	if Reuse(r.Entry, 7) != nil || Fold(0) == 0 || Fold(1<<16|1) == 0 {
		t.Fatal("an entry without fingerprint reported a reuse")
	}
	if _, _, err := Decode(h.RecordKey(), []byte(`{"st":"accepted","fp":"xyz"}`)); err == nil {
		t.Fatal("a bad fingerprint accepted")
	}
}

func TestReuseTellsAnotherMessageFromARetry(t *testing.T) {
	e := Entry{Origin: 1, Fingerprint: Fold(5), State: StateAccepted, Attempt: 1}
	if Reuse(e, 5) != nil || Reuse(e, 0) != nil {
		t.Fatal("a retry reported as a reuse")
	}
	ei := Reuse(e, 6)
	if ei == nil || ei.Code != ErrorCodeKeyReused || ei.Retryable || ei.Message == "" {
		t.Fatalf("reuse: %+v", ei)
	}
}

func TestHashSeparatesTenantAndKey(t *testing.T) {
	if HashKey("a", "bc") == HashKey("ab", "c") {
		t.Fatal("tenant/key boundary not part of the hash")
	}
	if HashKey("a", "b") != HashKey("a", "b") {
		t.Fatal("hash not deterministic")
	}
}

func TestSweepKeepsEntriesInProgress(t *testing.T) {
	p := NewPartition()
	old := uint32(time.Now().Add(-48 * time.Hour).Unix())
	done := HashKey("t", "done")
	busy := HashKey("t", "busy")
	fresh := HashKey("t", "fresh")
	p.Put(Record{Hash: done, Entry: Entry{Created: old, State: StateAccepted, Attempt: 1}}, false)
	p.Put(Record{Hash: busy, Entry: Entry{Created: old, State: StateRetrying, Attempt: 2}}, true)
	p.Put(Record{Hash: fresh, Entry: Entry{Created: uint32(time.Now().Unix()), State: StateAccepted}}, false)
	gone := p.Sweep(time.Now().Add(-24 * time.Hour))
	if len(gone) != 1 || gone[0] != done {
		t.Fatalf("swept %v, want only the old terminal entry", gone)
	}
	if _, _, ok := p.Get(busy); !ok {
		t.Fatal("an entry still retrying was swept")
	}
	if p.Len() != 2 {
		t.Fatalf("len %d", p.Len())
	}
}

func TestCommittedDropsOnlyMatchingDetail(t *testing.T) {
	p := NewPartition()
	h := HashKey("t", "k")
	p.Put(Record{Hash: h, Entry: Entry{State: StateAccepted}, Detail: Detail{ProviderMessageID: "wamid.1", SourceTopic: topics.Requested, SourceOffset: 10}}, true)
	p.Committed(h, topics.Retry5s, 50)
	if _, d, _ := p.Get(h); d == nil {
		t.Fatal("commit of another topic dropped the detail")
	}
	p.Committed(h, topics.Requested, 9)
	if _, d, _ := p.Get(h); d == nil {
		t.Fatal("commit below the source offset dropped the detail")
	}
	p.Committed(h, topics.Requested, 10)
	if _, d, _ := p.Get(h); d != nil {
		t.Fatal("detail kept after its record was committed")
	}
}

func TestRestoreRebuildsStateFromChangelog(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 3)
	cl := testinfra.Client(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Now()
	produce := func(p int32, r Record, tombstone bool) {
		rec := &kgo.Record{Topic: topics.Dedupe, Partition: p, Key: r.Hash.RecordKey(), Value: Encode(r)}
		if tombstone {
			rec.Value = nil
		}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	created := uint32(now.Unix())
	a, b, c, old := HashKey("t", "a"), HashKey("t", "b"), HashKey("t", "c"), HashKey("t", "old")
	// a: pending then accepted (detail for a record not yet committed).
	produce(1, Record{Hash: a, Entry: Entry{Origin: 5, Created: created, State: StatePending, Attempt: 1},
		Detail: Detail{SourceTopic: topics.Requested, SourceOffset: 5}}, false)
	produce(1, Record{Hash: a, Entry: Entry{Origin: 5, Created: created, State: StateAccepted, Attempt: 1},
		Detail: Detail{ProviderMessageID: "wamid.A", SourceTopic: topics.Requested, SourceOffset: 5}}, false)
	// b: left pending by a crash; its record was committed long ago.
	produce(1, Record{Hash: b, Entry: Entry{Origin: 2, Created: created, State: StatePending, Attempt: 3},
		Detail: Detail{SourceTopic: topics.Retry15s, SourceOffset: 1}}, false)
	// c: written then tombstoned.
	produce(1, Record{Hash: c, Entry: Entry{Origin: 1, Created: created, State: StateAccepted, Attempt: 1}}, false)
	produce(1, Record{Hash: c}, true)
	// old: outside the window.
	produce(1, Record{Hash: old, Entry: Entry{Origin: 0, Created: uint32(now.Add(-25 * time.Hour).Unix()), State: StateAccepted, Attempt: 1}}, false)
	// Another partition's entry must not leak into partition 1.
	produce(2, Record{Hash: HashKey("t", "other"), Entry: Entry{Created: created, State: StateAccepted, Attempt: 1}}, false)

	p1, p0 := NewPartition(), NewPartition()
	p1.Put(Record{Hash: HashKey("t", "leftover")}, false) // emptied by Restore
	stale, stats, err := Restore(ctx, RestoreConfig{
		Opts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, Topic: topics.Dedupe, Window: 24 * time.Hour, Now: now,
		KeepDetail: func(p int32, topic string, off int64) bool { return topic == topics.Requested && off >= 5 },
	}, map[int32]*Partition{1: p1, 0: p0})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Records != 6 || stats.Keys != 2 || stats.Details != 1 {
		t.Fatalf("stats %+v, want 6 records, 2 keys, 1 detail", stats)
	}
	if len(stale[1]) != 1 || stale[1][0] != old {
		t.Fatalf("stale %v, want the old key", stale)
	}
	e, d, ok := p1.Get(a)
	if !ok || e.State != StateAccepted || d == nil || d.ProviderMessageID != "wamid.A" {
		t.Fatalf("a = %+v %+v %v", e, d, ok)
	}
	e, d, ok = p1.Get(b)
	if !ok || e.State != StatePending || e.Attempt != 3 || d != nil {
		t.Fatalf("b = %+v %+v %v", e, d, ok)
	}
	if _, _, ok := p1.Get(c); ok {
		t.Fatal("tombstoned key restored")
	}
	if p0.Len() != 0 {
		t.Fatal("empty partition got entries")
	}
}

// TestMemoryPerKey measures the heap held per remembered key; the target
// is at most 100 bytes per key (100 MB per million keys).
func TestMemoryPerKey(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 200_000
	}
	perKey := measurePerKey(n)
	t.Logf("dedupe store: %.1f bytes per key over %d keys", perKey, n)
	if raceEnabled {
		t.Log("race detector on: memory not asserted")
		return
	}
	if perKey <= 0 || perKey > 100 {
		t.Fatalf("%.1f bytes per key, want <= 100", perKey)
	}
}

func measurePerKey(n int) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	p := NewPartition()
	now := uint32(time.Now().Unix())
	for i := 0; i < n; i++ {
		p.Put(Record{Hash: HashKey("tenant", fmt.Sprintf("user-%d:otp:2026-01-01T00:00:00Z", i)),
			Entry: Entry{Origin: int64(i), Created: now, State: StateAccepted, Attempt: 1}}, false)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(p)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

func BenchmarkStoreBytesPerKey(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.ReportMetric(measurePerKey(1_000_000), "bytes/key")
	}
}

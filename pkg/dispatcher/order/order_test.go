package order

import (
	"math/rand/v2"
	"testing"
)

func TestWatermarkCommitsOnlyBelowLowestUnfinished(t *testing.T) {
	p := NewPartition()
	items := make([]*Item, 6)
	for i := range items {
		items[i] = &Item{Offset: int64(10 + i)}
		if !p.Add(items[i]) {
			t.Fatalf("Add(%d) refused", items[i].Offset)
		}
	}
	// Finish out of order: 11, 12, 14 first; 10 is still running.
	p.Finish(items[1], "o11")
	p.Finish(items[2], "o12")
	p.Finish(items[4], "o14")
	if _, ok := p.Drain(); ok {
		t.Fatal("drained while the lowest record (10) is unfinished")
	}
	if got := p.LowWatermark(); got != 10 {
		t.Fatalf("low watermark %d, want 10", got)
	}
	p.Finish(items[0], "o10")
	d, ok := p.Drain()
	if !ok || d.Commit != 13 {
		t.Fatalf("drain = %v, commit %d; want commit 13 (below unfinished 13)", ok, d.Commit)
	}
	want := []any{"o10", "o11", "o12"}
	if len(d.Outputs) != len(want) {
		t.Fatalf("outputs %v, want %v", d.Outputs, want)
	}
	for i := range want {
		if d.Outputs[i] != want[i] {
			t.Fatalf("outputs %v, want %v (in offset order)", d.Outputs, want)
		}
	}
	if p.Unfinished() != 2 || p.Len() != 3 {
		t.Fatalf("unfinished %d len %d, want 2 and 3", p.Unfinished(), p.Len())
	}
	p.Finish(items[3], nil)
	p.Finish(items[5], nil)
	d, ok = p.Drain()
	if !ok || d.Commit != 16 || len(d.Items) != 3 {
		t.Fatalf("final drain ok=%v commit=%d items=%d", ok, d.Commit, len(d.Items))
	}
	if p.LowWatermark() != -1 {
		t.Fatal("empty tracker reports a watermark")
	}
}

func TestGapsFromControlRecordsCommitPastLastRecord(t *testing.T) {
	p := NewPartition()
	a, b := &Item{Offset: 4}, &Item{Offset: 7} // 5, 6: transaction markers
	p.Add(a)
	p.Add(b)
	p.Finish(a, nil)
	d, _ := p.Drain()
	if d.Commit != 5 {
		t.Fatalf("commit %d, want 5", d.Commit)
	}
	if p.Add(&Item{Offset: 6}) {
		t.Fatal("accepted an offset below one already held")
	}
	if p.Add(&Item{Offset: 7}) {
		t.Fatal("accepted a repeated offset")
	}
}

func TestFinishTwiceIsNoop(t *testing.T) {
	p := NewPartition()
	it := &Item{Offset: 1}
	p.Add(it)
	p.Finish(it, "a")
	p.Finish(it, "b")
	if p.Unfinished() != 0 {
		t.Fatalf("unfinished %d", p.Unfinished())
	}
	d, _ := p.Drain()
	if d.Outputs[0] != "a" {
		t.Fatalf("second Finish replaced outputs: %v", d.Outputs)
	}
}

func TestKeysOneActivePerKeyInOrder(t *testing.T) {
	k := NewKeys()
	a1 := &Item{Offset: 1, Key: "a"}
	b1 := &Item{Offset: 2, Key: "b"}
	a2 := &Item{Offset: 3, Key: "a"}
	a3 := &Item{Offset: 4, Key: "a"}
	if k.Push(a1) != a1 || k.Push(b1) != b1 {
		t.Fatal("idle keys did not activate at once")
	}
	if k.Push(a2) != nil || k.Push(a3) != nil {
		t.Fatal("a second record of a busy key was activated")
	}
	if !k.Active(a1) || k.Active(a2) {
		t.Fatal("wrong active record")
	}
	if next := k.Done(a1, nil); next != a2 {
		t.Fatalf("after a1, next = %v, want a2", next)
	}
	if next := k.Done(b1, nil); next != nil {
		t.Fatalf("b has nothing waiting, got %v", next)
	}
	// Done for a record that is not active changes nothing.
	if k.Done(a3, nil) != nil || !k.Active(a2) {
		t.Fatal("Done of a waiting record disturbed the queue")
	}
	if next := k.Done(a2, func(it *Item) bool { return it == a3 }); next != nil {
		t.Fatalf("skipped record was activated: %v", next)
	}
	if k.Len() != 0 {
		t.Fatalf("%d keys left", k.Len())
	}
}

func TestKeysRemove(t *testing.T) {
	k := NewKeys()
	x1 := &Item{Offset: 1, Key: "x", Value: 0}
	x2 := &Item{Offset: 2, Key: "x", Value: 1}
	x3 := &Item{Offset: 3, Key: "x", Value: 0}
	y1 := &Item{Offset: 4, Key: "y", Value: 1}
	k.Push(x1)
	k.Push(x2)
	k.Push(x3)
	k.Push(y1)
	k.Remove(func(it *Item) bool { return it.Value == 1 })
	if !k.Active(y1) {
		t.Fatal("Remove dropped an active record")
	}
	if next := k.Done(x1, nil); next != x3 {
		t.Fatalf("next %v, want x3 (x2 removed)", next)
	}
}

// TestRandomisedOrderingAndWatermark drives both structures as the
// dispatcher does, finishing active records in random order, and checks
// the invariants: per key, records run in offset order and never overlap;
// the committed offset never passes an unfinished record and never goes
// back; every record is eventually drained exactly once.
func TestRandomisedOrderingAndWatermark(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 50; round++ {
		p := NewPartition()
		k := NewKeys()
		var active []*Item
		lastRun := map[string]int64{}
		n := 200 + rng.IntN(300)
		var committed int64 = -1
		drained := 0
		off := int64(0)
		added := 0
		for drained < n {
			if added < n && rng.IntN(3) > 0 {
				it := &Item{Offset: off, Key: string(rune('a' + rng.IntN(8)))}
				off += 1 + int64(rng.IntN(2)) // gaps like transaction markers
				p.Add(it)
				added++
				if a := k.Push(it); a != nil {
					active = append(active, a)
				}
			}
			if len(active) > 0 && rng.IntN(2) == 0 {
				i := rng.IntN(len(active))
				it := active[i]
				active = append(active[:i], active[i+1:]...)
				for _, o := range active {
					if o.Key == it.Key {
						t.Fatalf("key %s has two records active", it.Key)
					}
				}
				if it.Offset <= lastRun[it.Key] && lastRun[it.Key] != 0 {
					t.Fatalf("key %s ran offset %d after %d", it.Key, it.Offset, lastRun[it.Key])
				}
				lastRun[it.Key] = it.Offset
				p.Finish(it, it.Offset)
				if next := k.Done(it, nil); next != nil {
					active = append(active, next)
				}
			}
			if d, ok := p.Drain(); ok {
				if d.Commit <= committed {
					t.Fatalf("commit went from %d to %d", committed, d.Commit)
				}
				if lw := p.LowWatermark(); lw >= 0 && d.Commit > lw {
					t.Fatalf("commit %d passes unfinished %d", d.Commit, lw)
				}
				for i, o := range d.Outputs {
					if o.(int64) != d.Items[i].Offset {
						t.Fatal("outputs out of step with items")
					}
				}
				committed = d.Commit
				drained += len(d.Items)
			}
		}
		if p.Unfinished() != 0 || p.Len() != 0 || k.Len() != 0 {
			t.Fatalf("leftovers: unfinished %d len %d keys %d", p.Unfinished(), p.Len(), k.Len())
		}
	}
}

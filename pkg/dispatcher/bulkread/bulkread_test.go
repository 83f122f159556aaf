package bulkread

import (
	"testing"
	"time"
)

func parts(n int) []*Part {
	ps := make([]*Part, n)
	for i := range ps {
		ps[i] = &Part{Lag: -1}
	}
	return ps
}

func count(read []bool) int {
	n := 0
	for _, ok := range read {
		if ok {
			n++
		}
	}
	return n
}

var rule = Rule{Share: 100, Readers: 2, Settle: 2 * time.Second}

func TestUnknownPartitionsAreReadAFewAtATime(t *testing.T) {
	ps := parts(12)
	t0 := time.Unix(1000, 0)
	read := rule.Plan(ps, false, t0)
	if got := count(read); got != 2 {
		t.Fatalf("first plan reads %d partitions, want 2 (Readers)", got)
	}
	if !read[0] || !read[1] {
		t.Fatalf("first plan reads %v, want the first two", read)
	}
	// Both bring records and are cut at their share: the next two go.
	ps[0].Cut(500, 100_000)
	ps[0].Unfinished = 100
	ps[1].Cut(700, 100_000)
	ps[1].Unfinished = 100
	read = rule.Plan(ps, false, t0.Add(100*time.Millisecond))
	if read[0] || read[1] || !read[2] || !read[3] || count(read) != 2 {
		t.Fatalf("after two cuts the plan reads %v, want partitions 2 and 3 only", read)
	}
}

func TestBacklogReaderKeepsItsTurnUntilCut(t *testing.T) {
	ps := parts(4)
	t0 := time.Unix(1000, 0)
	rule.Plan(ps, false, t0)
	// Partition 0 brought 40 records of a large backlog, not yet its
	// share: it keeps reading, and nobody else gets its turn.
	ps[0].Fetched(39, 50_000, t0.Add(time.Second))
	ps[0].Unfinished = 40
	read := rule.Plan(ps, false, t0.Add(1500*time.Millisecond))
	if !read[0] || !read[1] || count(read) != 2 {
		t.Fatalf("plan reads %v, want partitions 0 and 1", read)
	}
}

func TestQuietPartitionsAreReadFreelyOnceSettled(t *testing.T) {
	ps := parts(6)
	t0 := time.Unix(1000, 0)
	now := t0
	// Nothing is on any partition: each pair brings nothing for Settle,
	// is taken to be at its end, and stays read beside the next pair.
	for round := 1; round <= 3; round++ {
		read := rule.Plan(ps, false, now)
		if got := count(read); got != 2*round {
			t.Fatalf("round %d reads %d partitions, want %d", round, got, 2*round)
		}
		now = now.Add(rule.Settle)
	}
	read := rule.Plan(ps, false, now)
	if count(read) != 6 {
		t.Fatalf("after settling every partition, plan reads %v, want all", read)
	}
	for i, p := range ps {
		if p.Lag != 0 {
			t.Fatalf("partition %d lag %d after settling, want 0", i, p.Lag)
		}
	}
	// A campaign lands on partition 3: its fetch shows a backlog, so it
	// needs a turn again, and takes one of the two.
	ps[3].Fetched(10, 90_000, now)
	ps[3].Unfinished = 11
	read = rule.Plan(ps, false, now.Add(time.Millisecond))
	if !read[3] || count(read) != 6 {
		t.Fatalf("plan reads %v, want all (partition 3 with its turn)", read)
	}
}

func TestFullPartitionWaitsForHalfItsShare(t *testing.T) {
	ps := parts(1)
	t0 := time.Unix(1000, 0)
	rule.Plan(ps, false, t0)
	ps[0].Cut(100, 10_000)
	ps[0].Unfinished = 100
	if rule.Plan(ps, false, t0)[0] {
		t.Fatal("a full partition is read")
	}
	ps[0].Unfinished = 51
	if rule.Plan(ps, false, t0)[0] || !ps[0].Full {
		t.Fatal("a partition above half its share is read")
	}
	ps[0].Unfinished = 50
	if !rule.Plan(ps, false, t0)[0] || ps[0].Full {
		t.Fatal("a partition down to half its share is not read")
	}
}

func TestHungriestAndLeastRecentGoFirst(t *testing.T) {
	ps := parts(4)
	t0 := time.Unix(1000, 0)
	for i, p := range ps {
		p.Lag = 10_000
		p.Unfinished = 50
		p.Turn = t0.Add(time.Duration(4-i) * time.Second) // partition 3 read longest ago
	}
	ps[1].Unfinished = 10 // hungriest
	read := rule.Plan(ps, false, t0.Add(time.Minute))
	if !read[1] || !read[3] || count(read) != 2 {
		t.Fatalf("plan reads %v, want partitions 1 (hungriest) and 3 (least recent)", read)
	}
}

func TestStalledBacklogYieldsItsTurn(t *testing.T) {
	ps := parts(3)
	t0 := time.Unix(1000, 0)
	for _, p := range ps {
		p.Lag = 10_000
	}
	read := rule.Plan(ps, false, t0)
	if !read[0] || !read[1] || read[2] {
		t.Fatalf("plan reads %v, want partitions 0 and 1", read)
	}
	// Partition 1 brings records; partition 0 brings nothing (its leader
	// is away) for Settle, so it yields to partition 2.
	ps[1].Fetched(10, 10_000, t0.Add(rule.Settle))
	read = rule.Plan(ps, false, t0.Add(rule.Settle))
	if read[0] || !read[1] || !read[2] {
		t.Fatalf("plan reads %v, want partitions 1 and 2", read)
	}
}

func TestBlockedReadsNothingAndForgetsTurns(t *testing.T) {
	ps := parts(3)
	t0 := time.Unix(1000, 0)
	rule.Plan(ps, false, t0)
	if n := count(rule.Plan(ps, true, t0)); n != 0 {
		t.Fatalf("blocked plan reads %d partitions", n)
	}
	for i, p := range ps {
		if !p.Since.IsZero() {
			t.Fatalf("partition %d still counts as read while blocked", i)
		}
	}
	if n := count(rule.Plan(ps, false, t0.Add(time.Hour))); n != 2 {
		t.Fatalf("after the block, plan reads %d partitions, want 2", n)
	}
}

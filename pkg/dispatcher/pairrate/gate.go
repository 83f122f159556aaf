// Package pairrate paces the messages of one sender to one recipient
// before the provider call. WhatsApp allows a business number about one
// message every 6 s to the same user and answers more with 131056 (HTTP
// 429); knowing the rule in advance, the dispatcher holds such a message
// aside until its pair is free, while other recipients' messages go on,
// and no rate-limit token is spent on a message that could not go.
//
// The Gate is a GCRA (generic cell rate algorithm, the token bucket kept
// as one time per pair): a pair's "theoretical arrival time" is when its
// allowance is whole again; a message may go while that time is at most
// (Burst-1)*Interval ahead. One time per pair makes idle pairs cheap to
// forget: once it has passed, the pair is as if never seen.
//
// The time a pair is next free is written to a compacted changelog
// (notifications.pacing, co-partitioned with notifications.requested), so
// the instance that takes a partition over after a rebalance restores its
// recipients' pacing before it sends (Changelog, Restore).
package pairrate

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Pair is one sender (phone number id) and one recipient (E.164).
type Pair struct {
	Sender    string
	Recipient string
}

// Journal keeps the next free time of a pair where another instance can
// read it. Note must not block: it is called on the scheduler's way.
type Journal interface {
	// Note records that pair is next free at next. partition is the
	// record's partition of notifications.requested, or -1 when unknown
	// (the journal then places the pair by its recipient).
	Note(pair Pair, partition int32, next time.Time)
}

const shardCount = 64

// Gate paces pairs. Safe for concurrent use; no method blocks beyond a
// short lock of one shard.
type Gate struct {
	cfg     Config
	tol     time.Duration // how far ahead a pair's time may be and still go
	journal Journal
	seed    maphash.Seed
	shards  [shardCount]shard
	held    atomic.Int64
}

type shard struct {
	mu    sync.Mutex
	pairs map[Pair]*pairState
	swept time.Time
}

type pairState struct {
	// tat is when the pair's allowance is whole again.
	tat time.Time
	// pending counts slots taken whose call has not ended yet: Release
	// gives back only what was taken.
	pending int
}

// New returns a gate for cfg (validated by the caller). journal may be
// nil: pacing is then kept in this process only.
func New(cfg Config, journal Journal) *Gate {
	g := &Gate{cfg: cfg, journal: journal, seed: maphash.MakeSeed()}
	if cfg.Burst > 1 {
		g.tol = time.Duration(cfg.Burst-1) * cfg.Interval
	}
	for i := range g.shards {
		g.shards[i].pairs = map[Pair]*pairState{}
	}
	return g
}

// Config returns the gate's configuration.
func (g *Gate) Config() Config { return g.cfg }

func (g *Gate) shard(p Pair) *shard {
	return &g.shards[maphash.Comparable(g.seed, p)%shardCount]
}

// Take asks for a slot of pair at now. If the pair is free the slot is
// taken (the pair's next free time moves on by one interval) and ok is
// true; otherwise nothing changes and until is when the pair is free.
func (g *Gate) Take(pair Pair, partition int32, now time.Time) (until time.Time, ok bool) {
	if !g.cfg.Enabled() {
		return time.Time{}, true
	}
	s := g.shard(pair)
	s.mu.Lock()
	s.sweepLocked(now, g.cfg.span())
	st := s.pairs[pair]
	if st == nil {
		st = &pairState{}
		s.pairs[pair] = st
	}
	tat := st.tat
	if tat.Before(now) {
		tat = now
	}
	if free := tat.Add(-g.tol); free.After(now) {
		s.mu.Unlock()
		g.held.Add(1)
		return free, false
	}
	st.tat = tat.Add(g.cfg.Interval)
	st.pending++
	next := st.tat
	s.mu.Unlock()
	g.note(pair, partition, next)
	return time.Time{}, true
}

// Give gives back a slot taken by Take for a message that then did not go
// (another rule held it, its partition was revoked). Without a slot taken
// and not yet answered it does nothing. The journal is not told: what it
// holds is then a little later than needed, which is safe.
func (g *Gate) Give(pair Pair) {
	if !g.cfg.Enabled() {
		return
	}
	s := g.shard(pair)
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.pairs[pair]; st != nil && st.pending > 0 {
		st.pending--
		st.tat = st.tat.Add(-g.cfg.Interval)
	}
}

// Sent tells the gate that the provider answered the call of a taken slot
// at at. The pair's next free time is counted from the answer, not from
// when the slot was taken: the provider saw the message before it
// answered, so the next one reaches it at least an interval later however
// long the rate limiter or the network held this one.
func (g *Gate) Sent(pair Pair, partition int32, at time.Time) {
	g.answered(pair, partition, at.Add(g.cfg.Interval), false)
}

// PairLimited tells the gate that the provider refused the call of a
// taken slot with its pair-rate error (131056) at at: the provider counts
// the pair as busier than the gate did, so its next slot moves out by one
// interval from whichever is later, the answer or the gate's own time.
func (g *Gate) PairLimited(pair Pair, partition int32, at time.Time) {
	g.answered(pair, partition, at, true)
}

func (g *Gate) answered(pair Pair, partition int32, next time.Time, pushOut bool) {
	if !g.cfg.Enabled() {
		return
	}
	s := g.shard(pair)
	s.mu.Lock()
	st := s.pairs[pair]
	if st == nil {
		st = &pairState{}
		s.pairs[pair] = st
	}
	if st.pending > 0 {
		st.pending--
	}
	if next.After(st.tat) {
		st.tat = next
	}
	if pushOut {
		st.tat = st.tat.Add(g.cfg.Interval)
	}
	next = st.tat
	s.mu.Unlock()
	g.note(pair, partition, next)
}

// Restore merges a next free time read back from the journal: the later
// of the two wins, so restoring never makes a pair free early.
func (g *Gate) Restore(pair Pair, next time.Time) {
	if !g.cfg.Enabled() {
		return
	}
	s := g.shard(pair)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.pairs[pair]
	if st == nil {
		st = &pairState{}
		s.pairs[pair] = st
	}
	if next.After(st.tat) {
		st.tat = next
	}
}

// Next returns when pair's allowance is whole again (zero if the gate
// knows nothing of it).
func (g *Gate) Next(pair Pair) time.Time {
	s := g.shard(pair)
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.pairs[pair]; st != nil {
		return st.tat
	}
	return time.Time{}
}

// Held counts the slots refused so far: how often a message was held
// until its pair was free.
func (g *Gate) Held() int64 { return g.held.Load() }

// Len is the number of pairs remembered.
func (g *Gate) Len() int {
	n := 0
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		n += len(s.pairs)
		s.mu.Unlock()
	}
	return n
}

// Sweep forgets every pair whose allowance is whole again at now. Take
// sweeps each shard once per Interval*Burst by itself; Sweep is for
// callers that want memory back without traffic.
func (g *Gate) Sweep(now time.Time) {
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		s.sweepLocked(now, 0)
		s.mu.Unlock()
	}
}

// sweepLocked forgets the shard's pairs that are free at now, at most once
// per every: a pair whose time has passed is the same as a pair never
// seen, so this loses nothing and bounds memory to the pairs messaged in
// the last Interval*Burst (or pushed out by the provider). A slot still
// in flight is forgotten with its pair; its answer brings the pair back.
func (s *shard) sweepLocked(now time.Time, every time.Duration) {
	if now.Sub(s.swept) < every {
		return
	}
	s.swept = now
	for p, st := range s.pairs {
		if !st.tat.After(now) {
			delete(s.pairs, p)
		}
	}
}

func (g *Gate) note(pair Pair, partition int32, next time.Time) {
	if g.journal != nil {
		g.journal.Note(pair, partition, next)
	}
}

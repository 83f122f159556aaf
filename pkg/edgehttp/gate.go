package edgehttp

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// BodyGate bounds the memory of request bodies held at once by a
// handler that must read a whole body before it can judge it (the
// webhook receiver checks a signature over the raw bytes). A request
// reserves its body's size before reading it: its Content-Length (plus
// the read buffer's slack) when it gave one, and twice the largest body
// allowed when it did not (a buffer grown by doubling may reach that).
// The handler then reads into a buffer sized to the Content-Length at
// once (bodypool.ReadSized), so what it holds is what it reserved. Reservations wait in arrival order for at most the
// gate's wait, then fail: the handler answers 503 and the connection is
// free again. So many slow uploads cost a goroutine and a socket each,
// never their bodies' memory, and a slow upload holds its reservation
// only until the handler's read deadline.
//
// A BodyGate is safe for concurrent use.
type BodyGate struct {
	sem    *semaphore.Weighted
	budget int64
	max    int64
	wait   time.Duration

	mu        sync.Mutex
	held      int64 // bytes reserved now
	bodies    int   // reservations held now
	peakHeld  int64
	peakCount int
}

// readSlack is what bytes.Buffer.ReadFrom may allocate past a body of
// known length (bytes.MinRead).
const readSlack = 512

// ErrBusy is returned by Reserve when the budget stayed full for the
// whole wait.
var ErrBusy = errors.New("the memory for request bodies is in use; retry shortly")

// NewBodyGate returns a gate holding at most budget bytes of bodies of
// at most maxBody bytes each, where a reservation waits at most wait.
// budget must be at least maxBody plus the read slack.
func NewBodyGate(budget, maxBody int64, wait time.Duration) *BodyGate {
	return &BodyGate{sem: semaphore.NewWeighted(budget), budget: budget, max: maxBody, wait: wait}
}

// Reserve reserves the memory of a body of contentLength bytes (-1:
// unknown) and returns its release, or ErrBusy when it could not within
// the gate's wait (or ctx ended first). Call release exactly once, after
// the handler let go of the body and of what it decoded from it.
func (g *BodyGate) Reserve(ctx context.Context, contentLength int64) (release func(), err error) {
	n := 2*g.max + readSlack
	if contentLength >= 0 && contentLength <= g.max {
		n = contentLength + readSlack
	}
	n = min(n, g.budget)
	if !g.sem.TryAcquire(n) {
		wctx, cancel := context.WithTimeout(ctx, g.wait)
		err := g.sem.Acquire(wctx, n)
		cancel()
		if err != nil {
			return nil, ErrBusy
		}
	}
	g.mu.Lock()
	g.held += n
	g.bodies++
	g.peakHeld = max(g.peakHeld, g.held)
	g.peakCount = max(g.peakCount, g.bodies)
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.held -= n
			g.bodies--
			g.mu.Unlock()
			g.sem.Release(n)
		})
	}, nil
}

// GateStats is a gate's accounting.
type GateStats struct {
	Budget    int64 // bytes the gate lets be held at once
	Held      int64 // bytes reserved now
	Bodies    int   // bodies being read or handled now
	PeakHeld  int64 // most bytes ever reserved at once
	PeakCount int   // most bodies ever held at once
}

// Stats returns the gate's accounting, for metrics and tests.
func (g *BodyGate) Stats() GateStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return GateStats{Budget: g.budget, Held: g.held, Bodies: g.bodies, PeakHeld: g.peakHeld, PeakCount: g.peakCount}
}

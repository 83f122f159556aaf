package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Request builds the i-th request of a load (i from 0) and says whether an
// answer counts as accepted.
type Request struct {
	Build  func(i int64) (*http.Request, error)
	Accept func(status int, body []byte) bool
}

// Throughput is the result of a closed-loop, as-fast-as-it-goes load.
type Throughput struct {
	Requests int64 // answered
	Accepted int64 // answered and accepted
	Errors   int64 // transport errors and refused answers
	Elapsed  time.Duration
	P50, P99 time.Duration
	Tool     string // "wrk" or "go"
}

// PerSecond is accepted answers per second.
func (t Throughput) PerSecond() float64 {
	if t.Elapsed <= 0 {
		return 0
	}
	return float64(t.Accepted) / t.Elapsed.Seconds()
}

// WrkRun runs wrk with one of the committed Lua scripts and parses the
// summary line the script prints.
func WrkRun(ctx context.Context, wrk, script, url string, threads, conns int, d time.Duration, args ...string) (Throughput, error) {
	argv := []string{"-t", fmt.Sprint(threads), "-c", fmt.Sprint(conns), "-d", fmt.Sprintf("%ds", int(d.Seconds())),
		"--timeout", "10s", "-s", script, url}
	if len(args) > 0 {
		argv = append(append(argv, "--"), args...)
	}
	cmd := exec.CommandContext(ctx, wrk, argv...)
	cmd.Dir = filepath.Dir(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return Throughput{}, fmt.Errorf("wrk %s: %w\n%s", filepath.Base(script), err, out)
	}
	return parseWrk(out)
}

type wrkResult struct {
	Requests     int64 `json:"requests"`
	Accepted     int64 `json:"accepted"`
	DurationUS   int64 `json:"duration_us"`
	Non2xx       int64 `json:"non2xx"`
	SocketErrors int64 `json:"socket_errors"`
	P50US        int64 `json:"p50_us"`
	P99US        int64 `json:"p99_us"`
}

func parseWrk(out []byte) (Throughput, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "WRK_RESULT ")
		if !ok {
			continue
		}
		var r wrkResult
		if err := json.Unmarshal([]byte(rest), &r); err != nil {
			return Throughput{}, fmt.Errorf("wrk summary %q: %w", rest, err)
		}
		return Throughput{
			Requests: r.Requests, Accepted: r.Accepted, Errors: r.Non2xx + r.SocketErrors,
			Elapsed: time.Duration(r.DurationUS) * time.Microsecond,
			P50:     time.Duration(r.P50US) * time.Microsecond, P99: time.Duration(r.P99US) * time.Microsecond,
			Tool: "wrk",
		}, nil
	}
	return Throughput{}, fmt.Errorf("no WRK_RESULT line in wrk's output:\n%s", out)
}

// NewHTTPClient is a client that keeps up to conns connections to one
// host alive.
func NewHTTPClient(conns int) *http.Client {
	return &http.Client{
		// Bounded, so an overloaded service costs the run at most this
		// much after the load ends.
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			// A fixed set of connections, as wrk has: past a service's
			// capacity the open loop queues in the client (and the latency,
			// measured from each request's due time, shows it) instead of
			// opening connections without end.
			MaxConnsPerHost: conns,
			IdleConnTimeout: time.Minute,
		},
	}
}

// ClosedLoop keeps conns requests in flight for d: the stand-in for wrk
// when it is not installed.
func ClosedLoop(ctx context.Context, conns int, d time.Duration, req Request) Throughput {
	cl := NewHTTPClient(conns)
	defer cl.CloseIdleConnections()
	var seq, accepted, errs atomic.Int64
	lats := make([]Latencies, conns)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := seq.Add(1) - 1
				t0 := time.Now()
				ok, err := do(cl, req, i)
				if ctx.Err() != nil && err != nil {
					return
				}
				lats[w].Add(time.Since(t0))
				switch {
				case err != nil || !ok:
					errs.Add(1)
				default:
					accepted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	var all Latencies
	for i := range lats {
		all.Merge(&lats[i])
	}
	return Throughput{Requests: int64(all.Len()), Accepted: accepted.Load(), Errors: errs.Load(),
		Elapsed: time.Since(start), P50: all.Quantile(0.5), P99: all.Quantile(0.99), Tool: "go"}
}

func do(cl *http.Client, req Request, i int64) (bool, error) {
	r, err := req.Build(i)
	if err != nil {
		return false, err
	}
	resp, err := cl.Do(r)
	if err != nil {
		return false, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return false, err
	}
	return req.Accept(resp.StatusCode, body), nil
}

// FixedRate is the result of an open-loop load at a fixed rate.
type FixedRate struct {
	Sent     int
	Accepted int
	Errors   int
	// Latency runs from the moment each request was due to be sent (not
	// when it actually left), so a stalled client or server cannot hide
	// its queueing (no coordinated omission).
	Latency Latencies
	// Achieved is the rate requests actually left at.
	Achieved float64
	// First error seen, for the log.
	FirstErr error
	// Sent times, by request index.
	Due []time.Time
}

// OpenLoop sends requests at perSecond for d, each on its own goroutine
// at its due time, whatever the answers of earlier ones.
func OpenLoop(ctx context.Context, perSecond float64, d time.Duration, maxConns int, req Request) *FixedRate {
	cl := NewHTTPClient(maxConns)
	defer cl.CloseIdleConnections()
	n := int(perSecond * d.Seconds())
	interval := time.Duration(float64(time.Second) / perSecond)
	res := &FixedRate{Due: make([]time.Time, n)}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now().Add(20 * time.Millisecond)
	i := 0
	for i < n && ctx.Err() == nil {
		now := time.Now()
		// Launch everything due by now; then sleep until the next is due.
		for i < n {
			due := start.Add(time.Duration(i) * interval)
			if due.After(now) {
				time.Sleep(due.Sub(now))
				break
			}
			res.Due[i] = due
			wg.Add(1)
			go func(i int64, due time.Time) {
				defer wg.Done()
				ok, err := do(cl, req, i)
				lat := time.Since(due)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					res.Errors++
					if res.FirstErr == nil {
						res.FirstErr = err
					}
				case !ok:
					res.Errors++
					if res.FirstErr == nil {
						res.FirstErr = errors.New("answer not accepted")
					}
				default:
					res.Accepted++
					res.Latency.Add(lat)
				}
			}(int64(i), due)
			i++
		}
	}
	res.Sent = i
	elapsed := time.Since(start)
	wg.Wait()
	if elapsed > 0 {
		res.Achieved = float64(i) / elapsed.Seconds()
	}
	return res
}

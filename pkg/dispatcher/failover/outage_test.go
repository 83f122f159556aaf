package failover_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/wanotify/wanotify/pkg/dispatcher/failover"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/provider/cloudapi"
	"github.com/wanotify/wanotify/pkg/provider/providertest"
	"github.com/wanotify/wanotify/pkg/provider/route"
	"github.com/wanotify/wanotify/pkg/provider/xpressbot"
	"github.com/wanotify/wanotify/pkg/simulator"
)

const (
	key    = "sim-key-0123456789abcdef0123456789ab"
	number = "106540352242922"
	sender = "acme-otp"
)

// primarySim is a simulator whose listener the test can close: the
// primary route then refuses connections, and its ledger stays readable.
func primarySim(t *testing.T, cfg simulator.Config) (*simulator.Simulator, *httptest.Server) {
	t.Helper()
	cfg.Addr, cfg.APIKey, cfg.Seed = "", key, 1
	sim, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sim.Shutdown(ctx)
	})
	return sim, srv
}

// routes is sender acme-otp: number 106540352242922 through Xpressbot
// (the primary, at primaryURL), and the same number straight through
// Meta's Cloud API (the failover, at secondURL): a registry's inline
// failover route.
func routes(t *testing.T, primaryURL, secondURL string, timeout time.Duration) *route.Router {
	t.Helper()
	xb, err := xpressbot.New(xpressbot.Options{BaseURL: primaryURL, APIKey: key, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(xb.Close)
	ca, err := cloudapi.New(cloudapi.Options{BaseURL: secondURL, AccessToken: key, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ca.Close)
	r, err := route.New(map[string]route.Target{
		sender: {Provider: xb, NumberID: number, Failover: &route.Target{Provider: ca, NumberID: number}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// deliverAll runs n records through a breaker-guarded primary (it opens
// after 3 consecutive provider faults) and failover.Call, the way the
// dispatcher's call stage does: a record not sent (held while the
// primary is down, or failed and due for a retry) comes back with the
// History it left with, for up to rounds rounds.
func deliverAll(t *testing.T, r *route.Router, n, rounds int) (byRoute map[failover.Route]int, held []failover.Result) {
	t.Helper()
	cb := gobreaker.NewCircuitBreaker[string](gobreaker.Settings{
		Name:        sender,
		Timeout:     time.Hour, // stays open for the test: the outage does not end
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 3 },
		IsSuccessful: func(err error) bool {
			return err == nil || !provider.AsError(err).ProviderFault()
		},
	})
	primary := func(ctx context.Context, m provider.Message) (string, error) {
		id, err := cb.Execute(func() (string, error) { return r.Send(ctx, m) })
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			return "", fmt.Errorf("%w: %w", failover.ErrNotCalled, err)
		}
		return id, err
	}
	down := func() bool { return cb.State() == gobreaker.StateOpen }
	byRoute = map[failover.Route]int{}
	hist := make([]failover.History, n)
	pending := map[int]failover.Result{}
	for i := 0; i < n; i++ {
		pending[i] = failover.Result{}
	}
	// Round by round, as records come back from the retry tiers: every
	// waiting record gets one call per round.
	for round := 0; round < rounds && len(pending) > 0; round++ {
		for i := 0; i < n; i++ {
			if _, ok := pending[i]; !ok {
				continue
			}
			m := providertest.TextMessage(i, "your code is 123456")
			m.Sender = sender
			res := failover.Call(context.Background(), r, m, hist[i], down, primary)
			hist[i] = res.History
			if res.Err == nil {
				byRoute[res.Route]++
				delete(pending, i)
				continue
			}
			pending[i] = res
		}
	}
	for _, res := range pending {
		held = append(held, res)
	}
	return byRoute, held
}

func checkLedgers(t *testing.T, a, b *simulator.Simulator, wantA, wantB int) {
	t.Helper()
	la, lb := a.Ledger(), b.Ledger()
	sends, dup, err := simulator.SendsAcross(la, lb)
	if err != nil {
		t.Fatal(err)
	}
	if la.Accepted != wantA || lb.Accepted != wantB || dup != 0 || len(sends) != wantA+wantB {
		t.Fatalf("primary took %d (want %d), second %d (want %d), %d distinct, %d duplicate sends across both ledgers",
			la.Accepted, wantA, lb.Accepted, wantB, len(sends), dup)
	}
	for _, e := range lb.Entries {
		if e.API != simulator.APICloud || e.Sender != number {
			t.Fatalf("second route's send %+v: want the Cloud API from %s", e, number)
		}
	}
}

// The primary refuses connections: every record is delivered through
// the second route, none twice across both routes' ledgers.
func TestPrimaryRefusingConnectionsAllGoThroughTheSecondRoute(t *testing.T) {
	simA, srvA := primarySim(t, simulator.Config{})
	simB, urlB := providertest.StartSimulator(t, simulator.Config{APIKey: key, Seed: 2})
	r := routes(t, srvA.URL, urlB, 5*time.Second)
	srvA.Close() // the primary's host is down: connections are refused

	const n = 60
	byRoute, held := deliverAll(t, r, n, 5)
	if len(held) != 0 || byRoute[failover.Second] != n || byRoute[failover.Primary] != 0 {
		t.Fatalf("by route %v, %d held (first: %+v)", byRoute, len(held), first(held))
	}
	checkLedgers(t, simA, simB, 0, n)
}

// The primary's account is faulted (190, token refused, HTTP 401):
// refused before sending, so every record goes through the second
// route, none twice.
func TestPrimaryAccountFaultAllGoThroughTheSecondRoute(t *testing.T) {
	simA, srvA := primarySim(t, simulator.Config{})
	simB, urlB := providertest.StartSimulator(t, simulator.Config{APIKey: key, Seed: 2})
	if err := simA.SetAccountFault(number, provider.MetaAccessToken); err != nil {
		t.Fatal(err)
	}
	r := routes(t, srvA.URL, urlB, 5*time.Second)

	const n = 60
	byRoute, held := deliverAll(t, r, n, 5)
	if len(held) != 0 || byRoute[failover.Second] != n {
		t.Fatalf("by route %v, %d held (first: %+v)", byRoute, len(held), first(held))
	}
	la := simA.Ledger()
	if la.Failures["meta_190"] == 0 {
		t.Fatalf("the primary never answered 190: %v", la.Failures)
	}
	checkLedgers(t, simA, simB, 0, n)
}

// The primary times out and takes the messages anyway (its answer is
// lost): the breaker opens, but nothing the primary may have taken goes
// through the second route. Those records are held for the primary;
// without the rule each would be sent twice.
func TestPrimaryTimeoutsNeverGoThroughTheSecondRoute(t *testing.T) {
	simA, srvA := primarySim(t, simulator.Config{HangFor: 2 * time.Second})
	b := simA.Behavior()
	b.TimeoutRate, b.TimeoutAccepts = 1, true
	if err := simA.SetBehavior(b); err != nil {
		t.Fatal(err)
	}
	simB, urlB := providertest.StartSimulator(t, simulator.Config{APIKey: key, Seed: 2})
	r := routes(t, srvA.URL, urlB, 150*time.Millisecond)

	const n = 8
	byRoute, held := deliverAll(t, r, n, 3)
	// The first three calls time out and open the breaker; the other
	// five were never sent to the primary and go through the second
	// route. The three stay held for the primary, round after round.
	if len(held) != 3 || byRoute[failover.Second] != n-3 || byRoute[failover.Primary] != 0 {
		t.Fatalf("by route %v, %d held of %d", byRoute, len(held), n)
	}
	for _, h := range held {
		if h.History.Pinned != failover.Primary || h.Route == failover.Second || !errors.Is(h.Err, failover.ErrNotCalled) {
			t.Fatalf("a timed-out record is not kept on the primary: %+v", h)
		}
	}
	// The primary took those three (its answers were lost), the second
	// route the other five: 0 duplicates across the two.
	deadline := time.Now().Add(10 * time.Second)
	for simA.Ledger().Accepted < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	checkLedgers(t, simA, simB, 3, n-3)
}

func first(rs []failover.Result) any {
	if len(rs) == 0 {
		return nil
	}
	return rs[0]
}

package pairrate_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/dispatcher/pairrate"
	"github.com/wanotify/wanotify/pkg/provider"
)

var t0 = time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)

func gate(interval time.Duration, burst int) *pairrate.Gate {
	return pairrate.New(pairrate.Config{Interval: interval, Burst: burst}, nil)
}

var alice = pairrate.Pair{Sender: "snd", Recipient: "+14155550123"}

// take asks for a slot and fails the test if the verdict is not the one
// expected; it returns when the pair is free for a refused slot.
func take(t *testing.T, g *pairrate.Gate, p pairrate.Pair, at time.Time, wantOK bool) time.Time {
	t.Helper()
	until, ok := g.Take(p, -1, at)
	if ok != wantOK {
		t.Fatalf("Take(%s at +%s) = %v (until +%s), want %v", p.Recipient, at.Sub(t0), ok, until.Sub(t0), wantOK)
	}
	return until
}

func TestIntervalSpacesOnePair(t *testing.T) {
	g := gate(6*time.Second, 1)
	take(t, g, alice, t0, true)
	if u := take(t, g, alice, t0.Add(5900*time.Millisecond), false); !u.Equal(t0.Add(6 * time.Second)) {
		t.Fatalf("refused until +%s, want +6s", u.Sub(t0))
	}
	take(t, g, alice, t0.Add(6*time.Second), true)
	take(t, g, alice, t0.Add(11*time.Second), false)
	take(t, g, alice, t0.Add(12*time.Second), true)
	if g.Held() != 2 {
		t.Fatalf("Held() = %d, want the 2 refusals", g.Held())
	}
}

func TestBurstThenInterval(t *testing.T) {
	g := gate(6*time.Second, 3)
	for i := range 3 {
		take(t, g, alice, t0.Add(time.Duration(i)*time.Millisecond), true)
	}
	// The allowance is spent: one more slot every interval from the first.
	if u := take(t, g, alice, t0.Add(time.Second), false); !u.Equal(t0.Add(6 * time.Second)) {
		t.Fatalf("refused until +%s, want +6s", u.Sub(t0))
	}
	take(t, g, alice, t0.Add(6*time.Second), true)
	take(t, g, alice, t0.Add(7*time.Second), false)
	// After Interval*Burst of quiet the whole burst is back.
	quiet := t0.Add(6*time.Second + 18*time.Second)
	for range 3 {
		take(t, g, alice, quiet, true)
	}
	take(t, g, alice, quiet, false)
}

func TestOtherRecipientsAndSendersAreNotHeld(t *testing.T) {
	g := gate(6*time.Second, 1)
	take(t, g, alice, t0, true)
	take(t, g, alice, t0.Add(time.Second), false)
	for i := range 1000 {
		p := pairrate.Pair{Sender: "snd", Recipient: fmt.Sprintf("+1202555%04d", i)}
		take(t, g, p, t0.Add(time.Second), true)
	}
	// Alice from another sender is another pair.
	take(t, g, pairrate.Pair{Sender: "other", Recipient: alice.Recipient}, t0.Add(time.Second), true)
	take(t, g, alice, t0.Add(time.Second), false)
}

func TestReleaseGivesTheSlotBack(t *testing.T) {
	g := gate(6*time.Second, 1)
	take(t, g, alice, t0, true)
	g.Give(alice) // held by another rule: the message did not go
	take(t, g, alice, t0.Add(time.Millisecond), true)
	take(t, g, alice, t0.Add(2*time.Millisecond), false)

	// A Give with no slot taken gives nothing away.
	g2 := gate(6*time.Second, 1)
	take(t, g2, alice, t0, true)
	g2.Sent(alice, -1, t0)
	g2.Give(alice)
	take(t, g2, alice, t0.Add(time.Second), false)
}

func TestNextSlotCountsFromTheAnswer(t *testing.T) {
	g := gate(6*time.Second, 1)
	take(t, g, alice, t0, true)
	// The rate limiter and the network held the call for 2 s: the
	// provider saw it at most then, so the next goes 6 s after that.
	g.Sent(alice, -1, t0.Add(2*time.Second))
	if u := take(t, g, alice, t0.Add(6*time.Second), false); !u.Equal(t0.Add(8 * time.Second)) {
		t.Fatalf("refused until +%s, want +8s", u.Sub(t0))
	}
	take(t, g, alice, t0.Add(8*time.Second), true)
}

func TestPairLimitedAnswerPushesTheNextSlotOut(t *testing.T) {
	g := gate(6*time.Second, 1)
	take(t, g, alice, t0, true)
	// The provider still counted a message the gate did not know of
	// (another instance, a restart): 131056 at +1 s.
	g.PairLimited(alice, -1, t0.Add(time.Second))
	if u := take(t, g, alice, t0.Add(6*time.Second), false); !u.Equal(t0.Add(12 * time.Second)) {
		t.Fatalf("refused until +%s, want +12s (the slot taken, pushed out by one interval)", u.Sub(t0))
	}
	// A pair the gate had forgotten is paced from the answer too.
	bob := pairrate.Pair{Sender: "snd", Recipient: "+14155550124"}
	g.PairLimited(bob, -1, t0)
	take(t, g, bob, t0.Add(5*time.Second), false)
	take(t, g, bob, t0.Add(6*time.Second), true)
}

func TestSweepBoundsMemory(t *testing.T) {
	g := gate(6*time.Second, 2)
	const perSecond, seconds = 10_000, 100 // a million recipients, each messaged once
	most := 0
	for s := range seconds {
		now := t0.Add(time.Duration(s) * time.Second)
		for i := range perSecond {
			p := pairrate.Pair{Sender: "snd", Recipient: fmt.Sprintf("+1%d", 2025550000000+s*perSecond+i)}
			if _, ok := g.Take(p, -1, now); !ok {
				t.Fatalf("a new recipient was held")
			}
		}
		most = max(most, g.Len())
	}
	// A pair is remembered while its allowance is not whole (Interval*
	// Burst = 12 s), plus up to one sweep period: 24 s of traffic at most.
	if bound := 24 * perSecond; most > bound {
		t.Fatalf("remembered up to %d pairs, want at most %d (million recipients must not accumulate)", most, bound)
	}
	if most < 12*perSecond {
		t.Fatalf("remembered at most %d pairs, want at least the last 12 s (%d): pairs were forgotten early", most, 12*perSecond)
	}
	g.Sweep(t0.Add((seconds + 12) * time.Second))
	if n := g.Len(); n != 0 {
		t.Fatalf("%d pairs left after every allowance is whole again", n)
	}
}

func TestSweepKeepsPairsStillPaced(t *testing.T) {
	g := gate(6*time.Second, 1)
	take(t, g, alice, t0, true)
	g.Sweep(t0.Add(5 * time.Second))
	take(t, g, alice, t0.Add(5*time.Second), false)
	g.Sweep(t0.Add(6 * time.Second))
	if n := g.Len(); n != 0 {
		t.Fatalf("%d pairs left once free", n)
	}
}

func TestZeroIntervalTurnsPacingOff(t *testing.T) {
	g := gate(0, 1)
	for range 10 {
		take(t, g, alice, t0, true)
	}
	if g.Len() != 0 {
		t.Fatal("a disabled gate remembered pairs")
	}
}

func TestConfig(t *testing.T) {
	d := pairrate.DefaultConfig()
	// Meta's pair rate, the wait the provider error table assumes for
	// 131056, and the simulator's pair_rate 1/6 with burst 1.
	if d.Interval != provider.PairRateRetryAfter || d.Burst != 1 {
		t.Fatalf("defaults %+v, want 6s and burst 1", d)
	}
	env := func(m map[string]string) *config.Env {
		return config.New(func(k string) (string, bool) { v, ok := m[k]; return v, ok }, nil)
	}
	e := env(map[string]string{pairrate.EnvInterval: "2s", pairrate.EnvBurst: "3"})
	if c := pairrate.Load(e); c.Interval != 2*time.Second || c.Burst != 3 || e.Err() != nil {
		t.Fatalf("loaded %+v, err %v", c, e.Err())
	}
	e = env(map[string]string{pairrate.EnvInterval: "0"})
	if c := pairrate.Load(e); c.Enabled() || c.Validate() != nil {
		t.Fatalf("0 must turn pacing off and be valid: %+v, %v", c, c.Validate())
	}
	for _, tc := range []struct {
		c    pairrate.Config
		want string
	}{
		{pairrate.Config{Interval: -time.Second, Burst: 1}, pairrate.EnvInterval},
		{pairrate.Config{Interval: time.Second, Burst: 0}, pairrate.EnvBurst},
		{pairrate.Config{Interval: time.Second, Burst: 11}, pairrate.EnvBurst},
	} {
		if err := tc.c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", tc.c, err, tc.want)
		}
	}
	e = env(map[string]string{pairrate.EnvInterval: "six seconds"})
	pairrate.Load(e)
	if err := e.Err(); err == nil || !strings.Contains(err.Error(), pairrate.EnvInterval) {
		t.Fatalf("bad duration: %v, want an error naming %s", err, pairrate.EnvInterval)
	}
}

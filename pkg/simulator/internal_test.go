package simulator

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

func TestParseDist(t *testing.T) {
	cases := []struct {
		in      string
		want    Dist
		wantErr bool
	}{
		{"", Dist{}, false},
		{"0", Dist{}, false},
		{"20ms", Fixed(20 * time.Millisecond), false},
		{"fixed:1s", Fixed(time.Second), false},
		{"uniform:10ms,50ms", Uniform(10*time.Millisecond, 50*time.Millisecond), false},
		{"uniform: 10ms , 50ms", Uniform(10*time.Millisecond, 50*time.Millisecond), false},
		{"normal:30ms,10ms", Normal(30*time.Millisecond, 10*time.Millisecond), false},
		{"uniform:50ms,10ms", Dist{}, true}, // max below min
		{"uniform:10ms", Dist{}, true},
		{"normal:1s", Dist{}, true},
		{"fixed:1s,2s", Dist{}, true},
		{"poisson:1s", Dist{}, true},
		{"-5ms", Dist{}, true},
		{"soon", Dist{}, true},
	}
	for _, c := range cases {
		got, err := ParseDist(c.in)
		if (err != nil) != c.wantErr || (!c.wantErr && got != c.want) {
			t.Errorf("ParseDist(%q) = %+v, %v; want %+v, err %v", c.in, got, err, c.want, c.wantErr)
		}
		if !c.wantErr {
			back, err := ParseDist(got.String())
			if err != nil || back != got {
				t.Errorf("%q does not round-trip through %q", c.in, got.String())
			}
		}
	}
}

func TestDistSample(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	u := Uniform(10*time.Millisecond, 20*time.Millisecond)
	n := Normal(50*time.Millisecond, 10*time.Millisecond)
	wide := Normal(time.Millisecond, time.Second)
	var sum time.Duration
	const draws = 5000
	for range draws {
		if d := u.Sample(r); d < 10*time.Millisecond || d > 20*time.Millisecond {
			t.Fatalf("uniform sample %s out of range", d)
		}
		if d := wide.Sample(r); d < 0 {
			t.Fatalf("normal sample %s below zero", d)
		}
		sum += n.Sample(r)
	}
	if mean := sum / draws; mean < 48*time.Millisecond || mean > 52*time.Millisecond {
		t.Fatalf("normal mean %s, want about 50ms", mean)
	}
	if d := Fixed(7 * time.Millisecond).Sample(r); d != 7*time.Millisecond {
		t.Fatalf("fixed sample %s", d)
	}
	if d := (Dist{}).Sample(r); d != 0 {
		t.Fatalf("zero dist sample %s", d)
	}
}

func TestMaxInWindow(t *testing.T) {
	base := time.Unix(1000, 0)
	at := func(ms ...int) []time.Time {
		out := make([]time.Time, len(ms))
		for i, m := range ms {
			out[i] = base.Add(time.Duration(m) * time.Millisecond)
		}
		return out
	}
	cases := []struct {
		ts   []time.Time
		want int
	}{
		{nil, 0},
		{at(0), 1},
		{at(0, 999), 2},
		{at(0, 1000), 1}, // a window is half-open
		{at(900, 0, 1500, 1100, 1200), 4},
		{at(0, 100, 200, 2000, 2100), 3},
	}
	for _, c := range cases {
		if got := maxInWindow(c.ts, time.Second); got != c.want {
			t.Errorf("maxInWindow(%v) = %d, want %d", c.ts, got, c.want)
		}
	}
}

func TestBurstDefault(t *testing.T) {
	cases := []struct {
		rate  float64
		burst int
		want  int
	}{
		{50, 0, 10},
		{80, 0, 16},
		{1, 0, 1},
		{0.01, 0, 1},
		{50, 3, 3},
	}
	for _, c := range cases {
		if got := (Behavior{RateLimit: c.rate, Burst: c.burst}).burst(); got != c.want {
			t.Errorf("burst(rate %v, burst %d) = %d, want %d", c.rate, c.burst, got, c.want)
		}
	}
}

// TestSenderRateMatchesTheFullComputation: the bounded ledger's running
// per-sender maximum equals maxInWindow over every send, for sends that
// arrive in order and for sends a little out of order (as concurrent
// handlers record them).
func TestSenderRateMatchesTheFullComputation(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Unix(1_700_000_000, 0)
	for run := range 200 {
		var ts []time.Time
		now := base
		for range 1 + rng.IntN(300) {
			now = now.Add(time.Duration(rng.IntN(40)) * time.Millisecond)
			ts = append(ts, now)
		}
		if run%2 == 1 { // swap some neighbours: arrivals slightly out of order
			for i := 1; i < len(ts); i += 1 + rng.IntN(5) {
				ts[i-1], ts[i] = ts[i], ts[i-1]
			}
		}
		var r senderRate
		for _, x := range ts {
			r.add(x)
		}
		if want := maxInWindow(append([]time.Time(nil), ts...), time.Second); r.best != want {
			t.Fatalf("run %d: running max %d, full computation %d", run, r.best, want)
		}
	}
}

// SendsAcross finds the message two ledgers both took, which neither
// ledger counts as a duplicate on its own.
func TestSendsAcrossLedgers(t *testing.T) {
	a, b := newLedger(0), newLedger(0)
	now := time.Now()
	a.accept(Entry{Time: now, NotificationID: "n1", Sender: "111"})
	a.accept(Entry{Time: now, NotificationID: "n2", Sender: "111"})
	b.accept(Entry{Time: now, NotificationID: "n3", Sender: "222"})
	sends, dup, err := SendsAcross(a.snapshot(true), b.snapshot(true))
	if err != nil || dup != 0 || len(sends) != 3 {
		t.Fatalf("disjoint ledgers: %v %d %v", sends, dup, err)
	}
	b.accept(Entry{Time: now, NotificationID: "n1", Sender: "222"})
	sa, sb := a.snapshot(true), b.snapshot(true)
	if sa.DuplicateSends != 0 || sb.DuplicateSends != 0 {
		t.Fatal("each ledger alone sees no duplicate")
	}
	if sends, dup, err = SendsAcross(sa, sb); err != nil || dup != 1 || sends["n1"] != 2 {
		t.Fatalf("n1 in both: %v %d %v", sends, dup, err)
	}
	if _, _, err := SendsAcross(a.snapshot(false)); err == nil {
		t.Fatal("a snapshot without entries cannot prove anything")
	}
	small := newLedger(10)
	for i := 0; i < 11; i++ {
		small.accept(Entry{Time: now, NotificationID: fmt.Sprint(i)})
	}
	if _, _, err := SendsAcross(small.snapshot(true)); err == nil {
		t.Fatal("a ledger that dropped entries cannot prove anything")
	}
}

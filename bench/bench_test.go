package bench

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := Median(tc.in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median(nil) is not NaN")
	}
}

func TestLatencyQuantilesAreNearestRank(t *testing.T) {
	var l Latencies
	for i := 100; i >= 1; i-- {
		l.Add(time.Duration(i) * time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0: time.Millisecond, 0.5: 50 * time.Millisecond, 0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond} {
		if got := l.Quantile(q); got != want {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	l.Add(time.Second) // unsorted again
	if got := l.Max(); got != time.Second {
		t.Errorf("Max after Add = %v, want 1s", got)
	}
}

func TestRateBetweenIgnoresRampAndTail(t *testing.T) {
	start := time.Unix(1000, 0)
	var ts []time.Time
	// A slow start (10 events over 10 s), then 1,000/s for 10 s, then a
	// straggler 30 s later.
	for i := range 10 {
		ts = append(ts, start.Add(time.Duration(i)*time.Second))
	}
	for i := range 10000 {
		ts = append(ts, start.Add(10*time.Second+time.Duration(i)*time.Millisecond))
	}
	ts = append(ts, start.Add(50*time.Second))
	got := RateBetween(ts, 0.05, 0.95)
	if got < 990 || got > 1010 {
		t.Errorf("RateBetween = %.1f/s, want about 1000/s", got)
	}
	if RateBetween(ts[:5], 0, 1) != 0 {
		t.Error("RateBetween of 5 events is not 0")
	}
}

func TestParseWrkSummary(t *testing.T) {
	out := []byte("Running 10s test @ http://127.0.0.1:1/\n  2 threads and 64 connections\n" +
		`WRK_RESULT {"requests":1200,"accepted":1100,"duration_us":10000000,"non2xx":90,"socket_errors":10,"p50_us":2000,"p99_us":9000,"max_us":20000}` + "\n")
	got, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if got.Requests != 1200 || got.Accepted != 1100 || got.Errors != 100 || got.P99 != 9*time.Millisecond {
		t.Errorf("parsed %+v", got)
	}
	if got.PerSecond() != 110 {
		t.Errorf("PerSecond = %v, want 110", got.PerSecond())
	}
	if _, err := parseWrk([]byte("no summary")); err == nil {
		t.Error("output without a summary line parsed")
	}
}

func TestFormatting(t *testing.T) {
	for got, want := range map[string]string{
		rate(16543.4, "/s"):         "16,543/s",
		rate(44.8, "/s"):            "44.8/s",
		rate(1234567, "rows"):       "1,234,567 rows",
		ms(1500 * time.Microsecond): "1.50 ms",
		ms(250 * time.Millisecond):  "250 ms",
		pct(0.954):                  "95%",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestTableMarksEmptyCells(t *testing.T) {
	r := &Report{Rows: []Row{{What: "x", Figure: "1/s", Verdict: Met}}}
	if !strings.Contains(r.Table(), "| x | 1/s | — | — | — | met |") {
		t.Errorf("table:\n%s", r.Table())
	}
}

func TestDedupeStoreStaysSmall(t *testing.T) {
	// The dispatcher's promise is well under 100 bytes per key; 100,000
	// keys are enough to see the per-key cost without the map's fixed part.
	if v := dedupeBytesPerKey(100_000); v <= 0 || v > 100 {
		t.Errorf("dedupe store holds %.1f bytes per key, want (0, 100]", v)
	}
}

// A row's ratio pairs each run's figure with the baseline measured next to
// it: a machine that ran slower in one run must not set that run's figure
// against another run's baseline.
func TestPairRatioIsTheMedianOfTheRunsOwnRatios(t *testing.T) {
	var p pair
	p.add(10, 20)  // 50%
	p.add(80, 100) // 80%
	p.add(45, 50)  // 90%
	if got := p.ratio(); math.Abs(got-0.8) > 1e-9 {
		t.Fatalf("ratio %v, want 0.8 (the medians' ratio would be 45/50 = 0.9)", got)
	}
	runs := p.ratioRuns(func(v float64) string { return rate(v, "/s") })
	if len(runs) != 3 || !strings.HasSuffix(runs[0], "(50%)") || !strings.HasSuffix(runs[2], "(90%)") {
		t.Fatalf("runs %q do not name each run's ratio", runs)
	}
	p.add(5, 0) // a run without a baseline has no ratio
	if got := p.ratio(); math.Abs(got-0.8) > 1e-9 {
		t.Fatalf("with a run without a baseline: ratio %v, want 0.8", got)
	}
}

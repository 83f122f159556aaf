package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Median is the median of xs (NaN for none). Even counts average the two
// middle values.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Latencies is a set of latency samples. Percentiles are exact (nearest
// rank on the sorted samples): the runs are short enough to keep every
// sample.
type Latencies struct {
	d      []time.Duration
	sorted bool
}

// Add records one sample.
func (l *Latencies) Add(d time.Duration) {
	l.d = append(l.d, d)
	l.sorted = false
}

// Merge adds every sample of o.
func (l *Latencies) Merge(o *Latencies) {
	l.d = append(l.d, o.d...)
	l.sorted = false
}

// Len is the number of samples.
func (l *Latencies) Len() int { return len(l.d) }

// Quantile is the nearest-rank quantile q in [0, 1]; 0 without samples.
func (l *Latencies) Quantile(q float64) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	if !l.sorted {
		slices.Sort(l.d)
		l.sorted = true
	}
	rank := int(math.Ceil(q*float64(len(l.d)))) - 1
	rank = max(0, min(rank, len(l.d)-1))
	return l.d[rank]
}

// Min and Max of the samples; 0 without samples.
func (l *Latencies) Min() time.Duration { return l.Quantile(0) }

// Max is the largest sample.
func (l *Latencies) Max() time.Duration { return l.Quantile(1) }

// RateBetween is the rate of events in the middle of a run: the events
// between the lo and hi quantiles of their times, divided by the time
// between those quantiles. It leaves out the ramp-up of a consumer that is
// still joining its group and the tail of a backlog running dry. ts need
// not be sorted. It returns 0 for fewer than 10 events.
func RateBetween(ts []time.Time, lo, hi float64) float64 {
	if len(ts) < 10 {
		return 0
	}
	s := slices.Clone(ts)
	slices.SortFunc(s, func(a, b time.Time) int { return a.Compare(b) })
	i := int(lo * float64(len(s)-1))
	j := int(hi * float64(len(s)-1))
	span := s[j].Sub(s[i]).Seconds()
	if span <= 0 {
		return 0
	}
	return float64(j-i) / span
}

// ms formats a duration in milliseconds with sensible precision.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 0:
		return fmt.Sprintf("%.1f ms", v)
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 100:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

// rate formats an events-per-second figure.
func rate(v float64, unit string) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case v >= 100:
		return joinUnit(thousands(int64(math.Round(v))), unit)
	}
	return joinUnit(fmt.Sprintf("%.1f", v), unit)
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func pct(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", v*100)
}

func mb(bytes int64) string { return fmt.Sprintf("%.0f MB", float64(bytes)/1e6) }

// joinUnit writes "/s" units right after the number and others after a
// space.
func joinUnit(num, unit string) string {
	switch {
	case unit == "":
		return num
	case strings.HasPrefix(unit, "/"):
		return num + unit
	}
	return num + " " + unit
}

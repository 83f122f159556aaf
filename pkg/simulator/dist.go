package simulator

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// DistKind is the shape of a Dist.
type DistKind string

// Dist kinds.
const (
	DistFixed   DistKind = "fixed"
	DistUniform DistKind = "uniform"
	DistNormal  DistKind = "normal"
)

// Dist is a distribution of durations (latency, webhook delays). Its text
// form, used by environment variables and the admin API, is one of
//
//	"0" or "" (no delay), "20ms" or "fixed:20ms",
//	"uniform:10ms,50ms" (min,max), "normal:30ms,10ms" (mean,stddev).
//
// Normal samples are clamped at zero.
type Dist struct {
	Kind DistKind
	A    time.Duration // fixed value, uniform min, normal mean
	B    time.Duration // uniform max, normal stddev
}

// Fixed is always d.
func Fixed(d time.Duration) Dist { return Dist{Kind: DistFixed, A: d} }

// Uniform is uniform on [lo, hi].
func Uniform(lo, hi time.Duration) Dist { return Dist{Kind: DistUniform, A: lo, B: hi} }

// Normal is normal with the given mean and standard deviation.
func Normal(mean, stddev time.Duration) Dist { return Dist{Kind: DistNormal, A: mean, B: stddev} }

// ParseDist parses the text form.
func ParseDist(s string) (Dist, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return Dist{}, nil
	}
	kind, args, found := strings.Cut(s, ":")
	if !found {
		kind, args = string(DistFixed), s
	}
	parts := strings.Split(args, ",")
	durs := make([]time.Duration, len(parts))
	for i, p := range parts {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil {
			return Dist{}, fmt.Errorf("distribution %q: %w", s, err)
		}
		durs[i] = d
	}
	var d Dist
	switch DistKind(kind) {
	case DistFixed:
		if len(durs) != 1 {
			return Dist{}, fmt.Errorf("distribution %q: fixed takes one duration", s)
		}
		d = Fixed(durs[0])
	case DistUniform:
		if len(durs) != 2 {
			return Dist{}, fmt.Errorf("distribution %q: uniform takes min,max", s)
		}
		d = Uniform(durs[0], durs[1])
	case DistNormal:
		if len(durs) != 2 {
			return Dist{}, fmt.Errorf("distribution %q: normal takes mean,stddev", s)
		}
		d = Normal(durs[0], durs[1])
	default:
		return Dist{}, fmt.Errorf("distribution %q: kind must be fixed, uniform or normal", s)
	}
	return d, d.validate()
}

func (d Dist) validate() error {
	if d.A < 0 || d.B < 0 {
		return fmt.Errorf("distribution %s: durations must not be negative", d)
	}
	if d.Kind == DistUniform && d.B < d.A {
		return fmt.Errorf("distribution %s: max is below min", d)
	}
	switch d.Kind {
	case "", DistFixed, DistUniform, DistNormal:
		return nil
	}
	return fmt.Errorf("distribution kind %q must be fixed, uniform or normal", d.Kind)
}

// String returns the text form.
func (d Dist) String() string {
	switch d.Kind {
	case "":
		return "0"
	case DistFixed:
		return d.A.String()
	}
	return fmt.Sprintf("%s:%s,%s", d.Kind, d.A, d.B)
}

// MarshalText implements encoding.TextMarshaler.
func (d Dist) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Dist) UnmarshalText(b []byte) error {
	p, err := ParseDist(string(b))
	if err != nil {
		return err
	}
	*d = p
	return nil
}

// Sample draws one duration using r.
func (d Dist) Sample(r *rand.Rand) time.Duration {
	switch d.Kind {
	case DistFixed:
		return d.A
	case DistUniform:
		if d.B <= d.A {
			return d.A
		}
		return d.A + time.Duration(r.Int64N(int64(d.B-d.A)+1))
	case DistNormal:
		v := time.Duration(r.NormFloat64()*float64(d.B)) + d.A
		return max(v, 0)
	}
	return 0
}

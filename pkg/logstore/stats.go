package logstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Filter narrows Stats; empty fields match everything.
type Filter struct {
	Tenant    string `json:"tenant,omitempty"`
	EventType string `json:"event_type,omitempty"`
	Template  string `json:"template,omitempty"`
}

// Stats describes the notifications requested in [From, To), at hour
// granularity: From is rounded down to its hour, and an hour counts when
// it starts before To. DeadLetters counts the DLQ records that failed in
// that range.
type Stats struct {
	From        time.Time         `json:"from"`
	To          time.Time         `json:"to"`
	Filter      Filter            `json:"filter"`
	Funnel      Funnel            `json:"funnel"`
	Hourly      []HourlyFunnel    `json:"hourly"`
	Failures    []Failure         `json:"failures"`
	Latency     []StepLatency     `json:"latency"`
	Retries     Retries           `json:"retries"`
	DeadLetters []DeadLetterCount `json:"dead_letters"`
}

// Funnel counts notifications by how far they got (see
// delivery_funnel_hourly: each step counts those that reached it or a
// later one).
type Funnel struct {
	Requested      uint64 `json:"requested"`
	Accepted       uint64 `json:"accepted"`
	Sent           uint64 `json:"sent"`
	Delivered      uint64 `json:"delivered"`
	Read           uint64 `json:"read"`
	Failed         uint64 `json:"failed"`
	DeadLettered   uint64 `json:"dead_lettered"`
	Expired        uint64 `json:"expired"`
	OutcomeUnknown uint64 `json:"outcome_unknown"`
	Pending        uint64 `json:"pending"`
	Duplicates     uint64 `json:"duplicates"`
}

// HourlyFunnel is the funnel of one hour.
type HourlyFunnel struct {
	Hour time.Time `json:"hour"`
	Funnel
}

// Failure counts notifications that ended failed or dead-lettered with one
// error code.
type Failure struct {
	Status        string `json:"status"`
	ErrorCode     string `json:"error_code"`
	Retryable     bool   `json:"retryable"`
	Notifications uint64 `json:"notifications"`
	SampleMessage string `json:"sample_message,omitempty"`
}

// StepLatency is the distribution of one step's duration, in seconds.
type StepLatency struct {
	Step    string  `json:"step"`
	Samples uint64  `json:"samples"`
	P50     float64 `json:"p50_seconds"`
	P90     float64 `json:"p90_seconds"`
	P99     float64 `json:"p99_seconds"`
	Max     float64 `json:"max_seconds"`
}

// Retries sums retry_dlq_rates.
type Retries struct {
	Requested    uint64  `json:"requested"`
	Retried      uint64  `json:"retried"`
	RetryEvents  uint64  `json:"retry_events"`
	DeadLettered uint64  `json:"dead_lettered"`
	RetryRate    float64 `json:"retry_rate"`
	DLQRate      float64 `json:"dlq_rate"`
}

// DeadLetterCount counts DLQ records by why they were parked.
type DeadLetterCount struct {
	Reason     string `json:"reason"`
	ErrorClass string `json:"error_class,omitempty"`
	ErrorCode  string `json:"error_code"`
	Records    uint64 `json:"records"`
	Poison     uint64 `json:"poison"`
}

// steps is the order step_durations' steps are reported in.
var steps = []string{"requested_to_accepted", "accepted_to_sent", "sent_to_delivered", "delivered_to_read", "requested_to_delivered"}

// Stats reads the analytics views for the notifications requested between
// from and to that match f.
func (s *Store) Stats(ctx context.Context, from, to time.Time, f Filter) (*Stats, error) {
	if from.IsZero() || to.IsZero() || !from.Before(to) {
		return nil, fmt.Errorf("%w: the range [%s, %s) is empty", ErrInvalid, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	from, to = from.UTC().Truncate(time.Hour), to.UTC()
	const layout = "2006-01-02 15:04:05.000"
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{
		"from": from.Format(layout), "to": to.Format(layout),
		"tenant": f.Tenant, "event_type": f.EventType, "template": f.Template,
	}))
	st := &Stats{From: from, To: to, Filter: f, Hourly: []HourlyFunnel{}, Failures: []Failure{}, Latency: []StepLatency{}, DeadLetters: []DeadLetterCount{}}
	where := func(timeCol string, dims ...string) string {
		conds := []string{
			timeCol + " >= {from:DateTime64(3, 'UTC')}",
			timeCol + " < {to:DateTime64(3, 'UTC')}",
		}
		for _, d := range dims {
			conds = append(conds, fmt.Sprintf("({%[1]s:String} = '' OR %[1]s = {%[1]s:String})", d))
		}
		return " WHERE " + strings.Join(conds, " AND ")
	}
	all := []string{"tenant", "event_type", "template"}

	funnelCols := `toUInt64(sum(requested)), toUInt64(sum(accepted)), toUInt64(sum(sent)), toUInt64(sum(delivered)),
		toUInt64(sum(read)), toUInt64(sum(failed)), toUInt64(sum(dead_lettered)), toUInt64(sum(expired)),
		toUInt64(sum(outcome_unknown)), toUInt64(sum(pending)), toUInt64(sum(duplicates))`
	scanFunnel := func(sc func(...any) error, f *Funnel, extra ...any) error {
		return sc(append(extra, &f.Requested, &f.Accepted, &f.Sent, &f.Delivered, &f.Read, &f.Failed, &f.DeadLettered,
			&f.Expired, &f.OutcomeUnknown, &f.Pending, &f.Duplicates)...)
	}
	funnelFrom := " FROM " + s.db + ".delivery_funnel_hourly" + where("hour", all...)
	if err := scanFunnel(s.conn.QueryRow(ctx, "SELECT "+funnelCols+funnelFrom).Scan, &st.Funnel); err != nil {
		return nil, fmt.Errorf("logstore: read delivery_funnel_hourly: %w", err)
	}
	if err := s.each(ctx, "SELECT hour, "+funnelCols+funnelFrom+" GROUP BY hour ORDER BY hour", func(sc func(...any) error) error {
		var h HourlyFunnel
		if err := scanFunnel(sc, &h.Funnel, &h.Hour); err != nil {
			return err
		}
		st.Hourly = append(st.Hourly, h)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("logstore: read delivery_funnel_hourly: %w", err)
	}

	if err := s.each(ctx, `SELECT status, error_code, error_retryable, toUInt64(sum(notifications)) AS n, min(sample_message)
		FROM `+s.db+`.failures_by_code`+where("hour", all...)+`
		GROUP BY status, error_code, error_retryable ORDER BY n DESC, status, error_code LIMIT 100`, func(sc func(...any) error) error {
		var x Failure
		if err := sc(&x.Status, &x.ErrorCode, &x.Retryable, &x.Notifications, &x.SampleMessage); err != nil {
			return err
		}
		st.Failures = append(st.Failures, x)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("logstore: read failures_by_code: %w", err)
	}

	// Percentiles do not add up across hours: computed over the range from
	// the per-notification durations the hourly view is built on.
	if err := s.each(ctx, `SELECT step, count(), quantileExact(0.5)(seconds), quantileExact(0.9)(seconds),
		quantileExact(0.99)(seconds), max(seconds)
		FROM `+s.db+`.step_durations`+where("created_at", all...)+`
		GROUP BY step ORDER BY indexOf(['`+strings.Join(steps, "','")+`'], step)`, func(sc func(...any) error) error {
		var (
			x                StepLatency
			p50, p90, p99, m *float64
		)
		if err := sc(&x.Step, &x.Samples, &p50, &p90, &p99, &m); err != nil {
			return err
		}
		x.P50, x.P90, x.P99, x.Max = deref(p50), deref(p90), deref(p99), deref(m)
		st.Latency = append(st.Latency, x)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("logstore: read step_durations: %w", err)
	}

	r := &st.Retries
	if err := s.conn.QueryRow(ctx, `SELECT toUInt64(sum(requested)), toUInt64(sum(retried)), toUInt64(sum(retry_events)), toUInt64(sum(dead_lettered))
		FROM `+s.db+`.retry_dlq_rates`+where("hour", all...)).Scan(&r.Requested, &r.Retried, &r.RetryEvents, &r.DeadLettered); err != nil {
		return nil, fmt.Errorf("logstore: read retry_dlq_rates: %w", err)
	}
	if r.Requested > 0 {
		r.RetryRate = float64(r.Retried) / float64(r.Requested)
		r.DLQRate = float64(r.DeadLettered) / float64(r.Requested)
	}

	if err := s.each(ctx, `SELECT reason, error_class, error_code, toUInt64(sum(records)) AS n, toUInt64(sum(poison))
		FROM `+s.db+`.dead_letters_hourly`+where("hour", all...)+`
		GROUP BY reason, error_class, error_code ORDER BY n DESC, reason, error_code LIMIT 100`, func(sc func(...any) error) error {
		var x DeadLetterCount
		if err := sc(&x.Reason, &x.ErrorClass, &x.ErrorCode, &x.Records, &x.Poison); err != nil {
			return err
		}
		st.DeadLetters = append(st.DeadLetters, x)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("logstore: read dead_letters_hourly: %w", err)
	}
	return st, nil
}

// each runs q and calls fn with each row's Scan.
func (s *Store) each(ctx context.Context, q string, fn func(scan func(...any) error) error) error {
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

func deref(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

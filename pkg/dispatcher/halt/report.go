package halt

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Reporter writes this instance's figures per sender to the state table
// every interval, for notifyctl sender list. Run it alongside the
// dispatcher; on a clean stop it tombstones every report it wrote, so a
// stopped instance's queued count disappears at once (after a crash,
// readers drop its reports once they are older than ReportMaxAge).
type Reporter struct {
	s        *Store
	interval time.Duration
	figures  func() []Figures
	written  map[string]bool // keys written, to tombstone on stop
}

// NewReporter reports the figures returns (one per sender this instance
// knows, Figures.Sender set) every interval (DefaultReportInterval when
// zero). figures is called from Run's goroutine and must be safe to call
// concurrently with the dispatcher.
func (s *Store) NewReporter(interval time.Duration, figures func() []Figures) *Reporter {
	if interval <= 0 {
		interval = DefaultReportInterval
	}
	return &Reporter{s: s, interval: interval, figures: figures, written: map[string]bool{}}
}

// Run writes a report at once and then every interval until ctx ends,
// then tombstones the reports it wrote (bounded by 5 s) and returns.
// Write failures are logged and retried at the next interval. Call it
// before the Store's Close and let it return first.
func (r *Reporter) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		r.report(ctx)
		select {
		case <-ctx.Done():
			r.withdraw()
			return
		case <-t.C:
		}
	}
}

func (r *Reporter) report(ctx context.Context) {
	now := time.Now().UTC()
	var recs []*kgo.Record
	seen := map[string]bool{}
	for _, f := range r.figures() {
		if f.Sender == "" {
			continue
		}
		key := ReportKey(r.s.cfg.Instance, f.Sender)
		seen[key] = true
		recs = append(recs, &kgo.Record{Key: []byte(key), Value: EncodeReport(Report{Instance: r.s.cfg.Instance, Sender: f.Sender, At: now, Figures: f})})
	}
	// A sender this instance no longer reports on (removed from the
	// registry) loses its report now rather than after ReportMaxAge.
	for key := range r.written {
		if !seen[key] {
			recs = append(recs, &kgo.Record{Key: []byte(key)})
		}
	}
	if len(recs) == 0 {
		return
	}
	if err := r.s.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		if ctx.Err() == nil {
			r.s.log.Warn("sender reports not written", "err", err)
		}
		// Some may have been written: withdraw them on stop too.
		for key := range seen {
			r.written[key] = true
		}
		return
	}
	r.written = seen
}

// withdraw tombstones every report this Reporter wrote.
func (r *Reporter) withdraw() {
	if len(r.written) == 0 {
		return
	}
	recs := make([]*kgo.Record, 0, len(r.written))
	for key := range r.written {
		recs = append(recs, &kgo.Record{Key: []byte(key)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.s.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		r.s.log.Warn("sender reports not withdrawn; readers drop them once stale", "err", err, "max_age", r.s.cfg.ReportMaxAge)
		return
	}
	r.written = map[string]bool{}
}

package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/senders"
	"github.com/wanotify/wanotify/pkg/topics"
)

// haltedSender is the second sender of the halt row; the simulator
// answers every send of its number with 190 (access token expired).
const (
	haltedSender   = "bench-halted"
	haltedNumberID = "100000000000003"
	healthyNumber  = "100000000000002"
)

var haltSenders = senders.Inline(senders.File{
	Senders: []senders.Sender{{Name: benchSender, Tenants: []string{ingestTenant}, NumberID: healthyNumber},
		{Name: haltedSender, Tenants: []string{ingestTenant}, NumberID: haltedNumberID}},
	Tenants: []senders.Tenant{{Name: ingestTenant, DefaultSender: benchSender, FreeText: true}},
})

// halt measures what a halted sender costs the others: one sender's
// token is revoked with 10,000 of its notifications queued among another
// sender's 5,000; the figure is the healthy sender's rate, beside the same
// backlog without the halted sender's.
func (b *Bench) halt(ctx context.Context) ([]Row, error) {
	const sendRate = 200
	haltedN, healthyN := b.size(10000, 4000), b.size(5000, 2000)
	measure := func(withHalted bool) (float64, int, error) {
		cl, err := b.cfg.NewCluster(ctx)
		if err != nil {
			return 0, 0, err
		}
		defer cl.Close()
		sim, simURL, err := b.simulator(cl, "WANOTIFY_SIM_RATE_LIMIT=0", "WANOTIFY_SIM_ACCOUNT_FAULTS="+haltedNumberID+"=190")
		if err != nil {
			return 0, 0, err
		}
		defer b.stop("a halted sender beside a healthy one", sim)
		prefix := runID("halt", map[bool]int{true: 0, false: 1}[withHalted])
		healthy, err := laneRecords(topics.Requested, ingestTenant, "invoice.reminder", prefix+"-ok", healthyN, 0)
		if err != nil {
			return 0, 0, err
		}
		var recs []*kgo.Record
		if withHalted {
			halted, err := senderRecords(haltedSender, topics.Requested, ingestTenant, "invoice.reminder", prefix+"-halted", haltedN, 10_000_000)
			if err != nil {
				return 0, 0, err
			}
			// Two of the halted sender's for each of the healthy one's.
			for i, r := range healthy {
				recs = append(recs, r)
				for _, h := range halted[min(2*i, len(halted)):min(2*i+2, len(halted))] {
					recs = append(recs, h)
				}
			}
		} else {
			recs = healthy
		}
		if err := cl.Produce(ctx, recs); err != nil {
			return 0, 0, err
		}
		p, err := b.startDispatcher(cl, simURL, "dispatcher", "wanotify-bench-halt-"+prefix, prefix,
			fmt.Sprintf("WANOTIFY_DISPATCHER_RATE=%d", sendRate), "WANOTIFY_SENDERS="+haltSenders)
		if err != nil {
			return 0, 0, err
		}
		defer b.stop("a halted sender beside a healthy one", p)
		if err := waitAccepted(ctx, simURL, healthyN, 5*time.Minute, exitedErr(p)); err != nil {
			return 0, 0, err
		}
		s, err := ledger(simURL, true)
		if err != nil {
			return 0, 0, err
		}
		var ts []time.Time
		for _, e := range s.Entries {
			if e.Sender == healthyNumber {
				ts = append(ts, e.Time)
			}
		}
		return RateBetween(ts, 0.05, 0.95), s.Failures["meta_190"], nil
	}
	var with, without []float64
	faults := 0
	for run := range b.cfg.Runs {
		w, f, err := measure(true)
		if err != nil {
			return nil, fmt.Errorf("with a halted sender: %w", err)
		}
		wo, _, err := measure(false)
		if err != nil {
			return nil, fmt.Errorf("alone: %w", err)
		}
		with, without = append(with, w), append(without, wo)
		faults = max(faults, f)
		b.cfg.logf("  run %d: healthy sender %.1f/s beside a halted one, %.1f/s alone; %d calls answered 190", run+1, w, wo, f)
	}
	v, base := Median(with), Median(without)
	return []Row{{What: fmt.Sprintf("halts: a healthy sender's rate while another sender of the dispatcher is halted (token revoked) with %d queued", haltedN),
		Figure: rate(v, "/s"), Baseline: rate(base, "/s") + " (the same backlog without the halted sender)", Ratio: pct(v / base),
		Target: "≥ 95% of baseline", Verdict: verdict(v >= 0.95*base),
		Note: fmt.Sprintf("One dispatcher (WANOTIFY_DISPATCHER_RATE=%d per sender) reads %d notifications of a healthy sender interleaved with %d of a sender whose number the simulator answers with 190 (access token expired). The halted sender's first calls halt it (at most %d calls answered 190 in any run); its records then wait on notifications.held. Figure: the healthy sender's sends per second between the 5th and 95th percentile of their times in the simulator's ledger; baseline: the healthy sender's backlog alone, same run.", sendRate, healthyN, haltedN, faults)}}, nil
}

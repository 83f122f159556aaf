package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/sdk"
)

// pacingBusy is the recipient that gets many notifications in the pacing
// row.
const pacingBusy = "+14155550123"

// requestsTo builds n notifications.requested records to one recipient.
func requestsTo(prefix, recipient string, n int) ([]*kgo.Record, error) {
	now := time.Now()
	out := make([]*kgo.Record, n)
	for i := range out {
		req := sdk.Request{IdempotencyKey: fmt.Sprintf("%s-busy-%d", prefix, i), EventType: "otp", UserID: "busy-user",
			Recipient: recipient, Sender: benchSender,
			Template: &contract.Template{Name: "otp_code", Language: "en_US", Parameters: []string{"482913"}}}
		rec, _, err := sdk.BuildRecord(ingestTenant, &req, sdk.BuildOptions{SourceService: "bench", Sender: benchSender}, now, "")
		if err != nil {
			return nil, err
		}
		out[i] = rec
	}
	return out, nil
}

// pacing measures what pair-rate pacing costs everyone else: the
// notifications of other recipients flow as fast with one recipient's
// burst held in the scheduler as without it, and the provider (the
// simulator enforcing WhatsApp's pair rate) answers no 131056.
func (b *Bench) pacing(ctx context.Context) ([]Row, error) {
	// The sender's rate binds (as it does in production), and the
	// dispatcher buffers about a second of it: a preloaded backlog in one
	// long queue would put each busy-recipient record behind all the
	// others, so the gate would hardly be asked while they flow.
	// Kafka hands a backlog over partition by partition, so the busy
	// recipient's partition may come late: 30 s of others leave it time
	// for a few paced sends.
	const limit, buffered, busyN = 100.0, 100, 20
	n := b.size(3000, 1000)
	var tput pair
	var pairLimited, spacingErrs int
	busySent, minGap := -1, time.Duration(-1)
	names := []string{"with the busy recipient", "without it"}
	measure := func(run, k int) (float64, error) {
		cl, err := b.cfg.NewCluster(ctx)
		if err != nil {
			return 0, err
		}
		defer cl.Close()
		// Meta's pair rate: one message per 6 s per sender and recipient.
		sim, simURL, err := b.simulator(cl, "WANOTIFY_SIM_RATE_LIMIT=0", fmt.Sprintf("WANOTIFY_SIM_PAIR_RATE=%v", 1.0/6), "WANOTIFY_SIM_PAIR_BURST=1")
		if err != nil {
			return 0, err
		}
		defer b.stop("pair pacing", sim)
		prefix := runID("pace", run) + fmt.Sprintf("k%d", k)
		recs, err := requests(prefix, n)
		if err != nil {
			return 0, err
		}
		if k == 0 {
			busy, err := requestsTo(prefix, pacingBusy, busyN)
			if err != nil {
				return 0, err
			}
			// Spread among the others, as a burst to one user would come.
			mixed := make([]*kgo.Record, 0, len(recs)+len(busy))
			for i, r := range recs {
				if i%(n/busyN) == 0 && len(busy) > 0 {
					mixed, busy = append(mixed, busy[0]), busy[1:]
				}
				mixed = append(mixed, r)
			}
			recs = mixed
		}
		if err := cl.Produce(ctx, recs); err != nil {
			return 0, err
		}
		d, err := b.startDispatcher(cl, simURL, "dispatcher", "wanotify-bench-dispatcher-"+prefix, prefix,
			fmt.Sprintf("WANOTIFY_DISPATCHER_RATE=%.0f", limit), fmt.Sprintf("WANOTIFY_DISPATCHER_MAX_BUFFERED=%d", buffered))
		if err != nil {
			return 0, err
		}
		defer b.stop("pair pacing", d)
		others, busy, limited, err := waitOthers(ctx, simURL, n, 5*time.Minute, exitedErr(d))
		if err != nil {
			return 0, err
		}
		pairLimited += limited
		for i := 1; i < len(busy); i++ {
			gap := busy[i].Sub(busy[i-1])
			if gap < 6*time.Second {
				spacingErrs++
			}
			if minGap < 0 || gap < minGap {
				minGap = gap
			}
		}
		if k == 0 && (busySent < 0 || len(busy) < busySent) {
			busySent = len(busy)
		}
		v := RateBetween(others, 0.05, 0.95)
		b.cfg.logf("  run %d %s: others %s/s; busy recipient %d sends so far; %d × 131056", run+1, names[k], rate(v, ""), len(busy), limited)
		return v, nil
	}
	for run := range b.cfg.Runs {
		var got [2]float64
		for _, k := range order(run) {
			v, err := measure(run, k)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", names[k], err)
			}
			got[k] = v
		}
		tput.add(got[0], got[1])
	}
	s, base := tput.medians()
	ok := tput.ratio() >= 0.95 && pairLimited == 0 && spacingErrs == 0
	return []Row{{What: fmt.Sprintf("pair pacing: other recipients' notifications/s with %d notifications to one recipient among them", busyN),
		Figure: fmt.Sprintf("%s; %d × 131056", rate(s, "/s"), pairLimited), Baseline: rate(base, "/s") + " (the same backlog without the busy recipient)",
		Ratio: pct(tput.ratio()), Target: "≥ 95% of baseline; zero 131056", Verdict: verdict(ok),
		Runs: tput.ratioRuns(func(v float64) string { return rate(v, "/s") }),
		Note: fmt.Sprintf("A backlog of %d notifications to distinct recipients (12 partitions, one sender), and in the measured case %d more to %s spread among them, is produced first, on a fresh broker for each measurement; one dispatcher (services/dispatcher, WANOTIFY_DISPATCHER_RATE=%.0f, WANOTIFY_DISPATCHER_MAX_BUFFERED=%d so its sender's queue holds about a second of traffic, default pair pacing: one message per 6 s per sender and recipient) sends to the simulator, which enforces WhatsApp's pair rate (WANOTIFY_SIM_PAIR_RATE=1/6, burst 1) and has no throughput limit. The figure is the rate at which the simulator accepted the other recipients' sends between the 5th and 95th percentile of their arrival times; the busy recipient's sends, held in the sender's scheduler between them, are not counted and the run stops once the others are all sent. Meanwhile the busy recipient got at least %d sends (fewest of the runs), the closest two %s apart. 131056 answers over all runs: %d; busy-recipient sends closer than 6 s: %d.", n, busyN, pacingBusy, limit, buffered, busySent, minGap.Round(time.Millisecond), pairLimited, spacingErrs)}}, nil
}

// waitOthers polls the ledger until want sends to recipients other than
// the busy one were accepted, and returns their arrival times, the busy
// recipient's so far (sorted) and the 131056 answers.
func waitOthers(ctx context.Context, url string, want int, timeout time.Duration, alive func() error) (others, busy []time.Time, limited int, err error) {
	deadline := time.Now().Add(timeout)
	for {
		s, err := ledger(url, true)
		if err != nil {
			return nil, nil, 0, err
		}
		others, busy = others[:0], busy[:0]
		for _, e := range s.Entries {
			if e.Recipient == pacingBusy {
				busy = append(busy, e.Time)
			} else {
				others = append(others, e.Time)
			}
		}
		limited = s.Failures[fmt.Sprintf("meta_%d", provider.MetaPairRate)]
		if len(others) >= want {
			slices.SortFunc(busy, func(a, b time.Time) int { return a.Compare(b) })
			return others, busy, limited, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, nil, 0, fmt.Errorf("the provider accepted %d of %d sends to other recipients within %s", len(others), want, timeout)
		}
		if err := alive(); err != nil {
			return nil, nil, 0, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

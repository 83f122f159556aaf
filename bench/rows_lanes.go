package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/sdk"
	"github.com/wanotify/wanotify/pkg/senders"
	"github.com/wanotify/wanotify/pkg/topics"
)

// laneTenant is the second tenant of the fairness row.
const laneTenant = "bench-b"

// laneSenders lets both benchmark tenants send from the benchmark sender.
var laneSenders = senders.Inline(senders.File{
	Senders: []senders.Sender{{Name: benchSender, Tenants: []string{ingestTenant, laneTenant}, NumberID: "100000000000002"}},
	Tenants: []senders.Tenant{{Name: ingestTenant, DefaultSender: benchSender, FreeText: true},
		{Name: laneTenant, DefaultSender: benchSender, FreeText: true}},
})

// laneRecords builds n records of tenant and event type on topic, from
// the benchmark sender.
func laneRecords(topic, tenant, eventType, prefix string, n, recipientBase int) ([]*kgo.Record, error) {
	return senderRecords(benchSender, topic, tenant, eventType, prefix, n, recipientBase)
}

// senderRecords builds n records of sender, tenant and event type on topic.
func senderRecords(sender, topic, tenant, eventType, prefix string, n, recipientBase int) ([]*kgo.Record, error) {
	now := time.Now()
	out := make([]*kgo.Record, n)
	for i := range out {
		req := sdk.Request{IdempotencyKey: fmt.Sprintf("%s-%d", prefix, i), EventType: eventType, UserID: fmt.Sprintf("user-%d", i),
			Recipient: fmt.Sprintf("+4471%08d", (recipientBase+i)%100000000), Sender: sender,
			Template: &contract.Template{Name: "otp_code", Language: "en_US", Parameters: []string{"482913"}}}
		rec, _, err := sdk.BuildRecord(tenant, &req, sdk.BuildOptions{SourceService: "bench", Sender: sender}, now, "")
		if err != nil {
			return nil, err
		}
		rec.Topic = topic
		out[i] = rec
	}
	return out, nil
}

// lanes measures the priority lanes: how long an OTP waits while a
// campaign drains its sender (beside the same traffic on one topic, as
// before lanes), how fairly a small tenant is served beside a big one,
// and what a million queued bulk notifications cost the dispatcher.
func (b *Bench) lanes(ctx context.Context) ([]Row, error) {
	otp, err := b.laneOTP(ctx)
	if err != nil {
		return nil, err
	}
	fair, err := b.laneFairness(ctx)
	if err != nil {
		return append(otp, Row{What: "lanes: fairness", Figure: "failed: " + firstLine(err.Error()), Verdict: NotRun}), nil
	}
	return append(otp, fair...), nil
}

// laneOTP: 100,000 marketing notifications drain a sender limited to
// 80/s; 200 OTPs are published one every 100 ms. Lanes: the campaign on
// notifications.bulk and the OTPs on notifications.critical. Baseline:
// everything on notifications.requested, one topic as before lanes.
func (b *Bench) laneOTP(ctx context.Context) ([]Row, error) {
	const rate, otps = 80, 200
	bulkN := b.size(100000, 20000)
	window := 90 * time.Second
	measure := func(lanesOn bool) (*Latencies, int, error) {
		cl, err := b.cfg.NewCluster(ctx)
		if err != nil {
			return nil, 0, err
		}
		defer cl.Close()
		sim, simURL, err := b.simulator(cl, fmt.Sprintf("WANOTIFY_SIM_RATE_LIMIT=%d", rate+20))
		if err != nil {
			return nil, 0, err
		}
		defer b.stop("a campaign draining at 80/s", sim)
		bulkTopic, otpTopic := topics.Bulk, topics.Critical
		if !lanesOn {
			bulkTopic, otpTopic = topics.Requested, topics.Requested
		}
		prefix := runID("lanes-otp", map[bool]int{true: 0, false: 1}[lanesOn])
		recs, err := laneRecords(bulkTopic, ingestTenant, "marketing.campaign", prefix+"-bulk", bulkN, 0)
		if err != nil {
			return nil, 0, err
		}
		if err := cl.Produce(ctx, recs); err != nil {
			return nil, 0, err
		}
		p, err := b.startDispatcher(cl, simURL, "dispatcher", "wanotify-bench-lanes-"+prefix, prefix,
			fmt.Sprintf("WANOTIFY_DISPATCHER_RATE=%d", rate), "WANOTIFY_DISPATCHER_RATE_BURST=8")
		if err != nil {
			return nil, 0, err
		}
		defer b.stop("a campaign draining at 80/s", p)
		if err := waitAccepted(ctx, simURL, 2*rate, 2*time.Minute, exitedErr(p)); err != nil {
			return nil, 0, err
		}
		published := map[string]time.Time{}
		var ids []string
		for i := range otps {
			rs, err := laneRecords(otpTopic, ingestTenant, "otp", fmt.Sprintf("%s-otp-%d", prefix, i), 1, 50_000_000+i)
			if err != nil {
				return nil, 0, err
			}
			if err := cl.Produce(ctx, rs); err != nil {
				return nil, 0, err
			}
			n, err := contract.DecodeNotification(rs[0].Value)
			if err != nil {
				return nil, 0, err
			}
			published[n.ID] = time.Now()
			ids = append(ids, n.ID)
			time.Sleep(100 * time.Millisecond)
		}
		deadline := time.Now().Add(window)
		var lat Latencies
		sent := 0
		for {
			s, err := ledger(simURL, true)
			if err != nil {
				return nil, 0, err
			}
			seen := map[string]time.Time{}
			for _, e := range s.Entries {
				if _, ok := published[e.NotificationID]; ok {
					if _, dup := seen[e.NotificationID]; !dup {
						seen[e.NotificationID] = e.Time
					}
				}
			}
			if len(seen) == otps || time.Now().After(deadline) || ctx.Err() != nil {
				for _, id := range ids {
					if t, ok := seen[id]; ok {
						lat.Add(t.Sub(published[id]))
					}
				}
				sent = len(seen)
				break
			}
			if err := exitedErr(p)(); err != nil {
				return nil, 0, err
			}
			time.Sleep(500 * time.Millisecond)
		}
		return &lat, sent, nil
	}
	on, onSent, err := measure(true)
	if err != nil {
		return nil, fmt.Errorf("lanes on: %w", err)
	}
	off, offSent, err := measure(false)
	if err != nil {
		return nil, fmt.Errorf("one topic: %w", err)
	}
	b.cfg.logf("  lanes: %d of %d OTPs sent, p50 %s p99 %s; one topic: %d sent within %s", onSent, otps, ms(on.Quantile(0.5)), ms(on.Quantile(0.99)), offSent, window)
	baseline := fmt.Sprintf("%d of %d OTPs sent within %s (one topic: each behind the campaign)", offSent, otps, window)
	if offSent > 0 {
		baseline = fmt.Sprintf("p50 %s, p99 %s; %d of %d sent within %s (one topic)", ms(off.Quantile(0.5)), ms(off.Quantile(0.99)), offSent, otps, window)
	}
	ok := onSent == otps && on.Quantile(0.99) <= time.Second
	return []Row{{What: fmt.Sprintf("lanes: OTP latency, publish → provider call, while %d marketing notifications drain a sender limited to 80/s", bulkN),
		Figure: fmt.Sprintf("p50 %s, p99 %s (%d of %d sent)", ms(on.Quantile(0.5)), ms(on.Quantile(0.99)), onSent, otps), Baseline: baseline,
		Target: "p99 ≤ 1 s", Verdict: verdict(ok),
		Note: fmt.Sprintf("One dispatcher (WANOTIFY_DISPATCHER_RATE=80, burst 8) drains %d marketing notifications of one sender to the simulator (limit 100/s); once it sends, 200 OTPs are published one every 100 ms. Latency: from each OTP's produce call returning to its send in the simulator's ledger. Lanes: the campaign on notifications.bulk, the OTPs on notifications.critical. Baseline, same run: everything on notifications.requested (one topic, as before the lanes); OTPs not sent within %s are counted as not sent.", bulkN, window)}}, nil
}

// laneFairness: tenants A (20,000) and B (500) send bulk at once on one
// sender at 400/s; the figure is B's completion time over its fair-share
// time (500 at half the rate).
func (b *Bench) laneFairness(ctx context.Context) ([]Row, error) {
	const rate, bigN, smallN = 400, 20000, 500
	cl, err := b.cfg.NewCluster(ctx)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	sim, simURL, err := b.simulator(cl, fmt.Sprintf("WANOTIFY_SIM_RATE_LIMIT=%d", rate+100))
	if err != nil {
		return nil, err
	}
	defer b.stop("two tenants' bulk", sim)
	prefix := runID("lanes-fair", 0)
	big, err := laneRecords(topics.Bulk, ingestTenant, "marketing.weekly", prefix+"-a", bigN, 0)
	if err != nil {
		return nil, err
	}
	small, err := laneRecords(topics.Bulk, laneTenant, "marketing.weekly", prefix+"-b", smallN, 1_000_000)
	if err != nil {
		return nil, err
	}
	// At once: B's records among A's first ones.
	var recs []*kgo.Record
	smallIDs := map[string]bool{}
	for i, r := range big {
		recs = append(recs, r)
		if i%4 == 0 && i/4 < smallN {
			recs = append(recs, small[i/4])
			n, err := contract.DecodeNotification(small[i/4].Value)
			if err != nil {
				return nil, err
			}
			smallIDs[n.ID] = true
		}
	}
	if err := cl.Produce(ctx, recs); err != nil {
		return nil, err
	}
	start := time.Now()
	p, err := b.startDispatcher(cl, simURL, "dispatcher", "wanotify-bench-lanes-"+prefix, prefix,
		fmt.Sprintf("WANOTIFY_DISPATCHER_RATE=%d", rate), "WANOTIFY_DISPATCHER_RATE_BURST=8", "WANOTIFY_SENDERS="+laneSenders)
	if err != nil {
		return nil, err
	}
	defer b.stop("two tenants' bulk", p)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		s, err := ledger(simURL, true)
		if err != nil {
			return nil, err
		}
		var times []time.Time
		var first time.Time
		bigSent := 0
		for _, e := range s.Entries {
			if first.IsZero() {
				first = e.Time
			}
			if smallIDs[e.NotificationID] {
				times = append(times, e.Time)
			}
		}
		if len(times) == smallN {
			last := slices.MaxFunc(times, func(a, b time.Time) int { return a.Compare(b) })
			for _, e := range s.Entries {
				if !smallIDs[e.NotificationID] && !e.Time.After(last) {
					bigSent++
				}
			}
			took := last.Sub(first)
			fair := time.Duration(float64(smallN) / (rate / 2) * float64(time.Second))
			r := took.Seconds() / fair.Seconds()
			b.cfg.logf("  small tenant's %d done in %s (fair share %s): %.2f×; big tenant sent %d meanwhile", smallN, took, fair, r, bigSent)
			return []Row{{What: "lanes: fairness, tenant B's 500 bulk beside tenant A's 20,000 on one sender at 400/s: B's completion time / its fair-share time",
				Figure: fmt.Sprintf("%.2f× (%s)", r, ms(took)), Baseline: fmt.Sprintf("fair share %s (500 at half the rate)", ms(fair)),
				Target: "≤ 2×", Verdict: verdict(r <= 2),
				Note: fmt.Sprintf("Both tenants' records are produced to notifications.bulk at once (one of B's after every four of A's) before one dispatcher (WANOTIFY_DISPATCHER_RATE=%d, burst 8, default MAX_BULK_BUFFERED) starts; completion: from the first send to B's last in the simulator's ledger. A sent %d meanwhile.", rate, bigSent)}}, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("tenant B: %d of %d sent within 3 min (started %s ago)", len(times), smallN, time.Since(start).Round(time.Second))
		}
		if err := exitedErr(p)(); err != nil {
			return nil, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// laneMemory: the dispatcher's peak RSS with 1,000,000 bulk notifications
// queued, beside the same with 100,000 in the same run; and, for scale, with
// 10,000 (twice the bulk bound, so every partition's backlog fits one
// small fetch). Each runs for the same while.
func (b *Bench) laneMemory(ctx context.Context) ([]Row, error) {
	big := b.size(1_000_000, 200_000)
	mid := b.size(100_000, 50_000)
	small := 10_000
	hold := 30 * time.Second
	measure := func(n int) (int64, error) {
		cl, err := b.cfg.NewCluster(ctx)
		if err != nil {
			return 0, err
		}
		defer cl.Close()
		sim, simURL, err := b.simulator(cl, "WANOTIFY_SIM_RATE_LIMIT=100")
		if err != nil {
			return 0, err
		}
		defer b.stop("a bulk backlog", sim)
		prefix := runID("lanes-mem", n)
		for off := 0; off < n; off += 50_000 {
			recs, err := laneRecords(topics.Bulk, ingestTenant, "marketing.campaign", fmt.Sprintf("%s-%d", prefix, off), min(50_000, n-off), off)
			if err != nil {
				return 0, err
			}
			if err := cl.Produce(ctx, recs); err != nil {
				return 0, err
			}
		}
		p, err := b.startDispatcher(cl, simURL, "dispatcher", "wanotify-bench-lanes-"+prefix, prefix, "WANOTIFY_DISPATCHER_RATE=80")
		if err != nil {
			return 0, err
		}
		if err := waitAccepted(ctx, simURL, 80, 2*time.Minute, exitedErr(p)); err != nil {
			p.Stop(10 * time.Second)
			return 0, err
		}
		time.Sleep(hold)
		if err := exitedErr(p)(); err != nil {
			return 0, err
		}
		_, peak := p.RSS()
		b.stop(fmt.Sprintf("%d bulk notifications queued", n), p)
		return peak, nil
	}
	fits, err := measure(small)
	if err != nil {
		return nil, err
	}
	base, err := measure(mid)
	if err != nil {
		return nil, err
	}
	got, err := measure(big)
	if err != nil {
		return nil, err
	}
	r := float64(got) / float64(base)
	setup := fmt.Sprintf("The backlog is produced to notifications.bulk before one dispatcher (WANOTIFY_DISPATCHER_RATE=80, default MAX_BULK_BUFFERED=5000 and BULK_READERS=2) starts; peak RSS (VmHWM) after %s of sending.", hold)
	return []Row{
		{What: fmt.Sprintf("lanes: dispatcher peak RSS with %d bulk notifications queued", big), Figure: mb(got),
			Baseline: fmt.Sprintf("%s with %d queued", mb(base), mid), Ratio: fmt.Sprintf("%.2f×", r), Target: "≤ 1.25× (bounded: does not grow with the backlog)",
			Verdict: verdict(r <= 1.25),
			Note:    setup + " The backlog stays in Kafka: a bulk partition is read only to its part of MAX_BULK_BUFFERED, two partitions with a backlog at a time."},
		{What: fmt.Sprintf("lanes: dispatcher peak RSS with %d bulk notifications queued (fits the bound)", small), Figure: mb(fits),
			Baseline: "—", Ratio: fmt.Sprintf("%.2f× of it with %d", float64(got)/float64(fits), big), Target: "reported", Verdict: Reported,
			Note: setup + " Each partition's backlog is about one small fetch here; with a larger backlog every fetch of a partition brings at least a whole producer batch (thousands of records) of which only its share is kept, which is the difference."},
	}, nil
}

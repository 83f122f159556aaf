package dispatcher

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/topics"
)

// laneNote is a notification of tenant and event type to a recipient.
func laneNote(tenant, eventType, key string, to string) *contract.Notification {
	n := notification(key, to, "sender-1", "hello")
	n.Tenant, n.EventType = tenant, eventType
	n.ID = contract.NotificationID(tenant, key)
	return n
}

// ledgerIndex maps each accepted notification id to its place in the
// simulator's ledger (the order the provider took them).
func ledgerIndex(sim *simulator.Simulator) (map[string]int, []simulator.Entry) {
	entries := sim.Ledger().Entries
	idx := make(map[string]int, len(entries))
	for i, e := range entries {
		if _, ok := idx[e.NotificationID]; !ok {
			idx[e.NotificationID] = i
		}
	}
	return idx, entries
}

// TestOTPNeverWaitsBehindACampaign: one sender limited to 80/s, tenant
// A's 20,000 marketing notifications queued, then 200 OTPs of tenant B
// trickling in. In the provider's ledger every OTP comes within the first
// 80 sends (one second at the limit) after it was published: an order,
// not a timing, so it holds on a busy machine. The sender stays at its
// limit throughout (within 2%), and never gets a 429.
func TestOTPNeverWaitsBehindACampaign(t *testing.T) {
	const rate, bulkN, otpN = 80.0, 20000, 200
	e := newEnv(t, 4, simulator.Behavior{RateLimit: rate})
	cfg := testConfig("t-lanes-otp")
	cfg.Limits.Rate, cfg.Limits.Burst = rate, 8
	r := e.start(cfg)
	var bulk []*contract.Notification
	for i := range bulkN {
		bulk = append(bulk, laneNote("acme", "marketing.spring_sale", fmt.Sprintf("promo-%d", i), recipient(i)))
	}
	e.publishTo(topics.Bulk, bulk...)
	// The campaign is under way: its backlog is the sender's queue.
	deadline := time.Now().Add(60 * time.Second)
	for e.sim.Ledger().Accepted < 2*int(rate) {
		if time.Now().After(deadline) {
			t.Fatal("the campaign did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := make(map[string]int, otpN)
	var otps []string
	for i := range otpN {
		n := laneNote("globex", "otp", fmt.Sprintf("otp-%d", i), recipient(100000+i))
		before[n.ID] = e.sim.Ledger().Accepted
		e.publishTo(topics.Critical, n)
		otps = append(otps, n.ID)
		time.Sleep(50 * time.Millisecond)
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		idx, _ := ledgerIndex(e.sim)
		missing := 0
		for _, id := range otps {
			if _, ok := idx[id]; !ok {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d OTPs not sent within 60 s", missing, otpN)
		}
		time.Sleep(50 * time.Millisecond)
	}
	led := e.sim.Ledger()
	idx, entries := ledgerIndex(e.sim)
	if led.DroppedEntries != 0 {
		t.Fatalf("the ledger dropped %d entries: the order cannot be read", led.DroppedEntries)
	}
	worst := 0
	for _, id := range otps {
		after := idx[id] - before[id]
		worst = max(worst, after)
		if after > int(rate) {
			t.Errorf("OTP %s was the %d-th send after it was published, want within %d (one second at the limit)", id, after, int(rate))
		}
	}
	// The sender's rate over the OTP phase: from the first OTP's send to
	// the last one's, every send (campaign and OTPs) counts.
	first, last := len(entries), 0
	for _, id := range otps {
		first, last = min(first, idx[id]), max(last, idx[id])
	}
	span := entries[last].Time.Sub(entries[first].Time).Seconds()
	got := float64(last-first) / span
	if got < 0.98*rate || got > 1.02*rate {
		t.Errorf("sender rate %.1f/s during the OTPs, want within 2%% of %v", got, rate)
	}
	if led.Throttled != 0 {
		t.Errorf("%d sends throttled (429), want 0", led.Throttled)
	}
	// The campaign's backlog stayed in Kafka: at most MaxBulkBuffered
	// records of it (plus one fetch) were ever held.
	r.d.mu.Lock()
	buffered := r.d.buffered
	r.d.mu.Unlock()
	if limit := cfg.MaxBulkBuffered + 300; buffered > limit {
		t.Errorf("%d records buffered with a %d-notification backlog, want at most about %d", buffered, bulkN, cfg.MaxBulkBuffered)
	}
	t.Logf("OTPs: worst %d sends after publishing (limit %d); sender rate %.1f/s over %.1fs; %d buffered", worst, int(rate), got, span, buffered)
}

// TestSmallTenantGetsItsFairShare: tenants A (20,000) and B (500) send
// bulk at once on one sender. B's 500 are done within about twice what
// its fair share (half the sender) allows, while A keeps the rest of the
// rate.
func TestSmallTenantGetsItsFairShare(t *testing.T) {
	const rate, bigN, smallN = 400.0, 20000, 500
	e := newEnv(t, 4, simulator.Behavior{RateLimit: rate})
	cfg := testConfig("t-lanes-fair")
	cfg.Limits.Rate, cfg.Limits.Burst = rate, 8
	e.start(cfg)
	var ns []*contract.Notification
	var small []string
	for i := range bigN {
		ns = append(ns, laneNote("acme", "marketing.weekly", fmt.Sprintf("big-%d", i), recipient(i)))
		if i%4 == 0 && len(small) < smallN {
			n := laneNote("globex", "marketing.weekly", fmt.Sprintf("small-%d", i), recipient(200000+i))
			small = append(small, n.ID)
			ns = append(ns, n)
		}
	}
	e.publishTo(topics.Bulk, ns...)
	deadline := time.Now().Add(120 * time.Second)
	for {
		idx, _ := ledgerIndex(e.sim)
		done := 0
		for _, id := range small {
			if _, ok := idx[id]; ok {
				done++
			}
		}
		if done == smallN {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d of the small tenant's notifications sent", done, smallN)
		}
		time.Sleep(50 * time.Millisecond)
	}
	idx, entries := ledgerIndex(e.sim)
	var at []int
	for _, id := range small {
		at = append(at, idx[id])
	}
	lastSmall := slices.Max(at)
	// Its fair share is every other send: 500 in 1,000 sends; about
	// twice that is the bound.
	if lastSmall+1 > 2*2*smallN {
		t.Fatalf("the small tenant's last was send %d, want within %d (twice its fair share)", lastSmall+1, 2*2*smallN)
	}
	big := 0
	for _, en := range entries[:lastSmall+1] {
		if en.NotificationID != "" && !slices.Contains(small, en.NotificationID) {
			big++
		}
	}
	if big < smallN/2 {
		t.Fatalf("the big tenant got %d of the first %d sends: it must keep the rest of the rate", big, lastSmall+1)
	}
	t.Logf("small tenant done at send %d (fair share 1000, bound 2000); big tenant %d sends meanwhile", lastSmall+1, big)
}

// drainBulk publishes n bulk notifications before a dispatcher with cfg
// starts, calls sample (under the dispatcher's lock) every few
// milliseconds until the provider took them all, and fails unless each
// was delivered once.
func drainBulk(t *testing.T, cfg Config, n int, sample func(d *Dispatcher)) {
	t.Helper()
	e := newEnv(t, 4, simulator.Behavior{})
	w := e.watch()
	var ns []*contract.Notification
	var ids []string
	for i := range n {
		m := laneNote("acme", "campaign.autumn", fmt.Sprintf("%s-%d", cfg.Group, i), recipient(i))
		ns = append(ns, m)
		ids = append(ids, m.ID)
	}
	e.publishTo(topics.Bulk, ns...)
	r := e.start(cfg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e.sim.Ledger().Accepted < n {
			r.d.mu.Lock()
			sample(r.d)
			r.d.mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	for id, st := range w.waitTerminal(t, ids, 120*time.Second) {
		if st != contract.StatusAccepted {
			t.Fatalf("%s ended %s", id, st)
		}
	}
	<-done
	if led := e.sim.Ledger(); led.Accepted != n || led.DuplicateSends != 0 || led.DistinctNotifications != n {
		t.Fatalf("ledger: %d accepted, %d distinct, %d duplicates; want %d, %d, 0", led.Accepted, led.DistinctNotifications, led.DuplicateSends, n, n)
	}
}

// TestBulkBoundLosesNothing: a bulk backlog read through a small bound
// (partitions set back and paused again and again) is delivered whole,
// each notification once.
func TestBulkBoundLosesNothing(t *testing.T) {
	const n = 6000
	cfg := testConfig("t-lanes-bound")
	cfg.MaxBulkBuffered = 200
	peak := 0
	drainBulk(t, cfg, n, func(d *Dispatcher) { peak = max(peak, d.buffered) })
	if peak > cfg.MaxBulkBuffered {
		t.Fatalf("%d bulk records held at once, bound %d", peak, cfg.MaxBulkBuffered)
	}
	t.Logf("%d delivered once through a bound of %d (peak %d held)", n, cfg.MaxBulkBuffered, peak)
}

// TestBulkBacklogIsReadAFewPartitionsAtATime: a bulk backlog is read a few
// partitions at a time, and producer batches larger than a fetch asks of a
// partition are still read: 6,000 published at once over 4 partitions
// (about one batch each), each fetch asking 4 KiB of a partition, one
// partition with a backlog read at a time.
func TestBulkBacklogIsReadAFewPartitionsAtATime(t *testing.T) {
	const n = 6000
	cfg := testConfig("t-lanes-readers")
	cfg.MaxBulkBuffered = 400
	cfg.BulkReaders = 1
	cfg.FetchPartitionBytes = 4 << 10
	most := 0
	drainBulk(t, cfg, n, func(d *Dispatcher) { most = d.mostBulkBacklogsRead })
	if most < 1 || most > cfg.BulkReaders {
		t.Fatalf("at most %d bulk partitions with a backlog read at once, want 1 (BulkReaders %d)", most, cfg.BulkReaders)
	}
	t.Logf("%d delivered once; at most %d partition with a backlog read at once", n, most)
}

package dispatcher

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/dispatcher/pairrate"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/simulator"
)

// pairRules is the simulator enforcing WhatsApp's pair rate at one
// message per interval per sender and recipient (131056 above it).
func pairRules(interval time.Duration) simulator.Behavior {
	return simulator.Behavior{Rules: simulator.Rules{PairRate: float64(time.Second) / float64(interval), PairBurst: 1}}
}

// sendsTo returns the times the simulator accepted sends to recipient,
// in order.
func sendsTo(led simulator.Snapshot, recipient string) []time.Time {
	var ts []time.Time
	for _, e := range led.Entries {
		if e.Recipient == recipient {
			ts = append(ts, e.Time)
		}
	}
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	return ts
}

func pairLimited(led simulator.Snapshot) int {
	return led.Failures[fmt.Sprintf("meta_%d", provider.MetaPairRate)]
}

// TestPairPacingHoldsOneRecipientOnly: 20 notifications to one recipient
// among 2,000 to others, one sender. The busy recipient's messages reach
// the provider at least the pair interval apart and none is answered
// 131056; the others are not held behind it: all of them are sent before
// the busy recipient's last message, which cannot go before 19 intervals.
func TestPairPacingHoldsOneRecipientOnly(t *testing.T) {
	const interval, busyN, othersN = time.Second, 20, 2000
	e := newEnv(t, 4, pairRules(interval))
	w := e.watch()
	const busy = "+14155550123"
	var ns []*contract.Notification
	var ids []string
	for i := range othersN {
		if i%(othersN/busyN) == 0 {
			n := notification(fmt.Sprintf("busy-%d", len(ns)), busy, "sender-1", "hello")
			ns, ids = append(ns, n), append(ids, n.ID)
		}
		n := notification(fmt.Sprintf("other-%d", i), fmt.Sprintf("+4471%08d", i), "sender-1", "hello")
		ns, ids = append(ns, n), append(ids, n.ID)
	}
	cfg := testConfig("pacing-1")
	cfg.PairRate = pairrate.Config{Interval: interval, Burst: 1}
	e.start(cfg)
	e.publish(ns...)
	term := w.waitTerminal(t, ids, 3*time.Minute)
	for id, st := range term {
		if st != contract.StatusAccepted {
			t.Fatalf("%s ended %s, want accepted", id, st)
		}
	}
	led := e.sim.Ledger()
	if n := pairLimited(led); n != 0 {
		t.Fatalf("%d × 131056: pair pacing let a message go early", n)
	}
	ts := sendsTo(led, busy)
	if len(ts) != busyN {
		t.Fatalf("%d sends to the busy recipient, want %d", len(ts), busyN)
	}
	for i := 1; i < len(ts); i++ {
		if gap := ts[i].Sub(ts[i-1]); gap < interval {
			t.Fatalf("sends %d and %d to the busy recipient %s apart, want at least %s", i, i+1, gap, interval)
		}
	}
	var lastOther time.Time
	for _, en := range led.Entries {
		if en.Recipient != busy && en.Time.After(lastOther) {
			lastOther = en.Time
		}
	}
	if !lastOther.Before(ts[busyN-1]) {
		t.Fatalf("the last other recipient was sent at %s, after the busy recipient's last send (%s): others waited behind it",
			lastOther.Format(time.RFC3339Nano), ts[busyN-1].Format(time.RFC3339Nano))
	}
	t.Logf("busy recipient: %d sends over %s; %d others done %s after the first busy send",
		len(ts), ts[busyN-1].Sub(ts[0]).Round(time.Millisecond), othersN, lastOther.Sub(ts[0]).Round(time.Millisecond))
}

// TestPairPacingSurvivesARebalance: one dispatcher sends to a recipient
// and stops; the next owner of the partition restores the pair from
// notifications.pacing and holds the next message to that recipient
// until the interval has passed since the first, so the provider answers
// no 131056.
func TestPairPacingSurvivesARebalance(t *testing.T) {
	const interval = 10 * time.Second
	e := newEnv(t, 4, pairRules(interval))
	w := e.watch()
	const busy = "+14155550123"
	cfg := testConfig("pacing-a")
	cfg.PairRate = pairrate.Config{Interval: interval, Burst: 1}
	a := e.start(cfg)
	first := notification("first", busy, "sender-1", "one")
	e.publish(first)
	w.waitTerminal(t, []string{first.ID}, time.Minute)
	a.stop(t)

	cfg.TransactionalID = "pacing-b"
	e.start(cfg)
	second := notification("second", busy, "sender-1", "two")
	e.publish(second)
	if st := w.waitTerminal(t, []string{second.ID}, 2*time.Minute)[second.ID]; st != contract.StatusAccepted {
		t.Fatalf("second ended %s", st)
	}
	led := e.sim.Ledger()
	if n := pairLimited(led); n != 0 {
		t.Fatalf("%d × 131056: the new owner did not know the pair's last send", n)
	}
	ts := sendsTo(led, busy)
	if len(ts) != 2 || ts[1].Sub(ts[0]) < interval {
		t.Fatalf("sends to the recipient at %v, want two at least %s apart", ts, interval)
	}
}

// TestRefusedSendDoesNotPaceThePair: WhatsApp counts messages sent, not
// attempts. A send the provider refused (here 131026, undeliverable) gives
// the pair's slot back, so the next message to that recipient goes at
// once instead of a pair interval later.
func TestRefusedSendDoesNotPaceThePair(t *testing.T) {
	const interval = 30 * time.Second
	e := newEnv(t, 4, pairRules(interval))
	w := e.watch()
	const busy = "+14155550123"
	cfg := testConfig("pacing-refused")
	cfg.PairRate = pairrate.Config{Interval: interval, Burst: 1}
	e.start(cfg)
	refused := notification("refused", busy, "sender-1", "[sim:meta_131026] hello")
	next := notification("next", busy, "sender-1", "hello again")
	e.publish(refused, next)
	term := w.waitTerminal(t, []string{refused.ID, next.ID}, time.Minute)
	if term[refused.ID] != contract.StatusFailed || term[next.ID] != contract.StatusAccepted {
		t.Fatalf("ended %v, want the first failed and the second accepted", term)
	}
	led := e.sim.Ledger()
	if len(led.Rejections) != 1 || len(led.Entries) != 1 {
		t.Fatalf("%d rejections, %d sends: want one of each", len(led.Rejections), len(led.Entries))
	}
	if gap := led.Entries[0].Time.Sub(led.Rejections[0].Time); gap >= interval/2 {
		t.Fatalf("the second message went %s after the refused one: a refused send paced the pair", gap)
	}
}

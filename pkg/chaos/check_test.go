package chaos

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/sdk"
	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/topics"
)

// healthy is the evidence of a small run where everything went right:
// n1 delivered, n2 failed permanently, n3 dead-lettered after its retries,
// n4 expired, n5 outcome_unknown after the provider took it, n6
// outcome_unknown before it reached the provider, n7 published twice, and
// one poison record with a notification id; sender-00's account faulted
// twice, and n1 was held meanwhile.
func healthy() *evidence {
	it := func(id string, k kind) item {
		return item{kind: k, id: id, recipient: "+447100000001", sender: "sender-00"}
	}
	poisonAt := origin{topics.Requested, 3, 17}
	ev := &evidence{
		accepted: map[string]item{
			"n1": it("n1", kindNormal), "n2": it("n2", kindReject), "n3": it("n3", kindExhaust), "n4": it("n4", kindSkewed),
			"n5": it("n5", kindNormal), "n6": it("n6", kindNormal), "n7": it("n7", kindDuplicate),
		},
		poison: map[origin]string{poisonAt: "p1"},
		ledger: simulator.Snapshot{
			Entries: []simulator.Entry{
				{NotificationID: "n1", MessageID: "m1", Recipient: "+447100000001", Sender: numberID("sender-00")},
				{NotificationID: "n5", MessageID: "m5", Recipient: "+447100000001", Sender: numberID("sender-00")},
				{NotificationID: "n7", MessageID: "m7", Recipient: "+447100000001", Sender: numberID("sender-00")},
			},
			MaxPerSecond: map[string]int{"sender-00": 3},
			Failures:     map[string]int{"http_503": 4, "meta_131026": 1, "meta_190": 2},
		},
		requestedIDs: map[string]int{"n1": 1, "n2": 1, "n3": 1, "n4": 1, "n5": 1, "n6": 1, "n7": 2},
		dlq: []dlqRecord{
			{reason: envelope.ReasonExhausted, notificationID: "n3", origin: origin{topics.Requested, 1, 5}},
			{reason: envelope.ReasonPoison, notificationID: "p1", origin: poisonAt},
		},
		logs: map[string]logRow{
			"n1": {status: "read", providerMessageID: "m1", accepted: true, sent: true},
			"n2": {status: "failed", errorCode: "meta_131026"},
			"n3": {status: "dead_lettered", errorCode: "http_503"},
			"n4": {status: "expired"},
			"n5": {status: "delivered", providerMessageID: "m5", sent: true, outcomeUnknown: true},
			"n6": {status: "outcome_unknown", outcomeUnknown: true},
			"n7": {status: "sent", providerMessageID: "m7", accepted: true, sent: true, duplicates: 1},
			"p1": {status: "dead_lettered"},
		},
		outcomes: map[string][]string{
			"n1": {"accepted"}, "n2": {"failed"}, "n3": {"dead_lettered"}, "n4": {"expired"},
			"n5": {"outcome_unknown"}, "n6": {"outcome_unknown"}, "n7": {"accepted"},
		},
	}
	ev.deadLetters = append([]dlqRecord(nil), ev.dlq...)
	ev.faulted, ev.held, ev.endedOnFault = "sender-00", map[string]int{"n1": 1}, map[string]string{}
	return ev
}

func invariant(t *testing.T, invs []Invariant, name string) Invariant {
	t.Helper()
	for _, inv := range invs {
		if inv.Name == name {
			return inv
		}
	}
	t.Fatalf("no invariant %q", name)
	return Invariant{}
}

func TestHealthyRunPassesEveryInvariant(t *testing.T) {
	invs := check(healthy(), true)
	r := &Report{Invariants: invs}
	var b strings.Builder
	r.Write(&b)
	if !r.OK() {
		t.Fatalf("a healthy run failed:\n%s", b.String())
	}
	for _, want := range []string{
		"7 of 7", "status: sent 1, delivered 1, read 1, failed 1, dead_lettered 1, outcome_unknown 1, expired 1",
		"interrupted calls (outcome_unknown): 2; resolved by the dispatcher 0 (webhook or resend); shown sent by a later webhook 1",
		"unresolved: 1 of 7 notifications (14.286%), of which the provider had taken 0",
		"1 exhausted + 1 poison", "every invariant holds",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

// TestResolvedInterruptedCallsAreOneOutcome: an interrupted call the
// dispatcher settled later (n6 resent and accepted) counts as resolved,
// its resolution is its outcome, and every invariant still holds.
func TestResolvedInterruptedCallsAreOneOutcome(t *testing.T) {
	ev := healthy()
	ev.outcomes["n6"] = []string{"accepted", "outcome_unknown"}
	ev.logs["n6"] = logRow{status: "delivered", providerMessageID: "m6", accepted: true, sent: true, outcomeUnknown: true}
	ev.ledger.Entries = append(ev.ledger.Entries, simulator.Entry{NotificationID: "n6", MessageID: "m6", Recipient: "+447100000001", Sender: numberID("sender-00")})
	invs := check(ev, true)
	r := &Report{Invariants: invs}
	var b strings.Builder
	r.Write(&b)
	if !r.OK() {
		t.Fatalf("a resolved interrupted call failed the run:\n%s", b.String())
	}
	for _, want := range []string{
		"interrupted calls (outcome_unknown): 2; resolved by the dispatcher 1 (webhook or resend); shown sent by a later webhook 1",
		"unresolved: 0 of 7 notifications (0.000%)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

// Each violation must fail exactly the invariant that promises against it.
func TestEachViolationFailsItsInvariant(t *testing.T) {
	cases := []struct {
		name    string
		breakIt func(ev *evidence)
		fails   []string
		problem string
	}{
		{"notification lost before ClickHouse", func(ev *evidence) { delete(ev.logs, "n1") },
			[]string{InvTerminal, InvLedger}, "n1 (normal): no row in communication_logs"},
		{"stuck in a retry", func(ev *evidence) { ev.logs["n2"] = logRow{status: "retry_scheduled"}; delete(ev.outcomes, "n2") },
			[]string{InvTerminal, InvLedger}, `status "retry_scheduled" is not terminal`},
		{"two outcomes", func(ev *evidence) { ev.outcomes["n1"] = []string{"accepted", "failed"} },
			[]string{InvTerminal, InvLedger}, "dispatcher outcomes [accepted failed], want exactly one"},
		{"an interrupted call resolved twice", func(ev *evidence) { ev.outcomes["n1"] = []string{"accepted", "failed", "outcome_unknown"} },
			[]string{InvTerminal, InvLedger}, "dispatcher outcomes [accepted failed outcome_unknown], want exactly one"},
		{"acknowledged but not in the topic", func(ev *evidence) { delete(ev.requestedIDs, "n6") },
			[]string{InvTerminal}, "acknowledged but not in its lane's topic"},
		{"sent twice", func(ev *evidence) {
			ev.ledger.Entries = append(ev.ledger.Entries, simulator.Entry{NotificationID: "n1", MessageID: "m1b", Recipient: "+447100000001", Sender: numberID("sender-00")})
		}, []string{InvNoDupSend, InvLedger}, "n1 sent 2 times"},
		{"sent though never accepted", func(ev *evidence) {
			ev.ledger.Entries = append(ev.ledger.Entries, simulator.Entry{NotificationID: "p1", MessageID: "mp"})
		}, []string{InvNoDupSend}, `"p1" sent (1 times) but never accepted`},
		{"a repeated key the provider absorbed", func(ev *evidence) { ev.ledger.IdempotentReplays = 2 },
			[]string{InvNoDupSend}, "2 sends repeated an idempotency key"},
		{"throttled", func(ev *evidence) {
			ev.ledger.Throttled, ev.ledger.ThrottledBySender = 2, map[string]int{"sender-00": 2}
		}, []string{InvNo429}, "sender sender-00 throttled 2 times"},
		{"dead-lettered but not on the DLQ", func(ev *evidence) { ev.dlq = ev.dlq[1:]; ev.deadLetters = ev.deadLetters[1:] },
			[]string{InvDLQ}, "n3 (exhaust) is dead_lettered but not in notifications.dlq"},
		{"on the DLQ but delivered", func(ev *evidence) {
			ev.dlq = append(ev.dlq, dlqRecord{reason: envelope.ReasonExhausted, notificationID: "n1"})
			ev.deadLetters = append(ev.deadLetters, dlqRecord{reason: envelope.ReasonExhausted, notificationID: "n1"})
		}, []string{InvDLQ}, "n1 is in notifications.dlq (exhausted) but its outcome is [accepted]"},
		{"poison lost", func(ev *evidence) { ev.dlq = ev.dlq[:1] },
			[]string{InvDLQ}, "injected poison record notifications.requested/3@17 is not in notifications.dlq"},
		{"DLQ headers unreadable", func(ev *evidence) {
			ev.dlq = append(ev.dlq, dlqRecord{err: envelope.ErrNoEnvelope, origin: origin{topics.DLQ, 0, 9}})
		}, []string{InvDLQ}, "failure headers do not parse"},
		{"ClickHouse lost a dead letter", func(ev *evidence) { ev.deadLetters = ev.deadLetters[1:] },
			[]string{InvDLQ}, "dead_letters holds 0 exhausted notifications, notifications.dlq 1"},
		{"wrong provider message id", func(ev *evidence) { r := ev.logs["n1"]; r.providerMessageID = "other"; ev.logs["n1"] = r },
			[]string{InvLedger}, `provider message id "other", the ledger has "m1"`},
		{"accepted without a send", func(ev *evidence) { ev.ledger.Entries = ev.ledger.Entries[1:] },
			[]string{InvLedger}, "recorded accepted (m1) but the provider never took it"},
		{"webhooks lost", func(ev *evidence) { r := ev.logs["n7"]; r.sent, r.status = false, "accepted"; ev.logs["n7"] = r },
			[]string{InvLedger}, "no sent_at"},
		{"expired though sent", func(ev *evidence) {
			ev.ledger.Entries = append(ev.ledger.Entries, simulator.Entry{NotificationID: "n4", MessageID: "m4", Recipient: "+447100000001", Sender: numberID("sender-00")})
		}, []string{InvLedger}, "the provider took it (m4) but the dispatcher recorded expired"},
		{"exhausted one delivered", func(ev *evidence) {
			ev.outcomes["n3"] = []string{"failed"}
			ev.logs["n3"] = logRow{status: "failed"}
			ev.dlq, ev.deadLetters = ev.dlq[1:], ev.deadLetters[1:]
		}, []string{InvLedger}, "n3 (exhaust): outcome failed, want dead_lettered"},
		{"duplicate not suppressed", func(ev *evidence) { r := ev.logs["n7"]; r.duplicates = 0; ev.logs["n7"] = r },
			[]string{InvLedger}, "published twice but no suppressed duplicate recorded"},
		{"failed on an account fault", func(ev *evidence) { ev.endedOnFault["n2"] = "meta_190" },
			[]string{InvHalt}, "n2 ended on the account fault meta_190"},
		{"another sender's notification held", func(ev *evidence) { ev.faulted = "sender-01" },
			[]string{InvHalt}, `n1 of sender-00 held, but only "sender-01"'s account faulted`},
		{"the fault answered but nothing held", func(ev *evidence) { ev.held = map[string]int{} },
			[]string{InvHalt}, "the provider answered 2 calls with an account fault, yet nothing was held"},
		{"the fault never reached the provider", func(ev *evidence) { delete(ev.ledger.Failures, "meta_190"); ev.held = map[string]int{} },
			[]string{InvHalt}, "sender-00's account fault was switched on, but the provider never answered a call with it"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := healthy()
			tc.breakIt(ev)
			invs := check(ev, true)
			failed := map[string]bool{}
			for _, inv := range invs {
				if !inv.OK {
					failed[inv.Name] = true
				}
			}
			for _, name := range tc.fails {
				if !failed[name] {
					t.Errorf("%q did not fail", name)
				}
				delete(failed, name)
			}
			for name := range failed {
				t.Errorf("%q failed too", name)
			}
			var all []string
			for _, name := range tc.fails {
				all = append(all, invariant(t, invs, name).Problems...)
			}
			found := false
			for _, p := range all {
				found = found || strings.Contains(p, tc.problem)
			}
			if !found {
				t.Errorf("no problem mentions %q: %q", tc.problem, all)
			}
		})
	}
}

func TestWebhooksGivenUpDoNotRequireSent(t *testing.T) {
	ev := healthy()
	r := ev.logs["n7"]
	r.sent, r.status = false, "accepted"
	ev.logs["n7"] = r
	if inv := invariant(t, check(ev, false), InvLedger); !inv.OK {
		t.Fatalf("with webhooks given up, a message without sent_at is expected: %v", inv.Problems)
	}
}

func TestWorkloadIsDeterministicAndHasEveryKind(t *testing.T) {
	cfg := Short()
	a, b := workload(cfg), workload(cfg)
	if len(a) != cfg.N {
		t.Fatalf("%d items, want %d", len(a), cfg.N)
	}
	kinds := map[kind]int{}
	ids := map[string]bool{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("item %d differs between two draws with one seed: %+v %+v", i, a[i], b[i])
		}
		kinds[a[i].kind]++
		if ids[a[i].id] {
			t.Fatalf("notification id %s drawn twice", a[i].id)
		}
		ids[a[i].id] = true
		if _, err := buildCheck(a[i]); err != nil {
			t.Fatalf("item %d (%s) is not a valid request: %v", i, a[i].kind, err)
		}
	}
	for k := kindNormal; k <= kindDuplicate; k++ {
		if kinds[k] == 0 {
			t.Errorf("no %s notification among %d", k, cfg.N)
		}
	}
	cfg.Seed = 2
	if c := workload(cfg); c[0] == a[0] && c[1] == a[1] {
		t.Error("another seed drew the same workload")
	}
}

// buildCheck builds it as the SDK would and checks its id.
func buildCheck(it item) (string, error) {
	r := it.request(time.Now())
	n, err := sdk.Build(tenant, &r, sdk.BuildOptions{SourceService: "chaos"}, time.Now())
	if err != nil {
		return "", err
	}
	if n.ID != it.id {
		return "", fmt.Errorf("id %s, want %s", n.ID, it.id)
	}
	return n.ID, nil
}

// The injected records must really be poison: a record the dispatcher
// could deliver would be sent instead of dead-lettered.
func TestInjectedRecordsArePoison(t *testing.T) {
	recs, ids := poisonRecords(16, 1)
	if len(ids) == 0 {
		t.Fatal("no poison record carries a notification id")
	}
	for i, r := range recs {
		if _, err := contract.DecodeNotification(r.Value); err == nil {
			t.Errorf("poison record %d (%q) decodes as a notification", i, r.Value)
		}
		if r.Topic != topics.Requested || len(r.Key) == 0 {
			t.Errorf("poison record %d: topic %s key %q", i, r.Topic, r.Key)
		}
	}
	rrecs, _ := retryPoisonRecords(2, 1)
	for i, r := range rrecs {
		if _, err := contract.DecodeNotification(r.Value); err != nil {
			t.Errorf("retry poison %d: the value should be a valid notification (only its headers are bad): %v", i, err)
		}
		if _, err := envelope.Parse(r.Headers); err == nil {
			t.Errorf("retry poison %d: its failure headers parse", i)
		}
	}
}

package chaos

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/topics"
)

// Invariant names, in the order of the report.
const (
	InvTerminal  = "every accepted notification reached exactly one terminal state"
	InvNoDupSend = "zero duplicate provider sends"
	InvNo429     = "zero 429s from the provider"
	InvDLQ       = "the DLQ holds exactly the exhausted and poison records"
	InvLedger    = "communication_logs agrees with the ledger, notification by notification"
	InvHalt      = "an account fault holds its sender's notifications, never fails them"
)

// check evaluates every invariant on ev. webhooksComplete says the
// simulator delivered every status webhook it scheduled (none given up or
// dropped); only then must every message the provider took show "sent".
func check(ev *evidence, webhooksComplete bool) []Invariant {
	ids := make([]string, 0, len(ev.accepted))
	for id := range ev.accepted {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	sends := map[string][]simulator.Entry{}
	for _, e := range ev.ledger.Entries {
		sends[e.NotificationID] = append(sends[e.NotificationID], e)
	}
	return []Invariant{
		checkTerminal(ev, ids),
		checkDuplicates(ev, sends),
		checkThrottling(ev),
		checkDLQ(ev, ids),
		checkLedger(ev, ids, sends, webhooksComplete),
		checkHalt(ev),
	}
}

// checkHalt: no notification ended on an account fault (failed or
// dead-lettered naming one), only the faulted sender's notifications were
// held, and when the provider answered the fault at all, the dispatchers
// held its notifications. That they then
// reached a terminal state is InvTerminal's.
func checkHalt(ev *evidence) Invariant {
	var p problems
	ids := make([]string, 0, len(ev.endedOnFault))
	for id := range ev.endedOnFault {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		p.add("%s ended on the account fault %s", id, ev.endedOnFault[id])
	}
	held := make([]string, 0, len(ev.held))
	for id := range ev.held {
		held = append(held, id)
	}
	sort.Strings(held)
	for _, id := range held {
		if it, ok := ev.accepted[id]; ok && it.sender != ev.faulted {
			p.add("%s of %s held, but only %q's account faulted", id, it.sender, ev.faulted)
		}
	}
	calls := 0
	for _, r := range provider.Table() {
		if r.Class == provider.AccountFault {
			calls += ev.ledger.Failures[fmt.Sprintf("meta_%d", r.Code)]
		}
	}
	switch {
	case calls > 0 && len(ev.held) == 0:
		p.add("the provider answered %d calls with an account fault, yet nothing was held", calls)
	case ev.faulted != "" && calls == 0:
		p.add("%s's account fault was switched on, but the provider never answered a call with it", ev.faulted)
	}
	detail := "no account fault injected"
	if ev.faulted != "" {
		detail = fmt.Sprintf("%s's access token revoked: %d calls answered with the fault, %d of its notifications held on %s until a probe found it working", ev.faulted, calls, len(ev.held), topics.Held)
	}
	return Invariant{
		Name:     InvHalt,
		Count:    fmt.Sprintf("%d ended on the fault", len(ev.endedOnFault)),
		OK:       p.total == 0,
		Detail:   detail,
		Problems: p.list, Total: p.total,
	}
}

func isTerminal(status string) bool { return slices.Contains(terminalStatuses, status) }

// outcome is the one dispatcher outcome of id, or "" when there is not
// exactly one. An interrupted call the dispatcher resolved later (a
// webhook showed the provider took it, or it was resent: policy verify)
// has outcome_unknown and then its resolution, which is its outcome.
func (ev *evidence) outcome(id string) string {
	o := ev.outcomes[id]
	switch {
	case len(o) == 1:
		return o[0]
	case len(o) == 2 && o[0] == "outcome_unknown":
		return o[1]
	case len(o) == 2 && o[1] == "outcome_unknown":
		return o[0]
	}
	return ""
}

func checkTerminal(ev *evidence, ids []string) Invariant {
	var p problems
	byStatus := map[string]int{}
	byOutcome := map[string]int{}
	badIDs := 0
	for _, id := range ids {
		bad := false
		if ev.requestedIDs[id] == 0 {
			p.add("%s: acknowledged but not in %s", id, "its lane's topic (notifications.critical, .requested or .bulk)")
			bad = true
		}
		row, ok := ev.logs[id]
		switch {
		case !ok:
			p.add("%s (%s): no row in communication_logs", id, ev.accepted[id].kind)
			bad = true
		case !isTerminal(row.status):
			p.add("%s (%s): status %q is not terminal", id, ev.accepted[id].kind, row.status)
			bad = true
		}
		if o := ev.outcome(id); o == "" {
			p.add("%s (%s): dispatcher outcomes %v, want exactly one (or outcome_unknown and its resolution)", id, ev.accepted[id].kind, ev.outcomes[id])
			bad = true
		} else {
			byOutcome[o]++
		}
		if bad {
			badIDs++
		} else {
			byStatus[row.status]++
		}
	}
	return Invariant{
		Name:  InvTerminal,
		Count: fmt.Sprintf("%d of %d", len(ids)-badIDs, len(ids)),
		OK:    p.total == 0 && len(ids) > 0,
		Detail: "status: " + tally(byStatus, terminalStatuses) + "\n" +
			"dispatcher outcome: " + tally(byOutcome, dispatcherOutcomes),
		Problems: p.list, Total: p.total,
	}
}

func checkDuplicates(ev *evidence, sends map[string][]simulator.Entry) Invariant {
	var p problems
	dups := 0
	for id, es := range sends {
		if len(es) > 1 {
			dups += len(es) - 1
			p.add("%s sent %d times (dispatcher outcome %v)", id, len(es), ev.outcomes[id])
		}
		if _, ok := ev.accepted[id]; !ok {
			p.add("%q sent (%d times) but never accepted", id, len(es))
		}
	}
	for k, n := range ev.ledger.DuplicateKeys {
		p.add("idempotency key %q sent %d times", k, n)
	}
	if ev.ledger.IdempotentReplays > 0 {
		p.add("%d sends repeated an idempotency key the provider had taken (answered from its first send)", ev.ledger.IdempotentReplays)
	}
	u := ev.unknowns(sends)
	return Invariant{
		Name:  InvNoDupSend,
		Count: fmt.Sprintf("%d", dups+ev.ledger.IdempotentReplays),
		OK:    p.total == 0,
		Detail: fmt.Sprintf("provider accepted %d sends for %d notifications\n"+
			"interrupted calls (outcome_unknown): %d; resolved by the dispatcher %d (webhook or resend); shown sent by a later webhook %d\n"+
			"unresolved: %d of %d notifications (%.3f%%), of which the provider had taken %d",
			len(ev.ledger.Entries), len(sends), u.interrupted, u.resolved, u.byWebhook,
			u.unresolved, len(ev.accepted), 100*float64(u.unresolved)/float64(max(len(ev.accepted), 1)), u.unresolvedTaken),
		Problems: p.list, Total: p.total,
	}
}

// unknownTally counts the notifications whose provider call was
// interrupted, by how they ended.
type unknownTally struct {
	interrupted     int // an outcome_unknown event at some point
	resolved        int // the dispatcher settled it later (webhook or resend)
	byWebhook       int // left outcome_unknown by the dispatcher, but a webhook shows it sent
	unresolved      int // nothing tells whether the person got it
	unresolvedTaken int // unresolved, though the provider's ledger has it
}

func (ev *evidence) unknowns(sends map[string][]simulator.Entry) unknownTally {
	var u unknownTally
	for id := range ev.accepted {
		if !slices.Contains(ev.outcomes[id], "outcome_unknown") {
			continue
		}
		u.interrupted++
		row := ev.logs[id]
		switch {
		case ev.outcome(id) != "outcome_unknown":
			u.resolved++
		case row.sent:
			u.byWebhook++
		default:
			u.unresolved++
			if len(sends[id]) > 0 {
				u.unresolvedTaken++
			}
		}
	}
	return u
}

func checkThrottling(ev *evidence) Invariant {
	var p problems
	for s, n := range ev.ledger.ThrottledBySender {
		p.add("sender %s throttled %d times", s, n)
	}
	if ev.ledger.Throttled > 0 && len(ev.ledger.ThrottledBySender) == 0 {
		p.add("%d sends throttled", ev.ledger.Throttled)
	}
	peak, peakSender := 0, ""
	for s, n := range ev.ledger.MaxPerSecond {
		if n > peak || (n == peak && s < peakSender) {
			peak, peakSender = n, s
		}
	}
	codes := make([]string, 0, len(ev.ledger.Failures))
	for c := range ev.ledger.Failures {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	var fs []string
	for _, c := range codes {
		fs = append(fs, fmt.Sprintf("%s %d", c, ev.ledger.Failures[c]))
	}
	return Invariant{
		Name:  InvNo429,
		Count: fmt.Sprintf("%d", ev.ledger.Throttled),
		OK:    ev.ledger.Throttled == 0 && p.total == 0,
		Detail: fmt.Sprintf("busiest second of any sender: %d sends (%s; provider limit 50/s)\n", peak, peakSender) +
			"provider errors answered: " + strings.Join(fs, ", "),
		Problems: p.list, Total: p.total,
	}
}

func checkDLQ(ev *evidence, ids []string) Invariant {
	var p problems
	want := map[string]bool{}
	for _, id := range ids {
		if ev.outcome(id) == "dead_lettered" {
			want[id] = true
		}
	}
	exhausted, poison := dlqSets(ev.dlq, &p, "notifications.dlq")
	for id := range want {
		if !exhausted[id] {
			p.add("%s (%s) is dead_lettered but not in notifications.dlq", id, ev.accepted[id].kind)
		}
	}
	for id := range exhausted {
		if !want[id] {
			p.add("%s is in notifications.dlq (exhausted) but its outcome is %v", id, ev.outcomes[id])
		}
	}
	for o := range ev.poison {
		if !poison[o] {
			p.add("injected poison record %s is not in notifications.dlq", o)
		}
	}
	for o := range poison {
		if _, ok := ev.poison[o]; !ok {
			p.add("notifications.dlq holds poison from %s, which was not injected", o)
		}
	}
	// The sink's copy in ClickHouse must hold the same.
	chExhausted, chPoison := dlqSets(ev.deadLetters, &p, "dead_letters")
	if !sameKeys(chExhausted, exhausted) {
		p.add("dead_letters holds %d exhausted notifications, notifications.dlq %d", len(chExhausted), len(exhausted))
	}
	if !sameKeys(chPoison, poison) {
		p.add("dead_letters holds %d poison records, notifications.dlq %d", len(chPoison), len(poison))
	}
	// A poison record that named a notification is recorded as dead-lettered.
	for o, id := range ev.poison {
		if id == "" {
			continue
		}
		if row, ok := ev.logs[id]; !ok || row.status != "dead_lettered" {
			p.add("poison %s (notification %s) is not dead_lettered in communication_logs (%q)", o, id, row.status)
		}
	}
	return Invariant{
		Name:  InvDLQ,
		Count: fmt.Sprintf("%d exhausted + %d poison", len(exhausted), len(poison)),
		OK:    p.total == 0,
		Detail: fmt.Sprintf("expected %d dead-lettered notifications + %d injected poison records; %d DLQ records in the log",
			len(want), len(ev.poison), len(ev.dlq)),
		Problems: p.list, Total: p.total,
	}
}

// dlqSets splits dead letters into exhausted notification ids and poison
// origins; anything else is a problem.
func dlqSets(recs []dlqRecord, p *problems, where string) (exhausted map[string]bool, poison map[origin]bool) {
	exhausted, poison = map[string]bool{}, map[origin]bool{}
	for _, r := range recs {
		switch {
		case r.err != nil:
			p.add("%s record at %s: failure headers do not parse: %v", where, r.origin, r.err)
		case r.reason == envelope.ReasonExhausted:
			exhausted[r.notificationID] = true
		case r.reason == envelope.ReasonPoison:
			poison[r.origin] = true
		default:
			p.add("%s record of %s from %s has reason %q", where, r.notificationID, r.origin, r.reason)
		}
	}
	return exhausted, poison
}

func sameKeys[K comparable](a, b map[K]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func checkLedger(ev *evidence, ids []string, sends map[string][]simulator.Entry, webhooksComplete bool) Invariant {
	var p problems
	took, notTook := 0, 0
	notTookBy := map[string]int{}
	agree := 0
	for _, id := range ids {
		it := ev.accepted[id]
		row, ok := ev.logs[id]
		o := ev.outcome(id)
		es := sends[id]
		if !ok || o == "" {
			p.add("%s (%s): no single outcome in ClickHouse to compare", id, it.kind)
			continue
		}
		before := p.total
		switch len(es) {
		case 0:
			notTook++
			notTookBy[o]++
			switch {
			case o == "accepted":
				p.add("%s (%s): recorded accepted (%s) but the provider never took it", id, it.kind, row.providerMessageID)
			case row.sent || row.accepted:
				p.add("%s (%s): sent_at/accepted_at set but the provider never took it", id, it.kind)
			case row.status != o:
				p.add("%s (%s): status %q, want %q", id, it.kind, row.status, o)
			}
		case 1:
			took++
			e := es[0]
			switch {
			case o != "accepted" && o != "outcome_unknown":
				p.add("%s (%s): the provider took it (%s) but the dispatcher recorded %s", id, it.kind, e.MessageID, o)
			case row.providerMessageID != "" && row.providerMessageID != e.MessageID:
				p.add("%s (%s): provider message id %q, the ledger has %q", id, it.kind, row.providerMessageID, e.MessageID)
			case o == "accepted" && row.providerMessageID == "":
				p.add("%s (%s): accepted without a provider message id", id, it.kind)
			case webhooksComplete && !row.sent:
				p.add("%s (%s): the provider sent status webhooks, but communication_logs has no sent_at (status %q)", id, it.kind, row.status)
			case e.Recipient != it.recipient || e.Sender != numberID(it.sender):
				p.add("%s (%s): sent to %s from number %s, published for %s from %s (number %s)", id, it.kind, e.Recipient, e.Sender, it.recipient, it.sender, numberID(it.sender))
			}
		default:
			p.add("%s (%s): the provider took it %d times", id, it.kind, len(es))
		}
		if p.total != before {
			continue
		}
		// What the workload decided up front.
		switch it.kind {
		case kindExhaust:
			if o != "dead_lettered" && o != "outcome_unknown" {
				p.add("%s (exhaust): outcome %s, want dead_lettered", id, o)
			}
		case kindReject:
			if o != "failed" && o != "outcome_unknown" {
				p.add("%s (reject): outcome %s, want failed", id, o)
			}
		case kindSkewed:
			if o != "expired" {
				p.add("%s (skewed-expiry): outcome %s, want expired", id, o)
			}
		case kindDuplicate:
			if row.duplicates == 0 {
				p.add("%s (duplicate): published twice but no suppressed duplicate recorded", id)
			}
		case kindNormal:
			if o == "expired" {
				p.add("%s (normal): expired without an expiry", id)
			}
		}
		if p.total == before {
			agree++
		}
	}
	return Invariant{
		Name:  InvLedger,
		Count: fmt.Sprintf("%d of %d", agree, len(ids)),
		OK:    p.total == 0 && len(ids) > 0,
		Detail: fmt.Sprintf("the provider took %d (provider message id matches), %d never reached it: %s",
			took, notTook, tally(notTookBy, dispatcherOutcomes)),
		Problems: p.list, Total: p.total,
	}
}

// tally renders counts in the order of names, then any other name.
func tally(m map[string]int, names []string) string {
	var parts []string
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
		if m[n] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", n, m[n]))
		}
	}
	var rest []string
	for n := range m {
		if !seen[n] && m[n] > 0 {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	for _, n := range rest {
		parts = append(parts, fmt.Sprintf("%s %d", n, m[n]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

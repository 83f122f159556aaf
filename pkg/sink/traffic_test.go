package sink

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/privacy"
	"github.com/wanotify/wanotify/pkg/topics"
)

// The test's own model of communication_logs, written from the
// requirements rather than from the sink's code: the status with the
// highest precedence wins, ties by time; failed and dead_lettered are
// final; read is never replaced by a late delivered; a suppressed
// duplicate, an expiry or an unknown outcome give way to evidence of a
// send; duplicated events count once. Failure is final for everything
// that happened before it; only the dispatcher working on the
// notification again afterwards (a DLQ replay) starts a new run, whose
// progress is then the status.
var modelPrecedence = map[string]int{
	"requested": 1, "duplicate": 5, "retry_scheduled": 10, "outcome_unknown": 15, "expired": 17,
	"accepted": 20, "sent": 30, "delivered": 40, "read": 50, "dead_lettered": 90, "failed": 100,
}

type modelEvent struct {
	id        string
	status    string
	at        time.Time
	attempt   int
	pmid      string
	code, msg string
	retryable bool
}

type modelNotification struct {
	id, tenant, eventType, template, recipient, payload string
	created                                             time.Time
	// events holds every distinct occurrence; an event id reused by a
	// later run (the dispatcher's ids repeat after a replay) occurs twice.
	events []modelEvent
	ids    map[string]bool
}

func (m *modelNotification) add(e modelEvent) {
	for _, x := range m.events {
		if x == e {
			return
		}
	}
	m.events = append(m.events, e)
	m.ids[e.id] = true
}

// modelState is what communication_logs must say about a notification.
type modelState struct {
	status                                  string
	updatedAt, createdAt                    time.Time
	acceptedAt, sentAt, deliveredAt, readAt *time.Time
	failedAt, deadLetteredAt, expiredAt     *time.Time
	attempts, retries, duplicates, events   int
	pmid, errorCode, errorMessage           string
	tenant, eventType, template, recipient  string
	payload                                 string
	requested, reattempted                  bool
}

func (m *modelNotification) final() modelState {
	s := modelState{createdAt: m.created, tenant: m.tenant, eventType: m.eventType, template: m.template,
		recipient: m.recipient, payload: m.payload, events: len(m.ids)}
	// The current run: after the last failure, if the dispatcher worked on
	// the notification again after it.
	var lastFailure time.Time
	failedOnce := false
	for _, e := range m.events {
		if e.status == "failed" || e.status == "dead_lettered" {
			failedOnce = true
			if e.at.After(lastFailure) {
				lastFailure = e.at
			}
		}
	}
	rerun := false
	for _, e := range m.events {
		switch e.status {
		case "accepted", "retry_scheduled", "outcome_unknown", "expired":
			rerun = rerun || (failedOnce && e.at.After(lastFailure))
		}
	}
	bestRank, errRank := -1, -1
	var errAt time.Time
	for _, e := range m.events {
		if rerun && !e.at.After(lastFailure) {
			continue
		}
		r := modelPrecedence[e.status]
		if r > bestRank || (r == bestRank && e.at.After(s.updatedAt)) {
			bestRank, s.status, s.updatedAt = r, e.status, e.at
		}
		if e.code != "" && (r > errRank || (r == errRank && (e.at.After(errAt) || (e.at.Equal(errAt) && e.code > s.errorCode)))) {
			errRank, errAt, s.errorCode, s.errorMessage = r, e.at, e.code, e.msg
		}
	}
	first := func(p **time.Time, at time.Time) {
		if *p == nil || at.Before(**p) {
			t := at
			*p = &t
		}
	}
	retries, duplicates := map[string]bool{}, map[string]bool{}
	for _, e := range m.events {
		s.attempts = max(s.attempts, e.attempt)
		if e.pmid > s.pmid {
			s.pmid = e.pmid
		}
		switch e.status {
		case "requested":
			s.requested = true
		case "accepted":
			first(&s.acceptedAt, e.at)
		case "sent":
			first(&s.sentAt, e.at)
		case "delivered":
			first(&s.deliveredAt, e.at)
		case "read":
			first(&s.readAt, e.at)
		case "failed":
			first(&s.failedAt, e.at)
		case "dead_lettered":
			first(&s.deadLetteredAt, e.at)
		case "expired":
			first(&s.expiredAt, e.at)
		case "retry_scheduled":
			retries[e.id] = true
		case "duplicate":
			duplicates[e.id] = true
		}
	}
	s.retries, s.duplicates = len(retries), len(duplicates)
	s.reattempted = rerun
	return s
}

// dataset is simulated traffic and the model of what it must produce.
type dataset struct {
	requested, status, dlq []*kgo.Record
	notifications          map[string]*modelNotification
	eventIDs               map[string]bool // distinct event ids expected in notification_events
	ingestErrors           int             // records expected in ingest_errors
	deadLetters            int             // records expected in dead_letters
	poisonDeadLetters      int             // ... of which have an undecodable value
	orphanWebhooks         map[string]bool // provider ids no notification claims
}

func (d *dataset) records() int { return len(d.requested) + len(d.status) + len(d.dlq) }

// occurrences is how many rows notification_events keeps once merged: one
// per event id and time.
func (d *dataset) occurrences() int {
	n := len(d.orphanWebhooks)
	for _, m := range d.notifications {
		n += len(m.events)
	}
	return n
}

func (d *dataset) all() []*kgo.Record {
	out := make([]*kgo.Record, 0, d.records())
	out = append(out, d.requested...)
	out = append(out, d.status...)
	return append(out, d.dlq...)
}

var (
	genTenants    = []string{"acme", "globex", "initech"}
	genEventTypes = []string{"otp", "invoice.reminder", "server.alert", "subscription.update"}
	genTemplates  = map[string]string{"otp": "otp_code", "invoice.reminder": "invoice_due", "server.alert": "alert_v2", "subscription.update": "sub_renewal"}
	genErrors     = []contract.ErrorInfo{
		{Code: "http_503", Message: "service unavailable", Retryable: true},
		{Code: "130429", Message: "throughput exceeded", Retryable: true},
		{Code: "timeout", Message: "provider call timed out", Retryable: true},
	}
	genPermanent = []contract.ErrorInfo{
		{Code: "131026", Message: "message undeliverable"},
		{Code: "131047", Message: "re-engagement message outside the 24h window"},
		{Code: "132001", Message: "template does not exist"},
	}
)

// simulateTraffic builds at least minRecords records of realistic, messy traffic
// for notifications requested from base on, deterministically from seed.
// Values are marshalled without the contract's schema check (the sink
// checks them: one invalid value would show up in ingest_errors and fail
// the comparison), which keeps building 100k records fast.
// Status records are shuffled across notifications, so webhooks come
// before the dispatcher's record, delivered after read, and so on.
func simulateTraffic(t testing.TB, seed uint64, minRecords int, base time.Time) *dataset {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	d := &dataset{notifications: map[string]*modelNotification{}, eventIDs: map[string]bool{}, orphanWebhooks: map[string]bool{}}
	must := func(b []byte, err error) []byte {
		if err != nil {
			t.Fatalf("simulate traffic: %v", err)
		}
		return b
	}
	record := func(topic, key string, value []byte, hs ...kgo.RecordHeader) *kgo.Record {
		return &kgo.Record{Topic: topic, Key: []byte(key), Value: value, Headers: hs}
	}
	ms := func(lo, hi int) time.Duration { return time.Duration(lo+rng.IntN(hi-lo+1)) * time.Millisecond }

	for i := 0; d.records() < minRecords; i++ {
		tenant := genTenants[rng.IntN(len(genTenants))]
		eventType := genEventTypes[rng.IntN(len(genEventTypes))]
		created := base.Add(time.Duration(i)*331*time.Millisecond + ms(0, 300)).Truncate(time.Millisecond)
		n := &contract.Notification{
			IdempotencyKey: fmt.Sprintf("user-%d:%s:%d", rng.IntN(5000), eventType, i),
			Tenant:         tenant,
			SourceService:  tenant + "-" + eventType,
			EventType:      eventType,
			Recipient:      fmt.Sprintf("+1555%07d", rng.IntN(2000)),
			Sender:         "acct-" + tenant,
			Template:       &contract.Template{Name: genTemplates[eventType], Language: "en_US", Parameters: []string{fmt.Sprint(rng.IntN(1_000_000))}},
			CreatedAt:      created,
		}
		if eventType == "otp" {
			exp := created.Add(5 * time.Minute)
			n.ExpiresAt = &exp
		}
		n.ID = contract.NotificationID(tenant, n.IdempotencyKey)
		n.SchemaVersion = contract.SchemaVersion
		raw := must(json.Marshal(n))
		// What the sink stores by default: the request without its
		// content; an OTP's code is marked as such.
		stored := *n
		hidden := privacy.Redacted
		if eventType == "otp" {
			hidden = privacy.RedactedCode
		}
		stored.Template = &contract.Template{Name: n.Template.Name, Language: n.Template.Language, Parameters: []string{hidden}}
		m := &modelNotification{id: n.ID, tenant: tenant, eventType: eventType, template: n.Template.Name,
			recipient: n.Recipient, payload: string(must(json.Marshal(&stored))), created: created, ids: map[string]bool{}}
		d.notifications[n.ID] = m
		addEvent := func(e modelEvent) {
			m.add(e)
			d.eventIDs[e.id] = true
		}
		addEvent(modelEvent{id: n.ID + "/requested", status: "requested", at: created})
		d.requested = append(d.requested, record(topics.Requested, n.Recipient, raw))
		if rng.IntN(100) < 2 { // the same request published twice
			d.requested = append(d.requested, record(topics.Requested, n.Recipient, raw))
		}

		dispatcher := func(status contract.Status, attempt int, at time.Time, pmid string, e *contract.ErrorInfo) {
			ev := contract.StatusEvent{EventID: contract.DispatcherEventID(n.ID, status, attempt), NotificationID: n.ID,
				ProviderMessageID: pmid, Tenant: tenant, EventType: eventType, Sender: n.Sender, Recipient: n.Recipient,
				Status: status, Attempt: attempt, Error: e, OccurredAt: at, Emitter: contract.EmitterDispatcher}
			if pmid != "" {
				ev.Provider = "xpressbot"
			}
			if status == contract.StatusRetryScheduled {
				due := at.Add(5 * time.Second)
				ev.DueAt, ev.RetryTier = &due, "retry-5s"
			}
			me := modelEvent{id: ev.EventID, status: string(status), at: at, attempt: attempt, pmid: pmid}
			if e != nil {
				me.code, me.msg, me.retryable = e.Code, e.Message, e.Retryable
			}
			addEvent(me)
			ev.SchemaVersion = contract.SchemaVersion
			v := must(json.Marshal(ev))
			d.status = append(d.status, record(topics.Status, n.Recipient, v))
			if rng.IntN(100) < 3 {
				d.status = append(d.status, record(topics.Status, n.Recipient, v))
			}
		}
		webhook := func(pmid string, status contract.Status, at time.Time, withID bool, e *contract.ErrorInfo) {
			ev := contract.StatusEvent{EventID: contract.WebhookEventID(pmid, status), ProviderMessageID: pmid, Provider: "xpressbot",
				Recipient: n.Recipient, Status: status, Error: e, OccurredAt: at, Emitter: contract.EmitterWebhook}
			if withID {
				ev.NotificationID = n.ID
			}
			me := modelEvent{id: ev.EventID, status: string(status), at: at, pmid: pmid}
			if e != nil {
				me.code, me.msg, me.retryable = e.Code, e.Message, e.Retryable
			}
			addEvent(me)
			ev.SchemaVersion = contract.SchemaVersion
			v := must(json.Marshal(ev))
			d.status = append(d.status, record(topics.Status, n.Recipient, v))
			if rng.IntN(100) < 10 { // providers resend webhooks
				d.status = append(d.status, record(topics.Status, n.Recipient, v))
			}
		}
		// Webhooks lack the notification id 30% of the time (when the
		// dispatcher recorded the provider id, so the join can find it).
		webhooks := func(pmid string, from time.Time, allWithID bool) {
			at := from
			next := func() time.Time { at = at.Add(ms(200, 20000)); return at }
			withID := func() bool { return allWithID || rng.IntN(100) >= 30 }
			switch r := rng.IntN(100); {
			case r < 40:
				webhook(pmid, contract.StatusSent, next(), withID(), nil)
				webhook(pmid, contract.StatusDelivered, next(), withID(), nil)
				webhook(pmid, contract.StatusRead, next(), withID(), nil)
			case r < 55: // delivered skipped
				webhook(pmid, contract.StatusSent, next(), withID(), nil)
				webhook(pmid, contract.StatusRead, next(), withID(), nil)
			case r < 78:
				webhook(pmid, contract.StatusSent, next(), withID(), nil)
				webhook(pmid, contract.StatusDelivered, next(), withID(), nil)
			case r < 88:
				webhook(pmid, contract.StatusSent, next(), withID(), nil)
			case r < 93: // sent skipped
				webhook(pmid, contract.StatusDelivered, next(), withID(), nil)
				webhook(pmid, contract.StatusRead, next(), withID(), nil)
			case r < 98: // the provider could not deliver
				webhook(pmid, contract.StatusSent, next(), withID(), nil)
				e := genPermanent[0]
				webhook(pmid, contract.StatusFailed, next(), withID(), &e)
			default: // no webhook yet
			}
		}

		at := created.Add(ms(20, 900))
		attempt := 1
		retries := func(k int) {
			for ; k > 0; k-- {
				e := genErrors[rng.IntN(len(genErrors))]
				dispatcher(contract.StatusRetryScheduled, attempt, at, "", &e)
				attempt++
				at = at.Add(ms(5000, 6000))
			}
		}
		pmid := func() string { return fmt.Sprintf("wamid.%016x", rng.Uint64()) }
		deadLetter := func(e contract.ErrorInfo) {
			dispatcher(contract.StatusDeadLettered, attempt, at, "", &e)
			f := envelope.Failure{Attempt: attempt, Origin: envelope.Origin{Topic: topics.Requested, Partition: 0, Offset: int64(i)},
				Error: e, Class: envelope.ClassRetryable, FailedAt: at, FirstFailedAt: created, DLQReason: envelope.ReasonExhausted,
				NotificationID: n.ID, Tenant: tenant, EventType: eventType, ReplayedFrom: -1}
			hs, err := f.Headers()
			if err != nil {
				t.Fatal(err)
			}
			d.dlq = append(d.dlq, record(topics.DLQ, n.Recipient, raw, hs...))
			d.deadLetters++
		}
		// replay republishes the request as pkg/cli/dlq does, some minutes
		// after the failure; the dispatcher starts again from attempt 1.
		replay := func() {
			at = at.Add(time.Duration(5+rng.IntN(30)) * time.Minute)
			d.requested = append(d.requested, record(topics.Requested, n.Recipient, raw,
				kgo.RecordHeader{Key: envelope.HeaderReplayCount, Value: []byte("1")},
				kgo.RecordHeader{Key: envelope.HeaderNotificationID, Value: []byte(n.ID)}))
			attempt = 1
			at = at.Add(ms(50, 900))
		}
		switch r := rng.IntN(100); {
		case r < 58: // sent
			retries([]int{0, 0, 0, 1, 2}[rng.IntN(5)])
			p := pmid()
			dispatcher(contract.StatusAccepted, attempt, at, p, nil)
			webhooks(p, at, false)
		case r < 65: // permanent failure
			retries(rng.IntN(2))
			e := genPermanent[rng.IntN(len(genPermanent))]
			dispatcher(contract.StatusFailed, attempt, at, "", &e)
		case r < 72: // retries exhausted
			retries(3)
			deadLetter(genErrors[rng.IntN(len(genErrors))])
		case r < 75: // dead-lettered, replayed from the DLQ, then sent
			retries(3)
			deadLetter(genErrors[rng.IntN(len(genErrors))])
			replay()
			retries(rng.IntN(2))
			p := pmid()
			dispatcher(contract.StatusAccepted, attempt, at, p, nil)
			webhooks(p, at, false)
		case r < 77: // dead-lettered, replayed, dead-lettered again
			retries(3)
			deadLetter(genErrors[rng.IntN(len(genErrors))])
			replay()
			retries(3)
			deadLetter(genErrors[rng.IntN(len(genErrors))])
		case r < 78: // failed, replayed by force, failed again
			e := genPermanent[rng.IntN(len(genPermanent))]
			dispatcher(contract.StatusFailed, attempt, at, "", &e)
			replay()
			dispatcher(contract.StatusFailed, attempt, at, "", &e)
		case r < 82: // expired (sometimes after a retry)
			retries(rng.IntN(2))
			dispatcher(contract.StatusExpired, attempt, at, "", nil)
		case r < 88: // a second publish suppressed, the first one sent
			p := pmid()
			dispatcher(contract.StatusAccepted, attempt, at, p, nil)
			dispatcher(contract.StatusDuplicate, 0, at.Add(ms(100, 3000)), "", nil)
			webhooks(p, at, false)
		case r < 91: // only a duplicate reported (the first copy's events lost to retention)
			dispatcher(contract.StatusDuplicate, 0, at, "", nil)
		case r < 95: // the provider call was interrupted; webhooks may prove it was sent
			dispatcher(contract.StatusOutcomeUnknown, attempt, at, "", nil)
			if rng.IntN(2) == 0 {
				webhooks(pmid(), at, true)
			}
		default: // still pending
			retries(rng.IntN(2))
		}
	}

	// Webhooks for messages no notification claims.
	for i := range 20 {
		p := fmt.Sprintf("wamid.orphan%04d", i)
		d.orphanWebhooks[p] = true
		ev := contract.StatusEvent{EventID: contract.WebhookEventID(p, contract.StatusDelivered), ProviderMessageID: p, Recipient: "+15559990000",
			Status: contract.StatusDelivered, OccurredAt: base.Add(time.Duration(i) * time.Second), Emitter: contract.EmitterWebhook}
		d.eventIDs[ev.EventID] = true
		d.status = append(d.status, record(topics.Status, "+15559990000", must(ev.Encode())))
	}
	// Poison on every topic.
	noIDs := must((&contract.StatusEvent{EventID: "ingest-no-ids", Recipient: "+15550000000", Status: contract.StatusSent,
		OccurredAt: base, Emitter: contract.EmitterIngest}).Encode())
	for i := range 15 {
		d.requested = append(d.requested, record(topics.Requested, "+15550000000", []byte(fmt.Sprintf("not json %d \xff", i))))
		d.requested = append(d.requested, record(topics.Requested, "+15550000000", []byte(fmt.Sprintf(`{"schema_version":1,"notification_id":"bad-%d"}`, i))))
		d.status = append(d.status, record(topics.Status, "+15550000000", []byte(fmt.Sprintf(`{"status":"teleported","n":%d}`, i))))
		d.status = append(d.status, record(topics.Status, "+15550000000", noIDs))
		d.dlq = append(d.dlq, record(topics.DLQ, "+15550000000", []byte("no envelope")))
		d.ingestErrors += 5
	}
	poison := envelope.Failure{Attempt: 0, Origin: envelope.Origin{Topic: topics.Requested, Partition: 1, Offset: 7},
		Error: contract.ErrorInfo{Code: "poison", Message: "value is not a notification"}, Class: envelope.ClassPoison,
		FailedAt: base, DLQReason: envelope.ReasonPoison, ReplayedFrom: -1}
	phs, err := poison.Headers()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		d.dlq = append(d.dlq, record(topics.DLQ, "+15550000000", []byte(fmt.Sprintf("\x00garbage %d", i)), phs...))
		d.deadLetters++
		d.poisonDeadLetters++
	}

	rng.Shuffle(len(d.status), func(i, j int) { d.status[i], d.status[j] = d.status[j], d.status[i] })
	rng.Shuffle(len(d.requested), func(i, j int) { d.requested[i], d.requested[j] = d.requested[j], d.requested[i] })
	return d
}

// funnelTotals is the model's delivery_funnel_hourly summed over all rows:
// every step counts only notifications whose request record was seen;
// the others are orphans (see migration 0011).
func (d *dataset) funnelTotals() map[string]uint64 {
	out := map[string]uint64{}
	for _, m := range d.notifications {
		s := m.final()
		if !s.requested {
			out["orphans"]++
			if s.deliveredAt != nil || s.readAt != nil {
				out["orphans_delivered"]++
			}
			continue
		}
		out["requested"]++
		if s.acceptedAt != nil || s.sentAt != nil || s.deliveredAt != nil || s.readAt != nil {
			out["accepted"]++
		}
		if s.sentAt != nil || s.deliveredAt != nil || s.readAt != nil {
			out["sent"]++
		}
		if s.deliveredAt != nil || s.readAt != nil {
			out["delivered"]++
		}
		if s.readAt != nil {
			out["read"]++
		}
		switch s.status {
		case "failed", "dead_lettered", "expired", "outcome_unknown":
			out[s.status]++
		case "requested", "retry_scheduled":
			out["pending"]++
		}
		if s.duplicates > 0 {
			out["duplicates"]++
		}
	}
	return out
}

// statusCounts is how many notifications end in each status.
func (d *dataset) statusCounts() map[string]int {
	out := map[string]int{}
	for _, m := range d.notifications {
		out[m.final().status]++
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

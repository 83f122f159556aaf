package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/sdk"
	"github.com/wanotify/wanotify/pkg/topics"
)

// eventType is the event type of every generated notification.
const eventType = "chaos.notice"

// tenant publishes every notification of the scenario.
const tenant = "chaos"

// kind is what a notification of the workload is meant to go through.
type kind uint8

const (
	kindNormal    kind = iota // whatever the simulator's random failures make of it
	kindExhaust               // every attempt fails with 503: dead-lettered
	kindReject                // fails with Meta 131026: failed, not retried
	kindSkewed                // expired before it is published (within the allowed skew): expired
	kindDuplicate             // published twice: one send, one suppressed duplicate
)

var kindNames = [...]string{"normal", "exhaust", "reject", "skewed-expiry", "duplicate"}

func (k kind) String() string { return kindNames[k] }

// item is one notification of the workload.
type item struct {
	i         int
	kind      kind
	key       string // idempotency key
	id        string // notification id (derived from tenant and key)
	recipient string
	sender    string
}

// workload draws cfg.N notifications from cfg.Seed.
func workload(cfg Config) []item {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6368616f73))
	items := make([]item, cfg.N)
	for i := range items {
		k := kindNormal
		switch u := rng.Float64(); {
		case u < cfg.ExhaustRate:
			k = kindExhaust
		case u < cfg.ExhaustRate+cfg.RejectRate:
			k = kindReject
		case u < cfg.ExhaustRate+cfg.RejectRate+cfg.SkewedExpiryRate:
			k = kindSkewed
		case u < cfg.ExhaustRate+cfg.RejectRate+cfg.SkewedExpiryRate+cfg.DuplicateRate:
			k = kindDuplicate
		}
		key := fmt.Sprintf("chaos-%d-%d", cfg.Seed, i)
		items[i] = item{i: i, kind: k, key: key, id: contract.NotificationID(tenant, key),
			recipient: recipientNumber(rng.IntN(cfg.Recipients)), sender: senderName(rng.IntN(cfg.Senders))}
	}
	return items
}

// recipientNumber is a UK mobile number in E.164.
func recipientNumber(n int) string { return fmt.Sprintf("+4471%08d", n) }

// request renders it as the SDK request, at now (a skewed expiry is
// relative to the moment of each publish attempt).
func (it item) request(now time.Time) sdk.Request {
	r := sdk.Request{
		IdempotencyKey: it.key,
		EventType:      eventType,
		UserID:         fmt.Sprintf("user-%d", it.i),
		Recipient:      it.recipient,
		Sender:         it.sender,
		Template:       &contract.Template{Name: "order_update", Language: "en", Parameters: []string{fmt.Sprintf("#%d", it.i)}},
	}
	switch it.kind {
	case kindExhaust:
		// Simulator directives force the outcome of every attempt.
		r.Template, r.Text = nil, &contract.Text{Body: fmt.Sprintf("chaos %d [sim:http_503]", it.i)}
	case kindReject:
		r.Template, r.Text = nil, &contract.Text{Body: fmt.Sprintf("chaos %d [sim:meta_131026]", it.i)}
	case kindSkewed:
		r.ExpiresAt = now.Add(-2 * time.Second)
	}
	return r
}

// publishing is one planned publish: the item, and for a duplicate's
// second copy a later due time.
type publishing struct {
	it  item
	due time.Duration // since the start of publishing
}

// publishStats is what the publisher did.
type publishStats struct {
	mu       sync.Mutex
	acked    map[string]item // notification id -> item, acknowledged by Kafka
	copies   int             // acknowledged publishes, second copies included
	retries  int             // publishes repeated after ErrUnavailable
	rejected map[string]error
}

func (ps *publishStats) ackedItems() map[string]item {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := make(map[string]item, len(ps.acked))
	for k, v := range ps.acked {
		out[k] = v
	}
	return out
}

// publish publishes items spread evenly over d (duplicates get a second
// copy about 3 s after the first), repeating every publish Kafka did not
// acknowledge with the same idempotency key until it is acknowledged or
// ctx ends.
func publish(ctx context.Context, p *sdk.Publisher, items []item, d time.Duration, st *publishStats, say func(string, ...any)) error {
	var plan []publishing
	for _, it := range items {
		plan = append(plan, publishing{it: it, due: time.Duration(float64(d) * float64(it.i) / float64(len(items)))})
	}
	var later []publishing
	for _, it := range items {
		if it.kind == kindDuplicate {
			later = append(later, publishing{it: it, due: time.Duration(float64(d)*float64(it.i)/float64(len(items))) + 3*time.Second})
		}
	}
	start := time.Now()
	var retry []publishing
	next, nextLater := 0, 0
	lastSay := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for next < len(plan) || nextLater < len(later) || len(retry) > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		el := time.Since(start)
		batch := retry
		retry = nil
		for next < len(plan) && plan[next].due <= el && len(batch) < 5000 {
			batch = append(batch, plan[next])
			next++
		}
		for nextLater < len(later) && later[nextLater].due <= el && len(batch) < 5000 {
			batch = append(batch, later[nextLater])
			nextLater++
		}
		if len(batch) == 0 {
			continue
		}
		now := time.Now()
		reqs := make([]sdk.Request, len(batch))
		for i, b := range batch {
			reqs[i] = b.it.request(now)
		}
		res := p.PublishBatch(ctx, reqs)
		st.mu.Lock()
		for i, r := range res {
			switch {
			case r.Err == nil:
				st.acked[r.ID] = batch[i].it
				st.copies++
			case errors.Is(r.Err, sdk.ErrUnavailable):
				st.retries++
				retry = append(retry, batch[i])
			default:
				st.rejected[batch[i].it.id] = r.Err
			}
		}
		acked := len(st.acked)
		st.mu.Unlock()
		if time.Since(lastSay) >= 10*time.Second {
			say("published: %d of %d acknowledged, %d waiting for a retry", acked, len(items), len(retry))
			lastSay = time.Now()
		}
	}
	return nil
}

// origin is where a record sits in Kafka.
type origin struct {
	topic     string
	partition int32
	offset    int64
}

func (o origin) String() string { return fmt.Sprintf("%s/%d@%d", o.topic, o.partition, o.offset) }

// poisonRecords are garbage records for notifications.requested: what a
// buggy or hostile producer might write. Those that carry a notification
// id get a dead_lettered status under it (ids returned).
func poisonRecords(n int, seed uint64) (recs []*kgo.Record, ids map[int]string) {
	ids = map[int]string{}
	valid := func(id, recipient string, extra string) []byte {
		return fmt.Appendf(nil, `{"schema_version":1,"notification_id":%q,"idempotency_key":"poison","tenant":"chaos","source_service":"chaos",`+
			`"event_type":"chaos.poison","recipient":%q,"sender":"sender-00","template":{"name":"t","language":"en"},`+
			`"created_at":"2026-01-01T00:00:00Z"%s}`, id, recipient, extra)
	}
	rng := rand.New(rand.NewPCG(seed, 0x706f69736f6e))
	for i := range n {
		key := []byte(recipientNumber(rng.IntN(1000)))
		id := uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "chaos-poison-%d-%d", seed, i)).String()
		var v []byte
		switch i % 8 {
		case 0:
			v = []byte("not json at all")
		case 1:
			v = valid(id, string(key), "")[:57] // truncated mid-string
		case 2:
			v = []byte(`{"schema_version":"one","notification_id":42,"recipient":true}`) // wrong types
		case 3:
			v = valid(id, "12345", "") // invalid phone number
			ids[i] = id
		case 4:
			v = nil // empty value
		case 5:
			v = []byte{0x00, 0xff, 0xfe, 0x7b, 0x22, 0x80, 0x81} // binary garbage
		case 6:
			v = valid(id, string(key), `,"template_colour":"red"`) // unknown field
			ids[i] = id
		case 7:
			v = []byte(`[]`)
		}
		recs = append(recs, &kgo.Record{Topic: topics.Requested, Key: key, Value: v})
	}
	return recs, ids
}

// retryPoisonRecords are valid notifications on the first retry topic
// whose failure headers have the wrong types: the dispatcher must park
// them as poison, not send them.
func retryPoisonRecords(n int, seed uint64) (recs []*kgo.Record, ids map[int]string) {
	ids = map[int]string{}
	now := time.Now().UTC()
	for i := range n {
		id := uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "chaos-retry-poison-%d-%d", seed, i)).String()
		recipient := recipientNumber(5000 + i)
		nt := &contract.Notification{ID: id, IdempotencyKey: "retry-poison-" + id, Tenant: tenant, SourceService: "chaos",
			EventType: "chaos.poison", Recipient: recipient, Sender: "sender-00",
			Template: &contract.Template{Name: "t", Language: "en"}, CreatedAt: now}
		v, err := nt.Encode()
		if err != nil {
			panic(fmt.Sprintf("chaos: a fixed notification failed its schema: %v", err))
		}
		recs = append(recs, &kgo.Record{Topic: topics.Retry5s, Key: []byte(recipient), Value: v, Headers: []kgo.RecordHeader{
			{Key: envelope.HeaderAttempt, Value: []byte("one")},
			{Key: envelope.HeaderDueAt, Value: []byte("yesterday")},
			{Key: envelope.HeaderOriginPartition, Value: []byte{0xff, 0x00}},
		}})
		ids[i] = id
	}
	return recs, ids
}

// inject produces recs synchronously and returns where each landed.
func inject(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) ([]origin, error) {
	res := cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		return nil, fmt.Errorf("inject poison records: %w", err)
	}
	out := make([]origin, len(res))
	for i, r := range res {
		out[i] = origin{r.Record.Topic, r.Record.Partition, r.Record.Offset}
	}
	return out, nil
}

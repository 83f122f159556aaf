package simulator

import (
	"slices"
	"sync"
	"time"
)

// API names which endpoint took a send.
const (
	APIXpressbot = "xpressbot"
	APICloud     = "cloudapi"
)

// Entry is one accepted send.
type Entry struct {
	// Time is when the send arrived and took its rate-limit token (before
	// any injected latency): the moment the provider's limit applies to.
	Time             time.Time `json:"time"`
	API              string    `json:"api"`
	NotificationID   string    `json:"notification_id,omitempty"` // biz_opaque_callback_data
	IdempotencyKey   string    `json:"idempotency_key,omitempty"`
	MessageID        string    `json:"message_id"`
	Sender           string    `json:"sender"`
	Recipient        string    `json:"recipient"` // E.164 with "+"
	Type             string    `json:"type"`      // text or template
	Text             string    `json:"text,omitempty"`
	TemplateName     string    `json:"template_name,omitempty"`
	TemplateLanguage string    `json:"template_language,omitempty"`
	TemplateParams   []string  `json:"template_params,omitempty"`
}

// Rejection is one send answered with an error: throttled (429) or an
// injected failure.
type Rejection struct {
	Time           time.Time `json:"time"`
	Sender         string    `json:"sender"`
	Recipient      string    `json:"recipient"`
	NotificationID string    `json:"notification_id,omitempty"`
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	Code           string    `json:"code"` // "meta_130429", "http_503", "timeout", …
}

// WebhookStats counts status webhook deliveries.
type WebhookStats struct {
	Scheduled int64 `json:"scheduled"` // statuses queued for delivery
	Delivered int64 `json:"delivered"` // answered 2xx
	Retries   int64 `json:"retries"`   // attempts after a failed one
	GaveUp    int64 `json:"gave_up"`   // MaxAttempts failed
	Dropped   int64 `json:"dropped"`   // queue full
}

// Snapshot is the ledger at one moment. Counts are exact: every update
// happens under one lock.
type Snapshot struct {
	Accepted int `json:"accepted"`
	// DistinctNotifications counts distinct notification ids accepted.
	DistinctNotifications int `json:"distinct_notifications"`
	// DuplicateSends counts accepted sends of a notification id beyond its
	// first; DuplicateIdempotencySends the same by idempotency key. Zero is
	// the pipeline's promise.
	DuplicateSends            int `json:"duplicate_sends"`
	DuplicateIdempotencySends int `json:"duplicate_idempotency_sends"`
	// Duplicates maps each notification id sent more than once to its
	// send count; DuplicateKeys the same by idempotency key.
	Duplicates    map[string]int `json:"duplicates"`
	DuplicateKeys map[string]int `json:"duplicate_keys"`
	// Throttled counts 429 answers (rate limit or forced), per sender in
	// ThrottledBySender.
	Throttled         int            `json:"throttled"`
	ThrottledBySender map[string]int `json:"throttled_by_sender"`
	// Failures counts every send answered with something else than
	// success, by code: "meta_<code>" and "http_<status>" as
	// provider.Error.Code, plus "outage", "timeout", "reset" and
	// "client_gone" (the client left during injected latency).
	Failures map[string]int `json:"failures"`
	// MaxPerSecond is, per sender, the most sends accepted within any
	// one-second window.
	MaxPerSecond map[string]int `json:"max_per_second"`
	Webhooks     WebhookStats   `json:"webhooks"`
	// IdempotentReplays counts sends answered from an earlier send with
	// the same idempotency key (Behavior.IdempotencyKeys): nothing was
	// sent again.
	IdempotentReplays int `json:"idempotent_replays"`
	// Entries and Rejections are omitted by GET /admin/ledger unless
	// ?entries=1.
	Entries    []Entry     `json:"entries,omitempty"`
	Rejections []Rejection `json:"rejections,omitempty"`
}

// ledger records sends. One mutex keeps counts exact under concurrency.
type ledger struct {
	mu         sync.Mutex
	entries    []Entry
	rejections []Rejection
	byNID      map[string]int
	byKey      map[string]int
	firstByKey map[string]Entry
	replays    int
	webhooks   WebhookStats
}

func newLedger() *ledger {
	return &ledger{byNID: map[string]int{}, byKey: map[string]int{}, firstByKey: map[string]Entry{}}
}

func (l *ledger) accept(e Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, e)
	if e.NotificationID != "" {
		l.byNID[e.NotificationID]++
	}
	if e.IdempotencyKey != "" {
		l.byKey[e.IdempotencyKey]++
		if _, ok := l.firstByKey[e.IdempotencyKey]; !ok {
			l.firstByKey[e.IdempotencyKey] = e
		}
	}
}

// replay returns the accepted send of key, counting an idempotent replay.
func (l *ledger) replay(key string) (Entry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.firstByKey[key]
	if ok {
		l.replays++
	}
	return e, ok
}

func (l *ledger) reject(r Rejection) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rejections = append(l.rejections, r)
}

func (l *ledger) webhook(f func(*WebhookStats)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(&l.webhooks)
}

func (l *ledger) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries, l.rejections = nil, nil
	l.byNID, l.byKey, l.firstByKey, l.replays = map[string]int{}, map[string]int{}, map[string]Entry{}, 0
	l.webhooks = WebhookStats{}
}

func (l *ledger) snapshot(withEntries bool) Snapshot {
	l.mu.Lock()
	s := Snapshot{
		Accepted:              len(l.entries),
		DistinctNotifications: len(l.byNID),
		Duplicates:            map[string]int{},
		DuplicateKeys:         map[string]int{},
		ThrottledBySender:     map[string]int{},
		Failures:              map[string]int{},
		MaxPerSecond:          map[string]int{},
		Webhooks:              l.webhooks,
		IdempotentReplays:     l.replays,
	}
	for id, n := range l.byNID {
		if n > 1 {
			s.Duplicates[id] = n
			s.DuplicateSends += n - 1
		}
	}
	for k, n := range l.byKey {
		if n > 1 {
			s.DuplicateKeys[k] = n
			s.DuplicateIdempotencySends += n - 1
		}
	}
	for _, r := range l.rejections {
		s.Failures[r.Code]++
		if r.Code == throttleCode {
			s.Throttled++
			s.ThrottledBySender[r.Sender]++
		}
	}
	times := map[string][]time.Time{}
	for _, e := range l.entries {
		times[e.Sender] = append(times[e.Sender], e.Time)
	}
	if withEntries {
		s.Entries = slices.Clone(l.entries)
		s.Rejections = slices.Clone(l.rejections)
	}
	l.mu.Unlock()

	for sender, ts := range times {
		s.MaxPerSecond[sender] = maxInWindow(ts, time.Second)
	}
	return s
}

// maxInWindow is the largest number of ts within any half-open window of
// length w.
func maxInWindow(ts []time.Time, w time.Duration) int {
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	best, lo := 0, 0
	for hi := range ts {
		for ts[hi].Sub(ts[lo]) >= w {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

package simulator

import (
	"maps"
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
	// DroppedEntries and DroppedRejections count the oldest entries and
	// rejections dropped to keep the lists within Config.LedgerMaxEntries;
	// the counts above include them.
	DroppedEntries    int `json:"dropped_entries"`
	DroppedRejections int `json:"dropped_rejections"`
	// Entries and Rejections are omitted by GET /admin/ledger unless
	// ?entries=1; they hold the most recent Config.LedgerMaxEntries each.
	Entries    []Entry     `json:"entries,omitempty"`
	Rejections []Rejection `json:"rejections,omitempty"`
}

// ledger records sends. One mutex keeps counts exact under concurrency.
//
// The entries and rejections (which carry numbers and message bodies)
// are bounded: beyond max of each the oldest are dropped and counted in
// Snapshot.DroppedEntries / DroppedRejections, so a simulator left running
// does not grow without end. Every count of the Snapshot is kept apart
// from the lists and stays exact however many were dropped.
type ledger struct {
	mu         sync.Mutex
	max        int // most entries (and most rejections) kept; 0: no bound
	entries    []Entry
	rejections []Rejection
	dropped    int
	droppedRej int
	accepted   int
	byNID      map[string]int
	byKey      map[string]int
	firstByKey map[string]Entry
	replays    int
	webhooks   WebhookStats
	failures   map[string]int
	throttled  map[string]int
	rates      map[string]*senderRate
}

// senderRate tracks one sender's most sends within any one second,
// without keeping every send: the times of the last two seconds, sorted,
// and the best count seen. Sends recorded out of order by less than a
// second (concurrent handlers) are counted exactly.
type senderRate struct {
	window []time.Time
	best   int
}

func (r *senderRate) add(t time.Time) {
	w := r.window
	// Insert after any equal time, to stay sorted.
	i, _ := slices.BinarySearchFunc(w, t, func(a, b time.Time) int {
		if a.After(b) {
			return 1
		}
		return -1
	})
	w = slices.Insert(w, i, t)
	// The windows that gained t end at t or at a later send.
	lo, _ := slices.BinarySearchFunc(w, w[i].Add(-time.Second), func(a, b time.Time) int {
		if a.After(b) {
			return 1
		}
		return -1
	})
	for hi := i; hi < len(w); hi++ {
		for w[hi].Sub(w[lo]) >= time.Second {
			lo++
		}
		r.best = max(r.best, hi-lo+1)
	}
	// Forget what no later window can hold; copy only when half is stale.
	newest := w[len(w)-1]
	cut, _ := slices.BinarySearchFunc(w, newest.Add(-2*time.Second), func(a, b time.Time) int {
		if a.After(b) {
			return 1
		}
		return -1
	})
	if cut > len(w)/2 {
		w = append(w[:0], w[cut:]...)
	}
	r.window = w
}

func newLedger(maxEntries int) *ledger {
	l := &ledger{max: maxEntries}
	l.clear()
	return l
}

func (l *ledger) clear() {
	l.entries, l.rejections, l.dropped, l.droppedRej, l.accepted = nil, nil, 0, 0, 0
	l.byNID, l.byKey, l.firstByKey, l.replays = map[string]int{}, map[string]int{}, map[string]Entry{}, 0
	l.webhooks = WebhookStats{}
	l.failures, l.throttled, l.rates = map[string]int{}, map[string]int{}, map[string]*senderRate{}
}

// bounded appends v to list, dropping the oldest beyond max.
func bounded[T any](list []T, v T, limit int, dropped *int) []T {
	if limit > 0 && len(list) >= limit {
		// Drop a tenth at once, so appends stay amortised O(1).
		n := max(1, limit/10)
		n = min(n, len(list))
		list = append(list[:0], list[n:]...)
		*dropped += n
	}
	return append(list, v)
}

func (l *ledger) accept(e Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.accepted++
	l.entries = bounded(l.entries, e, l.max, &l.dropped)
	r := l.rates[e.Sender]
	if r == nil {
		r = &senderRate{}
		l.rates[e.Sender] = r
	}
	r.add(e.Time)
	if e.NotificationID != "" {
		l.byNID[e.NotificationID]++
	}
	if e.IdempotencyKey != "" {
		l.byKey[e.IdempotencyKey]++
		if _, ok := l.firstByKey[e.IdempotencyKey]; !ok {
			// A replay answers with the message id and recipient only:
			// keep no body for every key of a long run.
			first := e
			first.Text, first.TemplateParams = "", nil
			l.firstByKey[e.IdempotencyKey] = first
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
	l.rejections = bounded(l.rejections, r, l.max, &l.droppedRej)
	l.failures[r.Code]++
	if r.Code == throttleCode {
		l.throttled[r.Sender]++
	}
}

func (l *ledger) webhook(f func(*WebhookStats)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(&l.webhooks)
}

func (l *ledger) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clear()
}

func (l *ledger) snapshot(withEntries bool) Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Snapshot{
		Accepted:              l.accepted,
		DistinctNotifications: len(l.byNID),
		Duplicates:            map[string]int{},
		DuplicateKeys:         map[string]int{},
		ThrottledBySender:     maps.Clone(l.throttled),
		Failures:              maps.Clone(l.failures),
		MaxPerSecond:          map[string]int{},
		Webhooks:              l.webhooks,
		IdempotentReplays:     l.replays,
		DroppedEntries:        l.dropped,
		DroppedRejections:     l.droppedRej,
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
	for _, n := range l.throttled {
		s.Throttled += n
	}
	for sender, r := range l.rates {
		s.MaxPerSecond[sender] = r.best
	}
	if withEntries {
		s.Entries = slices.Clone(l.entries)
		s.Rejections = slices.Clone(l.rejections)
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

package simulator

import (
	"bytes"
	"container/heap"
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/wanotify/wanotify/pkg/metawebhook"
)

// webhookJob is one status webhook, due at a time.
type webhookJob struct {
	due     time.Time
	seq     uint64 // ties broken by scheduling order
	body    []byte
	attempt int // deliveries already tried
}

type jobHeap []*webhookJob

func (h jobHeap) Len() int { return len(h) }
func (h jobHeap) Less(i, j int) bool {
	if c := h[i].due.Compare(h[j].due); c != 0 {
		return c < 0
	}
	return h[i].seq < h[j].seq
}
func (h jobHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *jobHeap) Push(x any)   { *h = append(*h, x.(*webhookJob)) }
func (h *jobHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return x
}

// webhooks delivers status webhooks: a time-ordered queue feeding a fixed
// pool of workers. Scheduling never blocks: the send path only pushes onto
// a bounded heap. Retries go back onto the heap with their backoff, so a
// failing receiver delays nothing but its own webhooks.
type webhooks struct {
	cfg    WebhookConfig
	ledger *ledger
	client *http.Client

	mu      sync.Mutex
	queue   jobHeap
	seq     uint64
	running bool
	wake    chan struct{} // cap 1
	ready   chan *webhookJob
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

func newWebhooks(cfg WebhookConfig, l *ledger) *webhooks {
	return &webhooks{
		cfg:    cfg,
		ledger: l,
		client: &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{
			MaxIdleConns: cfg.Workers, MaxIdleConnsPerHost: cfg.Workers, IdleConnTimeout: 30 * time.Second,
		}},
		wake:  make(chan struct{}, 1),
		ready: make(chan *webhookJob),
	}
}

func (w *webhooks) enabled() bool { return w.cfg.URL != "" }

// start runs the scheduler and the workers until shutdown.
func (w *webhooks) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running || !w.enabled() {
		return
	}
	w.running = true
	ctx, cancel := context.WithCancel(context.Background())
	w.stop = cancel
	w.wg.Add(1 + w.cfg.Workers)
	go w.schedule(ctx)
	for range w.cfg.Workers {
		go w.work(ctx)
	}
}

// shutdown stops delivering; webhooks still queued are dropped, and
// in-flight deliveries are canceled.
func (w *webhooks) shutdown() {
	w.mu.Lock()
	stop := w.stop
	w.running = false
	w.stop = nil
	w.mu.Unlock()
	if stop != nil {
		stop()
	}
	w.wg.Wait()
	w.client.CloseIdleConnections()
}

// enqueue schedules body for delivery at due. It reports false (and counts
// a drop) when the queue is full.
func (w *webhooks) enqueue(due time.Time, body []byte) bool {
	if !w.push(&webhookJob{due: due, body: body}) {
		return false
	}
	w.ledger.webhook(func(s *WebhookStats) { s.Scheduled++ })
	return true
}

func (w *webhooks) push(j *webhookJob) bool {
	w.mu.Lock()
	if len(w.queue) >= w.cfg.QueueSize {
		w.mu.Unlock()
		w.ledger.webhook(func(s *WebhookStats) { s.Dropped++ })
		return false
	}
	w.seq++
	j.seq = w.seq
	heap.Push(&w.queue, j)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return true
}

// pending is the number of queued webhooks.
func (w *webhooks) pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue)
}

func (w *webhooks) clear() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.queue = nil
}

func (w *webhooks) schedule(ctx context.Context) {
	defer w.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		w.mu.Lock()
		var next *webhookJob
		wait := time.Hour
		if len(w.queue) > 0 {
			if d := time.Until(w.queue[0].due); d <= 0 {
				next = heap.Pop(&w.queue).(*webhookJob)
			} else {
				wait = d
			}
		}
		w.mu.Unlock()

		if next != nil {
			select {
			case w.ready <- next:
			case <-ctx.Done():
				return
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-w.wake:
		case <-ctx.Done():
			return
		}
	}
}

func (w *webhooks) work(ctx context.Context) {
	defer w.wg.Done()
	for {
		select {
		case j := <-w.ready:
			w.deliver(ctx, j)
		case <-ctx.Done():
			return
		}
	}
}

func (w *webhooks) deliver(ctx context.Context, j *webhookJob) {
	j.attempt++
	if j.attempt > 1 {
		w.ledger.webhook(func(s *WebhookStats) { s.Retries++ })
	}
	if w.post(ctx, j.body) {
		w.ledger.webhook(func(s *WebhookStats) { s.Delivered++ })
		return
	}
	if ctx.Err() != nil {
		return
	}
	if j.attempt >= w.cfg.MaxAttempts {
		w.ledger.webhook(func(s *WebhookStats) { s.GaveUp++ })
		return
	}
	backoff := w.cfg.Backoff << (j.attempt - 1)
	if backoff <= 0 || backoff > w.cfg.MaxBackoff {
		backoff = w.cfg.MaxBackoff
	}
	j.due = time.Now().Add(backoff)
	w.push(j)
}

func (w *webhooks) post(ctx context.Context, body []byte) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(w.cfg.SignatureHeader, metawebhook.Sign([]byte(w.cfg.Secret), body))
	resp, err := w.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}

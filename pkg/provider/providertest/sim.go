// Package providertest is the conformance suite every provider.Provider
// must pass, run against the in-process provider simulator, plus helpers
// other packages' tests use: an in-process simulator on 127.0.0.1 and a
// webhook receiver that checks signatures.
package providertest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/metawebhook"
	"github.com/wanotify/wanotify/pkg/simulator"
)

// StartSimulator runs a simulator for the test's lifetime, served by
// httptest on 127.0.0.1 (cfg.Addr is ignored), and returns it with its
// base URL. Webhook delivery is started; everything stops at cleanup.
func StartSimulator(t testing.TB, cfg simulator.Config) (*simulator.Simulator, string) {
	t.Helper()
	cfg.Addr = ""
	sim, err := simulator.New(cfg)
	if err != nil {
		t.Fatalf("simulator.New: %v", err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close) // runs after Shutdown released hung requests
	if err := sim.Start(context.Background()); err != nil {
		t.Fatalf("simulator.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := sim.Shutdown(ctx); err != nil {
			t.Errorf("simulator.Shutdown: %v", err)
		}
	})
	return sim, srv.URL
}

// Webhook is one webhook request a WebhookRecorder received.
type Webhook struct {
	Body      []byte
	Signature string
	Valid     bool // signature verified with the recorder's secret
	Payload   metawebhook.Payload
	At        time.Time
}

// Statuses returns the statuses of w in payload order.
func (w Webhook) Statuses() []metawebhook.Status {
	var out []metawebhook.Status
	for _, e := range w.Payload.Entry {
		for _, c := range e.Changes {
			out = append(out, c.Value.Statuses...)
		}
	}
	return out
}

// WebhookRecorder is a webhook receiver on 127.0.0.1 that verifies
// X-Hub-Signature-256 with its secret (401 when it does not match) and
// records every request in arrival order.
type WebhookRecorder struct {
	URL    string
	secret []byte

	mu      sync.Mutex
	got     []Webhook
	respond func(n int) int
	changed chan struct{}
}

// NewWebhookRecorder starts a recorder for the test's lifetime.
func NewWebhookRecorder(t testing.TB, secret string) *WebhookRecorder {
	r := &WebhookRecorder{secret: []byte(secret), changed: make(chan struct{}, 1)}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// Respond makes the recorder answer its n-th request (1-based, counting
// every request) with status(n) when the signature is valid. Default 200.
func (r *WebhookRecorder) Respond(status func(n int) int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.respond = status
}

func (r *WebhookRecorder) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sig := req.Header.Get(metawebhook.DefaultSignatureHeader)
	wh := Webhook{Body: body, Signature: sig, Valid: metawebhook.Verify(r.secret, body, sig), At: time.Now()}
	_ = json.Unmarshal(body, &wh.Payload)
	r.mu.Lock()
	r.got = append(r.got, wh)
	n, respond := len(r.got), r.respond
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
	status := http.StatusOK
	switch {
	case !wh.Valid:
		status = http.StatusUnauthorized
	case respond != nil:
		status = respond(n)
	}
	w.WriteHeader(status)
}

// Received returns every request so far.
func (r *WebhookRecorder) Received() []Webhook {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Webhook(nil), r.got...)
}

// WaitFor waits until at least n requests arrived, failing the test after
// timeout, and returns them.
func (r *WebhookRecorder) WaitFor(t testing.TB, n int, timeout time.Duration) []Webhook {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if got := r.Received(); len(got) >= n {
			return got
		}
		select {
		case <-r.changed:
		case <-deadline.C:
			t.Fatalf("webhook recorder: got %d requests, want %d within %s", len(r.Received()), n, timeout)
		}
	}
}

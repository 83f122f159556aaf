package xpressbot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/provider/providertest"
	"github.com/wanotify/wanotify/pkg/provider/xpressbot"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func factory(mode xpressbot.AuthMode) providertest.Factory {
	return func(t *testing.T, target providertest.Target) provider.Provider {
		c, err := xpressbot.New(xpressbot.Options{
			BaseURL: target.URL, APIKey: target.APIKey, AuthMode: mode, Timeout: target.Timeout,
		})
		if err != nil {
			t.Fatalf("xpressbot.New: %v", err)
		}
		t.Cleanup(c.Close)
		return c
	}
}

func TestConformanceAPIKeyHeader(t *testing.T) {
	providertest.Run(t, providertest.Suite{New: factory(xpressbot.AuthAPIKey), SendsIdempotencyKey: true})
}

func TestConformanceBearer(t *testing.T) {
	providertest.Run(t, providertest.Suite{New: factory(xpressbot.AuthBearer), SendsIdempotencyKey: true})
}

func TestOptionsValidate(t *testing.T) {
	ok := xpressbot.Options{BaseURL: "https://xb.example", APIKey: "k"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid options rejected: %v", err)
	}
	cases := []struct {
		name string
		o    xpressbot.Options
		want []string // every one must appear in the error
	}{
		{"empty", xpressbot.Options{}, []string{"BaseURL (WANOTIFY_XPRESSBOT_BASE_URL): is required", "APIKey (WANOTIFY_XPRESSBOT_API_KEY): is required"}},
		{"relative url", xpressbot.Options{BaseURL: "xb.example", APIKey: "k"}, []string{"BaseURL", "not an absolute"}},
		{"auth mode", xpressbot.Options{BaseURL: "http://x", APIKey: "k", AuthMode: "basic"}, []string{"AuthMode (WANOTIFY_XPRESSBOT_AUTH_MODE)"}},
		{"send path", xpressbot.Options{BaseURL: "http://x", APIKey: "k", SendPath: "send"}, []string{"SendPath (WANOTIFY_XPRESSBOT_SEND_PATH)"}},
		{"timeout", xpressbot.Options{BaseURL: "http://x", APIKey: "k", Timeout: -time.Second}, []string{"Timeout (WANOTIFY_XPRESSBOT_TIMEOUT)"}},
		{"idle", xpressbot.Options{BaseURL: "http://x", APIKey: "k", MaxIdleConns: -1}, []string{"MaxIdleConns (WANOTIFY_XPRESSBOT_MAX_IDLE_CONNS)"}},
	}
	for _, c := range cases {
		err := c.o.Validate()
		if err == nil {
			t.Fatalf("%s: no error", c.name)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
		if _, err := xpressbot.New(c.o); err == nil {
			t.Fatalf("%s: New accepted invalid options", c.name)
		}
	}
}

func TestLoad(t *testing.T) {
	env := map[string]string{
		xpressbot.EnvBaseURL: "https://xb.example", xpressbot.EnvAPIKey: "secret", xpressbot.EnvAuthMode: "Bearer",
		xpressbot.EnvSendPath: "/v2/send", xpressbot.EnvTimeout: "3s", xpressbot.EnvMaxIdleConns: "7",
	}
	o, err := load(env)
	if err != nil {
		t.Fatal(err)
	}
	if o.BaseURL != "https://xb.example" || o.APIKey != "secret" || o.AuthMode != xpressbot.AuthBearer ||
		o.SendPath != "/v2/send" || o.Timeout != 3*time.Second || o.MaxIdleConns != 7 {
		t.Fatalf("Load = %+v", o)
	}
	env[xpressbot.EnvTimeout] = "soon"
	if _, err := load(env); err == nil ||
		!strings.Contains(err.Error(), xpressbot.EnvTimeout) {
		t.Fatalf("bad timeout: err = %v, want it to name %s", err, xpressbot.EnvTimeout)
	}
}

// capture is a fake Xpressbot that records requests and answers with a
// canned response.
type capture struct {
	mu      sync.Mutex
	reqs    []*http.Request
	bodies  [][]byte
	status  int
	header  http.Header
	payload string
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.reqs = append(c.reqs, r)
	c.bodies = append(c.bodies, b)
	c.mu.Unlock()
	for k, v := range c.header {
		w.Header()[k] = v
	}
	w.WriteHeader(c.status)
	_, _ = io.WriteString(w, c.payload)
}

// request returns the i-th request and its body.
func (c *capture) request(i int) (*http.Request, []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reqs[i], c.bodies[i]
}

func newCapture(t *testing.T, status int, payload string) (*capture, *httptest.Server) {
	c := &capture{status: status, payload: payload, header: http.Header{}}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, srv
}

func newClient(t *testing.T, o xpressbot.Options) *xpressbot.Client {
	c, err := xpressbot.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestRequestShape(t *testing.T) {
	capt, srv := newCapture(t, 200, `{"success":true,"data":{"message_id":"wamid.X1"},"message":"ok"}`)
	c := newClient(t, xpressbot.Options{BaseURL: srv.URL + "/", APIKey: "k1", SendPath: "/custom/send"})
	m := providertest.TextMessage(1, "")
	m.Text = nil
	m.Template = &contract.Template{Name: "otp", Language: "en", Parameters: []string{"123456"}}
	id, err := c.Send(context.Background(), m)
	if err != nil || id != "wamid.X1" {
		t.Fatalf("Send = %q, %v", id, err)
	}
	r, raw := capt.request(0)
	if r.Method != http.MethodPost || r.URL.Path != "/custom/send" || r.Header.Get("X-API-Key") != "k1" ||
		r.Header.Get("Authorization") != "" || r.Header.Get("Content-Type") != "application/json" ||
		r.Header.Get("Idempotency-Key") != "" {
		t.Fatalf("request %s %s headers %v", r.Method, r.URL.Path, r.Header)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"phone_number_id":          providertest.Sender,
		"to":                       providertest.Recipient,
		"type":                     "template",
		"template":                 map[string]any{"name": "otp", "language": "en", "parameters": []any{"123456"}},
		"biz_opaque_callback_data": m.NotificationID,
		"idempotency_key":          m.IdempotencyKey,
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("body\n got %s\nwant %s", gb, wb)
	}

	// Bearer mode, and the notification id stands in for a missing key.
	c2 := newClient(t, xpressbot.Options{BaseURL: srv.URL, APIKey: "k2", AuthMode: xpressbot.AuthBearer})
	m = providertest.TextMessage(2, "hi")
	m.IdempotencyKey = ""
	if _, err := c2.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	r, raw = capt.request(1)
	if r.URL.Path != xpressbot.DefaultSendPath || r.Header.Get("Authorization") != "Bearer k2" || r.Header.Get("X-API-Key") != "" {
		t.Fatalf("bearer request %s headers %v", r.URL.Path, r.Header)
	}
	var body xpressbot.SendRequest
	_ = json.Unmarshal(raw, &body)
	if body.Type != "text" || body.Text.Body != "hi" || body.IdempotencyKey != m.NotificationID {
		t.Fatalf("text body %+v", body)
	}
}

func TestResponses(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		header  map[string]string
		payload string
		id      string
		class   provider.Class
		code    string
		after   time.Duration
	}{
		{name: "messages list", status: 200, payload: `{"success":true,"data":{"messages":[{"id":"wamid.L"}]}}`, id: "wamid.L"},
		{name: "success false with code on 200", status: 200,
			payload: `{"success":false,"data":{"error":{"code":131047,"message":"window"}},"message":"failed"}`,
			class:   provider.Permanent, code: "meta_131047"},
		{name: "success false without code", status: 200, payload: `{"success":false,"message":"nope"}`,
			class: provider.Retryable, code: "provider_error"},
		{name: "success without id", status: 200, payload: `{"success":true,"data":{}}`,
			class: provider.Retryable, code: "bad_response"},
		{name: "garbage 200", status: 200, payload: `<html>`, class: provider.Retryable, code: "bad_response"},
		{name: "html 502", status: 502, payload: `<html>bad gateway</html>`, class: provider.Retryable, code: "http_502"},
		{name: "data is a string", status: 422, payload: `{"success":false,"data":"oops","message":"bad"}`,
			class: provider.Permanent, code: "http_422"},
		{name: "429 with http-date", status: 429, header: map[string]string{"Retry-After": time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)},
			payload: `{"success":false,"message":"slow down"}`, class: provider.Throttled, code: "http_429", after: 89 * time.Second},
		{name: "pair rate", status: 400, payload: `{"success":false,"data":{"error":{"code":131056}}}`,
			class: provider.Throttled, code: "meta_131056", after: provider.PairRateRetryAfter},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			capt, srv := newCapture(t, c.status, c.payload)
			for k, v := range c.header {
				capt.header.Set(k, v)
			}
			cl := newClient(t, xpressbot.Options{BaseURL: srv.URL, APIKey: "k"})
			id, err := cl.Send(context.Background(), providertest.TextMessage(1, "x"))
			if c.id != "" {
				if err != nil || id != c.id {
					t.Fatalf("Send = %q, %v; want %q", id, err, c.id)
				}
				return
			}
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Class != c.class || pe.Code != c.code {
				t.Fatalf("err = %v, want %s %s", err, c.class, c.code)
			}
			if c.after != 0 && (pe.RetryAfter < c.after || pe.RetryAfter > c.after+2*time.Second) {
				t.Fatalf("RetryAfter = %s, want about %s", pe.RetryAfter, c.after)
			}
		})
	}
}

func TestLogsMaskRecipientAndNeverTheKey(t *testing.T) {
	_, srv := newCapture(t, 400, `{"success":false,"data":{"error":{"code":131026,"message":"undeliverable"}}}`)
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const key = "sk_live_very_secret"
	c := newClient(t, xpressbot.Options{BaseURL: srv.URL, APIKey: key, Logger: log})
	_, err := c.Send(context.Background(), providertest.TextMessage(1, "x"))
	if err == nil {
		t.Fatal("want an error")
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "meta_131026") {
		t.Fatalf("failure not logged: %q", out)
	}
	if strings.Contains(out, key) || strings.Contains(out, providertest.Recipient) || strings.Contains(err.Error(), key) {
		t.Fatalf("log or error leaks the key or the full number: %q / %v", out, err)
	}
	if !strings.Contains(out, "+447*******23") {
		t.Fatalf("recipient not masked in %q", out)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestSpanPerCall(t *testing.T) {
	_, srv := newCapture(t, 200, `{"success":true,"data":{"message_id":"wamid.S"}}`)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, parent := tp.Tracer("test").Start(context.Background(), "dispatch")
	c := newClient(t, xpressbot.Options{BaseURL: srv.URL, APIKey: "k"})
	for i := range 2 {
		if _, err := c.Send(ctx, providertest.TextMessage(i, "x")); err != nil {
			t.Fatal(err)
		}
	}
	parent.End()
	var sends int
	for _, s := range rec.Ended() {
		if s.Name() == "xpressbot send" {
			sends++
			if s.Parent().SpanID() != parent.SpanContext().SpanID() {
				t.Fatal("send span is not a child of the caller's span")
			}
			for _, a := range s.Attributes() {
				if strings.Contains(a.Value.Emit(), "447700900123") {
					t.Fatalf("span attribute %s leaks the recipient", a.Key)
				}
			}
		}
	}
	if sends != 2 {
		t.Fatalf("%d send spans, want one per call (2)", sends)
	}
}

func load(env map[string]string) (xpressbot.Options, error) {
	e := config.New(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	o := xpressbot.Load(e)
	return o, e.Err()
}

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/dispatcher"
	"github.com/wanotify/wanotify/pkg/ingest"
	"github.com/wanotify/wanotify/pkg/kafkaconf"
	"github.com/wanotify/wanotify/pkg/logstore"
	"github.com/wanotify/wanotify/pkg/provider/providertest"
	"github.com/wanotify/wanotify/pkg/provider/xpressbot"
	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/sink"
	"github.com/wanotify/wanotify/pkg/telemetry"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/webhook"
)

// Credentials of the test stack. The log check asserts none of them is
// ever written to a log line.
const (
	apiKey        = "e2e-api-key-6b1f0c"
	simAPIKey     = "e2e-sim-key-93d2aa"
	webhookSecret = "e2e-webhook-secret-41c7"
	tenant        = "acme"
)

// apiKeyEntry is apiKey's WANOTIFY_INGEST_API_KEYS entry.
func apiKeyEntry() string {
	h := sha256.Sum256([]byte(apiKey))
	return tenant + ":" + hex.EncodeToString(h[:])
}

// lockedBuffer collects the JSON log lines of every service.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// stack is the whole pipeline in this process: kfake, the real ClickHouse,
// the simulator, the webhook receiver, the dispatcher, the sink and the
// ingest API, sharing one telemetry setup whose spans go to an in-memory
// exporter.
type stack struct {
	spans     *tracetest.InMemoryExporter
	logs      *lockedBuffer
	tel       *telemetry.Telemetry
	store     *logstore.Store
	sim       *simulator.Simulator
	ingestURL string
}

// startStack starts everything and stops it at cleanup, in reverse order.
func startStack(t *testing.T, opts ...stackOption) *stack {
	t.Helper()
	var o stackOptions
	for _, f := range opts {
		f(&o)
	}
	// ClickHouse first: without it the test skips (fails in CI) before
	// anything else is started.
	db := testinfra.ClickHouseDatabase(t)
	brokers := testinfra.KafkaWithTopics(t, 2)

	s := &stack{spans: tracetest.NewInMemoryExporter(), logs: &lockedBuffer{}}
	prevTP, prevMP, prevProp := otel.GetTracerProvider(), otel.GetMeterProvider(), otel.GetTextMapPropagator()
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{
		ServiceName: "wanotify-e2e", SampleRatio: 1, LogLevel: "debug", SpanExporter: s.spans,
		OTLPEndpoint: o.otlpEndpoint, OTLPInsecure: true,
	}, s.logs)
	if err != nil {
		t.Fatal(err)
	}
	s.tel = tel
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(ctx)
		otel.SetTracerProvider(prevTP)
		otel.SetMeterProvider(prevMP)
		otel.SetTextMapPropagator(prevProp)
	})
	logFor := func(service string) *slog.Logger { return tel.Logger.With("component", service) }

	// The Kafka options are built after Setup: the tracing hooks bind the
	// global providers when Opts is called, exactly as in the services.
	env := map[string]string{
		"WANOTIFY_KAFKA_BROKERS":   strings.Join(brokers, ","),
		"WANOTIFY_INGEST_ADDR":     "127.0.0.1:0",
		"WANOTIFY_INGEST_API_KEYS": apiKeyEntry(),
	}
	e := config.New(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	kafkaOpts := func(clientID string) []kgo.Opt {
		kc := kafkaconf.Load(e, clientID)
		opts, err := kc.Opts()
		if err != nil {
			t.Fatal(err)
		}
		return append(opts, kgo.MetadataMinAge(250*time.Millisecond))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("%s stopped: %v", name, err)
			}
		}()
	}

	// Webhook receiver (httptest), so the simulator knows where to post.
	wcfg := webhook.DefaultConfig()
	wcfg.Secret = webhookSecret
	wcl, err := kgo.NewClient(append(kafkaOpts("wanotify-webhook"), webhook.ProducerOptions()...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wcl.Close)
	rx, err := webhook.New(wcfg, wcl, webhook.WithLogger(logFor("webhook")))
	if err != nil {
		t.Fatal(err)
	}
	wsrv := httptest.NewServer(rx.Handler())
	t.Cleanup(wsrv.Close)

	// The provider: every send accepted, then sent, delivered and read
	// webhooks in order, quickly.
	step := simulator.Fixed(30 * time.Millisecond)
	sim, simURL := providertest.StartSimulator(t, simulator.Config{
		APIKey: simAPIKey, Seed: 11,
		Webhook: simulator.WebhookConfig{URL: wsrv.URL + wcfg.Path, Secret: webhookSecret, Backoff: 100 * time.Millisecond},
		Behavior: simulator.Behavior{
			Webhooks: true, SentDelay: step, DeliveredDelay: step, ReadDelay: step, ReadRate: 1,
		},
		Logger: logFor("simulator"),
	})
	s.sim = sim

	// Dispatcher, scaled for a test: short retry delays, quick flushes.
	prov, err := xpressbot.New(xpressbot.Options{BaseURL: simURL, APIKey: simAPIKey, Timeout: 5 * time.Second, Logger: logFor("xpressbot")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prov.Close)
	dcfg := dispatcher.DefaultConfig()
	dcfg.TransactionalID = "e2e-dispatcher"
	dcfg.FlushInterval = 50 * time.Millisecond
	dcfg.FetchMaxWait = 100 * time.Millisecond
	dcfg.SessionTimeout = 3 * time.Second
	dcfg.RebalanceTimeout = 10 * time.Second
	dcfg.TransactionTimeout = 10 * time.Second
	dcfg.RetryDelays = []time.Duration{200 * time.Millisecond, 300 * time.Millisecond, 400 * time.Millisecond}
	dcfg.DrainTimeout = 5 * time.Second
	d, err := dispatcher.New(dcfg, prov, kafkaOpts("wanotify-dispatcher"), logFor("dispatcher"))
	if err != nil {
		t.Fatal(err)
	}
	run("dispatcher", d.Run)

	// Sink into the test's database.
	sk, err := sink.New(sink.Config{BatchInterval: 100 * time.Millisecond, DrainTimeout: 5 * time.Second},
		db.Options(), kafkaOpts("wanotify-sink"), logFor("sink"))
	if err != nil {
		t.Fatal(err)
	}
	run("sink", sk.Run)
	s.store = logstore.New(db.Conn, db.Name)

	// Ingest API (httptest).
	ic := ingest.Load(e)
	if err := errors.Join(ic.Validate(), e.Err()); err != nil {
		t.Fatal(err)
	}
	popts, err := ingest.ProducerOpts(ic)
	if err != nil {
		t.Fatal(err)
	}
	icl, err := kgo.NewClient(append(popts, kgo.MetadataMinAge(250*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(icl.Close)
	srv, err := ingest.NewServer(ic, icl, nil, logFor("ingest"))
	if err != nil {
		t.Fatal(err)
	}
	isrv := httptest.NewServer(srv.Router())
	t.Cleanup(isrv.Close)
	s.ingestURL = isrv.URL

	deadline := time.Now().Add(30 * time.Second)
	for !sk.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("sink not ready after 30s (migrations or ClickHouse)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// publish POSTs body to the ingest API with the caller's traceparent and
// returns the accepted notification id.
func (s *stack) publish(t *testing.T, traceparent, body string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.ingestURL+"/v1/notifications", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", traceparent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/notifications: %d %s", resp.StatusCode, b)
	}
	var out ingest.Accepted
	if err := json.Unmarshal(b, &out); err != nil || out.NotificationID == "" {
		t.Fatalf("POST /v1/notifications answer %s: %v", b, err)
	}
	return out.NotificationID
}

// waitStatus waits until communication_logs shows notification id in one
// of want, and returns its view.
func (s *stack) waitStatus(t *testing.T, id string, timeout time.Duration, want ...string) *logstore.View {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := s.store.Notification(ctx, "", id)
		cancel()
		if err == nil {
			last = v.Status
			for _, w := range want {
				if v.Status == w {
					return v
				}
			}
		} else if !errors.Is(err, logstore.ErrNotFound) {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("notification %s: status %q after %s, want one of %v", id, last, timeout, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

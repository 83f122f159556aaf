package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/logstore"
	"github.com/wanotify/wanotify/pkg/metawebhook"
	"github.com/wanotify/wanotify/pkg/obscheck"
	"github.com/wanotify/wanotify/pkg/provider/providertest"
	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
	"github.com/wanotify/wanotify/pkg/webhook"
)

// TestMetricsCatalogue runs ingest, dispatcher, webhook receiver and sink
// as separate processes (each as its binary would: service.Run with its
// Configure), drives traffic that exercises every documented outcome
// (delivered, permanent failure, 429s and 5xx retried into the DLQ, a
// poison record, invalid and unauthenticated requests, a forged webhook,
// an inbound message), scrapes each service's /metrics and checks it
// against the catalogue in docs/observability.md: every metric the
// catalogue lists for a service is exposed by that service, with the
// documented type and exactly the documented labels, and every wanotify
// metric a service exposes is in the catalogue. It also checks that no
// service logged a phone number or a secret, and that every log line is
// JSON.
func TestMetricsCatalogue(t *testing.T) {
	cat, err := obscheck.LoadCatalogue(filepath.Join(testinfra.RepoRoot(), obscheck.CatalogueFile))
	if err != nil {
		t.Fatal(err)
	}
	db := testinfra.ClickHouseDatabase(t)
	brokers := testinfra.KafkaWithTopics(t, 2)
	kafka := strings.Join(brokers, ",")

	webhookAddr, ingestAddr, dispatcherAddr, sinkAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	// Ingest and the webhook receiver serve /readyz and /metrics on an
	// admin listener of their own, apart from their public port.
	webhookAdmin, ingestAdmin := freeAddr(t), freeAddr(t)
	step := simulator.Fixed(30 * time.Millisecond)
	_, simURL := providertest.StartSimulator(t, simulator.Config{
		APIKey: simAPIKey, Seed: 5,
		Webhook: simulator.WebhookConfig{URL: "http://" + webhookAddr + webhook.DefaultPath, Secret: webhookSecret,
			Backoff: 100 * time.Millisecond, MaxAttempts: 20},
		Behavior: simulator.Behavior{Webhooks: true, SentDelay: step, DeliveredDelay: step, ReadDelay: step, ReadRate: 1},
	})

	common := map[string]string{"WANOTIFY_KAFKA_BROKERS": kafka, "WANOTIFY_LOG_LEVEL": "debug", "WANOTIFY_SENDERS": sendersRegistry}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range common {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	procs := map[string]*proc{
		"webhook": startProc(t, "webhook", webhookAdmin, with(map[string]string{
			"WANOTIFY_WEBHOOK_ADDR": webhookAddr, "WANOTIFY_ADMIN_ADDR": webhookAdmin, "WANOTIFY_WEBHOOK_SECRET": webhookSecret,
		})),
		"dispatcher": startProc(t, "dispatcher", dispatcherAddr, with(map[string]string{
			"WANOTIFY_ADMIN_ADDR":                   dispatcherAddr,
			"WANOTIFY_XPRESSBOT_BASE_URL":           simURL,
			"WANOTIFY_XPRESSBOT_API_KEY":            simAPIKey,
			"WANOTIFY_DISPATCHER_TRANSACTIONAL_ID":  "e2e-metrics",
			"WANOTIFY_DISPATCHER_RETRY_DELAYS":      "200ms,300ms,400ms",
			"WANOTIFY_DISPATCHER_FLUSH_INTERVAL":    "50ms",
			"WANOTIFY_DISPATCHER_FETCH_MAX_WAIT":    "100ms",
			"WANOTIFY_DISPATCHER_SESSION_TIMEOUT":   "3s",
			"WANOTIFY_DISPATCHER_REBALANCE_TIMEOUT": "10s",
			"WANOTIFY_DISPATCHER_DRAIN_TIMEOUT":     "5s",
		})),
		"sink": startProc(t, "sink", sinkAddr, with(map[string]string{
			"WANOTIFY_ADMIN_ADDR":             sinkAddr,
			"WANOTIFY_CLICKHOUSE_ADDR":        db.Server.Addr,
			"WANOTIFY_CLICKHOUSE_DATABASE":    db.Name,
			"WANOTIFY_SINK_BATCH_INTERVAL":    "100ms",
			"WANOTIFY_SINK_RETRY_MAX_BACKOFF": "1s",
		})),
		"ingest": startProc(t, "ingest", ingestAdmin, with(map[string]string{
			"WANOTIFY_INGEST_ADDR": ingestAddr, "WANOTIFY_ADMIN_ADDR": ingestAdmin, "WANOTIFY_INGEST_API_KEYS": apiKeyEntry(),
			"WANOTIFY_CLICKHOUSE_ADDR": db.Server.Addr, "WANOTIFY_CLICKHOUSE_DATABASE": db.Name,
		})),
	}
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.waitReady(t, 45*time.Second) }()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Traffic.
	post := func(body, key string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+ingestAddr+"/v1/notifications", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err, "POST /v1/notifications")
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var a struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(b, &a)
		return resp.StatusCode, a.ID
	}
	want := map[string]string{}
	for _, c := range []struct{ key, recipient, text, final string }{
		{"m-ok", "+447100900201", "hello", "read"},
		{"m-permanent", "+447100900202", "x [sim:meta_131026]", "failed"},
		{"m-throttled", "+447100900203", "x [sim:meta_130429:1]", "dead_lettered"},
		{"m-retryable", "+447100900204", "x [sim:http_503]", "dead_lettered"},
	} {
		code, id := post(`{"event_type":"metrics.check","idempotency_key":"`+c.key+`","recipient":"`+c.recipient+`","text":{"body":"`+c.text+`"}}`, apiKey)
		if code != http.StatusAccepted {
			t.Fatalf("POST %s: %d", c.key, code)
		}
		want[id] = c.final
	}
	if code, _ := post(`{"event_type":"metrics.check"}`, apiKey); code != http.StatusBadRequest {
		t.Errorf("invalid request: %d, want 400", code)
	}
	if code, _ := post(`{"event_type":"metrics.check","recipient":"+447100900205","text":{"body":"x"}}`, ""); code != http.StatusUnauthorized {
		t.Errorf("request without a key: %d, want 401", code)
	}
	// A poison record straight onto the topic: dead-lettered by the
	// dispatcher, written to ingest_errors by the sink.
	prod := testinfra.Client(t, brokers, kgo.ProducerLinger(0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	must(t, prod.ProduceSync(ctx, &kgo.Record{Topic: topics.Requested, Key: []byte("+447100900206"), Value: []byte("not json")}).FirstErr(), "produce poison")
	cancel()
	// Webhooks: a forged one, and a signed one carrying an inbound message
	// and a change the receiver does not use.
	hook := func(body []byte, sig string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+webhookAddr+webhook.DefaultPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(metawebhook.DefaultSignatureHeader, sig)
		resp, err := http.DefaultClient.Do(req)
		must(t, err, "POST webhook")
		resp.Body.Close()
		return resp.StatusCode
	}
	inbound := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"sim-waba","changes":[` +
		`{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000000","phone_number_id":"default"},` +
		`"messages":[{"from":"447700900207","id":"wamid.in1","timestamp":"1767225600","type":"text","text":{"body":"hi"}}]}},` +
		`{"field":"account_update","value":{}}]}]}`)
	if code := hook(inbound, "sha256=0000"); code != http.StatusUnauthorized {
		t.Errorf("forged webhook: %d, want 401", code)
	}
	if code := hook(inbound, metawebhook.Sign([]byte(webhookSecret), inbound)); code != http.StatusOK {
		t.Errorf("signed webhook with an inbound message: %d, want 200", code)
	}

	store := logstore.New(db.Conn, db.Name)
	deadline := time.Now().Add(45 * time.Second)
	for id, final := range want {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			v, err := store.Notification(ctx, "", id)
			cancel()
			if err == nil && v.Status == final {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("notification %s: %v %v, want status %s", id, v, err, final)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	for name, p := range procs {
		body := p.scrape(t)
		if os.Getenv("WANOTIFY_E2E_DUMP") != "" {
			_ = os.WriteFile("/tmp/e2e-metrics-"+name+".txt", body, 0o644)
		}
		parser := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s: /metrics is not the Prometheus text format: %v", name, err)
		}
		checkExposition(t, cat, name, fams)
	}

	for name, p := range procs {
		checkServiceLog(t, name, p.log())
	}
}

// checkExposition compares one service's metric families with the
// catalogue.
func checkExposition(t *testing.T, cat *obscheck.Catalogue, service string, fams map[string]*dto.MetricFamily) {
	t.Helper()
	for _, m := range cat.Metrics {
		if !m.ExposedBy(service) {
			continue
		}
		f, ok := fams[m.Name]
		if !ok {
			if m.Condition == "" {
				t.Errorf("%s: %s is not exposed", service, m.Name)
			}
			continue
		}
		if got := strings.ToLower(f.GetType().String()); got != m.Type {
			t.Errorf("%s: %s is a %s, the catalogue says %s", service, m.Name, got, m.Type)
		}
		for _, s := range f.GetMetric() {
			if got := labelNames(s); !labelsMatch(m, got) {
				t.Errorf("%s: %s has a series with labels %v, the catalogue says %v (optional %v)", service, m.Name, got, m.Labels, m.Optional)
				break
			}
		}
	}
	for name := range fams {
		if strings.HasPrefix(name, "wanotify_") && cat.Lookup(name) == nil {
			t.Errorf("%s exposes %s, which the catalogue (%s) does not document", service, name, obscheck.CatalogueFile)
		}
	}
}

// labelNames are a series' label names (a histogram's family carries no
// le: its buckets are inside the one series).
func labelNames(m *dto.Metric) []string {
	var out []string
	for _, l := range m.GetLabel() {
		out = append(out, l.GetName())
	}
	sort.Strings(out)
	return out
}

// labelsMatch: every required label is there, and nothing undocumented.
func labelsMatch(m obscheck.Metric, got []string) bool {
	for _, l := range m.Labels {
		if !slices.Contains(got, l) {
			return false
		}
	}
	for _, l := range got {
		if !m.HasLabel(l) {
			return false
		}
	}
	return true
}

// checkServiceLog: every line JSON, no phone number, no secret.
func checkServiceLog(t *testing.T, service, log string) {
	t.Helper()
	secrets := []string{"77009002", apiKey, simAPIKey, webhookSecret}
	for _, line := range strings.Split(log, "\n") {
		if line == "" {
			continue
		}
		if !json.Valid([]byte(line)) {
			t.Errorf("%s logged a line that is not JSON: %.200s", service, line)
		}
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("%s logged %s***: %.200s", service, s[:2], strings.ReplaceAll(line, s, "***"))
			}
		}
	}
}

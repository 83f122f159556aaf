package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/metawebhook"
	"github.com/wanotify/wanotify/pkg/telemetry"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testSecret = "test-app-secret-0123456789abcdef0123"

// metaStatus is a well-formed status as Meta sends it.
func metaStatus(id, status, recipient string, ts int64) metawebhook.Status {
	return metawebhook.Status{ID: id, Status: status, RecipientID: recipient, Timestamp: strconv.FormatInt(ts, 10)}
}

// payload wraps statuses in one entry/change, as Meta does.
func metaPayload(statuses ...metawebhook.Status) metawebhook.Payload {
	return metawebhook.Payload{
		Object: "whatsapp_business_account",
		Entry: []metawebhook.Entry{{ID: "waba-1", Changes: []metawebhook.Change{{
			Field: "messages",
			Value: metawebhook.Value{MessagingProduct: "whatsapp",
				Metadata: metawebhook.Metadata{DisplayPhoneNumber: "15550000001", PhoneNumberID: "pn-1"},
				Statuses: statuses},
		}}}},
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// harness is a Receiver served by httptest, producing to a kfake cluster,
// with its own metric reader and span recorder.
type harness struct {
	t       *testing.T
	brokers []string
	cfg     Config
	srv     *httptest.Server
	url     string
	reader  *sdkmetric.ManualReader
	spans   *tracetest.SpanRecorder
	cl      *kgo.Client
	rx      *Receiver
}

func testConfig() Config {
	c := DefaultConfig()
	c.Secret = testSecret
	c.VerifyToken = "verify-me"
	c.ProduceTimeout = 2 * time.Second
	return c
}

// newHarness starts a receiver on brokers (a fresh cluster with every
// topic when nil).
func newHarness(t *testing.T, brokers []string, mod func(*Config), clientOpts ...kgo.Opt) *harness {
	t.Helper()
	if brokers == nil {
		brokers = testinfra.KafkaWithTopics(t, 3)
	}
	cfg := testConfig()
	if mod != nil {
		mod(&cfg)
	}
	h := &harness{t: t, brokers: brokers, cfg: cfg, reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader), sdkmetric.WithView(telemetry.Views...))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.spans))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()); _ = tp.Shutdown(context.Background()) })
	// Tracing hooks as kafkaconf installs them, on the test's providers,
	// with the propagators telemetry.Setup installs (baggage included).
	k := kotel.NewKotel(kotel.WithTracer(kotel.NewTracer(kotel.TracerProvider(tp), kotel.TracerPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})))))
	opts := append(ProducerOptions(), kgo.WithHooks(k.Hooks()...))
	cl := testinfra.Client(t, brokers, append(opts, clientOpts...)...)
	h.cl = cl
	rx, err := New(cfg, cl, WithMeterProvider(mp), WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	h.rx = rx
	h.srv = httptest.NewServer(rx.Handler())
	t.Cleanup(h.srv.Close)
	h.url = h.srv.URL + cfg.Path
	return h
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) problem(t testing.TB) Problem {
	t.Helper()
	if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json (body %s)", ct, a.body)
	}
	var p Problem
	if err := json.Unmarshal(a.body, &p); err != nil {
		t.Fatalf("problem body %s: %v", a.body, err)
	}
	return p
}

func do(t testing.TB, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// post sends body signed as the simulator signs it (metawebhook.Sign).
func (h *harness) post(body []byte) answer {
	h.t.Helper()
	return h.postWith(body, map[string]string{h.cfg.SignatureHeader: metawebhook.Sign([]byte(testSecret), body)})
}

func (h *harness) postWith(body []byte, headers map[string]string) answer {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return do(h.t, req)
}

func (h *harness) get(query string) answer {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.url+"?"+query, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return do(h.t, req)
}

// statusRecordCount is the number of records on notifications.status.
func statusRecordCount(t testing.TB, brokers []string) int64 {
	t.Helper()
	adm := kadm.NewClient(testinfra.Client(t, brokers))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topics.Status)
	if err != nil {
		t.Fatal(err)
	}
	if err := ends.Error(); err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// consumeStatus reads every record of notifications.status, expecting
// exactly want of them.
func consumeStatus(t testing.TB, brokers []string, want int) []*kgo.Record {
	t.Helper()
	cl := testinfra.Client(t, brokers, kgo.ConsumeTopics(topics.Status), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d status records, want %d", len(out), want)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	if n := statusRecordCount(t, brokers); n != int64(want) {
		t.Fatalf("%d records on %s, want exactly %d", n, topics.Status, want)
	}
	return out
}

func decodeEvent(t testing.TB, r *kgo.Record) *contract.StatusEvent {
	t.Helper()
	ev, err := contract.DecodeStatusEvent(r.Value)
	if err != nil {
		t.Fatalf("record value %s: %v", r.Value, err)
	}
	return ev
}

// counter sums the data points of an Int64 counter whose attributes
// include attrs.
func counter(t testing.TB, reader *sdkmetric.ManualReader, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is %T, want a counter", name, m.Data)
			}
			for _, dp := range sum.DataPoints {
				if hasAll(dp.Attributes, attrs) {
					total += dp.Value
				}
			}
		}
	}
	return total
}

// histogramCount is the number of observations of a histogram.
func histogramCount(t testing.TB, reader *sdkmetric.ManualReader, name string, attrs ...attribute.KeyValue) uint64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == name {
				for _, dp := range h.DataPoints {
					if hasAll(dp.Attributes, attrs) {
						n += dp.Count
					}
				}
			}
		}
	}
	return n
}

// metricNames are the names of the metrics reader has data for.
func metricNames(t testing.TB, reader *sdkmetric.ManualReader) []string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out = append(out, m.Name)
		}
	}
	return out
}

func hasAll(set attribute.Set, attrs []attribute.KeyValue) bool {
	for _, kv := range attrs {
		v, ok := set.Value(kv.Key)
		if !ok || v != kv.Value {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

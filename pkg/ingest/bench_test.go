package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

// benchBody is a typical request with a distinct key per call, so every
// request is a new notification.
func benchBody(i int64) []byte {
	return fmt.Appendf(nil, `{"idempotency_key":"bench-%d","event_type":"otp","user_id":"u-%d","recipient":"+4471009%05d",`+
		`"template":{"name":"otp_code","language":"en_US","parameters":["482913"]},"ttl":300}`, i, i, i%100000)
}

func serveParallel(b *testing.B, h http.Handler, path string, body func(int64) []byte) {
	var seq atomic.Int64
	b.ReportAllocs()
	start := testinfra.CPUTime(b)
	defer func() { b.ReportMetric(float64(testinfra.CPUTime(b)-start)/float64(b.N), "cpu-ns/op") }()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body(seq.Add(1))))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+keyAcme)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusAccepted && w.Code != http.StatusOK {
				b.Fatalf("status %d: %.300s", w.Code, w.Body.Bytes())
			}
		}
	})
}

// benchHarness is the test harness with a produce timeout long enough
// for a busy machine: a benchmark measures the work, not the 503s of an
// overloaded one.
func benchHarness(b *testing.B) *harness {
	return newHarness(b, func(c *Config) { c.ProduceTimeout = time.Minute })
}

// BenchmarkPublish is one notification per request through the full
// router: auth, validation, tracing, metrics, acks=all produce to kfake.
func BenchmarkPublish(b *testing.B) {
	h := benchHarness(b)
	b.SetParallelism(32)
	serveParallel(b, h.router, "/v1/notifications", benchBody)
}

// BenchmarkBareProduceSync is the baseline BenchmarkPublish is measured
// against: a gorilla/mux handler that decodes the JSON and ProduceSyncs it.
func BenchmarkBareProduceSync(b *testing.B) {
	brokers := testinfraBrokers(b)
	c := testConfig(brokers)
	c.ProduceTimeout = time.Minute
	opts, err := ProducerOpts(c)
	if err != nil {
		b.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	r := mux.NewRouter()
	r.HandleFunc("/v1/notifications", func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		rcpt, _ := m["recipient"].(string)
		if err := cl.ProduceSync(r.Context(), &kgo.Record{Topic: topics.Requested, Key: []byte(rcpt), Value: raw}).FirstErr(); err != nil {
			http.Error(w, err.Error(), 503)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}).Methods(http.MethodPost)
	b.SetParallelism(32)
	serveParallel(b, r, "/v1/notifications", benchBody)
}

// BenchmarkBatch sends batches of 1,000; notifications/s is the figure to
// read.
func BenchmarkBatch(b *testing.B) {
	h := benchHarness(b)
	b.SetParallelism(2)
	// Built before the clock starts: the client's work is not the
	// server's.
	bodies := make([][]byte, 8)
	for i := range bodies {
		items := make([]string, MaxBatchItems)
		for j := range items {
			items[j] = string(benchBody(int64(i*MaxBatchItems + j)))
		}
		bodies[i] = []byte(`{"notifications":[` + strings.Join(items, ",") + `]}`)
	}
	serveParallel(b, h.router, "/v1/notifications/batch", func(i int64) []byte { return bodies[i%int64(len(bodies))] })
	b.ReportMetric(float64(b.N*MaxBatchItems)/b.Elapsed().Seconds(), "notifications/s")
}

// BenchmarkBatch100 is the batch row of the benchmark harness (make
// bench): 100 notifications per request, each with metadata.
func BenchmarkBatch100(b *testing.B) {
	h := benchHarness(b)
	b.SetParallelism(8)
	bodies := make([][]byte, 64)
	for i := range bodies {
		bodies[i] = batch100Body(i)
	}
	serveParallel(b, h.router, "/v1/notifications/batch", func(i int64) []byte { return bodies[i%int64(len(bodies))] })
	b.ReportMetric(float64(b.N*batch100Items)/b.Elapsed().Seconds(), "notifications/s")
}

// batch100Items is how many notifications a batch100Body holds.
const batch100Items = 100

// batch100Body is body i of BenchmarkBatch100: 100 notifications, each
// with metadata, distinct from every other body's.
func batch100Body(i int) []byte {
	items := make([]string, batch100Items)
	for j := range items {
		n := i*batch100Items + j
		items[j] = fmt.Sprintf(`{"idempotency_key":"bench-%d","event_type":"invoice.reminder","user_id":"user-%d","recipient":"+4471%08d",`+
			`"template":{"name":"invoice_due","language":"en_US","parameters":["INV-%d","49.00"]},`+
			`"metadata":{"invoice":"%d","channel":"billing"}}`, n, n, n, n, n)
	}
	return []byte(`{"notifications":[` + strings.Join(items, ",") + `]}`)
}

// BenchmarkDecodeRequest is decoding alone, the one pass and the
// encoding/json path side by side: a typical request (benchBody), and a
// request with every field, spaces and escapes (otpBody).
func BenchmarkDecodeRequest(b *testing.B) {
	for _, body := range []struct {
		name string
		raw  []byte
	}{{"typical", benchBody(1)}, {"otp", []byte(otpBody)}} {
		if _, ok := fastRequest(body.raw); !ok {
			b.Fatalf("the one pass declines %s", body.raw)
		}
		b.Run(body.name+"/one-pass", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := decodeRequest(body.raw); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(body.name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var w wireRequest
				if err := decodeStrict(body.raw, &w, ""); err != nil {
					b.Fatal(err)
				}
				w.request()
			}
		})
	}
}

// BenchmarkDecodeBatch100 is decoding a batch of 100 alone (a body of
// BenchmarkBatch100), the one pass and the encoding/json path side by
// side.
func BenchmarkDecodeBatch100(b *testing.B) {
	raw := batch100Body(0)
	if _, ok := fastBatch(raw); !ok {
		b.Fatal("the one pass declines the batch")
	}
	b.Run("one-pass", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeBatch(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var w wireBatchRequests
			if err := decodeStrict(raw, &w, ""); err != nil {
				b.Fatal(err)
			}
			items := make([]batchItem, len(w.Notifications))
			for i := range w.Notifications {
				items[i].req, items[i].fields = w.Notifications[i].request()
			}
		}
	})
}

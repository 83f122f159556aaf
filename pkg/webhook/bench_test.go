package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/wanotify/wanotify/bench"
	"github.com/wanotify/wanotify/pkg/metawebhook"
	"github.com/wanotify/wanotify/pkg/testinfra"
)

// benchWebhooks are count signed webhooks of n statuses each, shaped as
// bench/rows_http.go sends them (notification id, conversation, pricing),
// each status of its own message and recipient.
func benchWebhooks(b *testing.B, count, n int) (bodies [][]byte, sigs []string) {
	b.Helper()
	statuses := []string{"sent", "delivered", "read"}
	for i := range count {
		var sts []metawebhook.Status
		for j := range n {
			k := i*n + j
			st := metaStatus(fmt.Sprintf("wamid.HBgLNDQ3NzAwOTAwMTIzFQIAERgS%08d", k), statuses[k%3], fmt.Sprintf("4477%08d", k), 1764324002)
			st.BizOpaqueCallbackData = fmt.Sprintf("6d1f7a52-3c55-5b8e-a1a4-%012d", k)
			st.Conversation = json.RawMessage(`{"id":"conv-1","origin":{"type":"utility"}}`)
			st.Pricing = json.RawMessage(`{"billable":true,"pricing_model":"CBP","category":"utility"}`)
			sts = append(sts, st)
		}
		body := mustJSON(b, metaPayload(sts...))
		bodies = append(bodies, body)
		sigs = append(sigs, metawebhook.Sign([]byte(testSecret), body))
	}
	return bodies, sigs
}

// benchServer serves the receiver as the service runs it without an OTLP
// endpoint: every request span sampled, none exported, metrics kept in an
// SDK meter provider, kotel hooks on the producer; Kafka is an in-process
// kfake cluster.
func benchServer(b *testing.B) string {
	b.Helper()
	brokers := testinfra.KafkaWithTopics(b, 3)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tp := sdktrace.NewTracerProvider()
	k := kotel.NewKotel(kotel.WithTracer(kotel.NewTracer(kotel.TracerProvider(tp), kotel.TracerPropagator(propagation.TraceContext{}))))
	cl := testinfra.Client(b, brokers, append(ProducerOptions(), kgo.WithHooks(k.Hooks()...))...)
	cfg := testConfig()
	rx, err := New(cfg, cl, WithMeterProvider(mp), WithTracerProvider(tp))
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(rx.Handler())
	b.Cleanup(srv.Close)
	return srv.URL + cfg.Path
}

// benchReceiver is the receiver as benchServer configures it, without
// the HTTP server around it.
func benchReceiver(b *testing.B) *Receiver {
	b.Helper()
	brokers := testinfra.KafkaWithTopics(b, 3)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tp := sdktrace.NewTracerProvider()
	k := kotel.NewKotel(kotel.WithTracer(kotel.NewTracer(kotel.TracerProvider(tp), kotel.TracerPropagator(propagation.TraceContext{}))))
	cl := testinfra.Client(b, brokers, append(ProducerOptions(), kgo.WithHooks(k.Hooks()...))...)
	rx, err := New(testConfig(), cl, WithMeterProvider(mp), WithTracerProvider(tp))
	if err != nil {
		b.Fatal(err)
	}
	return rx
}

// BenchmarkStatusHandler calls the receiver's handler directly (no
// connection, no HTTP parsing) from 8 goroutines per core, so allocs/op
// and cpu-ns/op are the receiver's work per webhook (request span,
// signature, parse, produce, metrics) plus the Kafka client's and the
// in-process broker's.
func BenchmarkStatusHandler(b *testing.B) {
	for _, n := range []int{1, 20} {
		bodies, sigs := benchWebhooks(b, 1000, n)
		b.Run(fmt.Sprintf("statuses=%d", n), func(b *testing.B) {
			rx := benchReceiver(b)
			h := rx.Handler()
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(8)
			b.ResetTimer()
			cpu := testinfra.CPUTime(b)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1) % int64(len(bodies))
					req := httptest.NewRequest(http.MethodPost, rx.cfg.Path, bytes.NewReader(bodies[i]))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set(metawebhook.DefaultSignatureHeader, sigs[i])
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Errorf("status %d: %s", w.Code, w.Body)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(testinfra.CPUTime(b)-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// bareServer serves the harness's webhook baseline
// (bench.BareWebhookHandler) with the receiver's producer settings.
func bareServer(b *testing.B) string {
	b.Helper()
	brokers := testinfra.KafkaWithTopics(b, 3)
	cl := testinfra.Client(b, brokers, ProducerOptions()...)
	srv := httptest.NewServer(bench.BareWebhookHandler(cl, DefaultPath))
	b.Cleanup(srv.Close)
	return srv.URL + DefaultPath
}

// BenchmarkStatusWebhook posts signed webhooks from concurrent clients
// (8 per core, each on its own kept-alive connection) until each is
// answered 200: the receiver (impl=receiver) next to the bare baseline
// (impl=bare), which gives the ratio the harness's webhook row measures
// without the load generator and the broker in other processes.
// cpu-ns/op is the CPU time of the whole process (clients, server and
// broker) per request.
func BenchmarkStatusWebhook(b *testing.B) {
	for _, n := range []int{1, 20} {
		bodies, sigs := benchWebhooks(b, 1000, n)
		impls := []struct {
			name  string
			serve func(*testing.B) string
		}{{"receiver", benchServer}, {"bare", bareServer}}
		for _, impl := range impls {
			if impl.name == "bare" && n != 1 {
				continue // the baseline produces one record per request
			}
			b.Run(fmt.Sprintf("statuses=%d/impl=%s", n, impl.name), func(b *testing.B) {
				url := impl.serve(b)
				tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
				b.Cleanup(tr.CloseIdleConnections)
				client := &http.Client{Transport: tr}
				var next atomic.Int64
				b.ReportAllocs()
				b.SetParallelism(8)
				b.ResetTimer()
				cpu := testinfra.CPUTime(b)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := next.Add(1) % int64(len(bodies))
						req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[i]))
						if err != nil {
							b.Error(err)
							return
						}
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set(metawebhook.DefaultSignatureHeader, sigs[i])
						resp, err := client.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							b.Errorf("status %d", resp.StatusCode)
							return
						}
					}
				})
				b.StopTimer()
				b.ReportMetric(float64(testinfra.CPUTime(b)-cpu)/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

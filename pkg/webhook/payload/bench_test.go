package payload

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/wanotify/wanotify/pkg/testinfra"
)

// benchBodies are count webhooks as the provider sends them, each of n
// statuses of n messages to n recipients of their own, each status with
// its notification id, conversation and pricing (the shape
// bench/rows_http.go drives the service with).
func benchBodies(b *testing.B, count, n int) [][]byte {
	b.Helper()
	statuses := []string{"sent", "delivered", "read"}
	var out [][]byte
	for c := range count {
		p := metaPayload()
		for i := range n {
			k := c*n + i
			st := metaStatus(fmt.Sprintf("wamid.HBgLNDQ3NzAwOTAwMTIzFQIAERgS%08d", k), statuses[k%3], fmt.Sprintf("4477%08d", k), 1764324002)
			st.BizOpaqueCallbackData = fmt.Sprintf("6d1f7a52-3c55-5b8e-a1a4-%012d", k)
			st.Conversation = json.RawMessage(`{"id":"conv-1","origin":{"type":"utility"}}`)
			st.Pricing = json.RawMessage(`{"billable":true,"pricing_model":"CBP","category":"utility"}`)
			p.Entry[0].Changes[0].Value.Statuses = append(p.Entry[0].Changes[0].Value.Statuses, st)
		}
		out = append(out, mustJSON(b, p))
	}
	return out
}

// BenchmarkParse measures bodies through the parser, in each format the
// receiver accepts them in (auto is the default). recipients=seen: the
// recipients recur, as they do across a message's sent, delivered and
// read webhooks; recipients=new: every recipient is normalized afresh.
func BenchmarkParse(b *testing.B) {
	for _, n := range []int{1, 20} {
		meta := benchBodies(b, 64, n)
		var wrapped [][]byte
		for _, m := range meta {
			wrapped = append(wrapped, []byte(`{"success":true,"message":"status update","data":`+string(m)+`}`))
		}
		cases := []struct {
			name   string
			p      Parser
			bodies [][]byte
		}{
			{"format=auto/body=meta", Parser{Provider: "xpressbot", Format: FormatAuto, EnvelopeField: "data"}, meta},
			{"format=auto/body=envelope", Parser{Provider: "xpressbot", Format: FormatAuto, EnvelopeField: "data"}, wrapped},
			{"format=meta/body=meta", Parser{Provider: "xpressbot", Format: FormatMeta}, meta},
		}
		for _, c := range cases {
			b.Run(fmt.Sprintf("statuses=%d/%s", n, c.name), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(c.bodies[0])))
				i := 0
				cpu := testinfra.CPUTime(b)
				for b.Loop() {
					batch, err := c.p.Parse(c.bodies[i%len(c.bodies)])
					if err != nil || len(batch.Events) != n {
						b.Fatalf("parse: %v", err)
					}
					i++
				}
				b.ReportMetric(float64(testinfra.CPUTime(b)-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

package ingest

import (
	"os"
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/topics"
)

func BenchmarkRawProduce(b *testing.B) {
	brokers := testinfraBrokers(b)
	c := testConfig(brokers)
	c.Kafka.Tracing = os.Getenv("RAW_TRACE") == "1"
	opts, _ := ProducerOpts(c)
	cl, _ := kgo.NewClient(opts...)
	b.Cleanup(cl.Close)
	val := make([]byte, 400)
	b.ResetTimer()
	for b.Loop() {
		recs := make([]*kgo.Record, 1000)
		for i := range recs {
			recs[i] = &kgo.Record{Topic: topics.Requested, Key: []byte{byte(i), byte(i >> 8)}, Value: val}
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "records/s")
}

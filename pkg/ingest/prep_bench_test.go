package ingest

import (
	"testing"
)

func BenchmarkPrepare(b *testing.B) {
	h := newHarness(b, nil)
	bodies := make([][]byte, 1000)
	for i := range bodies {
		bodies[i] = benchBody(int64(i))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, err := h.srv.prepare("acme", bodies[i%1000], ""); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

package sink

import (
	"context"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

var (
	readerOnce sync.Once
	reader     *sdkmetric.ManualReader
)

// metricsProbe reads the sink's instruments through the global meter
// provider, relative to the values when it was made (other tests in the
// process add to the same instruments).
type metricsProbe struct {
	base map[string]int64
}

func collectMetrics(t testing.TB) *metricsProbe {
	t.Helper()
	readerOnce.Do(func() {
		reader = sdkmetric.NewManualReader()
		otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	})
	p := &metricsProbe{base: map[string]int64{}}
	for name, v := range sums(t) {
		p.base[name] = v
	}
	return p
}

// sums totals every counter (over attributes) and counts every histogram.
func sums(t testing.TB) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					out[m.Name] += dp.Value
				}
			case metricdata.Histogram[int64]:
				for _, dp := range d.DataPoints {
					out[m.Name] += int64(dp.Count)
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					out[m.Name] += int64(dp.Count)
				}
			case metricdata.Gauge[int64]:
				out[m.Name] += int64(len(d.DataPoints))
			}
		}
	}
	return out
}

func (p *metricsProbe) counter(t testing.TB, name string) int64 {
	return sums(t)[name] - p.base[name]
}

func (p *metricsProbe) histogramCount(t testing.TB, name string) int64 { return p.counter(t, name) }

// gauge is the sum of an int64 gauge's current data points.
func (p *metricsProbe) gauge(t testing.TB, name string) (int64, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == name && len(g.DataPoints) > 0 {
				var v int64
				for _, dp := range g.DataPoints {
					v += dp.Value
				}
				return v, true
			}
		}
	}
	return 0, false
}

package sink

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// health is the sink's readiness: it is consuming, ClickHouse accepts its
// inserts, and ClickHouse answers the idle probe. Each part is set by the
// component that knows it; Ready is their conjunction.
type health struct {
	mu             sync.Mutex
	consuming      bool
	insertsFailing bool
	probeFailing   bool
	ready          atomic.Bool
	onChange       func(bool)
}

// update applies f and tells onChange when readiness changed. onChange
// runs under the lock, so it sees the changes in order.
func (h *health) update(f func(*health)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h)
	v := h.consuming && !h.insertsFailing && !h.probeFailing
	if h.ready.Swap(v) != v && h.onChange != nil {
		h.onChange(v)
	}
}

// maxProbeInterval bounds the time between two idle probes.
const maxProbeInterval = time.Second

// Attribute sets of the timeouts counter.
var (
	opInsert = metric.WithAttributeSet(attribute.NewSet(attribute.String("op", "insert")))
	opPing   = metric.WithAttributeSet(attribute.NewSet(attribute.String("op", "ping")))
)

// probe pings ClickHouse while no batch is being written, so a server that
// hangs (or goes away) while the pipeline is idle also turns the sink not
// ready, within about InsertTimeout and a second. While a batch is being
// written the insert itself is the probe (writeWithRetry). It returns when
// ctx ends.
func (s *Sink) probe(ctx context.Context, conn driver.Conn) {
	t := time.NewTicker(min(maxProbeInterval, s.cfg.InsertTimeout))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.writing.Load() {
			continue
		}
		deadline := time.Now().Add(s.cfg.InsertTimeout)
		pctx, cancel := context.WithDeadline(ctx, deadline)
		err := conn.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil && (!time.Now().Before(deadline) || isTimeout(err)) {
			s.m.timeouts.Add(ctx, 1, opPing)
		}
		failing := err != nil
		var was bool
		s.health.update(func(h *health) { was, h.probeFailing = h.probeFailing, failing })
		switch {
		case failing && !was:
			s.log.Warn("ClickHouse does not answer the sink's probe; not ready", "timeout", s.cfg.InsertTimeout.String(), "err", err)
		case !failing && was:
			s.log.Info("ClickHouse answers the sink's probe again")
		}
	}
}

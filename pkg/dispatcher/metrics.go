package dispatcher

import (
	"context"
	"strconv"
	"sync"

	"github.com/wanotify/wanotify/pkg/lanes"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

const meterName = "github.com/wanotify/wanotify/pkg/dispatcher"

// metrics are the dispatcher's instruments. Labels never carry a
// recipient.
type metrics struct {
	sends    metric.Int64Counter
	statuses metric.Int64Counter
	retries  metric.Int64Counter
	dlq      metric.Int64Counter
	// keyReused counts requests whose idempotency key was used before
	// for another message (recorded as duplicate, not sent).
	keyReused metric.Int64Counter
	wait      metric.Float64Histogram
	lateness  metric.Float64Histogram
	unknown   metric.Int64Counter
	// laneSent counts accepted calls and laneWait times from entering
	// the sender's scheduler to the call, per lane and tenant.
	laneSent metric.Int64Counter
	laneWait metric.Float64Histogram
	reg      metric.Registration

	mu       sync.Mutex
	breakers map[string]int64 // breaker name -> 0 closed, 1 half-open, 2 open
	lag      map[tp]int64
}

func newMetrics(d *Dispatcher) (*metrics, error) {
	m := &metrics{breakers: map[string]int64{}, lag: map[tp]int64{}}
	meter := otel.Meter(meterName)
	var err error
	if m.sends, err = meter.Int64Counter("wanotify.dispatcher.sends", metric.WithUnit("{notification}"),
		metric.WithDescription("provider calls by outcome (accepted, retryable, throttled, permanent) and error code")); err != nil {
		return nil, err
	}
	if m.statuses, err = meter.Int64Counter("wanotify.dispatcher.statuses", metric.WithUnit("{event}"),
		metric.WithDescription("status events emitted, by status")); err != nil {
		return nil, err
	}
	if m.retries, err = meter.Int64Counter("wanotify.dispatcher.retries", metric.WithUnit("{notification}"),
		metric.WithDescription("records scheduled on a retry tier")); err != nil {
		return nil, err
	}
	if m.dlq, err = meter.Int64Counter("wanotify.dispatcher.dlq", metric.WithUnit("{notification}"),
		metric.WithDescription("records sent to the dead-letter topic, by reason")); err != nil {
		return nil, err
	}
	if m.keyReused, err = meter.Int64Counter("wanotify.dispatcher.idempotency_key_reused", metric.WithUnit("{notification}"),
		metric.WithDescription("requests whose idempotency key was used before for another message: recorded as duplicate with error code idempotency_key_reused, not sent")); err != nil {
		return nil, err
	}
	if m.wait, err = meter.Float64Histogram("wanotify.dispatcher.limiter.wait", metric.WithUnit("s"),
		metric.WithDescription("time spent waiting for a rate-limit token")); err != nil {
		return nil, err
	}
	if m.lateness, err = meter.Float64Histogram("wanotify.dispatcher.retry.lateness", metric.WithUnit("s"),
		metric.WithDescription("how long after its due time a retry attempt started (never negative)")); err != nil {
		return nil, err
	}
	if m.unknown, err = meter.Int64Counter("wanotify.dispatcher.outcome_unknown", metric.WithUnit("{notification}"),
		metric.WithDescription("interrupted provider calls by resolution: checked (waiting for a webhook), webhook (the provider took it), resent, reported (left outcome_unknown)")); err != nil {
		return nil, err
	}
	if m.laneSent, err = meter.Int64Counter("wanotify.dispatcher.lane.sent", metric.WithUnit("{notification}"),
		metric.WithDescription("notifications the provider accepted, by lane and tenant")); err != nil {
		return nil, err
	}
	if m.laneWait, err = meter.Float64Histogram("wanotify.dispatcher.lane.wait", metric.WithUnit("s"),
		metric.WithDescription("time from entering its sender's scheduler to the provider call, by lane and tenant"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)); err != nil {
		return nil, err
	}
	laneQueued, err := meter.Int64ObservableGauge("wanotify.dispatcher.lane.queued", metric.WithUnit("{notification}"),
		metric.WithDescription("notifications waiting in their sender's scheduler, by sender, lane and tenant"))
	if err != nil {
		return nil, err
	}
	breaker, err := meter.Int64ObservableGauge("wanotify.dispatcher.breaker.state",
		metric.WithDescription("circuit breaker state: 0 closed, 1 half-open, 2 open"))
	if err != nil {
		return nil, err
	}
	inflight, err := meter.Int64ObservableGauge("wanotify.dispatcher.inflight", metric.WithUnit("{call}"),
		metric.WithDescription("provider calls in flight"))
	if err != nil {
		return nil, err
	}
	buffered, err := meter.Int64ObservableGauge("wanotify.dispatcher.buffered", metric.WithUnit("{record}"),
		metric.WithDescription("records taken from Kafka and not yet finished"))
	if err != nil {
		return nil, err
	}
	lag, err := meter.Int64ObservableGauge("wanotify.dispatcher.lag", metric.WithUnit("{record}"),
		metric.WithDescription("records behind the high watermark, per input partition"))
	if err != nil {
		return nil, err
	}
	pairHeld, pairs, pairNotesFailed, err := pacingInstruments(meter)
	if err != nil {
		return nil, err
	}
	m.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(inflight, d.inflight.Load())
		d.observePacing(o, pairHeld, pairs, pairNotesFailed)
		d.mu.Lock()
		o.ObserveInt64(buffered, int64(d.buffered))
		scheds := make([]*senderQueue, 0, len(d.senders))
		for _, sq := range d.senders {
			scheds = append(scheds, sq)
		}
		d.mu.Unlock()
		for _, sq := range scheds {
			sq.s.Counts(func(lane int, tenant string, n int) {
				o.ObserveInt64(laneQueued, int64(n), metric.WithAttributes(attribute.String("sender", sq.sender),
					attribute.String("lane", string(lanes.All[lane])), attribute.String("tenant", tenant)))
			})
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		for name, s := range m.breakers {
			o.ObserveInt64(breaker, s, metric.WithAttributes(attribute.String("breaker", name)))
		}
		for k, v := range m.lag {
			o.ObserveInt64(lag, v, metric.WithAttributes(attribute.String("group", d.cfg.Group), attribute.String("topic", k.topic),
				attribute.String("partition", strconv.Itoa(int(k.partition)))))
		}
		return nil
	}, breaker, inflight, buffered, lag, laneQueued, pairHeld, pairs, pairNotesFailed)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) setBreaker(name string, state int64) {
	m.mu.Lock()
	m.breakers[name] = state
	m.mu.Unlock()
}

func (m *metrics) setLag(k tp, v int64) {
	m.mu.Lock()
	m.lag[k] = v
	m.mu.Unlock()
}

func (m *metrics) dropLag(k tp) {
	m.mu.Lock()
	delete(m.lag, k)
	m.mu.Unlock()
}

func (m *metrics) close() {
	if m.reg != nil {
		_ = m.reg.Unregister()
	}
}

package sink

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

const instrumentation = "github.com/wanotify/wanotify/pkg/sink"

type metrics struct {
	rows          metric.Int64Counter
	batchSize     metric.Int64Histogram
	batchDuration metric.Float64Histogram
	insertErrors  metric.Int64Counter
	// timeouts counts requests ClickHouse did not answer in time (op
	// insert: also counted in insertErrors; op ping: the idle probe): a
	// ClickHouse that hangs rather than refuses.
	timeouts     metric.Int64Counter
	decodeErrors metric.Int64Counter
	commitErrors metric.Int64Counter
	freshness    metric.Float64Histogram
	lagGauge     metric.Int64ObservableGauge
	reg          metric.Registration

	mu        sync.Mutex
	assigned  map[topicPartition]bool  // partitions this member owns
	end       map[topicPartition]int64 // last stable offset (fetches and periodic listing)
	committed map[topicPartition]int64 // the group's committed offset (or the first consumed)
}

func newMetrics(group string) (*metrics, error) {
	meter := otel.Meter(instrumentation)
	m := &metrics{assigned: map[topicPartition]bool{}, end: map[topicPartition]int64{}, committed: map[topicPartition]int64{}}
	var err error
	if m.rows, err = meter.Int64Counter("wanotify.sink.rows", metric.WithUnit("{row}"),
		metric.WithDescription("rows written to ClickHouse, by table")); err != nil {
		return nil, err
	}
	if m.batchSize, err = meter.Int64Histogram("wanotify.sink.batch.size", metric.WithUnit("{record}"),
		metric.WithDescription("Kafka records per written batch"),
		metric.WithExplicitBucketBoundaries(1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000, 50000)); err != nil {
		return nil, err
	}
	if m.batchDuration, err = meter.Float64Histogram("wanotify.sink.batch.duration", metric.WithUnit("s"),
		metric.WithDescription("time to write a batch to ClickHouse, retries included"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)); err != nil {
		return nil, err
	}
	if m.insertErrors, err = meter.Int64Counter("wanotify.sink.insert.errors", metric.WithUnit("{error}"),
		metric.WithDescription("ClickHouse inserts that failed and were retried")); err != nil {
		return nil, err
	}
	if m.timeouts, err = meter.Int64Counter("wanotify.sink.clickhouse.timeouts", metric.WithUnit("{error}"),
		metric.WithDescription("ClickHouse requests that got no answer within WANOTIFY_SINK_INSERT_TIMEOUT, by op: insert (retried; also counted in insert errors) or ping (the idle probe)")); err != nil {
		return nil, err
	}
	if m.decodeErrors, err = meter.Int64Counter("wanotify.sink.decode.errors", metric.WithUnit("{record}"),
		metric.WithDescription("records that could not be decoded, written to ingest_errors, by topic")); err != nil {
		return nil, err
	}
	if m.commitErrors, err = meter.Int64Counter("wanotify.sink.commit.errors", metric.WithUnit("{error}"),
		metric.WithDescription("Kafka offset commits that failed after a successful insert (the records are consumed again and deduplicated)")); err != nil {
		return nil, err
	}
	if m.freshness, err = meter.Float64Histogram("wanotify.sink.freshness", metric.WithUnit("s"),
		metric.WithDescription("time from an event's occurred_at to its insert into ClickHouse"),
		metric.WithExplicitBucketBoundaries(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)); err != nil {
		return nil, err
	}
	if m.lagGauge, err = meter.Int64ObservableGauge("wanotify.sink.lag", metric.WithUnit("{record}"),
		metric.WithDescription("records in Kafka not yet written and committed, by topic")); err != nil {
		return nil, err
	}
	m.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for topic, lag := range m.lag() {
			o.ObserveInt64(m.lagGauge, lag, metric.WithAttributes(attribute.String("group", group), attribute.String("topic", topic)))
		}
		return nil
	}, m.lagGauge)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) close() {
	if m.reg != nil {
		_ = m.reg.Unregister()
	}
}

// lag sums, per topic, the end offset minus the committed offset of every
// partition the sink owns.
func (m *metrics) lag() map[string]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int64{}
	for tp := range m.assigned {
		end, ok1 := m.end[tp]
		pos, ok2 := m.committed[tp]
		if !ok1 || !ok2 {
			continue
		}
		out[tp.topic] += max(end-pos, 0)
	}
	return out
}

func (m *metrics) assign(parts map[string][]int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for t, ps := range parts {
		for _, p := range ps {
			m.assigned[topicPartition{t, p}] = true
		}
	}
}

// owned lists the partitions this member owns.
func (m *metrics) owned() []topicPartition {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]topicPartition, 0, len(m.assigned))
	for tp := range m.assigned {
		out = append(out, tp)
	}
	return out
}

func (m *metrics) observeEnd(tp topicPartition, end int64) {
	m.mu.Lock()
	m.end[tp] = end
	m.mu.Unlock()
}

// observeConsumed notes the position of the first record seen of a
// partition, so lag is known before the first commit.
func (m *metrics) observeConsumed(tp topicPartition, offset int64) {
	m.mu.Lock()
	if _, ok := m.committed[tp]; !ok {
		m.committed[tp] = offset
	}
	m.mu.Unlock()
}

func (m *metrics) observeCommitted(tp topicPartition, next int64) {
	m.mu.Lock()
	m.committed[tp] = next
	m.mu.Unlock()
}

// observeGroup records the group's committed offset of a partition, as
// listed from the brokers.
func (m *metrics) observeGroup(tp topicPartition, committed int64) {
	m.mu.Lock()
	if cur, ok := m.committed[tp]; !ok || committed > cur {
		m.committed[tp] = committed
	}
	m.mu.Unlock()
}

func (m *metrics) forget(parts map[string][]int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for t, ps := range parts {
		for _, p := range ps {
			delete(m.assigned, topicPartition{t, p})
			delete(m.end, topicPartition{t, p})
			delete(m.committed, topicPartition{t, p})
		}
	}
}

package halt

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// RegisterMetrics registers the gauge wanotify.dispatcher.sender.halted
// (Prometheus: wanotify_dispatcher_sender_halted{sender}) on meter: 1
// while a sender is halted, 0 once it runs again, for every sender the
// table has a state for (a sender never halted has no series).
// Unregister the returned registration on shutdown.
func (s *Store) RegisterMetrics(meter metric.Meter) (metric.Registration, error) {
	g, err := meter.Int64ObservableGauge("wanotify.dispatcher.sender.halted",
		metric.WithDescription("1 while the sender is halted by an account fault (its records wait in Kafka), 0 once it runs again"))
	if err != nil {
		return nil, err
	}
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		for name, e := range s.states {
			v := int64(0)
			if e.st.Halted() {
				v = 1
			}
			o.ObserveInt64(g, v, metric.WithAttributes(attribute.String("sender", name)))
		}
		return nil
	}, g)
}

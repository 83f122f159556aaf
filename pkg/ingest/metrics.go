package ingest

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Rejection reasons of wanotify.ingest.rejected.
const (
	reasonUnauthorized = "unauthorized"
	reasonInvalid      = "invalid"
	reasonTooLarge     = "too_large"
	reasonMediaType    = "unsupported_media_type"
	reasonUnavailable  = "unavailable"
	reasonInternal     = "internal"
	reasonForbidden    = "forbidden"
	reasonKeyReused    = "idempotency_key_reused"
	reasonQuota        = "quota_exceeded"
)

type metrics struct {
	requests metric.Int64Counter
	accepted metric.Int64Counter
	rejected metric.Int64Counter
	produce  metric.Float64Histogram

	// Attribute sets are built once: building them per request would cost
	// allocations on the hot path.
	byRouteCode map[string]map[int]metric.AddOption
	byReason    map[string]metric.AddOption
}

func newMetrics() (*metrics, error) {
	m := otel.Meter("github.com/wanotify/wanotify/pkg/ingest")
	var err error
	ms := &metrics{byRouteCode: map[string]map[int]metric.AddOption{}, byReason: map[string]metric.AddOption{}}
	if ms.requests, err = m.Int64Counter("wanotify.ingest.requests", metric.WithUnit("{request}"),
		metric.WithDescription("API requests by route and status code")); err != nil {
		return nil, err
	}
	if ms.accepted, err = m.Int64Counter("wanotify.ingest.accepted", metric.WithUnit("{notification}"),
		metric.WithDescription("notifications durably written to notifications.requested")); err != nil {
		return nil, err
	}
	if ms.rejected, err = m.Int64Counter("wanotify.ingest.rejected", metric.WithUnit("{notification}"),
		metric.WithDescription("notifications (or whole requests) refused, by reason")); err != nil {
		return nil, err
	}
	if ms.produce, err = m.Float64Histogram("wanotify.ingest.produce.duration", metric.WithUnit("s"),
		metric.WithDescription("time from handing records to the producer until Kafka acknowledged (or failed) them")); err != nil {
		return nil, err
	}
	for _, rt := range apiRoutes {
		codes := map[int]metric.AddOption{}
		for _, c := range rt.codes {
			codes[c] = routeCodeOption(rt.name, c)
		}
		ms.byRouteCode[rt.name] = codes
	}
	for _, r := range []string{reasonUnauthorized, reasonInvalid, reasonTooLarge, reasonMediaType, reasonUnavailable, reasonInternal, reasonForbidden, reasonKeyReused, reasonQuota} {
		ms.byReason[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", r)))
	}
	return ms, nil
}

func routeCodeOption(route string, code int) metric.AddOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String("route", route), attribute.Int("code", code)))
}

func (m *metrics) request(ctx context.Context, route string, code int) {
	opt, ok := m.byRouteCode[route][code]
	if !ok {
		opt = routeCodeOption(route, code)
	}
	m.requests.Add(ctx, 1, opt)
}

func (m *metrics) reject(ctx context.Context, reason string, n int) {
	if n > 0 {
		m.rejected.Add(ctx, int64(n), m.byReason[reason])
	}
}

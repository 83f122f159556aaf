package webhook

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/wanotify/wanotify/pkg/webhook/payload"
)

// Outcomes, the values of the outcome attribute of
// wanotify.webhook.requests.
const (
	OutcomeAccepted     = "accepted"      // 200: every status acknowledged by Kafka
	OutcomeUnauthorized = "unauthorized"  // 401: missing or bad signature
	OutcomeMalformed    = "malformed"     // 400: unreadable, not JSON, or missing fields
	OutcomeTooLarge     = "too_large"     // 413
	OutcomeUnavailable  = "unavailable"   // 503: Kafka did not acknowledge in time
	OutcomeVerified     = "verified"      // GET handshake answered
	OutcomeForbidden    = "forbidden"     // GET handshake with a wrong token (or none configured)
	OutcomeBadRequest   = "bad_handshake" // GET handshake missing parameters
)

// Verification failure reasons, the values of the reason attribute of
// wanotify.webhook.verification.failures.
const (
	ReasonMissingSignature = "missing_signature"
	ReasonBadSignature     = "bad_signature"
	ReasonWrongVerifyToken = "wrong_verify_token"
	ReasonBadHandshake     = "bad_handshake"
)

// knownStatusValues bounds the status attribute: any other value a
// provider invents is counted as "other".
var knownStatusValues = map[string]bool{
	"sent": true, "delivered": true, "read": true, "failed": true,
	"deleted": true, "warning": true, "played": true, "pending": true,
}

type metrics struct {
	requests       metric.Int64Counter
	statuses       metric.Int64Counter
	verifyFails    metric.Int64Counter
	inbound        metric.Int64Counter
	ignored        metric.Int64Counter
	produceLatency metric.Float64Histogram
}

func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	m := mp.Meter("github.com/wanotify/wanotify/pkg/webhook")
	var err error
	var errs []error
	c := func(name, unit, desc string) metric.Int64Counter {
		var ctr metric.Int64Counter
		ctr, err = m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if err != nil {
			errs = append(errs, err)
		}
		return ctr
	}
	out := &metrics{
		requests:    c("wanotify.webhook.requests", "{request}", "webhook requests by outcome"),
		statuses:    c("wanotify.webhook.statuses", "{status}", "statuses in accepted webhooks by value; result produced or skipped (not tracked)"),
		verifyFails: c("wanotify.webhook.verification.failures", "{request}", "requests refused by signature or handshake verification, by reason"),
		inbound:     c("wanotify.webhook.inbound.messages", "{message}", "inbound user messages in accepted webhooks (accepted, not processed)"),
		ignored:     c("wanotify.webhook.ignored", "{item}", "parts of accepted webhooks that were not used, by kind"),
	}
	out.produceLatency, err = m.Float64Histogram("wanotify.webhook.produce.duration", metric.WithUnit("s"),
		metric.WithDescription("time for Kafka to acknowledge every status event of one webhook, by result"))
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("webhook metrics: %w", errs[0])
	}
	return out, nil
}

func (m *metrics) request(ctx context.Context, outcome string) {
	m.requests.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome)))
}

func (m *metrics) verifyFailure(ctx context.Context, reason string) {
	m.verifyFails.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason)))
}

// batch counts what an acknowledged webhook carried.
func (m *metrics) batch(ctx context.Context, b *payload.Batch) {
	counts := map[[2]string]int64{}
	for _, ev := range b.Events {
		counts[[2]string{string(ev.Status.Status), "produced"}]++
	}
	for _, v := range b.Skipped {
		if !knownStatusValues[v] {
			v = "other"
		}
		counts[[2]string{v, "skipped"}]++
	}
	for k, n := range counts {
		m.statuses.Add(ctx, n, metric.WithAttributes(attribute.String("status", k[0]), attribute.String("result", k[1])))
	}
	if b.InboundMessages > 0 {
		m.inbound.Add(ctx, int64(b.InboundMessages))
	}
	for kind, n := range b.Ignored {
		m.ignored.Add(ctx, int64(n), metric.WithAttributes(attribute.String("kind", kind)))
	}
}

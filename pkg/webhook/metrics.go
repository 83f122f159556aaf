package webhook

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/edgehttp"
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
	OutcomeBusy         = "busy"          // 503: the memory for bodies stayed in use
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

	// Attribute sets are built once: building them per request costs
	// allocations on the hot path. A value outside these (none is
	// expected) gets its set built when it occurs.
	byOutcome  map[string]metric.AddOption
	byReason   map[string]metric.AddOption
	produced   map[contract.Status]metric.AddOption
	skipped    map[string]metric.AddOption // knownStatusValues and "other"
	malformed  map[string]metric.AddOption // knownStatusValues and "other"
	byKind     map[string]metric.AddOption
	produceOK  metric.RecordOption
	produceErr metric.RecordOption
}

// producedStatuses are the statuses a webhook produces.
var producedStatuses = []contract.Status{contract.StatusSent, contract.StatusDelivered, contract.StatusRead, contract.StatusFailed}

func newMetrics(mp metric.MeterProvider, gate *edgehttp.BodyGate) (*metrics, error) {
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
		statuses:    c("wanotify.webhook.statuses", "{status}", "statuses in accepted webhooks by value; result produced, skipped (not tracked) or malformed (both kept in ingest_errors)"),
		verifyFails: c("wanotify.webhook.verification.failures", "{request}", "requests refused by signature or handshake verification, by reason"),
		inbound:     c("wanotify.webhook.inbound.messages", "{message}", "inbound user messages in accepted webhooks (accepted, not processed)"),
		ignored:     c("wanotify.webhook.ignored", "{item}", "parts of accepted webhooks that were not used, by kind"),
	}
	out.produceLatency, err = m.Float64Histogram("wanotify.webhook.produce.duration", metric.WithUnit("s"),
		metric.WithDescription("time for Kafka to acknowledge every status event of one webhook, by result"))
	if err != nil {
		errs = append(errs, err)
	}
	// The memory held by bodies being read or handled, against its
	// budget (WANOTIFY_WEBHOOK_BODY_MEMORY): near the budget, webhooks are
	// about to be refused with 503.
	if _, err := m.Int64ObservableGauge("wanotify.webhook.body.memory", metric.WithUnit("By"),
		metric.WithDescription("bytes reserved by webhook bodies being read or handled (the budget is WANOTIFY_WEBHOOK_BODY_MEMORY)"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(gate.Stats().Held)
			return nil
		})); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("webhook metrics: %w", errs[0])
	}
	out.byOutcome = map[string]metric.AddOption{}
	for _, o := range []string{OutcomeAccepted, OutcomeUnauthorized, OutcomeMalformed, OutcomeTooLarge, OutcomeUnavailable, OutcomeBusy,
		OutcomeVerified, OutcomeForbidden, OutcomeBadRequest} {
		out.byOutcome[o] = outcomeOption(o)
	}
	out.byReason = map[string]metric.AddOption{}
	for _, r := range []string{ReasonMissingSignature, ReasonBadSignature, ReasonWrongVerifyToken, ReasonBadHandshake} {
		out.byReason[r] = reasonOption(r)
	}
	out.produced = map[contract.Status]metric.AddOption{}
	for _, s := range producedStatuses {
		out.produced[s] = statusOption(string(s), "produced")
	}
	out.skipped = map[string]metric.AddOption{"other": statusOption("other", "skipped")}
	out.malformed = map[string]metric.AddOption{"other": statusOption("other", "malformed")}
	for v := range knownStatusValues {
		out.skipped[v] = statusOption(v, "skipped")
		out.malformed[v] = statusOption(v, "malformed")
	}
	out.byKind = map[string]metric.AddOption{}
	for _, k := range []string{payload.IgnoredUnknownFields, payload.IgnoredChange, payload.IgnoredCallbackData, payload.IgnoredDuplicate, payload.IgnoredRecipient} {
		out.byKind[k] = kindOption(k)
	}
	out.produceOK = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "ok")))
	out.produceErr = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "error")))
	return out, nil
}

func outcomeOption(o string) metric.AddOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", o)))
}

func reasonOption(r string) metric.AddOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", r)))
}

func statusOption(status, result string) metric.AddOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String("status", status), attribute.String("result", result)))
}

func kindOption(k string) metric.AddOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", k)))
}

func (m *metrics) request(ctx context.Context, outcome string) {
	opt, ok := m.byOutcome[outcome]
	if !ok {
		opt = outcomeOption(outcome)
	}
	m.requests.Add(ctx, 1, opt)
}

func (m *metrics) verifyFailure(ctx context.Context, reason string) {
	opt, ok := m.byReason[reason]
	if !ok {
		opt = reasonOption(reason)
	}
	m.verifyFails.Add(ctx, 1, opt)
}

// produceDone records how long Kafka took to acknowledge (or fail) a
// webhook's events.
func (m *metrics) produceDone(ctx context.Context, d time.Duration, err error) {
	opt := m.produceOK
	if err != nil {
		opt = m.produceErr
	}
	m.produceLatency.Record(ctx, d.Seconds(), opt)
}

// batch counts what an acknowledged webhook carried: statuses by value
// and result, inbound messages, and what was ignored, by kind.
func (m *metrics) batch(ctx context.Context, b *payload.Batch) {
	var produced [4]int64 // by index in producedStatuses
	for i := range b.Events {
		st := b.Events[i].Status.Status
		if k := slices.Index(producedStatuses, st); k >= 0 {
			produced[k]++
		} else {
			m.statuses.Add(ctx, 1, statusOption(string(st), "produced"))
		}
	}
	for k, n := range produced {
		if n > 0 {
			m.statuses.Add(ctx, n, m.produced[producedStatuses[k]])
		}
	}
	if len(b.Skipped) > 0 {
		counts := map[string]int64{}
		for _, v := range b.Skipped {
			if !knownStatusValues[v] {
				v = "other"
			}
			counts[v]++
		}
		for v, n := range counts {
			m.statuses.Add(ctx, n, m.skipped[v])
		}
	}
	for i := range b.Rejected {
		// Untracked values are counted as skipped above.
		if r := &b.Rejected[i]; r.Kind == payload.RejectedMalformed {
			v := r.Status
			if !knownStatusValues[v] {
				v = "other"
			}
			m.statuses.Add(ctx, 1, m.malformed[v])
		}
	}
	if b.InboundMessages > 0 {
		m.inbound.Add(ctx, int64(b.InboundMessages))
	}
	for kind, n := range b.Ignored {
		opt, ok := m.byKind[kind]
		if !ok {
			opt = kindOption(kind)
		}
		m.ignored.Add(ctx, int64(n), opt)
	}
}

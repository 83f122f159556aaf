// Package webhook is the receiver of provider status webhooks: it answers
// the GET subscription handshake (hub.mode, hub.verify_token,
// hub.challenge) and turns each signed POST of Meta's WhatsApp Cloud API
// shape (optionally inside a provider's wrapper) into one status event per
// status on notifications.status, keyed by recipient.
//
// A request does nothing but check and produce: no database, no lookups.
// The notification a status belongs to is resolved downstream: the
// dispatcher puts the notification id in biz_opaque_callback_data, which
// comes back on every status, and the sink joins on the provider message
// id otherwise, so a status that overtakes the dispatcher's own record
// still lands on the right notification.
//
// The 200 is written only after Kafka acknowledged every event of the
// request (acks=all, idempotent producer): that is what lets a provider
// stop resending. Everything else gets an error and produces no record:
// 401 for a missing or bad signature (checked on the raw body before any
// parsing), 400 for a body that is not JSON or not a webhook payload,
// 413 above the size limit, 503 when Kafka did not
// acknowledge within the produce timeout. A 503 may leave some events in
// Kafka; the provider's retry produces them again under the same event
// ids (contract.WebhookEventID), so downstream deduplication makes the
// retry harmless, as it does for every webhook a provider resends.
//
// One bad status does not sink its batch: a signed webhook whose statuses
// are partly malformed (no id, an unusable timestamp or recipient) or of
// a value the pipeline does not track ("deleted", "warning") is answered
// 200 once every good status and every such part is in Kafka; each part
// goes to notifications.status raw, marked with the reason
// (rejected.go), and the sink keeps it in ingest_errors. Inbound user
// messages, other change fields and unknown properties are accepted and
// counted, never refused: a refused webhook is resent for days.
package webhook

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/edgehttp"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/internal/bodypool"
	"github.com/wanotify/wanotify/pkg/topics"
	"github.com/wanotify/wanotify/pkg/webhook/payload"
)

// maxChallengeLen bounds the handshake challenge echoed back (Meta sends
// a short number).
const maxChallengeLen = 1024

// maxSpanStatuses bounds the per-status span events of one request.
const maxSpanStatuses = 64

// Option tunes a Receiver.
type Option func(*options)

type options struct {
	log *slog.Logger
	mp  metric.MeterProvider
	tp  trace.TracerProvider
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithMeterProvider overrides the global meter provider, for the
// receiver's own metrics and the HTTP server metrics alike.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(o *options) { o.mp = mp } }

// WithTracerProvider overrides the global tracer provider for the request
// spans. (Produce spans come from the Kafka client's own hooks.)
func WithTracerProvider(tp trace.TracerProvider) Option { return func(o *options) { o.tp = tp } }

// ProducerOptions are the producer settings a Receiver's client must
// have: every in-sync replica acknowledges and writes are idempotent (kgo
// defaults, pinned because the 200 depends on them); no linger, because a
// provider waits on every produce; and records whose request timed out
// may be failed even while in flight. Without that last one, a request
// that got its 503 would leave its records retrying inside the client
// until Kafka came back, piling up over a long outage while the provider
// resends. A cancelled record the broker did write anyway is harmless:
// the provider's retry carries the same event ids.
func ProducerOptions() []kgo.Opt {
	return []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.AllowIdempotentProduceCancellation(),
		kgo.DefaultProduceTopic(topics.Status),
	}
}

// Receiver handles the webhook routes. It is safe for concurrent use.
type Receiver struct {
	cfg     Config
	sigs    *payload.Verifier
	parser  payload.Parser
	cl      *kgo.Client
	log     *slog.Logger
	metrics *metrics
	tp      trace.TracerProvider
	mp      metric.MeterProvider
	gate    *edgehttp.BodyGate
}

// New validates cfg and builds a Receiver producing through cl, which
// should carry ProducerOptions. The Receiver does not own cl.
func New(cfg Config, cl *kgo.Client, opts ...Option) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cl == nil {
		return nil, errors.New("webhook: a Kafka client is required")
	}
	o := options{log: slog.New(slog.DiscardHandler), mp: otel.GetMeterProvider(), tp: otel.GetTracerProvider()}
	for _, opt := range opts {
		opt(&o)
	}
	gate := edgehttp.NewBodyGate(cfg.BodyMemory, cfg.MaxBodyBytes, bodyWait)
	m, err := newMetrics(o.mp, gate)
	if err != nil {
		return nil, err
	}
	return &Receiver{
		gate:    gate,
		cfg:     cfg,
		sigs:    payload.NewVerifier([]byte(cfg.Secret)),
		parser:  payload.Parser{Provider: cfg.Provider, Format: cfg.Format, EnvelopeField: cfg.EnvelopeField},
		cl:      cl,
		log:     o.log,
		metrics: m,
		tp:      o.tp,
		mp:      o.mp,
	}, nil
}

// Register mounts the handshake (GET) and the status webhooks (POST) on
// r at Config.Path, each request in its own server span: the root of a
// new trace (a provider's trace context, if it sends one, is a link), as
// on every public route (package edgehttp).
func (rx *Receiver) Register(r *mux.Router) {
	traced := func(name string, h http.HandlerFunc) http.Handler {
		opts := append(edgehttp.TraceOptions(edgehttp.ServerName("wanotify-"+ServiceName, rx.cfg.Addr)),
			otelhttp.WithTracerProvider(rx.tp), otelhttp.WithMeterProvider(rx.mp),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + rx.cfg.Path }))
		return otelhttp.NewHandler(h, name, opts...)
	}
	r.Handle(rx.cfg.Path, traced("webhook handshake", rx.handshake)).Methods(http.MethodGet)
	r.Handle(rx.cfg.Path, traced("webhook status", rx.statuses)).Methods(http.MethodPost)
}

// Handler is a router with only the webhook routes.
func (rx *Receiver) Handler() http.Handler {
	r := mux.NewRouter()
	rx.Register(r)
	return r
}

// handshake answers Meta's subscription check: the challenge, only for
// the configured token.
func (rx *Receiver) handshake(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	span := trace.SpanFromContext(ctx)
	q := r.URL.Query()
	mode, token, challenge := q.Get("hub.mode"), q.Get("hub.verify_token"), q.Get("hub.challenge")
	var missing []string
	for _, p := range []struct{ name, v string }{{"hub.mode", mode}, {"hub.verify_token", token}, {"hub.challenge", challenge}} {
		if p.v == "" {
			missing = append(missing, p.name)
		}
	}
	fail := func(status int, outcome, reason, detail string, fields []string) {
		rx.metrics.request(ctx, outcome)
		rx.metrics.verifyFailure(ctx, reason)
		span.SetAttributes(attribute.String("wanotify.webhook.outcome", outcome))
		rx.log.WarnContext(ctx, "webhook handshake refused", "outcome", outcome, "reason", reason)
		p := Problem{Type: ProblemHandshake, Title: http.StatusText(status), Status: status, Detail: detail}
		for _, f := range fields {
			p.Errors = append(p.Errors, contract.FieldError{Field: f, Reason: "is required"})
		}
		writeProblem(w, p)
	}
	switch {
	case len(missing) > 0:
		fail(http.StatusBadRequest, OutcomeBadRequest, ReasonBadHandshake, "the handshake needs hub.mode, hub.verify_token and hub.challenge", missing)
		return
	case mode != "subscribe":
		fail(http.StatusBadRequest, OutcomeBadRequest, ReasonBadHandshake, `hub.mode must be "subscribe"`, nil)
		return
	case len(challenge) > maxChallengeLen:
		fail(http.StatusBadRequest, OutcomeBadRequest, ReasonBadHandshake, fmt.Sprintf("hub.challenge is longer than %d characters", maxChallengeLen), nil)
		return
	case !rx.tokenMatches(token):
		fail(http.StatusForbidden, OutcomeForbidden, ReasonWrongVerifyToken, "hub.verify_token does not match", nil)
		return
	}
	rx.metrics.request(ctx, OutcomeVerified)
	span.SetAttributes(attribute.String("wanotify.webhook.outcome", OutcomeVerified))
	rx.log.InfoContext(ctx, "webhook handshake verified")
	// The challenge is echoed as plain text that browsers must not sniff.
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, challenge)
}

func (rx *Receiver) tokenMatches(token string) bool {
	if rx.cfg.VerifyToken == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(token), []byte(rx.cfg.VerifyToken)) == 1
}

// BodyStats is the accounting of the memory held by webhook bodies.
func (rx *Receiver) BodyStats() edgehttp.GateStats { return rx.gate.Stats() }

// statuses takes one status webhook: size, memory, signature, parse,
// produce, and only then 200.
func (rx *Receiver) statuses(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	span := trace.SpanFromContext(ctx)
	done := func(outcome string) {
		rx.metrics.request(ctx, outcome)
		span.SetAttributes(attribute.String("wanotify.webhook.outcome", outcome))
	}

	if r.ContentLength > rx.cfg.MaxBodyBytes {
		done(OutcomeTooLarge)
		rx.tooLarge(ctx, w)
		return
	}
	// The body is read only once its memory is reserved, and within its
	// own deadline: slow uploads wait here holding nothing but their
	// connection, and answered 503 they free even that.
	release, err := rx.gate.Reserve(ctx, r.ContentLength)
	if err != nil {
		done(OutcomeBusy)
		rx.log.WarnContext(ctx, "webhook refused: body memory in use", "budget_bytes", rx.cfg.BodyMemory)
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Connection", "close")
		writeProblem(w, Problem{Type: ProblemUnavailable, Title: "Service Unavailable", Status: http.StatusServiceUnavailable,
			Detail: "too many webhook bodies are being received at once; retry shortly"})
		return
	}
	defer release()
	edgehttp.SetReadDeadline(w, rx.cfg.BodyReadTimeout)
	buf, err := bodies.ReadSized(http.MaxBytesReader(w, r.Body, rx.cfg.MaxBodyBytes), r.ContentLength)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			done(OutcomeTooLarge)
			rx.tooLarge(ctx, w)
			return
		}
		done(OutcomeMalformed)
		rx.log.WarnContext(ctx, "webhook body unreadable", "err", err)
		writeProblem(w, Problem{Type: ProblemInvalidPayload, Title: "Bad Request", Status: http.StatusBadRequest, Detail: "the request body could not be read"})
		return
	}
	defer bodies.Release(buf)
	body := buf.Bytes()

	if err := rx.sigs.Verify(body, r.Header.Get(rx.cfg.SignatureHeader)); err != nil {
		reason := ReasonBadSignature
		if errors.Is(err, payload.ErrMissingSignature) {
			reason = ReasonMissingSignature
		}
		done(OutcomeUnauthorized)
		rx.metrics.verifyFailure(ctx, reason)
		rx.log.WarnContext(ctx, "webhook refused: signature", "reason", reason, "header", rx.cfg.SignatureHeader, "bytes", len(body))
		writeProblem(w, Problem{Type: ProblemSignature, Title: "Unauthorized", Status: http.StatusUnauthorized,
			Detail: fmt.Sprintf("%s: %v", rx.cfg.SignatureHeader, err)})
		return
	}

	batch, err := rx.parser.Parse(body)
	if err != nil {
		done(OutcomeMalformed)
		p := Problem{Type: ProblemInvalidPayload, Title: "Bad Request", Status: http.StatusBadRequest, Detail: "the webhook payload is malformed; nothing was recorded"}
		var pe *payload.Error
		if errors.As(err, &pe) {
			p.Errors = pe.Fields
			if pe.Omitted > 0 {
				p.Detail += fmt.Sprintf(" (%d more errors not listed)", pe.Omitted)
			}
		}
		rx.log.WarnContext(ctx, "webhook refused: malformed", "err", err)
		writeProblem(w, p)
		return
	}
	rx.annotate(span, batch)

	if len(batch.Events)+len(batch.Rejected) > 0 {
		start := time.Now()
		err := rx.produce(ctx, batch.Events, batch.Rejected)
		rx.metrics.produceDone(ctx, time.Since(start), err)
		if err != nil {
			done(OutcomeUnavailable)
			span.RecordError(err)
			span.SetStatus(codes.Error, "produce failed")
			rx.log.ErrorContext(ctx, "webhook not acknowledged: produce failed", "err", err, "events", len(batch.Events))
			// The provider retries on its own schedule; Retry-After is a hint
			// for those that read it.
			w.Header().Set("Retry-After", "5")
			writeProblem(w, Problem{Type: ProblemUnavailable, Title: "Service Unavailable", Status: http.StatusServiceUnavailable,
				Detail: "the status events could not be stored; retry later"})
			return
		}
	}
	done(OutcomeAccepted)
	rx.metrics.batch(ctx, batch)
	if rx.log.Enabled(ctx, slog.LevelDebug) {
		rx.log.DebugContext(ctx, "webhook accepted", "events", len(batch.Events), "skipped", len(batch.Skipped), "inbound_messages", batch.InboundMessages)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(acceptedBody(len(batch.Events), len(batch.Skipped), batch.InboundMessages, malformed(batch)))
}

// acceptedBody is the answer to an accepted webhook, as encoding/json
// writes the object {events, inbound_messages, rejected, skipped}.
func acceptedBody(events, skipped, inbound, rejected int) []byte {
	b := make([]byte, 0, 80)
	b = append(b, `{"events":`...)
	b = strconv.AppendInt(b, int64(events), 10)
	b = append(b, `,"inbound_messages":`...)
	b = strconv.AppendInt(b, int64(inbound), 10)
	b = append(b, `,"rejected":`...)
	b = strconv.AppendInt(b, int64(rejected), 10)
	b = append(b, `,"skipped":`...)
	b = strconv.AppendInt(b, int64(skipped), 10)
	return append(b, "}\n"...)
}

// bodies recycles request buffers: nothing parsed from a body refers to
// its bytes (the parser copies every string and raw value it keeps), so a
// buffer is free again once the request is answered.
var bodies = bodypool.New(64 << 10)

func (rx *Receiver) tooLarge(ctx context.Context, w http.ResponseWriter) {
	rx.log.WarnContext(ctx, "webhook refused: body too large", "limit", rx.cfg.MaxBodyBytes)
	writeProblem(w, Problem{Type: ProblemTooLarge, Title: "Request Entity Too Large", Status: http.StatusRequestEntityTooLarge,
		Detail: fmt.Sprintf("the body exceeds %d bytes", rx.cfg.MaxBodyBytes)})
}

// annotate ties the request span to the notifications it concerns. The
// payload carries no trace context, so the notification id (the
// dispatcher's biz_opaque_callback_data) is what connects this trace to
// the notification's: search by wanotify.notification_id.
func (rx *Receiver) annotate(span trace.Span, b *payload.Batch) {
	if !span.IsRecording() {
		return
	}
	var ids []string
	for i, ev := range b.Events {
		if ev.Status.NotificationID != "" {
			ids = append(ids, ev.Status.NotificationID)
		}
		if i < maxSpanStatuses {
			attrs := []attribute.KeyValue{
				attribute.String("wanotify.provider_message_id", ev.Status.ProviderMessageID),
				attribute.String("wanotify.status", string(ev.Status.Status)),
			}
			if ev.Status.NotificationID != "" {
				attrs = append(attrs, attribute.String("wanotify.notification_id", ev.Status.NotificationID))
			}
			span.AddEvent("status", trace.WithAttributes(attrs...))
		}
	}
	if len(ids) > maxSpanStatuses {
		ids = ids[:maxSpanStatuses]
	}
	span.SetAttributes(
		attribute.Int("wanotify.webhook.events", len(b.Events)),
		attribute.Int("wanotify.webhook.skipped", len(b.Skipped)),
		attribute.Int("wanotify.webhook.inbound_messages", b.InboundMessages),
	)
	if len(ids) == 1 {
		span.SetAttributes(attribute.String("wanotify.notification_id", ids[0]))
	} else if len(ids) > 1 {
		span.SetAttributes(attribute.StringSlice("wanotify.notification_ids", ids))
	}
}

// produceGrace bounds the wait, after a failure or the timeout, for the
// client to give back the records it still holds.
const produceGrace = time.Second

// produce hands every event to Kafka and waits until all are
// acknowledged. On the first failure or at the produce timeout it cancels
// the rest and waits (briefly) for the client to drop them, so a 503
// leaves nothing behind to land later. Records carry the request's
// context, so the client's tracing hooks stamp its trace on them; a
// provider hanging up does not cancel them, only the timeout does.
func (rx *Receiver) produce(ctx context.Context, events []payload.Event, rejected []payload.Rejected) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rx.cfg.ProduceTimeout)
	defer cancel()
	results := make(chan error, len(events)+len(rejected)) // never blocks a late callback
	for i := range events {
		ev := &events[i]
		rec := &kgo.Record{Topic: topics.Status, Key: ev.Key(), Value: ev.Value, Context: ctx}
		if ev.Status.NotificationID != "" {
			rec.Headers = envelope.Set(rec.Headers, envelope.HeaderNotificationID, ev.Status.NotificationID)
		}
		rx.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) { results <- err })
	}
	for i := range rejected {
		rx.cl.Produce(ctx, rejectedRecord(ctx, &rejected[i]), func(_ *kgo.Record, err error) { results <- err })
	}
	var first error
	var grace <-chan time.Time
	done := ctx.Done()
	for pending := len(events) + len(rejected); pending > 0; {
		select {
		case err := <-results:
			pending--
			if err != nil && first == nil {
				first = fmt.Errorf("produce to %s: %w", topics.Status, err)
				cancel()
			}
		case <-done:
			done = nil
			if first == nil {
				first = fmt.Errorf("produce to %s: not acknowledged within %s: %w", topics.Status, rx.cfg.ProduceTimeout, ctx.Err())
			}
			grace = time.After(produceGrace)
		case <-grace:
			return fmt.Errorf("%w (%d records still held by the client)", first, pending)
		}
	}
	return first
}

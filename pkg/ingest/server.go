// Package ingest is the HTTP API through which platform teams publish
// WhatsApp notifications: one call puts a validated notification durably
// on its lane's topic (acks=all: notifications.critical,
// notifications.requested or notifications.bulk, see lanes.go), keyed by recipient, stamped with
// the tenant of the API key, with a deterministic id derived from its
// idempotency key, and with the caller's trace context in the record
// headers. It answers 202 only once Kafka has the record, and 503 with
// Retry-After when Kafka cannot take it.
//
// Routes (schemas/openapi.yaml documents them; a test holds the two
// together):
//
//	POST /v1/notifications        one notification → 202 {id}
//	POST /v1/notifications/batch  up to 1,000, a result per item
//	GET  /v1/notifications/{id}   current state and timeline (StatusReader)
//
// and, on the separate admin listener (WANOTIFY_ADMIN_ADDR), never on the
// API port: GET /healthz, /readyz, /metrics.
//
// Request validation, keying, headers and the id are package sdk's, which
// the Go producer SDK shares, so both paths produce identical records.
package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/edgehttp"
	"github.com/wanotify/wanotify/pkg/internal/bodypool"
	"github.com/wanotify/wanotify/pkg/phone"
	"github.com/wanotify/wanotify/pkg/quota"
	"github.com/wanotify/wanotify/pkg/sdk"
)

// Route names, as they appear in spans and in the route label of
// wanotify.ingest.requests.
const (
	RoutePublish = "POST /v1/notifications"
	RouteBatch   = "POST /v1/notifications/batch"
	RouteStatus  = "GET /v1/notifications/{id}"
)

type route struct {
	name   string
	method string
	path   string
	// codes are every status the handler can answer with; the OpenAPI test
	// holds schemas/openapi.yaml to this list, and the handler tests hold
	// the handlers to it.
	codes []int
	serve func(s *Server, w http.ResponseWriter, r *http.Request) int
}

var apiRoutes = []route{
	{RoutePublish, http.MethodPost, "/v1/notifications", []int{202, 400, 401, 403, 413, 415, 422, 429, 500, 503}, (*Server).publish},
	{RouteBatch, http.MethodPost, "/v1/notifications/batch", []int{200, 400, 401, 413, 415, 500, 503}, (*Server).publishBatch},
	{RouteStatus, http.MethodGet, "/v1/notifications/{id}", []int{200, 401, 404, 500, 501, 503}, (*Server).status},
}

// adminRoutes are served by service.Runtime.AdminRoutes on the admin
// listener, not by Router; listed here so the OpenAPI test covers them too.
var adminRoutes = map[string][]int{
	"GET /healthz": {200, 503},
	"GET /readyz":  {200, 503},
	"GET /metrics": {200},
}

// statusReadTimeout bounds a GET's wait for the communication logs.
const statusReadTimeout = 5 * time.Second

// Server serves the ingest API. It is safe for concurrent use.
type Server struct {
	cfg        Config
	keys       *Keyring
	cl         *kgo.Client
	reader     StatusReader
	log        *slog.Logger
	m          *metrics
	build      sdk.BuildOptions
	retryAfter string
	now        func() time.Time
	recent     *recentKeys    // idempotency keys accepted lately (idempotency.go)
	quota      *quota.Counter // per tenant and lane, this replica (quota.go)
}

// NewServer returns the API on top of cl, which must produce with acks=all
// (franz-go's default). reader may be nil: GET /v1/notifications/{id} then
// answers 501.
func NewServer(c Config, cl *kgo.Client, reader StatusReader, log *slog.Logger) (*Server, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if acks, _ := cl.OptValue(kgo.RequiredAcks).(kgo.Acks); acks != kgo.AllISRAcks() {
		return nil, fmt.Errorf("ingest: %w", sdk.ErrNotDurable)
	}
	keys, err := ParseKeys(c.APIKeys)
	if err != nil {
		return nil, fmt.Errorf("WANOTIFY_INGEST_API_KEYS: %w", err)
	}
	m, err := newMetrics()
	if err != nil {
		return nil, fmt.Errorf("ingest metrics: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rule, _ := phone.ParseRule(c.PhoneValidation) // Validate checked it
	return &Server{
		cfg: c, keys: keys, cl: cl, reader: reader, log: log, m: m,
		build:      sdk.BuildOptions{SourceService: c.DefaultSourceService, ClockSkew: c.ClockSkew, PhoneRule: rule},
		retryAfter: strconv.Itoa(int(math.Ceil(c.RetryAfter.Seconds()))),
		now:        time.Now,
		recent:     newRecentKeys(c.IdempotencyMemory),
		quota:      quota.New(time.Now),
	}, nil
}

// Router returns a router with the API routes, each traced (one span per
// request, named after its route) and counted. It answers 404 on
// everything else, /metrics and the probes included: those belong on the
// admin listener.
//
// The routes are public (package edgehttp): each request's span is the
// root of a new trace, with the caller's span context (if it sent one)
// as a link; the caller's baggage is not read; the server name is fixed,
// so no Host header becomes a metric label.
func (s *Server) Router() *mux.Router {
	r := mux.NewRouter()
	edge := edgehttp.TraceOptions(edgehttp.ServerName("wanotify-ingest", s.cfg.Addr))
	for _, rt := range apiRoutes {
		h := otelhttp.NewHandler(s.instrument(rt), rt.name, append(edge,
			otelhttp.WithSpanNameFormatter(func(op string, _ *http.Request) string { return op }),
			otelhttp.WithMetricAttributesFn(routeAttrs(rt.path)))...)
		r.Handle(rt.path, h).Methods(rt.method).Name(rt.name)
	}
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeProblem(w, &Problem{Type: TypeNotFound, Title: "No such resource", Status: http.StatusNotFound})
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var allow []string
		_ = r.Walk(func(rt *mux.Route, _ *mux.Router, _ []*mux.Route) error {
			var m mux.RouteMatch
			if !rt.Match(req, &m) && errors.Is(m.MatchErr, mux.ErrMethodMismatch) {
				ms, _ := rt.GetMethods()
				allow = append(allow, ms...)
			}
			return nil
		})
		for _, a := range allow {
			w.Header().Add("Allow", a)
		}
		writeProblem(w, &Problem{Type: TypeMethodNotAllowed, Title: "Method not allowed", Status: http.StatusMethodNotAllowed,
			Detail: req.Method + " is not allowed on " + req.URL.Path})
	})
	return r
}

func routeAttrs(path string) func(*http.Request) []attribute.KeyValue {
	attrs := []attribute.KeyValue{attribute.String("http.route", path)}
	return func(*http.Request) []attribute.KeyValue { return attrs }
}

// instrument counts each answer by route and code, names the route on the
// span and turns a panic into a 500 problem instead of a dropped
// connection.
func (s *Server) instrument(rt route) http.Handler {
	routeAttr := attribute.String("http.route", rt.path)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		trace.SpanFromContext(ctx).SetAttributes(routeAttr)
		code := 0
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
					panic(p)
				}
				s.log.ErrorContext(ctx, "handler panic", "route", rt.name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				s.m.reject(ctx, reasonInternal, 1)
				code = writeProblem(w, &Problem{Type: TypeInternal, Title: "Internal error", Status: http.StatusInternalServerError})
			}
			s.m.request(ctx, rt.name, code)
		}()
		code = rt.serve(s, w, r)
	})
}

// authenticate answers 401 and returns false unless the request carries a
// configured key.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (string, int, bool) {
	tenant, ok := s.keys.Tenant(presentedKey(r))
	if !ok {
		s.m.reject(r.Context(), reasonUnauthorized, 1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="wanotify"`)
		return "", writeProblem(w, &Problem{Type: TypeUnauthorized, Title: "Missing or invalid API key", Status: http.StatusUnauthorized,
			Detail: "send the tenant's API key as Authorization: Bearer <key> or X-API-Key: <key>"}), false
	}
	trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("wanotify.tenant", tenant))
	return tenant, 0, true
}

// bodies recycles request buffers; bodies are fully decoded (strings and
// raw members copied) before a buffer goes back.
var bodies = bodypool.New(256 << 10)

// readBody checks the media type and reads at most limit bytes. On a
// problem it has answered and returns the status.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64) (*bytes.Buffer, int) {
	ctx := r.Context()
	if !isJSON(r.Header.Get("Content-Type")) {
		s.m.reject(ctx, reasonMediaType, 1)
		return nil, writeProblem(w, &Problem{Type: TypeUnsupportedMedia, Title: "Unsupported media type", Status: http.StatusUnsupportedMediaType,
			Detail: "send the body as Content-Type: application/json"})
	}
	tooLarge := func() int {
		s.m.reject(ctx, reasonTooLarge, 1)
		return writeProblem(w, &Problem{Type: TypeTooLarge, Title: "Request body too large", Status: http.StatusRequestEntityTooLarge,
			Detail: "the body may be at most " + strconv.FormatInt(limit, 10) + " bytes"})
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	buf, err := bodies.Read(http.MaxBytesReader(w, r.Body, limit), r.ContentLength)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge()
		}
		s.m.reject(ctx, reasonInvalid, 1)
		return nil, writeProblem(w, &Problem{Type: TypeInvalid, Title: "The request is invalid", Status: http.StatusBadRequest,
			Detail: "the body could not be read"})
	}
	return buf, 0
}

func isJSON(ct string) bool {
	if ct == "application/json" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (len(mt) > 5 && mt[len(mt)-5:] == "+json")
}

// prepare turns one request body into its record, reporting the decoding
// errors and sdk.Build's together.
func (s *Server) prepare(tenant string, raw []byte, headerKey string) (*kgo.Record, *contract.Notification, error) {
	r, fields, err := decodeRequest(raw)
	if err != nil {
		return nil, nil, err
	}
	if headerKey != "" {
		if r.IdempotencyKey != "" && r.IdempotencyKey != headerKey {
			fields = append(fields, contract.FieldError{Field: "/idempotency_key", Reason: "differs from the Idempotency-Key header"})
		}
		r.IdempotencyKey = headerKey
	}
	return s.record(tenant, &r, fields, s.now())
}

// record builds the record of a decoded request; fields are the errors
// found while decoding it, reported together with sdk.BuildRecord's.
func (s *Server) record(tenant string, r *sdk.Request, fields []contract.FieldError, now time.Time) (*kgo.Record, *contract.Notification, error) {
	if err := s.defaultSender(tenant, r); err != nil {
		return nil, nil, err
	}
	n, err := sdk.Build(tenant, r, s.build, now)
	if len(fields) == 0 {
		if err == nil {
			err = s.owns(n) // also sets its lane (lanes.go)
		}
		if err != nil {
			return nil, nil, err
		}
		return sdk.BuiltRecord(n, ""), n, nil // on its lane's topic
	}
	var ve *contract.ValidationError
	if errors.As(err, &ve) {
		fields = append(fields, ve.Fields...)
	}
	return nil, nil, &contract.ValidationError{Schema: sdk.RequestSchema, Fields: fields}
}

// Accepted is the answer to an accepted notification. NotificationID is
// the name GET /v1/notifications/{id} and every topic use; ID carries the
// same value under the name of the first API version, kept so existing
// callers keep working (deprecated in the OpenAPI document).
type Accepted struct {
	NotificationID string `json:"notification_id"`
	ID             string `json:"id"`
	IdempotencyKey string `json:"idempotency_key"`
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request) int {
	tenant, code, ok := s.authenticate(w, r)
	if !ok {
		return code
	}
	buf, code := s.readBody(w, r, s.cfg.MaxBody)
	if buf == nil {
		return code
	}
	ctx := r.Context()
	headerKey := r.Header.Get("Idempotency-Key")
	rec, n, err := s.prepare(tenant, buf.Bytes(), headerKey)
	bodies.Release(buf)
	if err != nil {
		return s.refuse(ctx, w, err, 1)
	}
	fp := contract.Fingerprint(n)
	if s.recent.conflicts(n.ID, fp) {
		s.m.reject(ctx, reasonKeyReused, 1)
		return writeProblem(w, keyConflict(n, headerKey != "", !isDefaultKey(n)))
	}
	trace.SpanFromContext(ctx).SetAttributes(
		attribute.String("wanotify.notification_id", n.ID),
		attribute.String("wanotify.event_type", n.EventType))
	if p := s.takeQuota(n); p != nil {
		s.m.reject(ctx, reasonQuota, 1)
		w.Header().Set("Retry-After", p.retryAfter)
		return writeProblem(w, p.Problem)
	}
	if err := s.produce(ctx, []*kgo.Record{rec})[0]; err != nil {
		s.giveQuota(n)
		s.log.WarnContext(ctx, "notification not written", "notification_id", n.ID, "tenant", tenant, "recipient", phone.Mask(n.Recipient), "err", err)
		s.m.reject(ctx, reasonUnavailable, 1)
		w.Header().Set("Retry-After", s.retryAfter)
		return writeProblem(w, unavailable("Kafka did not acknowledge the notification in time; retry with the same Idempotency-Key (or event_time) to keep its id"))
	}
	s.recent.remember(n.ID, fp)
	s.m.accepted.Add(ctx, 1)
	w.Header().Set("Location", "/v1/notifications/"+n.ID)
	return writeJSON(w, http.StatusAccepted, Accepted{NotificationID: n.ID, ID: n.ID, IdempotencyKey: n.IdempotencyKey})
}

// refuse answers a request that could not be turned into a record.
func (s *Server) refuse(ctx context.Context, w http.ResponseWriter, err error, n int) int {
	if p, ok := forbidden(err); ok {
		s.m.reject(ctx, reasonForbidden, n)
		return writeProblem(w, p)
	}
	if errors.Is(err, contract.ErrInvalid) {
		s.m.reject(ctx, reasonInvalid, n)
		return writeProblem(w, invalid(err))
	}
	s.log.ErrorContext(ctx, "request not encodable", "err", err)
	s.m.reject(ctx, reasonInternal, n)
	return writeProblem(w, &Problem{Type: TypeInternal, Title: "Internal error", Status: http.StatusInternalServerError})
}

// traceHeaders are the record headers that carry ctx's trace context
// (traceparent; never baggage, whatever the global propagator carries),
// written through kotel's record carrier as kotel's hooks would. One
// request's records share them: each record's parent is the request span.
func traceHeaders(ctx context.Context) []kgo.RecordHeader {
	var scratch kgo.Record
	edgehttp.RecordPropagator.Inject(ctx, kotel.NewRecordCarrier(&scratch))
	return scratch.Headers
}

// produce writes recs and waits for Kafka. The wait is bounded by the
// produce timeout but not cut short by the caller hanging up: franz-go
// fails a partition's whole buffered batch when its first record's
// context ends, so one impatient client must not fail its neighbours'
// records.
func (s *Server) produce(ctx context.Context, recs []*kgo.Record) []error {
	if hs := traceHeaders(ctx); len(hs) > 0 {
		for _, r := range recs {
			r.Headers = append(r.Headers, hs...)
		}
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ProduceTimeout)
	defer cancel()
	start := time.Now()
	errs := sdk.ProduceAll(pctx, s.cl, recs)
	s.m.produce.Record(ctx, time.Since(start).Seconds())
	return errs
}

// BatchResult is the outcome of one item of a batch: Status 202 with
// NotificationID, 400 with the Error naming the item's fields, or 503 when
// Kafka did not take it (NotificationID is given then too: a retry with
// the same key gets it again). ID repeats NotificationID under the first
// API version's name (deprecated).
type BatchResult struct {
	Index          int      `json:"index"`
	Status         int      `json:"status"`
	NotificationID string   `json:"notification_id,omitempty"`
	ID             string   `json:"id,omitempty"`
	Error          *Problem `json:"error,omitempty"`
}

// BatchResponse is the answer to a batch.
type BatchResponse struct {
	Accepted int           `json:"accepted"`
	Rejected int           `json:"rejected"`
	Results  []BatchResult `json:"results"`
}

func (s *Server) publishBatch(w http.ResponseWriter, r *http.Request) int {
	tenant, code, ok := s.authenticate(w, r)
	if !ok {
		return code
	}
	ctx := r.Context()
	if r.Header.Get("Idempotency-Key") != "" {
		s.m.reject(ctx, reasonInvalid, 1)
		return writeProblem(w, &Problem{Type: TypeInvalid, Title: "The request is invalid", Status: http.StatusBadRequest,
			Detail: "the Idempotency-Key header does not apply to a batch; give each notification its idempotency_key"})
	}
	buf, code := s.readBody(w, r, s.cfg.MaxBatchBody)
	if buf == nil {
		return code
	}
	items, err := decodeBatch(buf.Bytes())
	bodies.Release(buf)
	if err != nil {
		return s.refuse(ctx, w, err, 1)
	}
	resp := BatchResponse{Results: make([]BatchResult, len(items))}
	recs := make([]*kgo.Record, 0, len(items))
	notes := make([]*contract.Notification, 0, len(items))
	idx := make([]int, 0, len(items))
	invalidN, forbiddenN := 0, 0
	quotaRetry := "" // Retry-After of items over their quota
	now := s.now()   // one clock reading: every item of a batch is created together
	for i := range items {
		it := &items[i]
		resp.Results[i].Index = i
		var rec *kgo.Record
		var n *contract.Notification
		err := it.err
		if err == nil {
			rec, n, err = s.record(tenant, &it.req, it.fields, now)
		}
		if p, ok := forbidden(err); ok {
			resp.Results[i].Status, resp.Results[i].Error = p.Status, p
			forbiddenN++
			continue
		}
		if err != nil {
			if !errors.Is(err, contract.ErrInvalid) {
				return s.refuse(ctx, w, err, len(items))
			}
			p := invalid(err)
			resp.Results[i].Status, resp.Results[i].Error = p.Status, p
			invalidN++
			continue
		}
		if fp := contract.Fingerprint(n); s.recent.conflicts(n.ID, fp) {
			p := keyConflict(n, false, !isDefaultKey(n))
			resp.Results[i].Status, resp.Results[i].Error = p.Status, p
			s.m.reject(ctx, reasonKeyReused, 1)
			continue
		}
		if p := s.takeQuota(n); p != nil {
			resp.Results[i].Status, resp.Results[i].Error = p.Status, p.Problem
			s.m.reject(ctx, reasonQuota, 1)
			quotaRetry = p.retryAfter
			continue
		}
		resp.Results[i].Status, resp.Results[i].NotificationID, resp.Results[i].ID = http.StatusAccepted, n.ID, n.ID
		recs = append(recs, rec)
		notes = append(notes, n)
		idx = append(idx, i)
	}
	s.m.reject(ctx, reasonInvalid, invalidN)
	s.m.reject(ctx, reasonForbidden, forbiddenN)
	unavailableN := 0
	if len(recs) > 0 {
		for j, err := range s.produce(ctx, recs) {
			if err == nil {
				s.recent.remember(resp.Results[idx[j]].ID, contract.Fingerprint(notes[j]))
				continue
			}
			s.giveQuota(notes[j])
			if unavailableN == 0 {
				s.log.WarnContext(ctx, "batch items not written", "tenant", tenant, "err", err)
			}
			unavailableN++
			res := &resp.Results[idx[j]]
			res.Status = http.StatusServiceUnavailable
			res.Error = unavailable("Kafka did not acknowledge this notification in time; retry it")
		}
	}
	resp.Accepted = len(recs) - unavailableN
	resp.Rejected = len(items) - resp.Accepted
	s.m.accepted.Add(ctx, int64(resp.Accepted))
	s.m.reject(ctx, reasonUnavailable, unavailableN)
	trace.SpanFromContext(ctx).SetAttributes(
		attribute.Int("wanotify.batch.size", len(items)),
		attribute.Int("wanotify.batch.accepted", resp.Accepted))
	status := http.StatusOK
	if quotaRetry != "" && unavailableN == 0 {
		w.Header().Set("Retry-After", quotaRetry)
	}
	if unavailableN > 0 {
		w.Header().Set("Retry-After", s.retryAfter)
		if resp.Accepted == 0 {
			// Nothing was taken because Kafka is unavailable: the whole
			// request may be retried as is.
			status = http.StatusServiceUnavailable
		}
	}
	return writeJSON(w, status, resp)
}

// idPattern is the schema's notification_id rule; anything else cannot
// exist and is not looked up.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

func (s *Server) status(w http.ResponseWriter, r *http.Request) int {
	tenant, code, ok := s.authenticate(w, r)
	if !ok {
		return code
	}
	ctx := r.Context()
	if s.reader == nil {
		return writeProblem(w, &Problem{Type: TypeNotImplemented, Title: "Status reads are not configured", Status: http.StatusNotImplemented,
			Detail: "this ingest instance has no communication-log store to read notification states from"})
	}
	id := mux.Vars(r)["id"]
	notFound := func() int {
		return writeProblem(w, &Problem{Type: TypeNotFound, Title: "No such notification", Status: http.StatusNotFound,
			Detail: "no notification " + strconv.Quote(id) + " for this tenant (yet: it appears once the sink has recorded it)"})
	}
	if !idPattern.MatchString(id) {
		return notFound()
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("wanotify.notification_id", id))
	rctx, cancel := context.WithTimeout(ctx, statusReadTimeout)
	defer cancel()
	v, err := s.reader.Notification(rctx, tenant, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return notFound()
	case err != nil:
		s.log.WarnContext(ctx, "status read failed", "notification_id", id, "err", err)
		w.Header().Set("Retry-After", s.retryAfter)
		return writeProblem(w, &Problem{Type: TypeUnavailable, Title: "Status temporarily unavailable", Status: http.StatusServiceUnavailable,
			Detail: "the communication logs could not be read; retry later"})
	case v == nil || v.Tenant != tenant || v.NotificationID != id:
		return notFound()
	}
	out := *v
	out.Recipient = phone.Mask(v.Recipient)
	if out.Timeline == nil {
		out.Timeline = []TimelineEvent{}
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("wanotify.event_type", v.EventType))
	return writeJSON(w, http.StatusOK, out)
}

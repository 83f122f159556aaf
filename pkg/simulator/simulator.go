// Package simulator is a faithful stand-in for the WhatsApp provider: it
// serves Xpressbot's send endpoint and Meta's Cloud API messages endpoint
// from one core, enforces a per-sender token bucket (429 + Meta code
// 130429 + Retry-After), injects latency and failures (retryable,
// permanent, timeouts, outages), sends signed status webhooks in Meta's
// shape with realistic disorder, and keeps an exact ledger of what it
// accepted so tests can prove "no duplicates" and "never throttled".
//
// HTTP API (besides the two send endpoints):
//
//	GET  /healthz          200 while serving, 503 once shutting down
//	GET  /admin/ledger     Snapshot as JSON (?entries=1 adds the kept entries;
//	                       ?notification_id=<id> answers NotificationLedger, that one's sends and refusals)
//
// The /admin/ endpoints require Config.AdminToken when it is set.
//
//	POST /admin/reset      clears the ledger, the rate limiters and queued webhooks
//	GET  /admin/config     the current Behavior
//	POST /admin/config     merges a partial Behavior JSON object
//	GET  /admin/outage     {"on":bool,"mode":"503"|"reset"}
//	POST /admin/outage     {"on":true[,"mode":"reset"]}
//	GET  /admin/account-fault  the senders switched into an account fault
//	POST /admin/account-fault  {"sender":"…","code":190} (code 0 clears)
//
// The platform's own rules (pair rate 131056, marketing cap 131049,
// opt-outs 131050, template errors, account faults) are in rules.go,
// all off by default.
//
// A send can force its own outcome, whatever the configured rates, with a
// directive anywhere in its text body or template parameters:
// "[sim:ok]" (no injected failure; the rate limit still applies),
// "[sim:timeout]", "[sim:reset]", "[sim:http_503]", "[sim:meta_131047]",
// and for 429s an optional Retry-After in seconds: "[sim:meta_130429:5]",
// "[sim:http_429:2]". The vocabulary is the one of provider.Error.Code.
// Forced failures skip the rate limiter (they take no token).
//
// Lifecycle: New builds; Start starts webhook delivery and, when
// Config.Addr is set, listens; Shutdown flips /healthz to 503, releases
// hung requests, stops the server and drops queued webhooks. Handler may
// be served by anything (httptest) between New and Shutdown.
package simulator

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"
	"golang.org/x/time/rate"

	"github.com/wanotify/wanotify/pkg/phone"
	"github.com/wanotify/wanotify/pkg/provider"
)

// throttleCode is the ledger code of a 429.
var throttleCode = metaCode(provider.MetaThroughput)

func metaCode(c int) string { return "meta_" + strconv.Itoa(c) }

// Simulator is one simulated provider.
type Simulator struct {
	cfg      Config
	log      *slog.Logger
	behavior atomic.Pointer[Behavior]
	ledger   *ledger
	hooks    *webhooks
	handler  http.Handler

	rngMu sync.Mutex
	rng   *rand.Rand

	limMu    sync.Mutex
	limiters map[string]*rate.Limiter
	pairs    pairLimiter // Rules.PairRate

	numbers map[string]bool // the account's phone number ids; nil: any

	healthy  atomic.Bool
	done     chan struct{} // closed by Shutdown: releases hung requests
	doneOnce sync.Once

	srvMu sync.Mutex
	srv   *http.Server
	ln    net.Listener
	serve sync.WaitGroup
}

// New validates cfg and builds a Simulator. Nothing runs until Start.
func New(cfg Config) (*Simulator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	seed := cfg.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	s := &Simulator{
		cfg:      cfg,
		log:      cfg.Logger,
		ledger:   newLedger(cfg.LedgerMaxEntries),
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		limiters: map[string]*rate.Limiter{},
		done:     make(chan struct{}),
	}
	if len(cfg.PhoneNumberIDs) > 0 {
		s.numbers = map[string]bool{}
		for _, n := range cfg.PhoneNumberIDs {
			s.numbers[n] = true
		}
	}
	b := cfg.Behavior
	s.behavior.Store(&b)
	s.hooks = newWebhooks(cfg.Webhook, s.ledger)
	s.healthy.Store(true)
	s.handler = s.routes()
	return s, nil
}

// Handler serves the whole HTTP API. Status webhooks are only delivered
// once Start has been called.
func (s *Simulator) Handler() http.Handler { return s.handler }

// Start starts webhook delivery and, if Config.Addr is set, listens on it.
// It returns once the listener is bound.
func (s *Simulator) Start(ctx context.Context) error {
	s.hooks.start()
	if s.cfg.Addr == "" {
		return nil
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("simulator listen on %s (%s): %w", s.cfg.Addr, EnvAddr, err)
	}
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.srvMu.Lock()
	s.srv, s.ln = srv, ln
	s.srvMu.Unlock()
	s.serve.Add(1)
	go func() {
		defer s.serve.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("simulator server stopped", slog.Any("error", err))
		}
	}()
	s.log.Info("simulator listening", slog.String("addr", ln.Addr().String()))
	return nil
}

// Addr is the bound listen address after Start ("" when not listening).
func (s *Simulator) Addr() string {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops the simulator: /healthz answers 503 first, hung requests
// are released, the server drains until ctx ends, webhook delivery stops.
func (s *Simulator) Shutdown(ctx context.Context) error {
	s.healthy.Store(false)
	s.doneOnce.Do(func() { close(s.done) })
	s.srvMu.Lock()
	srv := s.srv
	s.srvMu.Unlock()
	var err error
	if srv != nil {
		err = srv.Shutdown(ctx)
		s.serve.Wait()
	}
	s.hooks.shutdown()
	return err
}

// Behavior returns the current behaviour.
func (s *Simulator) Behavior() Behavior { return *s.behavior.Load() }

// SetBehavior validates and installs b; existing rate limiters adopt the
// new rate and burst at once.
func (s *Simulator) SetBehavior(b Behavior) error {
	return s.updateBehavior(func(cur *Behavior) error { *cur = b; return nil })
}

// SetOutage switches the hard outage on or off.
func (s *Simulator) SetOutage(on bool) {
	_ = s.updateBehavior(func(cur *Behavior) error { cur.Outage = on; return nil })
}

// updateBehavior applies f to a copy of the current behaviour and installs
// the result if it is valid. Updates are serialised, so concurrent admin
// calls do not lose each other's changes.
func (s *Simulator) updateBehavior(f func(*Behavior) error) error {
	s.limMu.Lock()
	defer s.limMu.Unlock()
	b := *s.behavior.Load()
	b.PermanentCodes = slices.Clone(b.PermanentCodes)
	b.AsyncFailCodes = slices.Clone(b.AsyncFailCodes)
	b.Rules = b.Rules.clone()
	if err := f(&b); err != nil {
		return err
	}
	if err := b.Validate(); err != nil {
		return err
	}
	b = b.withDefaults()
	s.behavior.Store(&b)
	now := time.Now()
	for _, l := range s.limiters {
		l.SetLimitAt(now, rate.Limit(b.RateLimit))
		l.SetBurstAt(now, b.burst())
	}
	return nil
}

// Ledger returns the ledger with every entry.
func (s *Simulator) Ledger() Snapshot { return s.ledger.snapshot(true) }

// Reset clears the ledger, the rate limiters (full buckets) and queued
// webhooks.
func (s *Simulator) Reset() {
	s.limMu.Lock()
	s.limiters = map[string]*rate.Limiter{}
	s.limMu.Unlock()
	s.pairs.reset()
	s.hooks.clear()
	s.ledger.reset()
}

// PendingWebhooks is the number of webhooks waiting for delivery.
func (s *Simulator) PendingWebhooks() int { return s.hooks.pending() }

// sendReq is a send in either API's shape, normalised.
type sendReq struct {
	api            string
	sender         string
	recipient      string // "+" and digits
	notificationID string
	idemKey        string
	typ            string
	text           string
	tmplName       string
	tmplLang       string
	params         []string
}

// failure is an error answer.
type failure struct {
	status     int
	code       int // Meta code, 0 for none
	msg        string
	retryAfter int // seconds, 0 for no header
	ledgerCode string
}

type outcomeKind int

const (
	outcomeAccept outcomeKind = iota
	outcomeFail
	outcomeTimeout
	outcomeReset
)

var directiveRE = regexp.MustCompile(`\[sim:([a-z]+)(?:_([0-9]+))?(?::([0-9]+))?\]`)

// forced reads a "[sim:…]" directive. ok is false when there is none.
func (r *sendReq) forced() (kind outcomeKind, f failure, force, ok bool) {
	var m []string
	for _, t := range append([]string{r.text}, r.params...) {
		if m = directiveRE.FindStringSubmatch(t); m != nil {
			break
		}
	}
	if m == nil {
		return 0, failure{}, false, false
	}
	n, _ := strconv.Atoi(m[2])
	ra, _ := strconv.Atoi(m[3])
	switch {
	case m[1] == "ok" && m[2] == "":
		return outcomeAccept, failure{}, true, true
	case m[1] == "timeout" && m[2] == "":
		return outcomeTimeout, failure{}, true, true
	case m[1] == "reset" && m[2] == "":
		return outcomeReset, failure{}, true, true
	case m[1] == "http" && n >= 400 && n <= 599:
		f = failure{status: n, msg: http.StatusText(n), ledgerCode: "http_" + m[2]}
	case m[1] == "meta" && n > 0:
		f = metaFailure(n)
	default:
		return 0, failure{}, false, false
	}
	if f.status == http.StatusTooManyRequests {
		if ra == 0 {
			ra = f.retryAfter // the code's own wait (131056: 6 s)
		}
		f.retryAfter = max(ra, 1)
	}
	return outcomeFail, f, true, true
}

func metaFailure(code int) failure {
	f := failure{status: http.StatusBadRequest, code: code, ledgerCode: metaCode(code)}
	switch code {
	case provider.MetaThroughput:
		f.status, f.retryAfter = http.StatusTooManyRequests, 1
	case provider.MetaPairRate:
		f.status, f.retryAfter = http.StatusTooManyRequests, int(provider.PairRateRetryAfter/time.Second)
	case provider.MetaAccessToken:
		f.status = http.StatusUnauthorized
	}
	f.msg = metaMessages[code]
	if f.msg == "" {
		f.msg = "(#" + strconv.Itoa(code) + ") simulated error"
	}
	return f
}

var metaMessages = map[int]string{
	provider.MetaInvalidParameter: "(#100) Invalid parameter",
	provider.MetaAccessToken:      "Error validating access token",
	provider.MetaThroughput:       "(#130429) Rate limit hit",
	provider.MetaUndeliverable:    "(#131026) Message Undeliverable",
	provider.MetaReengagement:     "(#131047) Re-engagement message",
	provider.MetaPairRate:         "(#131056) (Business Account, Consumer Account) pair rate limit hit",
	provider.MetaTemplateParams:   "(#132000) Number of parameters does not match the expected number of params",
	provider.MetaTemplateMissing:  "(#132001) Template name does not exist in the translation",
}

func (s *Simulator) routes() http.Handler {
	r := mux.NewRouter()
	r.HandleFunc("/healthz", s.handleHealth).Methods(http.MethodGet)
	r.HandleFunc("/admin/ledger", s.admin(s.handleLedger)).Methods(http.MethodGet)
	r.HandleFunc("/admin/reset", s.admin(s.handleReset)).Methods(http.MethodPost)
	r.HandleFunc("/admin/config", s.admin(s.handleConfig)).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc("/admin/outage", s.admin(s.handleOutage)).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc("/admin/account-fault", s.admin(s.handleAccountFault)).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc(s.cfg.SendPath, s.handleXpressbot).Methods(http.MethodPost)
	r.HandleFunc("/{version:v[0-9]+\\.[0-9]+}/{phone_number_id}/messages", s.handleCloud).Methods(http.MethodPost)
	return r
}

func (s *Simulator) handleHealth(w http.ResponseWriter, _ *http.Request) {
	if !s.healthy.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// authorized accepts the key as X-API-Key or Bearer on both endpoints.
func (s *Simulator) authorized(r *http.Request) bool {
	if s.cfg.APIKey == "" {
		return true
	}
	got := r.Header.Get("X-API-Key")
	if got == "" {
		if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
			got = a[7:]
		}
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.APIKey)) == 1
}

// xpressbotReq is Xpressbot's send body.
type xpressbotReq struct {
	PhoneNumberID string `json:"phone_number_id"`
	To            string `json:"to"`
	Type          string `json:"type"`
	Text          *struct {
		Body       string `json:"body"`
		PreviewURL bool   `json:"preview_url"`
	} `json:"text"`
	Template *struct {
		Name       string   `json:"name"`
		Language   string   `json:"language"`
		Parameters []string `json:"parameters"`
	} `json:"template"`
	BizOpaqueCallbackData string `json:"biz_opaque_callback_data"`
	IdempotencyKey        string `json:"idempotency_key"`
}

// cloudReq is Meta's send body.
type cloudReq struct {
	MessagingProduct string `json:"messaging_product"`
	RecipientType    string `json:"recipient_type"`
	To               string `json:"to"`
	Type             string `json:"type"`
	Text             *struct {
		Body       string `json:"body"`
		PreviewURL bool   `json:"preview_url"`
	} `json:"text"`
	Template *struct {
		Name     string `json:"name"`
		Language struct {
			Code string `json:"code"`
		} `json:"language"`
		Components []struct {
			Type       string `json:"type"`
			Parameters []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"parameters"`
		} `json:"components"`
	} `json:"template"`
	BizOpaqueCallbackData string `json:"biz_opaque_callback_data"`
}

func (s *Simulator) handleXpressbot(w http.ResponseWriter, r *http.Request) {
	wr := xpressbotWriter{w}
	if !s.authorized(r) {
		wr.fail(failure{status: http.StatusUnauthorized, msg: "invalid API key"})
		return
	}
	var body xpressbotReq
	if f, ok := s.decode(w, r, &body); !ok {
		wr.fail(f)
		return
	}
	req := sendReq{api: APIXpressbot, sender: body.PhoneNumberID, recipient: body.To, typ: body.Type,
		notificationID: body.BizOpaqueCallbackData, idemKey: body.IdempotencyKey}
	if req.idemKey == "" {
		req.idemKey = r.Header.Get("Idempotency-Key")
	}
	if body.Text != nil {
		req.text = body.Text.Body
	}
	if body.Template != nil {
		req.tmplName, req.tmplLang, req.params = body.Template.Name, body.Template.Language, body.Template.Parameters
	}
	s.send(w, r, &req, wr)
}

func (s *Simulator) handleCloud(w http.ResponseWriter, r *http.Request) {
	wr := cloudWriter{w}
	if !s.authorized(r) {
		wr.fail(metaFailure(provider.MetaAccessToken))
		return
	}
	var body cloudReq
	if f, ok := s.decode(w, r, &body); !ok {
		wr.fail(f)
		return
	}
	if body.MessagingProduct != "whatsapp" {
		wr.fail(invalid(`messaging_product must be "whatsapp"`))
		return
	}
	if body.RecipientType != "" && body.RecipientType != "individual" {
		wr.fail(invalid(`recipient_type must be "individual"`))
		return
	}
	req := sendReq{api: APICloud, sender: mux.Vars(r)["phone_number_id"], recipient: body.To, typ: body.Type,
		notificationID: body.BizOpaqueCallbackData}
	if body.Text != nil {
		req.text = body.Text.Body
	}
	if t := body.Template; t != nil {
		req.tmplName, req.tmplLang = t.Name, t.Language.Code
		for _, c := range t.Components {
			if c.Type != "body" {
				continue
			}
			for _, p := range c.Parameters {
				if p.Type != "text" {
					wr.fail(invalid("only text parameters are simulated"))
					return
				}
				req.params = append(req.params, p.Text)
			}
		}
	}
	s.send(w, r, &req, wr)
}

func invalid(msg string) failure {
	return failure{status: http.StatusBadRequest, code: provider.MetaInvalidParameter,
		msg: "(#100) Invalid parameter: " + msg, ledgerCode: metaCode(provider.MetaInvalidParameter)}
}

func (s *Simulator) decode(w http.ResponseWriter, r *http.Request, v any) (failure, bool) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return failure{status: http.StatusRequestEntityTooLarge, msg: "request body too large"}, false
		}
		return invalid("unreadable body"), false
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return invalid("body is not valid JSON: " + err.Error()), false
	}
	return failure{}, true
}

// validate checks the normalised request; recipient becomes "+digits".
func (r *sendReq) validate() (failure, bool) {
	digits := strings.TrimPrefix(r.recipient, "+")
	switch {
	case r.sender == "":
		return invalid("phone_number_id is required"), false
	case len(digits) < 6 || len(digits) > 15 || strings.Trim(digits, "0123456789") != "":
		return invalid("to must be a phone number"), false
	case r.typ == "text" && r.text == "":
		return invalid("text.body is required"), false
	case r.typ == "template" && (r.tmplName == "" || r.tmplLang == ""):
		return invalid("template.name and template.language are required"), false
	case r.typ != "text" && r.typ != "template":
		return invalid("type must be text or template"), false
	}
	r.recipient = "+" + digits
	return failure{}, true
}

// answerWriter writes one API's answers.
type answerWriter interface {
	ok(e Entry)
	fail(f failure)
}

func (s *Simulator) send(w http.ResponseWriter, r *http.Request, req *sendReq, wr answerWriter) {
	if f, ok := req.validate(); !ok {
		wr.fail(f)
		return
	}
	b := s.behavior.Load()
	now := time.Now()
	reject := func(code string) {
		s.ledger.reject(Rejection{Time: now, Sender: req.sender, Recipient: req.recipient,
			NotificationID: req.notificationID, IdempotencyKey: req.idemKey, Code: code})
	}
	if s.numbers != nil && !s.numbers[req.sender] {
		// What Meta answers for a phone number id that is not the
		// account's: an unknown object, permanent.
		reject("unknown_number")
		wr.fail(failure{status: http.StatusBadRequest, code: provider.MetaInvalidParameter,
			msg:        fmt.Sprintf("Unsupported post request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation", req.sender),
			ledgerCode: metaCode(provider.MetaInvalidParameter)})
		return
	}

	if b.Outage {
		reject("outage")
		if b.OutageMode == OutageReset && resetConn(w) {
			return
		}
		wr.fail(failure{status: http.StatusServiceUnavailable, msg: "service unavailable (outage)"})
		return
	}

	kind, f, forced, _ := req.forced()
	if forced && kind != outcomeAccept {
		s.act(w, r, req, wr, kind, f, b, now, reject)
		return
	}

	if f, ok := b.accountFault(req); ok {
		s.act(w, r, req, wr, outcomeFail, f, b, now, reject)
		return
	}
	if ok, wait := s.admit(req.sender, b, now); !ok {
		reject(throttleCode)
		f := metaFailure(provider.MetaThroughput)
		f.retryAfter = max(1, int(math.Ceil(wait.Seconds())))
		wr.fail(f)
		return
	}
	if f, ok := s.recipientRules(req, &b.Rules, now); ok {
		s.act(w, r, req, wr, outcomeFail, f, b, now, reject)
		return
	}

	if lat := s.sample(b.Latency); lat > 0 {
		t := time.NewTimer(lat)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			reject("client_gone")
			return
		case <-s.done:
			t.Stop()
		}
	}

	kind = outcomeAccept
	if !forced {
		kind, f = s.inject(b)
	}
	s.act(w, r, req, wr, kind, f, b, now, reject)
}

// act carries out an outcome.
func (s *Simulator) act(w http.ResponseWriter, r *http.Request, req *sendReq, wr answerWriter,
	kind outcomeKind, f failure, b *Behavior, now time.Time, reject func(string)) {
	switch kind {
	case outcomeAccept:
		wr.ok(s.accept(req, b, now))
	case outcomeFail:
		reject(f.ledgerCode)
		wr.fail(f)
	case outcomeReset:
		reject("reset")
		if !resetConn(w) {
			wr.fail(failure{status: http.StatusServiceUnavailable, msg: "service unavailable"})
		}
	case outcomeTimeout:
		var e Entry
		if b.TimeoutAccepts {
			e = s.accept(req, b, now)
		} else {
			reject("timeout")
		}
		t := time.NewTimer(s.cfg.HangFor)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.done:
		}
		if b.TimeoutAccepts {
			wr.ok(e)
			return
		}
		wr.fail(failure{status: http.StatusGatewayTimeout, msg: "upstream timeout"})
	}
}

// inject draws the configured random failure, if any.
func (s *Simulator) inject(b *Behavior) (outcomeKind, failure) {
	if b.RetryableRate == 0 && b.PermanentRate == 0 && b.TimeoutRate == 0 {
		return outcomeAccept, failure{}
	}
	s.rngMu.Lock()
	u := s.rng.Float64()
	code := b.PermanentCodes[s.rng.IntN(len(b.PermanentCodes))]
	s.rngMu.Unlock()
	switch {
	case u < b.RetryableRate:
		return outcomeFail, failure{status: http.StatusServiceUnavailable, msg: "service unavailable", ledgerCode: "http_503"}
	case u < b.RetryableRate+b.PermanentRate:
		return outcomeFail, metaFailure(code)
	case u < b.RetryableRate+b.PermanentRate+b.TimeoutRate:
		return outcomeTimeout, failure{}
	}
	return outcomeAccept, failure{}
}

// admit takes a token from sender's bucket, or says how long until one is
// available.
func (s *Simulator) admit(sender string, b *Behavior, now time.Time) (bool, time.Duration) {
	if b.RateLimit == 0 {
		return true, 0
	}
	s.limMu.Lock()
	l, ok := s.limiters[sender]
	if !ok {
		l = rate.NewLimiter(rate.Limit(b.RateLimit), b.burst())
		s.limiters[sender] = l
	}
	s.limMu.Unlock()
	if l.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - l.TokensAt(now)
	return false, time.Duration(missing / float64(l.Limit()) * float64(time.Second))
}

func (s *Simulator) sample(d Dist) time.Duration {
	if d.Kind == "" {
		return 0
	}
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return d.Sample(s.rng)
}

func (s *Simulator) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Float64() < p
}

// accept records the send and schedules its status webhooks.
func (s *Simulator) accept(req *sendReq, b *Behavior, now time.Time) Entry {
	if b.IdempotencyKeys && req.idemKey != "" {
		if prev, ok := s.ledger.replay(req.idemKey); ok {
			s.log.Debug("simulator idempotent replay", slog.String("message_id", prev.MessageID),
				slog.String("notification_id", prev.NotificationID))
			return prev
		}
	}
	id := uuid.New()
	e := Entry{
		Time:             now,
		API:              req.api,
		NotificationID:   req.notificationID,
		IdempotencyKey:   req.idemKey,
		MessageID:        "wamid.HBgL" + base64.RawStdEncoding.EncodeToString(id[:]),
		Sender:           req.sender,
		Recipient:        req.recipient,
		Type:             req.typ,
		Text:             req.text,
		TemplateName:     req.tmplName,
		TemplateLanguage: req.tmplLang,
		TemplateParams:   req.params,
	}
	s.ledger.accept(e)
	s.log.Debug("simulator accepted", slog.String("api", e.API), slog.String("message_id", e.MessageID),
		slog.String("notification_id", e.NotificationID), slog.String("recipient", phone.Mask(e.Recipient)))
	if b.Webhooks && s.hooks.enabled() {
		s.scheduleStatuses(e, b)
	}
	return e
}

package simulator

import (
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wanotify/wanotify/pkg/provider"
)

// Environment variables of the platform rules (Rules).
const (
	EnvPairRate           = "WANOTIFY_SIM_PAIR_RATE"
	EnvPairBurst          = "WANOTIFY_SIM_PAIR_BURST"
	EnvMarketingTemplates = "WANOTIFY_SIM_MARKETING_TEMPLATES"
	EnvMarketingCapped    = "WANOTIFY_SIM_MARKETING_CAPPED"
	EnvOptedOut           = "WANOTIFY_SIM_OPTED_OUT"
	EnvTemplateErrors     = "WANOTIFY_SIM_TEMPLATE_ERRORS"
	EnvAccountFaults      = "WANOTIFY_SIM_ACCOUNT_FAULTS"
)

// Rules are the WhatsApp platform's own rules, enforced the way Meta
// enforces them, so a client's protections are tested against real
// answers. Every rule is off in a zero Rules (the simulator's default);
// Behavior embeds Rules, so POST /admin/config changes them at runtime.
//
// Checks run in Meta's order: an account fault answers before anything
// else (nothing is counted), then the sender's throughput limit (130429),
// then the pair rate, the template errors, the opt-out and the marketing
// cap.
type Rules struct {
	// PairRate is the messages/s one sender may send to one recipient;
	// above it the send gets HTTP 429 with code 131056 and Retry-After.
	// Meta allows about one per 6 s (1/6). 0: off.
	PairRate float64 `json:"pair_rate"`
	// PairBurst is how many messages to one recipient may go at once
	// before PairRate applies. 0: 1.
	PairBurst int `json:"pair_burst"`
	// MarketingTemplates names the templates of the marketing category:
	// the Cloud API request carries only the name, and the category is a
	// property of the approved template.
	MarketingTemplates []string `json:"marketing_templates"`
	// MarketingCapped recipients (E.164) have reached Meta's per-user
	// marketing cap: a marketing template to them gets 131049.
	MarketingCapped []string `json:"marketing_capped"`
	// OptedOut recipients (E.164) stopped marketing messages: a marketing
	// template to them gets 131050.
	OptedOut []string `json:"opted_out"`
	// TemplateErrors answers every send of a template name with a code
	// (132001 missing, 132015 paused, 132016 disabled, …).
	TemplateErrors map[string]int `json:"template_errors"`
	// AccountFaults answers every send of a sender (phone number id) with
	// a code (190 token, 368 policy block, 131042 payment, …) until it is
	// cleared. POST /admin/account-fault switches one at runtime.
	AccountFaults map[string]int `json:"account_faults"`
}

// clone copies r's slices and maps, so an update never writes into the
// Behavior that concurrent sends are reading.
func (r Rules) clone() Rules {
	r.MarketingTemplates = slices.Clone(r.MarketingTemplates)
	r.MarketingCapped = slices.Clone(r.MarketingCapped)
	r.OptedOut = slices.Clone(r.OptedOut)
	r.TemplateErrors = maps.Clone(r.TemplateErrors)
	r.AccountFaults = maps.Clone(r.AccountFaults)
	return r
}

func (r Rules) validate() error {
	var errs []string
	bad := func(field, env, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("simulator.Behavior.%s (%s): %s", field, env, fmt.Sprintf(format, args...)))
	}
	if r.PairRate < 0 || math.IsNaN(r.PairRate) || math.IsInf(r.PairRate, 0) {
		bad("PairRate", EnvPairRate, "must be a finite number >= 0 (0 is off), got %v", r.PairRate)
	}
	if r.PairBurst < 0 {
		bad("PairBurst", EnvPairBurst, "must be >= 0, got %d", r.PairBurst)
	}
	for name, c := range r.TemplateErrors {
		if c <= 0 || name == "" {
			bad("TemplateErrors", EnvTemplateErrors, "%q=%d: want a template name and a positive code", name, c)
		}
	}
	for sender, c := range r.AccountFaults {
		if c < 0 || sender == "" {
			bad("AccountFaults", EnvAccountFaults, "%q=%d: want a sender and a positive code (0 clears)", sender, c)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	slices.Sort(errs) // map order must not change the message
	return fmt.Errorf("%s", strings.Join(errs, "\n"))
}

// fromEnv reads the rules' variables into r.
func (r *Rules) fromEnv(getenv func(string) string) error {
	var errs []string
	get := func(env string) string { return strings.TrimSpace(getenv(env)) }
	fail := func(env, v string, err error) { errs = append(errs, fmt.Sprintf("simulator (%s=%q): %v", env, v, err)) }
	if v := get(EnvPairRate); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			fail(EnvPairRate, v, err)
		}
		r.PairRate = f
	}
	if v := get(EnvPairBurst); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			fail(EnvPairBurst, v, err)
		}
		r.PairBurst = n
	}
	list := func(env string, dst *[]string) {
		if v := get(env); v != "" {
			*dst = nil
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					*dst = append(*dst, p)
				}
			}
		}
	}
	list(EnvMarketingTemplates, &r.MarketingTemplates)
	list(EnvMarketingCapped, &r.MarketingCapped)
	list(EnvOptedOut, &r.OptedOut)
	pairs := func(env string, dst *map[string]int) {
		v := get(env)
		if v == "" {
			return
		}
		m := map[string]int{}
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			k, c, ok := strings.Cut(p, "=")
			n, err := strconv.Atoi(strings.TrimSpace(c))
			if !ok || err != nil || strings.TrimSpace(k) == "" {
				fail(env, v, fmt.Errorf("%q: want name=code", p))
				return
			}
			m[strings.TrimSpace(k)] = n
		}
		*dst = m
	}
	pairs(EnvTemplateErrors, &r.TemplateErrors)
	pairs(EnvAccountFaults, &r.AccountFaults)
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(errs, "\n"))
}

// accountFault answers a send from a sender whose account is switched
// into a fault.
func (r *Rules) accountFault(req *sendReq) (failure, bool) {
	if c := r.AccountFaults[req.sender]; c > 0 {
		return metaFailure(c), true
	}
	return failure{}, false
}

// recipientRules answers a send that one of the per-message or
// per-recipient rules refuses. A refused send does not count against the
// pair rate: Meta counts messages sent, not attempts.
func (s *Simulator) recipientRules(req *sendReq, r *Rules, now time.Time) (failure, bool) {
	if req.typ == "template" {
		if c := r.TemplateErrors[req.tmplName]; c > 0 {
			return metaFailure(c), true
		}
		if slices.Contains(r.MarketingTemplates, req.tmplName) {
			if slices.Contains(r.OptedOut, req.recipient) {
				return metaFailure(provider.MetaUserStoppedMkt), true
			}
			if slices.Contains(r.MarketingCapped, req.recipient) {
				return metaFailure(provider.MetaEcosystem), true
			}
		}
	}
	if r.PairRate > 0 {
		if ok, wait := s.pairs.admit(req.sender+"\x00"+req.recipient, r.PairRate, max(r.PairBurst, 1), now); !ok {
			f := metaFailure(provider.MetaPairRate)
			f.retryAfter = max(1, int(math.Ceil(wait.Seconds())))
			return f, true
		}
	}
	return failure{}, false
}

// pairLimiter is a GCRA per (sender, recipient): one theoretical arrival
// time per pair, so idle pairs are cheap to forget.
type pairLimiter struct {
	mu  sync.Mutex
	tat map[string]time.Time
}

func (p *pairLimiter) admit(key string, perSec float64, burst int, now time.Time) (bool, time.Duration) {
	interval := time.Duration(float64(time.Second) / perSec)
	tolerance := time.Duration(burst-1) * interval
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tat == nil {
		p.tat = map[string]time.Time{}
	}
	if len(p.tat) >= 100_000 {
		// Forget the pairs whose allowance is full again.
		for k, t := range p.tat {
			if !t.After(now) {
				delete(p.tat, k)
			}
		}
	}
	tat := p.tat[key]
	if tat.Before(now) {
		tat = now
	}
	if wait := tat.Sub(now) - tolerance; wait > 0 {
		return false, wait
	}
	p.tat[key] = tat.Add(interval)
	return true, 0
}

func (p *pairLimiter) reset() {
	p.mu.Lock()
	p.tat = nil
	p.mu.Unlock()
}

// SetAccountFault switches sender's account into the fault code (190
// token, 368 policy block, 131042 payment, …); code 0 clears it.
func (s *Simulator) SetAccountFault(sender string, code int) error {
	return s.updateBehavior(func(b *Behavior) error {
		if code == 0 {
			delete(b.AccountFaults, sender)
			return nil
		}
		if b.AccountFaults == nil {
			b.AccountFaults = map[string]int{}
		}
		b.AccountFaults[sender] = code
		return nil
	})
}

type accountFaultReq struct {
	Sender string `json:"sender"`
	Code   int    `json:"code"`
}

// handleAccountFault serves the account faults; POST
// {"sender":"…","code":190} switches one on, code 0 off.
func (s *Simulator) handleAccountFault(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var req accountFaultReq
		raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err == nil {
			err = decodeStrict(raw, &req)
		}
		if err == nil && req.Sender == "" {
			err = fmt.Errorf("sender is required")
		}
		if err == nil {
			err = s.SetAccountFault(req.Sender, req.Code)
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
	}
	faults := s.Behavior().AccountFaults
	if faults == nil {
		faults = map[string]int{}
	}
	writeJSON(w, http.StatusOK, faults)
}

// Answers for the codes the rules produce, in Meta's wording.
func init() {
	for c, msg := range map[int]string{
		provider.MetaPolicyBlock:         "(#368) Temporarily blocked for policies violations",
		provider.MetaPayment:             "(#131042) Business eligibility payment issue",
		provider.MetaAccountLocked:       "(#131031) Account has been locked",
		provider.MetaEcosystem:           "(#131049) This message was not delivered to maintain healthy ecosystem engagement.",
		provider.MetaUserStoppedMkt:      "(#131050) Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.",
		provider.MetaTemplateTooLong:     "(#132005) Translated text too long",
		provider.MetaTemplatePolicy:      "(#132007) Template Format Character Policy Violated",
		provider.MetaTemplateParamFormat: "(#132012) Parameter format does not match format in the created template",
		provider.MetaTemplatePaused:      "(#132015) Template is Paused",
		provider.MetaTemplateDisabled:    "(#132016) Template is Disabled",
	} {
		metaMessages[c] = msg
	}
}

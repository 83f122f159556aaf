// Package senders is the sender registry: which business numbers exist,
// which tenants may send from each, how each is reached (provider, base
// URL, phone number id, credentials by reference), its rate and its
// business portfolio; and, per tenant, its default sender, the templates
// it may send and whether it may send free text.
//
// Ingest and the dispatcher load the same registry (WANOTIFY_SENDERS_FILE,
// or WANOTIFY_SENDERS inline) and refuse what a tenant does not own: a
// tenant sends only from the senders it owns (promise 16). Per-sender work
// (halts, pair pacing, failover routes, lanes) hangs off Sender.
//
// The file is YAML (JSON is YAML too, so the inline form may be either):
//
//	senders:
//	  - name: acme-otp
//	    tenants: [acme]
//	    provider: xpressbot              # default: WANOTIFY_PROVIDER
//	    base_url: https://x.example      # default: the provider's WANOTIFY_*_BASE_URL
//	    number_id: "106540352242922"     # the WhatsApp phone number id
//	    credentials: {env: ACME_XPRESSBOT_API_KEY}   # or {file: /run/secrets/acme-key}
//	    rate: 40                         # messages/s; default WANOTIFY_DISPATCHER_RATE
//	    portfolio: "1234567890"          # business portfolio (messaging limit owner)
//	    failover: acme-backup            # optional second route: a sender, or
//	                                     # {provider, base_url, number_id, credentials}
//	tenants:
//	  - name: acme
//	    default_sender: acme-otp
//	    templates: [otp_code, invoice_due]   # absent: any template
//	    free_text: false                     # default false
//	    lanes: [critical, transactional]     # absent: all three
//	    template_categories:                 # Meta's template categories
//	      otp_code: authentication           #   → critical
//	      invoice_due: utility               #   → transactional
//	    daily_caps: {bulk: 50000}            # per lane and UTC day; absent: none
//
// A tenant's lanes are the priority lanes (package lanes) its requests may
// use. Absent, all three: the lanes change when a notification is served,
// not what it may say, and every tenant had every kind of traffic before
// lanes existed, so a registry written before them keeps working. Listing
// them stops a tenant from putting its campaigns in the critical lane.
// A template's category (authentication, utility, marketing, as Meta
// approved it) gives its lane when the request asks for none (lanes.go).
package senders

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/lanes"
)

// Environment variables read by Load.
const (
	EnvFile   = "WANOTIFY_SENDERS_FILE"
	EnvInline = "WANOTIFY_SENDERS"
)

// Provider kinds a sender may name.
const (
	ProviderXpressbot = "xpressbot"
	ProviderCloudAPI  = "cloudapi"
)

// File is the registry document.
type File struct {
	Senders []Sender `yaml:"senders" json:"senders"`
	Tenants []Tenant `yaml:"tenants" json:"tenants"`
}

// Sender is one business number and who may use it.
type Sender struct {
	// Name is what notifications name as their sender.
	Name string `yaml:"name" json:"name"`
	// Tenants may send from this sender.
	Tenants []string `yaml:"tenants" json:"tenants"`
	// Provider is the client that sends for it (xpressbot or cloudapi);
	// empty: the dispatcher's WANOTIFY_PROVIDER.
	Provider string `yaml:"provider,omitempty" json:"provider,omitempty"`
	// BaseURL is the provider's origin; empty: the provider's own
	// WANOTIFY_XPRESSBOT_BASE_URL or WANOTIFY_CLOUDAPI_BASE_URL.
	BaseURL string `yaml:"base_url,omitempty" json:"base_url,omitempty"`
	// NumberID is the WhatsApp phone number id the provider sends from.
	NumberID string `yaml:"number_id" json:"number_id"`
	// Credentials name where the secret is; empty: the provider's own
	// WANOTIFY_XPRESSBOT_API_KEY or WANOTIFY_CLOUDAPI_ACCESS_TOKEN.
	Credentials Credentials `yaml:"credentials,omitempty" json:"credentials,omitempty"`
	// Rate is messages/s across all dispatcher instances; 0:
	// WANOTIFY_DISPATCHER_RATE.
	Rate float64 `yaml:"rate,omitempty" json:"rate,omitempty"`
	// Portfolio is the business portfolio the number belongs to (the
	// messaging limit is the portfolio's).
	Portfolio string `yaml:"portfolio,omitempty" json:"portfolio,omitempty"`
	// Failover is an optional second route (another sender's name, or a
	// route in place) for records the sender's own route provably did
	// not take while that route is down. See Failover.
	Failover *Failover `yaml:"failover,omitempty" json:"failover,omitempty"`
}

// Credentials refer to a secret; the secret itself is never in the file.
type Credentials struct {
	// Env names an environment variable holding the secret.
	Env string `yaml:"env,omitempty" json:"env,omitempty"`
	// File is a path whose content (trimmed) is the secret.
	File string `yaml:"file,omitempty" json:"file,omitempty"`
}

// IsZero reports whether no reference is given.
func (c Credentials) IsZero() bool { return c.Env == "" && c.File == "" }

// Tenant is what one tenant may send.
type Tenant struct {
	Name string `yaml:"name" json:"name"`
	// DefaultSender is used for requests that name no sender.
	DefaultSender string `yaml:"default_sender" json:"default_sender"`
	// Templates, when present, are the only template names the tenant may
	// send; absent (nil), any template.
	Templates []string `yaml:"templates,omitempty" json:"templates,omitempty"`
	// FreeText allows text messages (not templates). Default false.
	FreeText bool `yaml:"free_text,omitempty" json:"free_text,omitempty"`
	// Lanes, when present, are the only lanes the tenant may use; absent
	// (nil), all three (see the package comment).
	Lanes []string `yaml:"lanes,omitempty" json:"lanes,omitempty"`
	// TemplateCategories gives templates their Meta category
	// (authentication, utility or marketing), whose lane a request for
	// that template gets unless it asks for one.
	TemplateCategories map[string]string `yaml:"template_categories,omitempty" json:"template_categories,omitempty"`
	// DailyCaps caps, per lane, how many notifications ingest accepts
	// from the tenant in a UTC day (package quota); a lane without one has
	// no cap.
	DailyCaps map[string]int64 `yaml:"daily_caps,omitempty" json:"daily_caps,omitempty"`
}

// Registry is a validated File, read-only and safe for concurrent use.
type Registry struct {
	source  string // the variable (and path) it came from, for errors
	senders map[string]*Sender
	tenants map[string]*tenant
	list    []Sender
}

type tenant struct {
	Tenant
	templates map[string]bool // nil: any
	lanes     laneSet
	category  map[string]lanes.Lane // template name → its category's lane
}

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
	envRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// tenantRE is the notification schema's tenant rule.
	tenantRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
)

// Parse reads and validates a registry document; source names where it
// came from (Registry.Source).
func Parse(data []byte, source string) (*Registry, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	return New(f, source)
}

// New validates f and builds its Registry.
func New(f File, source string) (*Registry, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	r := &Registry{source: source, senders: map[string]*Sender{}, tenants: map[string]*tenant{}}
	for i := range f.Senders {
		s := f.Senders[i]
		s.Tenants = slices.Clone(s.Tenants)
		r.senders[s.Name] = &s
		r.list = append(r.list, s)
	}
	for _, t := range f.Tenants {
		tt := &tenant{Tenant: t}
		if t.Templates != nil {
			tt.templates = map[string]bool{}
			for _, n := range t.Templates {
				tt.templates[n] = true
			}
		}
		tt.lanes, tt.category = tenantLanes(t)
		r.tenants[t.Name] = tt
	}
	return r, nil
}

// Validate reports every bad field, naming the sender or tenant and the
// field.
func (f File) Validate() error {
	var errs []error
	bad := func(where, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
	}
	if len(f.Senders) == 0 {
		bad("senders", "at least one sender is required")
	}
	tenants := map[string]*Tenant{}
	for i := range f.Tenants {
		t := &f.Tenants[i]
		where := fmt.Sprintf("tenants[%d]", i)
		if t.Name != "" {
			where += " (" + t.Name + ")"
		}
		switch {
		case !tenantRE.MatchString(t.Name):
			bad(where+".name", "%q is not a tenant name (lower-case letters, digits, _ and -, at most 64)", t.Name)
		case tenants[t.Name] != nil:
			bad(where+".name", "tenant %q is listed twice", t.Name)
		default:
			tenants[t.Name] = t
		}
		if t.DefaultSender == "" {
			bad(where+".default_sender", "is required")
		}
		for j, n := range t.Templates {
			if n == "" {
				bad(fmt.Sprintf("%s.templates[%d]", where, j), "is empty")
			}
		}
		validateLanes(t, where, bad)
	}
	senders := map[string]*Sender{}
	numbers := map[string]string{}
	for i := range f.Senders {
		s := &f.Senders[i]
		where := fmt.Sprintf("senders[%d]", i)
		if s.Name != "" {
			where += " (" + s.Name + ")"
		}
		switch {
		case !nameRE.MatchString(s.Name):
			bad(where+".name", "%q must be 1 to 64 letters, digits, '.', '_', ':' or '-'", s.Name)
		case senders[s.Name] != nil:
			bad(where+".name", "sender %q is listed twice", s.Name)
		default:
			senders[s.Name] = s
		}
		if len(s.Tenants) == 0 {
			bad(where+".tenants", "at least one tenant is required")
		}
		for j, t := range s.Tenants {
			if tenants[t] == nil {
				bad(fmt.Sprintf("%s.tenants[%d]", where, j), "tenant %q is not listed under tenants", t)
			}
		}
		switch s.Provider {
		case "", ProviderXpressbot, ProviderCloudAPI:
		default:
			bad(where+".provider", "%q must be %q or %q (or empty for WANOTIFY_PROVIDER)", s.Provider, ProviderXpressbot, ProviderCloudAPI)
		}
		if s.BaseURL != "" {
			if u, err := url.Parse(s.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad(where+".base_url", "%q is not an absolute http(s) URL", s.BaseURL)
			}
		}
		switch {
		case s.NumberID == "":
			bad(where+".number_id", "is required (the WhatsApp phone number id)")
		case strings.ContainsAny(s.NumberID, "/?# "):
			bad(where+".number_id", "%q must not contain '/', '?', '#' or spaces", s.NumberID)
		default:
			// One number on one route is one rate budget at the provider:
			// two senders naming it would each spend it in full.
			k := s.Provider + "|" + s.BaseURL + "|" + s.NumberID
			if other, ok := numbers[k]; ok {
				bad(where+".number_id", "%q is also the number of sender %q on the same route", s.NumberID, other)
			} else {
				numbers[k] = s.Name
			}
		}
		c := s.Credentials
		switch {
		case c.Env != "" && c.File != "":
			bad(where+".credentials", "give env or file, not both")
		case c.Env != "" && !envRE.MatchString(c.Env):
			bad(where+".credentials.env", "%q is not an environment variable name", c.Env)
		}
		if s.Rate < 0 || math.IsNaN(s.Rate) || math.IsInf(s.Rate, 0) {
			bad(where+".rate", "%v must be a positive number (or 0 for WANOTIFY_DISPATCHER_RATE)", s.Rate)
		}
	}
	for i := range f.Senders {
		s := &f.Senders[i]
		if senders[s.Name] == s {
			validateFailover(s, fmt.Sprintf("senders[%d] (%s)", i, s.Name), senders, bad)
		}
	}
	for i := range f.Tenants {
		t := &f.Tenants[i]
		if t.DefaultSender == "" {
			continue
		}
		where := fmt.Sprintf("tenants[%d] (%s).default_sender", i, t.Name)
		s := senders[t.DefaultSender]
		switch {
		case s == nil:
			bad(where, "sender %q is not listed under senders", t.DefaultSender)
		case !slices.Contains(s.Tenants, t.Name):
			bad(where, "sender %q does not list tenant %q", t.DefaultSender, t.Name)
		}
	}
	return errors.Join(errs...)
}

// Source is where the registry came from (variable and path).
func (r *Registry) Source() string { return r.source }

// Sender returns the registered sender name.
func (r *Registry) Sender(name string) (Sender, bool) {
	s, ok := r.senders[name]
	if !ok {
		return Sender{}, false
	}
	return *s, true
}

// Senders lists every sender, in the order of the file.
func (r *Registry) Senders() []Sender { return slices.Clone(r.list) }

// Tenant returns tenant name's entry.
func (r *Registry) Tenant(name string) (Tenant, bool) {
	t, ok := r.tenants[name]
	if !ok {
		return Tenant{}, false
	}
	return t.Tenant, true
}

// Tenants lists the tenant names, sorted.
func (r *Registry) Tenants() []string {
	out := make([]string, 0, len(r.tenants))
	for n := range r.tenants {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// DefaultSender is tenant's default sender ("" for an unknown tenant).
func (r *Registry) DefaultSender(tenantName string) string {
	if t, ok := r.tenants[tenantName]; ok {
		return t.DefaultSender
	}
	return ""
}

// Rates are the senders' configured rates (those that set one).
func (r *Registry) Rates() map[string]float64 {
	out := map[string]float64{}
	for _, s := range r.list {
		if s.Rate > 0 {
			out[s.Name] = s.Rate
		}
	}
	return out
}

// Refusal codes, also the error code of the dispatcher's failed status.
const (
	CodeUnknownTenant = "tenant_not_registered"
	CodeSender        = "sender_not_owned"
	CodeTemplate      = "template_not_allowed"
	CodeFreeText      = "free_text_not_allowed"
	CodeLane          = "lane_not_allowed"
)

// Refusal is why a tenant may not send a message: Field is the request
// field at fault (sender, template.name or text), Code a stable code and
// Reason a sentence for the caller.
type Refusal struct {
	Field  string
	Code   string
	Reason string
}

func (r *Refusal) Error() string { return r.Field + ": " + r.Reason }

// Message is what Check looks at.
type Message struct {
	Tenant string
	// Sender is the sender named; empty: the tenant's default sender.
	Sender string
	// Template is the template name; empty for a text message.
	Template string
	// Text is true for a free-text message.
	Text bool
	// Lane is the message's lane; empty: not checked.
	Lane string
}

// Check decides whether m's tenant may send it: from a sender it owns, a
// template on its allow-list (if it has one), free text only if allowed.
// It returns the sender to use (the tenant's default for an empty one),
// or the first refusal.
func (r *Registry) Check(m Message) (string, *Refusal) {
	t, ok := r.tenants[m.Tenant]
	if !ok {
		return "", &Refusal{Field: "sender", Code: CodeUnknownTenant,
			Reason: fmt.Sprintf("tenant %q owns no sender in the sender registry", m.Tenant)}
	}
	sender := m.Sender
	if sender == "" {
		sender = t.DefaultSender
	}
	s, ok := r.senders[sender]
	if !ok || !slices.Contains(s.Tenants, m.Tenant) {
		// The same answer for a sender that does not exist and one of
		// another tenant: which numbers exist is not the caller's to learn.
		return "", &Refusal{Field: "sender", Code: CodeSender,
			Reason: fmt.Sprintf("sender %q is not one of tenant %q's senders", sender, m.Tenant)}
	}
	if m.Template != "" && t.templates != nil && !t.templates[m.Template] {
		return "", &Refusal{Field: "template.name", Code: CodeTemplate,
			Reason: fmt.Sprintf("template %q is not on tenant %q's template list", m.Template, m.Tenant)}
	}
	if m.Text && !t.FreeText {
		return "", &Refusal{Field: "text", Code: CodeFreeText,
			Reason: fmt.Sprintf("tenant %q may send templates only, not free text", m.Tenant)}
	}
	if m.Lane != "" && !t.lanes.has(lanes.Lane(m.Lane)) {
		return "", laneRefusal(t, lanes.Lane(m.Lane))
	}
	return sender, nil
}

// Secret reads s's credentials: from the environment variable or the file
// they name (through lookup, os.LookupEnv in services), or, with no
// reference, from fallbackEnv (the provider's own variable). The secret is
// never part of an error.
func (s Sender) Secret(lookup func(string) (string, bool), fallbackEnv string) (string, error) {
	c := s.Credentials
	switch {
	case c.File != "":
		b, err := os.ReadFile(c.File)
		if err != nil {
			return "", fmt.Errorf("sender %q credentials.file: %w", s.Name, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("sender %q credentials.file %s: is empty", s.Name, c.File)
		}
		return v, nil
	case c.Env != "":
		v, ok := lookup(c.Env)
		if !ok || v == "" {
			return "", fmt.Errorf("sender %q credentials.env: %s is not set", s.Name, c.Env)
		}
		return v, nil
	}
	v, ok := lookup(fallbackEnv)
	if !ok || v == "" {
		return "", fmt.Errorf("sender %q: no credentials given and %s is not set", s.Name, fallbackEnv)
	}
	return v, nil
}

// LocalSender and LocalNumberID are the one sender of the built-in local
// registry, owned by the local stack's tenant "demo".
const (
	LocalTenant   = "demo"
	LocalSender   = "default"
	LocalNumberID = "100000000000001"
)

// Local is the registry used when none is configured: the local stack's
// tenant "demo" owns sender "default" and may send any template and free
// text. It matches ingest's local-only development key, so `make run`
// works with no setup; a deployment configures its own.
func Local() *Registry {
	r, err := New(LocalFile(), "built-in local registry")
	if err != nil {
		panic(err) // a constant document
	}
	return r
}

// LocalFile is Local's document.
func LocalFile() File {
	return File{
		Senders: []Sender{{Name: LocalSender, Tenants: []string{LocalTenant}, NumberID: LocalNumberID}},
		Tenants: []Tenant{{Name: LocalTenant, DefaultSender: LocalSender, FreeText: true}},
	}
}

// Inline renders f for WANOTIFY_SENDERS (test harnesses and local stacks
// configure their registry this way).
func Inline(f File) string {
	b, err := yaml.Marshal(f)
	if err != nil {
		panic(err) // plain structs always marshal
	}
	return string(b)
}

// Load reads the registry named by WANOTIFY_SENDERS_FILE or given inline
// in WANOTIFY_SENDERS (not both); with neither, the built-in Local
// registry. Errors are recorded on e, naming the variable.
func Load(e *config.Env) *Registry {
	path := e.String(EnvFile, "", "path of the sender registry (YAML): senders, the tenants allowed to use each, provider, number id, credentials by reference, rate; empty: WANOTIFY_SENDERS, else the built-in local registry (tenant demo, sender default)")
	inline := e.String(EnvInline, "", "the sender registry inline (YAML or JSON), instead of WANOTIFY_SENDERS_FILE")
	switch {
	case path != "" && inline != "":
		e.Fail(EnvFile, "set %s or %s, not both", EnvFile, EnvInline)
	case path != "":
		b, err := os.ReadFile(path)
		if err != nil {
			e.Fail(EnvFile, "%v", err)
			break
		}
		r, err := Parse(b, EnvFile+" "+path)
		if err != nil {
			failEach(e, EnvFile, path+": ", err)
			break
		}
		return r
	case inline != "":
		r, err := Parse([]byte(inline), EnvInline)
		if err != nil {
			failEach(e, EnvInline, "", err)
			break
		}
		return r
	}
	return Local()
}

// failEach records every problem of err on its own line, each naming the
// variable.
func failEach(e *config.Env, name, prefix string, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		e.Fail(name, "%s%s", prefix, line)
	}
}

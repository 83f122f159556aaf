package senders

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Failover is a sender's second route, used while its own route is down
// (the sender halted or its breaker open) for records its own route has
// provably not taken. It is either the name of another sender of the
// registry (a second number of the same tenants):
//
//	failover: acme-backup
//
// or a route written in place, for the same number reached another way
// (for example straight through Meta's Cloud API instead of Xpressbot):
//
//	failover:
//	  provider: cloudapi
//	  base_url: https://graph.facebook.com/v21.0
//	  number_id: "106540352242922"
//	  credentials: {env: ACME_CLOUDAPI_TOKEN}
type Failover struct {
	// Sender names another sender of the registry; its route and number
	// send the message. Empty when Route is given.
	Sender string
	// Route is a route written in place; nil when Sender is given.
	Route *Route
}

// Route is how a number is reached: provider, origin, number id and
// credentials, with the same defaults as a sender's own fields.
type Route struct {
	Provider    string      `yaml:"provider,omitempty" json:"provider,omitempty"`
	BaseURL     string      `yaml:"base_url,omitempty" json:"base_url,omitempty"`
	NumberID    string      `yaml:"number_id" json:"number_id"`
	Credentials Credentials `yaml:"credentials,omitempty" json:"credentials,omitempty"`
}

// UnmarshalYAML reads a sender name (a string) or an inline route (a
// mapping). Unknown fields of an inline route are errors, as everywhere
// in the registry.
func (f *Failover) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*f = Failover{Sender: n.Value}
		return nil
	case yaml.MappingNode:
		raw, err := yaml.Marshal(n)
		if err != nil {
			return err
		}
		var rt Route
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&rt); err != nil {
			return fmt.Errorf("line %d: failover: %w", n.Line, err)
		}
		*f = Failover{Route: &rt}
		return nil
	}
	return fmt.Errorf("line %d: failover: want a sender name or a route (provider, base_url, number_id, credentials)", n.Line)
}

// MarshalYAML writes what UnmarshalYAML reads.
func (f Failover) MarshalYAML() (any, error) {
	if f.Route != nil {
		return f.Route, nil
	}
	return f.Sender, nil
}

// sameRoute reports whether two routes reach the same number the same
// way (credentials aside: another key for the same number on the same
// API is not a second route).
func sameRoute(a, b Route) bool {
	return a.Provider == b.Provider && strings.TrimRight(a.BaseURL, "/") == strings.TrimRight(b.BaseURL, "/") && a.NumberID == b.NumberID
}

// route is s's own route.
func (s Sender) route() Route {
	return Route{Provider: s.Provider, BaseURL: s.BaseURL, NumberID: s.NumberID, Credentials: s.Credentials}
}

// validateFailover checks s's failover against the registry's senders,
// reporting through bad with the field path.
func validateFailover(s *Sender, where string, senders map[string]*Sender, bad func(where, format string, args ...any)) {
	f := s.Failover
	if f == nil {
		return
	}
	where += ".failover"
	if f.Route == nil {
		other := senders[f.Sender]
		switch {
		case f.Sender == "":
			bad(where, "is empty: name another sender or give a route (provider, base_url, number_id, credentials)")
		case f.Sender == s.Name:
			bad(where, "names sender %q itself: a failover must be a second route", f.Sender)
		case other == nil:
			bad(where, "sender %q is not listed under senders", f.Sender)
		case sameRoute(other.route(), s.route()):
			bad(where, "sender %q is reached by the same route and number as %q: not a second route", f.Sender, s.Name)
		default:
			// The second route sends the first sender's tenants'
			// messages from its own number: only if they own it too, so
			// a failover never lets a tenant send from a number it does
			// not own (promise 16).
			for _, t := range s.Tenants {
				if !slices.Contains(other.Tenants, t) {
					bad(where, "sender %q does not list tenant %q (a tenant sends only from senders it owns)", f.Sender, t)
				}
			}
		}
		return
	}
	rt := *f.Route
	switch rt.Provider {
	case "", ProviderXpressbot, ProviderCloudAPI:
	default:
		bad(where+".provider", "%q must be %q or %q (or empty for WANOTIFY_PROVIDER)", rt.Provider, ProviderXpressbot, ProviderCloudAPI)
	}
	if rt.BaseURL != "" {
		if u, err := url.Parse(rt.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(where+".base_url", "%q is not an absolute http(s) URL", rt.BaseURL)
		}
	}
	switch {
	case rt.NumberID == "":
		bad(where+".number_id", "is required (the WhatsApp phone number id)")
	case strings.ContainsAny(rt.NumberID, "/?# "):
		bad(where+".number_id", "%q must not contain '/', '?', '#' or spaces", rt.NumberID)
	case sameRoute(rt, s.route()):
		bad(where, "is the sender's own route (same provider, base_url and number_id): a failover must be a second route")
	}
	c := rt.Credentials
	switch {
	case c.Env != "" && c.File != "":
		bad(where+".credentials", "give env or file, not both")
	case c.Env != "" && !envRE.MatchString(c.Env):
		bad(where+".credentials.env", "%q is not an environment variable name", c.Env)
	}
}

// Failover returns the second route of sender name as a Sender that
// carries it: the named sender itself, or, for a route written in place,
// a sender called "<name> (failover)" with the first sender's tenants and
// the route's fields. ok is false when name has no failover.
func (r *Registry) Failover(name string) (route Sender, ok bool) {
	s, found := r.senders[name]
	if !found || s.Failover == nil {
		return Sender{}, false
	}
	if s.Failover.Route == nil {
		other, found := r.senders[s.Failover.Sender]
		if !found {
			return Sender{}, false // New validated it; kept safe anyway
		}
		return *other, true
	}
	rt := s.Failover.Route
	return Sender{Name: s.Name + " (failover)", Tenants: slices.Clone(s.Tenants), Provider: rt.Provider,
		BaseURL: rt.BaseURL, NumberID: rt.NumberID, Credentials: rt.Credentials, Portfolio: s.Portfolio}, true
}

// MarshalJSON writes the same shape as MarshalYAML.
func (f Failover) MarshalJSON() ([]byte, error) {
	if f.Route != nil {
		return json.Marshal(f.Route)
	}
	return json.Marshal(f.Sender)
}

// Package route is the provider.Provider that sends each message through
// its sender's route: the client (provider, origin, credentials) and the
// WhatsApp phone number id the sender registry names for it. The message's
// Sender is the registry's sender name on the way in and the number id on
// the way out; a sender without a route is refused, never sent under a
// name the provider would take as a number id.
package route

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/wanotify/wanotify/pkg/provider"
)

// Target is where one sender's messages go.
type Target struct {
	Provider provider.Provider
	NumberID string
	// Failover is the sender's second route (the registry's failover:),
	// used only through SendFailover; nil: none.
	Failover *Target
}

// Router sends through each sender's Target. It is safe for concurrent
// use.
type Router struct {
	name    string
	keyed   bool
	targets map[string]Target
}

var (
	_ provider.Provider      = (*Router)(nil)
	_ provider.KeyedProvider = (*Router)(nil)
)

// New builds a Router over targets (sender name → target).
func New(targets map[string]Target) (*Router, error) {
	if len(targets) == 0 {
		return nil, errors.New("route: no senders")
	}
	kinds := map[string]bool{}
	keyed := true
	for s, t := range targets {
		if t.Provider == nil || t.NumberID == "" {
			return nil, fmt.Errorf("route: sender %q needs a provider and a number id", s)
		}
		kinds[t.Provider.Name()] = true
		keyed = keyed && provider.DeduplicatesByKey(t.Provider)
		if f := t.Failover; f != nil {
			if f.Provider == nil || f.NumberID == "" || f.Failover != nil {
				return nil, fmt.Errorf("route: sender %q's failover needs a provider and a number id, and no failover of its own", s)
			}
			if f.Provider == t.Provider && f.NumberID == t.NumberID {
				return nil, fmt.Errorf("route: sender %q's failover is its own route", s)
			}
			kinds[f.Provider.Name()] = true
			keyed = keyed && provider.DeduplicatesByKey(f.Provider)
		}
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	return &Router{name: strings.Join(names, "+"), keyed: keyed, targets: maps(targets)}, nil
}

func maps(m map[string]Target) map[string]Target {
	out := make(map[string]Target, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Name is the providers' name (joined with + when senders use several).
func (r *Router) Name() string { return r.name }

// DeduplicatesByKey holds only if every route deduplicates: the
// dispatcher decides once for all senders whether a timed-out call may be
// retried.
func (r *Router) DeduplicatesByKey() bool { return r.keyed }

// Senders lists the routed sender names.
func (r *Router) Senders() []string {
	out := make([]string, 0, len(r.targets))
	for s := range r.targets {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// HasFailover reports whether sender has a second route.
func (r *Router) HasFailover(sender string) bool {
	t, ok := r.targets[sender]
	return ok && t.Failover != nil
}

// FailoverName is the provider name of sender's second route ("" for
// none): the provider a status event names for a record it sent.
func (r *Router) FailoverName(sender string) string {
	if t, ok := r.targets[sender]; ok && t.Failover != nil {
		return t.Failover.Provider.Name()
	}
	return ""
}

// SendFailover sends m through its sender's second route, from that
// route's number id. Whether it may is pkg/dispatcher/failover's
// decision, not the router's. A sender without a second route is
// refused, never sent.
func (r *Router) SendFailover(ctx context.Context, m provider.Message) (string, error) {
	t, ok := r.targets[m.Sender]
	if !ok || t.Failover == nil {
		return "", &provider.Error{Class: provider.Permanent, Code: provider.CodeUnknownSender,
			Message: fmt.Sprintf("sender %q has no failover route in the sender registry", m.Sender)}
	}
	m.Sender = t.Failover.NumberID
	return t.Failover.Provider.Send(ctx, m)
}

// Send implements provider.Provider.
func (r *Router) Send(ctx context.Context, m provider.Message) (string, error) {
	t, ok := r.targets[m.Sender]
	if !ok {
		return "", &provider.Error{Class: provider.Permanent, Code: provider.CodeUnknownSender,
			Message: fmt.Sprintf("sender %q has no route in the sender registry", m.Sender)}
	}
	m.Sender = t.NumberID
	return t.Provider.Send(ctx, m)
}

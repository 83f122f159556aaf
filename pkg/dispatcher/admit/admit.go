// Package admit holds the dispatcher's admission rules: what a record
// must satisfy before it is queued for its sender. A refused record is
// settled at once with a terminal status naming the reason, and nothing is
// sent; no sender state (queue, pacer, limiter, breaker) is created for it.
//
// Rules run in the admit stage, after a record is decoded and its dedupe
// state looked up, before the sender scheduler. Records come from ingest
// and also straight from producers (the Go SDK, any Kafka client), so the
// dispatcher checks again what ingest checked: the Kafka path is not a way
// around the registry.
package admit

import (
	"errors"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/senders"
)

// Rule decides whether a notification may be sent. Admit returns nil to
// admit n, or a *Refused for a notification that must never be sent
// (terminal, not retried). It must be safe for concurrent use and must not
// block: it runs on the dispatcher's hot path.
type Rule interface {
	Admit(n *contract.Notification) error
}

// Refused is a terminal refusal: Code is stable (the error code of the
// failed status event), Message says why.
type Refused struct {
	Code    string
	Message string
}

func (r *Refused) Error() string { return r.Code + ": " + r.Message }

// Info is the refusal as the status event's error.
func (r *Refused) Info() contract.ErrorInfo {
	return contract.ErrorInfo{Code: r.Code, Message: r.Message, Retryable: false}
}

// AsRefused extracts the refusal from err.
func AsRefused(err error) (*Refused, bool) {
	var r *Refused
	ok := errors.As(err, &r)
	return r, ok
}

// Rules applies several rules in order; the first refusal wins.
type Rules []Rule

// Admit implements Rule.
func (rs Rules) Admit(n *contract.Notification) error {
	for _, r := range rs {
		if err := r.Admit(n); err != nil {
			return err
		}
	}
	return nil
}

// Ownership admits a notification only if its tenant owns its sender and
// may send its template (or free text), by the sender registry.
type Ownership struct {
	Registry *senders.Registry
}

var _ Rule = Ownership{}

// Admit implements Rule.
func (o Ownership) Admit(n *contract.Notification) error {
	m := senders.Message{Tenant: n.Tenant, Sender: n.Sender, Text: n.Text != nil}
	if n.Template != nil {
		m.Template = n.Template.Name
	}
	if m.Sender == "" {
		// The schema requires a sender; an empty one is never the
		// tenant's default by accident on this path.
		return &Refused{Code: senders.CodeSender, Message: "the record names no sender"}
	}
	if _, ref := o.Registry.Check(m); ref != nil {
		return &Refused{Code: ref.Code, Message: ref.Field + ": " + ref.Reason}
	}
	return nil
}

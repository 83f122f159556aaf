package ingest

import (
	"errors"
	"net/http"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/sdk"
	"github.com/wanotify/wanotify/pkg/senders"
)

// TypeForbidden is the problem type of a request naming a sender,
// template or free text that its tenant does not own.
const TypeForbidden = problemBase + "forbidden"

// notOwned is a request refused by the sender registry.
type notOwned struct{ r *senders.Refusal }

func (e *notOwned) Error() string { return e.r.Error() }

// pointers are the request fields a refusal names, as JSON pointers like
// every other field error of the API.
var pointers = map[string]string{"sender": "/sender", "template.name": "/template/name", "text": "/text", "lane": "/lane"}

// forbidden turns a refusal into its 403 problem.
func forbidden(err error) (*Problem, bool) {
	var no *notOwned
	if !errors.As(err, &no) {
		return nil, false
	}
	field := pointers[no.r.Field]
	if field == "" {
		field = "/" + no.r.Field
	}
	return &Problem{Type: TypeForbidden, Title: "Not the tenant's to send", Status: http.StatusForbidden,
		Detail: field + ": " + no.r.Reason,
		Errors: []contract.FieldError{{Field: field, Reason: no.r.Reason}}}, true
}

// defaultSender gives a request that names no sender its tenant's default
// sender. A tenant the registry does not know is refused here: it has no
// sender at all.
func (s *Server) defaultSender(tenant string, r *sdk.Request) error {
	if r.Sender != "" {
		return nil
	}
	if r.Sender = s.cfg.Senders.DefaultSender(tenant); r.Sender == "" {
		_, ref := s.cfg.Senders.Check(senders.Message{Tenant: tenant})
		return &notOwned{ref}
	}
	return nil
}

// owns refuses a valid notification that its tenant may not send: a
// sender it does not own (or that does not exist: the answer is the same,
// so a caller learns nothing about other tenants' senders), a template
// off its list, or free text it may not send.
func (s *Server) owns(n *contract.Notification) error {
	if err := s.lane(n); err != nil {
		return err
	}
	m := senders.Message{Tenant: n.Tenant, Sender: n.Sender, Text: n.Text != nil, Lane: n.Lane}
	if n.Template != nil {
		m.Template = n.Template.Name
	}
	if _, ref := s.cfg.Senders.Check(m); ref != nil {
		return &notOwned{ref}
	}
	return nil
}

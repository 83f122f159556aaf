package ingest

import (
	"github.com/wanotify/wanotify/pkg/contract"
)

// lane sets n's lane and so its topic: the lane the request asked for, if
// its tenant may use it (else a 403 naming /lane); else its template's
// category (the tenant's template_categories in the sender registry);
// else the lane its event type derives (lanes.Derive). A default the
// tenant may not use becomes its nearest lane (senders.Registry.Lane).
// The lane is stored in the record, so the dispatcher, its retries and
// the sink all see the lane ingest chose.
func (s *Server) lane(n *contract.Notification) error {
	template := ""
	if n.Template != nil {
		template = n.Template.Name
	}
	l, _, ref := s.cfg.Senders.Lane(n.Tenant, template, n.EventType, n.Lane)
	if ref != nil {
		return &notOwned{ref}
	}
	n.Lane = string(l)
	return nil
}

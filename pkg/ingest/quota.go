package ingest

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/lanes"
	"github.com/wanotify/wanotify/pkg/quota"
)

// TypeQuotaExceeded is the problem type of a notification past its
// tenant's daily cap for its lane.
const TypeQuotaExceeded = problemBase + "quota-exceeded"

// quotaProblem is a 429 with the Retry-After it needs.
type quotaProblem struct {
	*Problem
	retryAfter string
}

// takeQuota uses one unit of the tenant's daily cap for n's lane (the
// sender registry's daily_caps), or answers 429 with the seconds to the
// next UTC day, when the count starts again. The count is this replica's
// (package quota).
func (s *Server) takeQuota(n *contract.Notification) *quotaProblem {
	limit := s.cfg.Senders.DailyCap(n.Tenant, lanes.Lane(n.Lane))
	ok, wait := s.quota.Take(n.Tenant, n.Lane, limit)
	if ok {
		return nil
	}
	reason := fmt.Sprintf("tenant %q has used its %d notifications of the %s lane for today (UTC)", n.Tenant, limit, n.Lane)
	return &quotaProblem{
		Problem: &Problem{Type: TypeQuotaExceeded, Title: "Daily quota exceeded", Status: http.StatusTooManyRequests,
			Detail: "/lane: " + reason + "; retry after midnight UTC",
			Errors: []contract.FieldError{{Field: "/lane", Reason: reason}}},
		retryAfter: strconv.FormatInt(quota.RetryAfter(wait), 10),
	}
}

// giveQuota returns the unit of a notification Kafka did not take.
func (s *Server) giveQuota(n *contract.Notification) {
	s.quota.Give(n.Tenant, n.Lane, s.cfg.Senders.DailyCap(n.Tenant, lanes.Lane(n.Lane)), time.Now())
}

// Package lanes names the priority lanes of notifications. Every
// notification travels in one lane: critical (authentication: OTPs,
// password resets, login codes), transactional (utility: receipts,
// invoices, alerts) or bulk (marketing: campaigns, newsletters). A lane
// is a topic of its own, so a campaign's backlog never sits in front of
// an OTP in a partition, and the dispatcher's sender scheduler serves the
// lanes by priority (critical first; transactional and bulk by weight)
// at the one rate limit of their sender.
//
// notifications.requested is the transactional lane's topic, so a
// producer that writes there keeps working; the dispatcher still derives
// the lane of each record it reads there, so its OTPs are served first
// once read.
package lanes

import (
	"fmt"
	"path"
	"strings"

	"github.com/wanotify/wanotify/pkg/topics"
)

// Lane is a notification's priority lane.
type Lane string

// The lanes, most urgent first.
const (
	Critical      Lane = "critical"
	Transactional Lane = "transactional"
	Bulk          Lane = "bulk"
)

// All lists the lanes, most urgent first.
var All = []Lane{Critical, Transactional, Bulk}

// Parse reads a lane name.
func Parse(s string) (Lane, error) {
	switch l := Lane(strings.TrimSpace(s)); l {
	case Critical, Transactional, Bulk:
		return l, nil
	}
	return "", fmt.Errorf("lane %q: want critical, transactional or bulk", s)
}

// Topic is the lane's topic.
func (l Lane) Topic() string {
	switch l {
	case Critical:
		return topics.Critical
	case Bulk:
		return topics.Bulk
	}
	return topics.Requested
}

// Index is the lane's place in All (0 = critical); an unknown lane is
// transactional.
func (l Lane) Index() int {
	switch l {
	case Critical:
		return 0
	case Bulk:
		return 2
	}
	return 1
}

// OfTopic is the lane a topic carries (false for topics of no lane).
func OfTopic(topic string) (Lane, bool) {
	switch topic {
	case topics.Critical:
		return Critical, true
	case topics.Requested:
		return Transactional, true
	case topics.Bulk:
		return Bulk, true
	}
	return "", false
}

// Event type patterns (path.Match) of the critical and bulk lanes; every
// other event type is transactional.
var (
	CriticalEventTypes = []string{"otp", "otp.*", "auth", "auth.*", "authentication", "authentication.*",
		"verification", "verification.*", "login.*", "password_reset", "password.*", "2fa", "2fa.*"}
	BulkEventTypes = []string{"marketing", "marketing.*", "campaign", "campaign.*", "promo", "promo.*",
		"promotion", "promotion.*", "newsletter", "newsletter.*", "announcement", "announcement.*"}
)

// Derive is the lane of a notification that asks for none: by its event
// type (CriticalEventTypes, BulkEventTypes), else transactional.
func Derive(eventType string) Lane {
	et := strings.ToLower(eventType)
	if matchAny(CriticalEventTypes, et) {
		return Critical
	}
	if matchAny(BulkEventTypes, et) {
		return Bulk
	}
	return Transactional
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}

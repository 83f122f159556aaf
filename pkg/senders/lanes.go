package senders

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/wanotify/wanotify/pkg/lanes"
)

// Template categories, as Meta approves templates, and the lane each
// gives.
var categoryLanes = map[string]lanes.Lane{
	"authentication": lanes.Critical,
	"utility":        lanes.Transactional,
	"marketing":      lanes.Bulk,
}

// templateNameRE is the notification schema's template name rule.
var templateNameRE = regexp.MustCompile(`^[a-z0-9_]{1,512}$`)

// laneSet holds the lanes a tenant may use, one bit per lanes.Index.
type laneSet uint8

const allLanes laneSet = 1<<3 - 1 // critical, transactional, bulk

func (s laneSet) has(l lanes.Lane) bool {
	for _, k := range lanes.All {
		if k == l {
			return s&(1<<l.Index()) != 0
		}
	}
	return false
}

// tenantLanes reads a validated tenant's lanes and template categories.
func tenantLanes(t Tenant) (laneSet, map[string]lanes.Lane) {
	set := allLanes
	if t.Lanes != nil {
		set = 0
		for _, name := range t.Lanes {
			l, _ := lanes.Parse(name) // Validate checked it
			set |= 1 << l.Index()
		}
	}
	var cat map[string]lanes.Lane
	if len(t.TemplateCategories) > 0 {
		cat = make(map[string]lanes.Lane, len(t.TemplateCategories))
		for name, c := range t.TemplateCategories {
			cat[name] = categoryLanes[strings.ToLower(c)]
		}
	}
	return set, cat
}

// validateLanes reports the bad lanes and template categories of t.
func validateLanes(t *Tenant, where string, bad func(where, format string, args ...any)) {
	if t.Lanes != nil && len(t.Lanes) == 0 {
		bad(where+".lanes", "lists no lane: give at least one of critical, transactional and bulk, or leave lanes out for all three")
	}
	seen := map[lanes.Lane]bool{}
	for j, name := range t.Lanes {
		l, err := lanes.Parse(name)
		switch {
		case err != nil || string(l) != name:
			bad(fmt.Sprintf("%s.lanes[%d]", where, j), "%q is not a lane (critical, transactional or bulk)", name)
		case seen[l]:
			bad(fmt.Sprintf("%s.lanes[%d]", where, j), "lane %q is listed twice", name)
		default:
			seen[l] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(t.DailyCaps)) {
		field := where + ".daily_caps." + name
		if l, err := lanes.Parse(name); err != nil || string(l) != name {
			bad(field, "%q is not a lane (critical, transactional or bulk)", name)
		}
		if n := t.DailyCaps[name]; n < 1 {
			bad(field, "%d must be at least 1 (leave the lane out for no cap)", n)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(t.TemplateCategories)) {
		field := where + ".template_categories." + name
		c := t.TemplateCategories[name]
		switch {
		case !templateNameRE.MatchString(name):
			bad(field, "%q is not a template name (a-z, 0-9 and _)", name)
		case t.Templates != nil && !slices.Contains(t.Templates, name):
			bad(field, "template %q is not on the tenant's templates list", name)
		}
		if _, ok := categoryLanes[strings.ToLower(c)]; !ok {
			bad(field, "%q is not a template category (authentication, utility or marketing)", c)
		}
	}
}

// LaneChoice is how a notification's lane was chosen.
type LaneChoice string

// The ways a lane is chosen, in the order Lane tries them.
const (
	LaneAsked     LaneChoice = "asked"     // the request named it
	LaneCategory  LaneChoice = "category"  // its template's category
	LaneEventType LaneChoice = "eventtype" // lanes.Derive of its event type
)

// Lane chooses the lane of a tenant's notification: the one asked for
// (asked, if not empty), else the lane of its template's category (from
// the tenant's template_categories), else lanes.Derive(eventType).
//
// A lane asked for that the tenant may not use is refused (Field "lane").
// A lane chosen by default that the tenant may not use is replaced by
// the tenant's nearest lane, less urgent first (a tenant without the
// critical lane gets its OTPs in the transactional lane; one with only
// critical gets everything there): a default is never a reason to refuse
// a request the caller could not have phrased otherwise. An unknown tenant
// gets the default (Check refuses it anyway).
func (r *Registry) Lane(tenantName, template, eventType, asked string) (lanes.Lane, LaneChoice, *Refusal) {
	t := r.tenants[tenantName]
	if asked != "" {
		l := lanes.Lane(asked)
		if t != nil && !t.lanes.has(l) {
			return "", LaneAsked, laneRefusal(t, l)
		}
		return l, LaneAsked, nil
	}
	l, how := lanes.Derive(eventType), LaneEventType
	if t == nil {
		return l, how, nil
	}
	if c, ok := t.category[template]; ok && template != "" {
		l, how = c, LaneCategory
	}
	if t.lanes.has(l) {
		return l, how, nil
	}
	for _, k := range lanes.All[l.Index()+1:] {
		if t.lanes.has(k) {
			return k, how, nil
		}
	}
	for i := l.Index() - 1; i >= 0; i-- {
		if k := lanes.All[i]; t.lanes.has(k) {
			return k, how, nil
		}
	}
	return l, how, nil // unreachable: Validate requires a lane
}

// Lanes are the lanes tenantName may use (all three for an unknown
// tenant or one that lists none), most urgent first.
func (r *Registry) Lanes(tenantName string) []lanes.Lane {
	t := r.tenants[tenantName]
	var out []lanes.Lane
	for _, l := range lanes.All {
		if t == nil || t.lanes.has(l) {
			out = append(out, l)
		}
	}
	return out
}

func laneRefusal(t *tenant, l lanes.Lane) *Refusal {
	var may []string
	for _, k := range lanes.All {
		if t.lanes.has(k) {
			may = append(may, string(k))
		}
	}
	return &Refusal{Field: "lane", Code: CodeLane,
		Reason: fmt.Sprintf("tenant %q may not use the %s lane (its lanes: %s)", t.Name, l, strings.Join(may, ", "))}
}

// DailyCap is tenantName's cap on notifications of lane l per UTC day; 0:
// none.
func (r *Registry) DailyCap(tenantName string, l lanes.Lane) int64 {
	if t := r.tenants[tenantName]; t != nil {
		return t.DailyCaps[string(l)]
	}
	return 0
}

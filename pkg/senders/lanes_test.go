package senders_test

import (
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/lanes"
	"github.com/wanotify/wanotify/pkg/senders"
)

const laneTenants = `
senders:
  - name: acme-otp
    tenants: [acme, globex, initech]
    number_id: "111"
tenants:
  - name: acme
    default_sender: acme-otp
    template_categories: {otp_code: AUTHENTICATION, invoice_due: utility, promo_x: marketing}
  - name: globex
    default_sender: acme-otp
    lanes: [transactional, bulk]
    template_categories: {otp_code: authentication}
  - name: initech
    default_sender: acme-otp
    lanes: [critical]
`

func TestLaneIsAskedElseCategoryElseEventType(t *testing.T) {
	r := parse(t, laneTenants)
	cases := []struct {
		name                               string
		tenant, template, eventType, asked string
		want                               lanes.Lane
		how                                senders.LaneChoice
	}{
		{"asked wins over category", "acme", "otp_code", "otp", "bulk", lanes.Bulk, senders.LaneAsked},
		{"category (Meta's upper case)", "acme", "otp_code", "account.notice", "", lanes.Critical, senders.LaneCategory},
		{"category utility", "acme", "invoice_due", "otp", "", lanes.Transactional, senders.LaneCategory},
		{"category marketing", "acme", "promo_x", "invoice", "", lanes.Bulk, senders.LaneCategory},
		{"event type for other templates", "acme", "welcome", "otp", "", lanes.Critical, senders.LaneEventType},
		{"event type for text", "acme", "", "campaign.x", "", lanes.Bulk, senders.LaneEventType},
		{"default outside the tenant's lanes: the next less urgent", "globex", "otp_code", "otp", "", lanes.Transactional, senders.LaneCategory},
		{"default outside the tenant's lanes: the nearest more urgent", "initech", "", "newsletter", "", lanes.Critical, senders.LaneEventType},
		{"unknown tenant: derived", "nobody", "", "otp", "", lanes.Critical, senders.LaneEventType},
	}
	for _, c := range cases {
		l, how, ref := r.Lane(c.tenant, c.template, c.eventType, c.asked)
		if ref != nil || l != c.want || how != c.how {
			t.Errorf("%s: got %s (%s, %v), want %s (%s)", c.name, l, how, ref, c.want, c.how)
		}
	}
}

func TestALaneTheTenantMayNotUseIsRefusedNamingTheField(t *testing.T) {
	r := parse(t, laneTenants)
	_, _, ref := r.Lane("globex", "", "invoice", "critical")
	if ref == nil || ref.Field != "lane" || ref.Code != senders.CodeLane || !strings.Contains(ref.Reason, "transactional, bulk") {
		t.Fatalf("refusal %+v", ref)
	}
	if _, ref := r.Check(senders.Message{Tenant: "globex", Text: false, Template: "x", Lane: "critical"}); ref == nil || ref.Field != "lane" {
		t.Fatalf("Check let globex use the critical lane: %+v", ref)
	}
	if _, ref := r.Check(senders.Message{Tenant: "globex", Template: "x", Lane: "bulk"}); ref != nil {
		t.Fatalf("Check refused an allowed lane: %v", ref)
	}
	if got := r.Lanes("globex"); len(got) != 2 || got[0] != lanes.Transactional {
		t.Fatalf("globex lanes %v", got)
	}
	if got := r.Lanes("acme"); len(got) != 3 {
		t.Fatalf("a tenant listing no lanes has %v, want all three", got)
	}
}

func TestLanesAndCategoriesAreValidatedNamingTheField(t *testing.T) {
	const head = `
senders:
  - name: s
    tenants: [acme]
    number_id: "1"
tenants:
  - name: acme
    default_sender: s
`
	cases := map[string]struct{ doc, field string }{
		"unknown lane":        {head + "    lanes: [critical, urgent]\n", "tenants[0] (acme).lanes[1]"},
		"lane twice":          {head + "    lanes: [bulk, bulk]\n", "tenants[0] (acme).lanes[1]"},
		"no lane":             {head + "    lanes: []\n", "tenants[0] (acme).lanes"},
		"lane in caps":        {head + "    lanes: [Critical]\n", "tenants[0] (acme).lanes[0]"},
		"unknown category":    {head + "    template_categories: {otp_code: security}\n", "tenants[0] (acme).template_categories.otp_code"},
		"bad template name":   {head + "    template_categories: {OTP: authentication}\n", "tenants[0] (acme).template_categories.OTP"},
		"template not listed": {head + "    templates: [a]\n    template_categories: {b: utility}\n", "tenants[0] (acme).template_categories.b"},
		"cap of no lane":      {head + "    daily_caps: {urgent: 5}\n", "tenants[0] (acme).daily_caps.urgent"},
		"cap below 1":         {head + "    daily_caps: {bulk: 0}\n", "tenants[0] (acme).daily_caps.bulk"},
	}
	for name, c := range cases {
		_, err := senders.Parse([]byte(c.doc), "test")
		if err == nil || !strings.Contains(err.Error(), c.field+":") {
			t.Errorf("%s: error %v does not name %s", name, err, c.field)
		}
	}
	// Through the environment, the variable is named as well.
	e := config.New(func(k string) (string, bool) {
		if k == senders.EnvInline {
			return cases["unknown lane"].doc, true
		}
		return "", false
	}, nil)
	senders.Load(e)
	if err := e.Err(); err == nil || !strings.Contains(err.Error(), senders.EnvInline) || !strings.Contains(err.Error(), "lanes[1]") {
		t.Fatalf("load error %v", err)
	}
}

func TestDailyCapsPerLane(t *testing.T) {
	r := parse(t, laneTenants+"    daily_caps: {bulk: 100, critical: 5}\n")
	if r.DailyCap("initech", lanes.Bulk) != 100 || r.DailyCap("initech", lanes.Critical) != 5 ||
		r.DailyCap("initech", lanes.Transactional) != 0 || r.DailyCap("acme", lanes.Bulk) != 0 || r.DailyCap("nobody", lanes.Bulk) != 0 {
		t.Fatal("daily caps not read per tenant and lane")
	}
}

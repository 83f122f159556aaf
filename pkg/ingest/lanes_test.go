package ingest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/senders"
	"github.com/wanotify/wanotify/pkg/topics"
)

// laneSenders: acme may use every lane and names its templates'
// categories; globex may not use the critical lane.
func laneSenders(t *testing.T) *senders.Registry {
	return tenantsOfTwoSenders(t,
		senders.Tenant{Name: "acme", DefaultSender: "acme-otp", FreeText: true,
			TemplateCategories: map[string]string{"login_code": "AUTHENTICATION", "spring_sale": "MARKETING"}},
		senders.Tenant{Name: "globex", DefaultSender: "globex-main", FreeText: true, Lanes: []string{"transactional", "bulk"}})
}

// Each accepted notification carries its lane and is on its lane's topic:
// asked, else the template's category, else the event type; a default
// outside the tenant's lanes is brought within them.
func TestLaneIsChosenStoredAndRoutes(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Senders = laneSenders(t) })
	body := func(key, eventType, extra string) string {
		return `{"idempotency_key":"` + key + `","event_type":"` + eventType + `","recipient":"+447100900123",` + extra + `}`
	}
	tmpl := func(name string) string { return `"template":{"name":"` + name + `","language":"en"}` }
	cases := []struct {
		key, apiKey, body, lane, topic string
	}{
		{"derived-otp", keyAcme, body("derived-otp", "otp", tmpl("any_code")), "critical", topics.Critical},
		{"derived-invoice", keyAcme, body("derived-invoice", "invoice.due", `"text":{"body":"hi"}`), "transactional", topics.Requested},
		{"derived-campaign", keyAcme, body("derived-campaign", "campaign.spring", `"text":{"body":"hi"}`), "bulk", topics.Bulk},
		{"category-auth", keyAcme, body("category-auth", "account.notice", tmpl("login_code")), "critical", topics.Critical},
		{"category-marketing", keyAcme, body("category-marketing", "otp", tmpl("spring_sale")), "bulk", topics.Bulk},
		{"asked", keyAcme, body("asked", "campaign.x", `"lane":"critical",`+tmpl("spring_sale")), "critical", topics.Critical},
		{"asked-bulk", keyGlobex, body("asked-bulk", "invoice", `"lane":"bulk","text":{"body":"hi"}`), "bulk", topics.Bulk},
		{"globex-otp", keyGlobex, body("globex-otp", "otp", `"text":{"body":"123"}`), "transactional", topics.Requested},
	}
	want := map[string]int{}
	for i, c := range cases {
		accepted(t, h.post(c.apiKey, c.body))
		want[c.key] = i
	}
	recs := consume(t, h.brokers, len(cases))
	for _, rec := range recs {
		n, err := contract.DecodeNotification(rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		c := cases[want[n.IdempotencyKey]]
		if n.Lane != c.lane || rec.Topic != c.topic {
			t.Errorf("%s: lane %q on %s, want %q on %s", c.key, n.Lane, rec.Topic, c.lane, c.topic)
		}
	}
}

func TestALaneTheTenantMayNotUseIsRefused403NamingLane(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Senders = laneSenders(t) })
	before := endOffset(t, h.brokers)
	r := h.post(keyGlobex, `{"event_type":"otp","recipient":"+447100900123","lane":"critical","text":{"body":"123"}}`)
	if r.code != http.StatusForbidden {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	p := r.problem(t)
	if p.Type != TypeForbidden || !strings.HasPrefix(p.Detail, "/lane: ") || !strings.Contains(p.Detail, "critical") {
		t.Fatalf("problem %+v", p)
	}
	r.hasField(t, "/lane")
	// A lane that is no lane is a 400 naming it.
	r = h.post(keyAcme, `{"event_type":"otp","recipient":"+447100900123","lane":"urgent","text":{"body":"123"}}`)
	if r.code != http.StatusBadRequest {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	r.hasField(t, "/lane")
	if after := endOffset(t, h.brokers); after != before {
		t.Fatalf("%d records written for refused requests", after-before)
	}
}

func TestBatchRefusesEachItemsLaneOnItsOwn(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Senders = laneSenders(t) })
	items := []string{
		`{"idempotency_key":"l-1","event_type":"otp","recipient":"+447100900123","text":{"body":"1"}}`,
		`{"idempotency_key":"l-2","event_type":"otp","recipient":"+447100900123","lane":"critical","text":{"body":"2"}}`,
		`{"idempotency_key":"l-3","event_type":"promo","recipient":"+447100900123","text":{"body":"3"}}`,
		`{"idempotency_key":"l-4","event_type":"otp","recipient":"+447100900123","lane":"soon","text":{"body":"4"}}`,
	}
	r := h.do(http.MethodPost, "/v1/notifications/batch", keyGlobex, []byte(`{"notifications":[`+strings.Join(items, ",")+`]}`))
	if r.code != http.StatusOK {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	var resp BatchResponse
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Accepted != 2 || resp.Rejected != 2 {
		t.Fatalf("batch %s", r.body)
	}
	for i, code := range map[int]int{1: http.StatusForbidden, 3: http.StatusBadRequest} {
		res := resp.Results[i]
		if res.Status != code || res.Error == nil || len(res.Error.Errors) != 1 || res.Error.Errors[0].Field != "/lane" {
			t.Errorf("item %d: %+v", i, res)
		}
	}
	topicOf := map[string]string{}
	for _, rec := range consume(t, h.brokers, 2) {
		n, err := contract.DecodeNotification(rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		topicOf[n.IdempotencyKey] = rec.Topic + "/" + n.Lane
	}
	if topicOf["l-1"] != topics.Requested+"/transactional" || topicOf["l-3"] != topics.Bulk+"/bulk" {
		t.Fatalf("records %v", topicOf)
	}
}

// Past its daily cap for a lane a tenant gets 429 with Retry-After (the
// seconds to the next UTC day) naming /lane, and nothing is written; its
// other lanes and other tenants go on.
func TestDailyCapAnswers429AndWritesNothing(t *testing.T) {
	reg, err := senders.New(senders.File{
		Senders: []senders.Sender{{Name: "acme-otp", Tenants: []string{"acme", "globex"}, NumberID: "100"}},
		Tenants: []senders.Tenant{
			{Name: "acme", DefaultSender: "acme-otp", FreeText: true, DailyCaps: map[string]int64{"bulk": 2}},
			{Name: "globex", DefaultSender: "acme-otp", FreeText: true},
		},
	}, "test")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *Config) { c.Senders = reg })
	body := func(key, eventType string) string {
		return `{"idempotency_key":"` + key + `","event_type":"` + eventType + `","recipient":"+447100900123","text":{"body":"hi"}}`
	}
	accepted(t, h.post(keyAcme, body("c-1", "campaign.x")))
	accepted(t, h.post(keyAcme, body("c-2", "campaign.x")))
	before := endOffset(t, h.brokers)
	r := h.post(keyAcme, body("c-3", "campaign.x"))
	if r.code != http.StatusTooManyRequests {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	p := r.problem(t)
	if p.Type != TypeQuotaExceeded || !strings.HasPrefix(p.Detail, "/lane: ") {
		t.Fatalf("problem %+v", p)
	}
	r.hasField(t, "/lane")
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 86400 {
		t.Fatalf("Retry-After %q, want 1..86400 seconds", r.header.Get("Retry-After"))
	}
	if after := endOffset(t, h.brokers); after != before {
		t.Fatalf("%d records written past the cap", after-before)
	}
	// A retry of an accepted notification is past the cap too: each
	// accepted publish counts (the dispatcher drops the duplicate anyway).
	// Other lanes and tenants are not capped.
	accepted(t, h.post(keyAcme, body("o-1", "otp")))
	accepted(t, h.post(keyGlobex, body("g-1", "campaign.x")))

	// In a batch, each item past the cap gets its own 429.
	items := `{"notifications":[` + body("b-1", "campaign.y") + `,` + body("b-2", "invoice") + `]}`
	r = h.do(http.MethodPost, "/v1/notifications/batch", keyAcme, []byte(items))
	var resp BatchResponse
	if err := json.Unmarshal(r.body, &resp); err != nil || r.code != http.StatusOK {
		t.Fatalf("batch %d %s", r.code, r.body)
	}
	if resp.Accepted != 1 || resp.Results[0].Status != http.StatusTooManyRequests || resp.Results[0].Error == nil ||
		resp.Results[0].Error.Type != TypeQuotaExceeded || resp.Results[1].Status != http.StatusAccepted || r.header.Get("Retry-After") == "" {
		t.Fatalf("batch %s (Retry-After %q)", r.body, r.header.Get("Retry-After"))
	}
	if got := endOffset(t, h.brokers); got != before+3 {
		t.Fatalf("%d records written after the cap, want 3 (otp, globex, invoice)", got-before)
	}
}

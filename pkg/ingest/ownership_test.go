package ingest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/senders"
)

// twoTenantSenders: acme owns acme-otp and may send only otp_code; globex
// owns globex-main and may send any template and free text.
func twoTenantSenders(t *testing.T) *senders.Registry {
	return tenantsOfTwoSenders(t,
		senders.Tenant{Name: "acme", DefaultSender: "acme-otp", Templates: []string{"otp_code"}},
		senders.Tenant{Name: "globex", DefaultSender: "globex-main", FreeText: true})
}

// tenantsOfTwoSenders is a registry of acme (owning acme-otp) and globex
// (owning globex-main) with the tenants' rules given.
func tenantsOfTwoSenders(t *testing.T, acme, globex senders.Tenant) *senders.Registry {
	t.Helper()
	r, err := senders.New(senders.File{
		Senders: []senders.Sender{
			{Name: "acme-otp", Tenants: []string{"acme"}, NumberID: "100"},
			{Name: "globex-main", Tenants: []string{"globex"}, NumberID: "200"},
		},
		Tenants: []senders.Tenant{acme, globex},
	}, "test")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestTenantIsRefusedWhatItDoesNotOwn(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Senders = twoTenantSenders(t) })
	const tmpl = `"template":{"name":%q,"language":"en","parameters":["1"]}`
	body := func(extra string) string {
		return `{"event_type":"otp","user_id":"u-1","recipient":"+447100900123",` + extra + `}`
	}
	with := func(name string) string { return strings.Replace(tmpl, "%q", `"`+name+`"`, 1) }
	cases := []struct {
		name, key, body, field string
	}{
		{"another tenant's sender", keyGlobex, body(`"sender":"acme-otp","text":{"body":"your bank code"}`), "/sender"},
		{"an unregistered sender", keyGlobex, body(`"sender":"sender-13","text":{"body":"hi"}`), "/sender"},
		{"a raw number id", keyGlobex, body(`"sender":"100","text":{"body":"hi"}`), "/sender"},
		{"a template off the tenant's list", keyAcme, body(with("bank_alert")), "/template/name"},
		{"free text", keyAcme, body(`"text":{"body":"hi"}`), "/text"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.post(c.key, c.body)
			if r.code != http.StatusForbidden {
				t.Fatalf("status %d: %s", r.code, r.body)
			}
			p := r.problem(t)
			if p.Type != TypeForbidden || !strings.HasPrefix(p.Detail, c.field+": ") {
				t.Fatalf("problem %+v", p)
			}
			r.hasField(t, c.field)
		})
	}
	// What each tenant owns goes through; an absent sender is the
	// tenant's default.
	accepted(t, h.post(keyAcme, body(with("otp_code"))))
	accepted(t, h.post(keyGlobex, body(`"sender":"globex-main","text":{"body":"hi"}`)))
	accepted(t, h.post(keyGlobex, body(with("bank_alert"))))
	recs := consume(t, h.brokers, 3)
	got := map[string]string{}
	for _, rec := range recs {
		n, err := contract.DecodeNotification(rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		got[n.Tenant] += n.Sender + ";"
	}
	if got["acme"] != "acme-otp;" || got["globex"] != "globex-main;globex-main;" {
		t.Fatalf("senders on the topic: %v", got)
	}
}

func TestBatchItemsNotOwnedAreRefusedOneByOne(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Senders = twoTenantSenders(t) })
	items := []string{
		`{"idempotency_key":"b-1","event_type":"otp","recipient":"+447100900123","template":{"name":"otp_code","language":"en"}}`,
		`{"idempotency_key":"b-2","event_type":"otp","recipient":"+447100900123","sender":"globex-main","template":{"name":"otp_code","language":"en"}}`,
		`{"idempotency_key":"b-3","event_type":"otp","recipient":"+447100900123","template":{"name":"bank_alert","language":"en"}}`,
	}
	r := h.do(http.MethodPost, "/v1/notifications/batch", keyAcme, []byte(`{"notifications":[`+strings.Join(items, ",")+`]}`))
	if r.code != http.StatusOK {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	var resp BatchResponse
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Accepted != 1 || resp.Rejected != 2 {
		t.Fatalf("batch %s", r.body)
	}
	for i, field := range map[int]string{1: "/sender", 2: "/template/name"} {
		res := resp.Results[i]
		if res.Status != http.StatusForbidden || res.Error == nil || len(res.Error.Errors) != 1 || res.Error.Errors[0].Field != field {
			t.Errorf("item %d: %+v", i, res)
		}
	}
	consume(t, h.brokers, 1)
}

func TestUnregisteredTenantOwnsNothing(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Senders = twoTenantSenders(t)
		c.APIKeys = append(c.APIKeys, "initech:"+HashKey("initech-key"))
	})
	r := h.post("initech-key", `{"event_type":"otp","recipient":"+447100900123","text":{"body":"hi"}}`)
	if r.code != http.StatusForbidden {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	r.hasField(t, "/sender")
}

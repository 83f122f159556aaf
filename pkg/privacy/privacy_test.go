package privacy

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
)

func notification(tenant, eventType, template string, params ...string) *contract.Notification {
	return &contract.Notification{
		SchemaVersion: 1, ID: "n-1", IdempotencyKey: "k-1", Tenant: tenant, SourceService: "svc", EventType: eventType,
		Recipient: "+447700900123", Sender: "acct", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Template: &contract.Template{Name: template, Language: "en_US", Parameters: params},
		Metadata: map[string]string{"order": "A-991"},
	}
}

func encode(t *testing.T, n *contract.Notification) []byte {
	t.Helper()
	b, err := n.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stored decodes what the redactor returns and checks it is still a
// valid notification.
func stored(t *testing.T, b []byte) *contract.Notification {
	t.Helper()
	n, err := contract.DecodeNotification(b)
	if err != nil {
		t.Fatalf("stored payload is not a valid notification: %v\n%s", err, b)
	}
	return n
}

func TestContentIsNotStoredByDefault(t *testing.T) {
	r := New(Policy{})
	n := notification("acme", "invoice.reminder", "invoice_due", "Jane Doe", "€120.50")
	got := r.Notification(encode(t, n), n)
	for _, secret := range []string{"Jane Doe", "120.50", "A-991"} {
		if strings.Contains(string(got), secret) {
			t.Errorf("stored payload contains %q: %s", secret, got)
		}
	}
	s := stored(t, got)
	if len(s.Template.Parameters) != 2 || s.Template.Parameters[0] != Redacted || s.Metadata["order"] != Redacted {
		t.Errorf("parameters %v metadata %v, want %q each", s.Template.Parameters, s.Metadata, Redacted)
	}
	if s.Recipient != n.Recipient || s.Template.Name != "invoice_due" || s.ID != n.ID {
		t.Errorf("redaction changed more than content: %s", got)
	}

	txt := notification("acme", "support.reply", "", "")
	txt.Template, txt.Text = nil, &contract.Text{Body: "Your parcel is at 5 Elm Street"}
	got = r.Notification(encode(t, txt), txt)
	if strings.Contains(string(got), "Elm") || stored(t, got).Text.Body != Redacted {
		t.Errorf("text body stored: %s", got)
	}
}

func TestHashedContentIsKeyedAndTenantScoped(t *testing.T) {
	r := New(Policy{HashKey: []byte("k1")})
	a := notification("acme", "invoice.reminder", "invoice_due", "Jane Doe")
	b := notification("acme", "invoice.reminder", "invoice_due", "Jane Doe")
	c := notification("globex", "invoice.reminder", "invoice_due", "Jane Doe")
	pa := stored(t, r.Notification(encode(t, a), a)).Template.Parameters[0]
	pb := stored(t, r.Notification(encode(t, b), b)).Template.Parameters[0]
	pc := stored(t, r.Notification(encode(t, c), c)).Template.Parameters[0]
	if !strings.HasPrefix(pa, HashPrefix) || pa != pb {
		t.Errorf("equal values of one tenant: %q and %q, want the same %s hash", pa, pb, HashPrefix)
	}
	if pa == pc {
		t.Errorf("the same value of two tenants hashes alike (%q): tenants could be correlated", pa)
	}
	other := New(Policy{HashKey: []byte("k2")})
	if po := stored(t, other.Notification(encode(t, a), a)).Template.Parameters[0]; po == pa {
		t.Error("hash does not depend on the key")
	}
}

func TestOptedInTenantKeepsContentButNeverCodes(t *testing.T) {
	r := New(Policy{StoreContentTenants: []string{"acme"}, HashKey: []byte("k")})
	n := notification("acme", "invoice.reminder", "invoice_due", "Jane Doe")
	raw := encode(t, n)
	if got := r.Notification(raw, n); string(got) != string(raw) {
		t.Errorf("opted-in tenant's payload changed: %s", got)
	}
	for _, c := range []struct{ eventType, template string }{
		{"otp", "otp_code"}, {"login", "auth_code"}, {"account.verification", "welcome"}, {"signup", "2fa_pin"},
	} {
		n := notification("acme", c.eventType, c.template, "482913")
		got := r.Notification(encode(t, n), n)
		if strings.Contains(string(got), "482913") {
			t.Errorf("%s/%s: one-time code stored: %s", c.eventType, c.template, got)
		}
		if p := stored(t, got).Template.Parameters[0]; p != RedactedCode {
			t.Errorf("%s/%s: parameter %q, want %q (never a hash)", c.eventType, c.template, p, RedactedCode)
		}
	}
	star := New(Policy{StoreContentTenants: []string{"*"}})
	g := notification("globex", "invoice.reminder", "invoice_due", "Jane Doe")
	if got := star.Notification(encode(t, g), g); !strings.Contains(string(got), "Jane Doe") {
		t.Errorf("* does not opt every tenant in: %s", got)
	}
	other := notification("globex", "invoice.reminder", "invoice_due", "Jane Doe")
	if got := r.Notification(encode(t, other), other); strings.Contains(string(got), "Jane Doe") {
		t.Errorf("a tenant not listed had its content stored: %s", got)
	}
}

func TestValueOfUndecodableRecords(t *testing.T) {
	r := New(Policy{StoreContentTenants: []string{"acme"}})
	cases := []struct {
		raw, secret string
		keep        []string
	}{
		// Fails the schema (unknown field) but is JSON: structure kept.
		{`{"tenant":"globex","recipient":"+447700900123","template":{"name":"x","parameters":["Jane",42]},"bogus":1}`, "Jane", []string{`"bogus":1`, "+447700900123"}},
		{`{"tenant":"globex","text":{"body":"meet at 5 Elm St"},"metadata":{"a":"secret-md"}}`, "Elm", []string{`"tenant":"globex"`}},
		{`{"tenant":"globex","metadata":{"a":"secret-md"}}`, "secret-md", nil},
		{`{"tenant":"acme","event_type":"otp","template":{"name":"otp_code","parameters":["482913"]},"x":1}`, "482913", nil},
		{`{"tenant":"globex","template":"Jane plain"}`, "Jane", nil},
		{"\xff\x00 Jane binary", "Jane", []string{"bytes, not a JSON object"}},
	}
	for _, c := range cases {
		got := r.Value([]byte(c.raw))
		if strings.Contains(got, c.secret) {
			t.Errorf("%s: stored %s", c.raw, got)
		}
		for _, k := range c.keep {
			if !strings.Contains(got, k) {
				t.Errorf("%s: %q lost: %s", c.raw, k, got)
			}
		}
		if strings.HasPrefix(c.raw, "{") && !json.Valid([]byte(got)) {
			t.Errorf("%s: stored value is not JSON: %s", c.raw, got)
		}
	}
	kept := `{"tenant":"acme","template":{"name":"invoice_due","parameters":["Jane"]},"bogus":1}`
	if got := r.Value([]byte(kept)); got != kept {
		t.Errorf("opted-in tenant's value changed: %s", got)
	}
}

// TestRewriteAgreesWithReencoding: the single-pass rewrite of a raw
// document stores the same notification as re-encoding a redacted copy,
// for documents with escapes, unicode, metadata and text, under every
// policy; and a document it cannot follow (an escaped key) falls back to
// re-encoding, still without content.
func TestRewriteAgreesWithReencoding(t *testing.T) {
	policies := []Policy{{}, {HashKey: []byte("k")}, {StoreContentTenants: []string{"acme"}}, {StoreContentTenants: []string{"acme"}, HashKey: []byte("k")}}
	var docs []*contract.Notification
	for _, c := range []struct{ eventType, template string }{{"otp", "otp_code"}, {"invoice.reminder", "invoice_due"}} {
		for _, params := range [][]string{nil, {}, {"a"}, {`quo"te`, "back\\slash", "naïve ✓", "<tag>&", "line\nbreak", ""}} {
			n := notification("acme", c.eventType, c.template, params...)
			n.Metadata = map[string]string{"k\"1": "v\u2028x", "order": "A-1"}
			docs = append(docs, n)
			m := notification("globex", c.eventType, c.template, params...)
			m.Metadata = nil
			docs = append(docs, m)
		}
		txt := notification("acme", c.eventType, "", "")
		txt.Template, txt.Text = nil, &contract.Text{Body: "hello \"there\" \\ é", PreviewURL: true}
		docs = append(docs, txt)
	}
	for pi, p := range policies {
		r := New(p)
		for di, n := range docs {
			raw := encode(t, n)
			var template string
			if n.Template != nil {
				template = n.Template.Name
			}
			code := IsAuthentication(n.EventType, template)
			if !r.needed(n, code) {
				continue
			}
			got, ok := r.rewrite(raw, n, code, r.StoresContent(n.Tenant))
			if !ok {
				t.Errorf("policy %d doc %d: rewrite could not follow %s", pi, di, raw)
				continue
			}
			want := r.reencode(n, code, r.StoresContent(n.Tenant))
			g, w := stored(t, got), stored(t, want)
			gj, _ := json.Marshal(g)
			wj, _ := json.Marshal(w)
			if string(gj) != string(wj) {
				t.Errorf("policy %d doc %d:\n rewrite  %s\n reencode %s", pi, di, got, want)
			}
		}
	}
	// Fields this package does not know survive the rewrite.
	r := New(Policy{})
	n := notification("acme", "invoice.reminder", "invoice_due", "Jane")
	raw := []byte(strings.Replace(string(encode(t, n)), `"tenant"`, `"future_field":{"a":[1,"x"]},"tenant"`, 1))
	got, ok := r.rewrite(raw, n, false, false)
	if !ok || !strings.Contains(string(got), `"future_field":{"a":[1,"x"]}`) || strings.Contains(string(got), "Jane") {
		t.Errorf("rewrite with an unknown field: %v %s", ok, got)
	}
	// An escaped key: rewrite gives up, Notification still hides the content.
	esc := []byte(strings.Replace(string(encode(t, n)), `"template"`, `"\u0074emplate"`, 1))
	if _, ok := r.rewrite(esc, n, false, false); ok {
		t.Error("rewrite followed an escaped key it cannot match")
	}
	if out := r.Notification(esc, n); strings.Contains(string(out), "Jane") {
		t.Errorf("fallback kept content: %s", out)
	}
}

func TestIsAuthentication(t *testing.T) {
	for _, c := range []struct {
		eventType, template string
		want                bool
	}{
		{"otp", "", true}, {"user.OTP", "", true}, {"signup", "verify_phone", true}, {"x", "login-2fa", true},
		{"invoice.reminder", "invoice_due", false}, {"", "", false}, {"otpish", "authority", false},
		{"a.very-long-word-beyond-sixteen-bytes", "x", false}, {"notifications..", "_", false},
	} {
		if got := IsAuthentication(c.eventType, c.template); got != c.want {
			t.Errorf("IsAuthentication(%q, %q) = %v, want %v", c.eventType, c.template, got, c.want)
		}
	}
}

func contractDecode(b []byte) (*contract.Notification, error) { return contract.DecodeNotification(b) }

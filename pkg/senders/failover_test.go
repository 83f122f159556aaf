package senders_test

import (
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/senders"
)

const withFailover = `
senders:
  - name: acme-otp
    tenants: [acme]
    provider: xpressbot
    number_id: "111"
    failover: acme-backup
  - name: acme-backup
    tenants: [acme, globex]
    number_id: "222"
  - name: globex-main
    tenants: [globex]
    provider: xpressbot
    number_id: "333"
    credentials: {env: GLOBEX_KEY}
    failover:
      provider: cloudapi
      base_url: https://graph.example.net/v21.0
      number_id: "333"
      credentials: {env: GLOBEX_META_TOKEN}
tenants:
  - name: acme
    default_sender: acme-otp
  - name: globex
    default_sender: globex-main
`

// A failover is another sender's name or a route in place; either
// resolves to the route the second attempt uses.
func TestFailoverNamedOrInline(t *testing.T) {
	r := parse(t, withFailover)
	got, ok := r.Failover("acme-otp")
	if !ok || got.Name != "acme-backup" || got.NumberID != "222" {
		t.Fatalf("named failover: %+v %v", got, ok)
	}
	got, ok = r.Failover("globex-main")
	if !ok || got.Provider != senders.ProviderCloudAPI || got.NumberID != "333" || got.BaseURL != "https://graph.example.net/v21.0" ||
		got.Credentials.Env != "GLOBEX_META_TOKEN" || got.Name != "globex-main (failover)" {
		t.Fatalf("inline failover: %+v %v", got, ok)
	}
	if _, ok := r.Failover("acme-backup"); ok {
		t.Fatal("a sender without failover has one")
	}
	if _, ok := r.Failover("nobody"); ok {
		t.Fatal("an unknown sender has a failover")
	}
	// The document survives WANOTIFY_SENDERS's rendering.
	f := senders.File{Senders: r.Senders(), Tenants: []senders.Tenant{{Name: "acme", DefaultSender: "acme-otp"}, {Name: "globex", DefaultSender: "globex-main"}}}
	again := parse(t, senders.Inline(f))
	if got, ok := again.Failover("globex-main"); !ok || got.Credentials.Env != "GLOBEX_META_TOKEN" {
		t.Fatalf("inline round trip lost the route: %+v", got)
	}
	if got, ok := again.Failover("acme-otp"); !ok || got.Name != "acme-backup" {
		t.Fatalf("inline round trip lost the sender: %+v", got)
	}
}

// A failover that does not exist, names itself, is the sender's own
// route, or would let a tenant send from a number it does not own, is
// refused at start naming the variable and the field path.
func TestFailoverValidation(t *testing.T) {
	base := `
senders:
  - name: a
    tenants: [acme]
    provider: xpressbot
    number_id: "111"
    failover: %s
  - name: b
    tenants: [globex]
    number_id: "222"
  - name: c
    tenants: [acme]
    provider: xpressbot
    number_id: "111"
    base_url: https://other.example.net
tenants:
  - name: acme
    default_sender: a
  - name: globex
    default_sender: b
`
	cases := []struct {
		name, failover, want string
	}{
		{"unknown sender", "ghost", `senders[0] (a).failover: sender "ghost" is not listed under senders`},
		{"itself", "a", `senders[0] (a).failover: names sender "a" itself`},
		{"empty", `""`, `senders[0] (a).failover: is empty`},
		{"tenant does not own it", "b", `senders[0] (a).failover: sender "b" does not list tenant "acme"`},
		{"inline own route", `{provider: xpressbot, number_id: "111"}`, `senders[0] (a).failover: is the sender's own route`},
		{"inline without number", `{provider: cloudapi}`, `senders[0] (a).failover.number_id: is required`},
		{"inline bad provider", `{provider: sms, number_id: "9"}`, `senders[0] (a).failover.provider: "sms" must be`},
		{"inline bad url", `{base_url: "ftp://x", number_id: "9"}`, `senders[0] (a).failover.base_url`},
		{"inline bad credentials", `{number_id: "9", credentials: {env: A, file: /b}}`, `senders[0] (a).failover.credentials: give env or file`},
		{"inline unknown field", `{number: "9"}`, `field number not found`},
		{"a list", `[b]`, `failover: want a sender name or a route`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := strings.Replace(base, "%s", c.failover, 1)
			_, err := senders.Parse([]byte(doc), "test")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			// Through Load, each problem names the variable.
			e := config.New(func(k string) (string, bool) {
				if k == senders.EnvInline {
					return doc, true
				}
				return "", false
			}, nil)
			senders.Load(e)
			if err := e.Err(); err == nil || !strings.Contains(err.Error(), senders.EnvInline) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load: %v", err)
			}
		})
	}
	// Valid: another sender the tenant owns; a route in place to the same
	// number through another API.
	for _, ok := range []string{"c", `{provider: cloudapi, number_id: "111", credentials: {env: META_TOKEN}}`} {
		if _, err := senders.Parse([]byte(strings.Replace(base, "%s", ok, 1)), "test"); err != nil {
			t.Errorf("failover %s refused: %v", ok, err)
		}
	}
}

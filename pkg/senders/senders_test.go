package senders_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/senders"
)

const twoTenants = `
senders:
  - name: acme-otp
    tenants: [acme]
    provider: xpressbot
    number_id: "111"
    credentials: {env: ACME_KEY}
    rate: 40
    portfolio: "bp-acme"
  - name: globex-main
    tenants: [globex]
    number_id: "222"
  - name: shared
    tenants: [acme, globex]
    number_id: "333"
tenants:
  - name: acme
    default_sender: acme-otp
    templates: [otp_code]
  - name: globex
    default_sender: globex-main
    free_text: true
`

func parse(t *testing.T, doc string) *senders.Registry {
	t.Helper()
	r, err := senders.Parse([]byte(doc), "test")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCheckTwoTenants(t *testing.T) {
	r := parse(t, twoTenants)
	cases := []struct {
		name  string
		m     senders.Message
		want  string // sender used, or the refused field
		code  string
		refus bool
	}{
		{"own sender", senders.Message{Tenant: "acme", Sender: "acme-otp", Template: "otp_code"}, "acme-otp", "", false},
		{"default sender", senders.Message{Tenant: "acme", Template: "otp_code"}, "acme-otp", "", false},
		{"shared sender", senders.Message{Tenant: "globex", Sender: "shared", Text: true}, "shared", "", false},
		{"other tenant's sender", senders.Message{Tenant: "globex", Sender: "acme-otp", Text: true}, "sender", senders.CodeSender, true},
		{"unknown sender", senders.Message{Tenant: "acme", Sender: "nobody", Template: "otp_code"}, "sender", senders.CodeSender, true},
		{"raw number id is not a sender", senders.Message{Tenant: "globex", Sender: "111", Text: true}, "sender", senders.CodeSender, true},
		{"template off the list", senders.Message{Tenant: "acme", Template: "bank_alert"}, "template.name", senders.CodeTemplate, true},
		{"any template without a list", senders.Message{Tenant: "globex", Template: "bank_alert"}, "globex-main", "", false},
		{"free text not allowed", senders.Message{Tenant: "acme", Text: true}, "text", senders.CodeFreeText, true},
		{"unknown tenant", senders.Message{Tenant: "initech", Text: true}, "sender", senders.CodeUnknownTenant, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ref := r.Check(c.m)
			if c.refus {
				if ref == nil || ref.Field != c.want || ref.Code != c.code {
					t.Fatalf("Check = %q, %+v; want refusal of %s (%s)", got, ref, c.want, c.code)
				}
				return
			}
			if ref != nil || got != c.want {
				t.Fatalf("Check = %q, %+v; want %q", got, ref, c.want)
			}
		})
	}
	if r.DefaultSender("globex") != "globex-main" || r.Rates()["acme-otp"] != 40 {
		t.Fatalf("default sender %q, rates %v", r.DefaultSender("globex"), r.Rates())
	}
}

func TestValidateNamesSenderTenantAndField(t *testing.T) {
	doc := `
senders:
  - name: a
    tenants: [acme, ghost]
    provider: sms
    base_url: ftp://x
    number_id: ""
    credentials: {env: "1BAD", file: /x}
    rate: -1
  - name: a
    tenants: [acme]
    number_id: "9"
  - name: b
    tenants: []
    number_id: "9"
tenants:
  - name: acme
    default_sender: b
  - name: Bad Name
    default_sender: nowhere
`
	_, err := senders.Parse([]byte(doc), "test")
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"senders[0] (a).tenants[1]: tenant \"ghost\"",
		"senders[0] (a).provider",
		"senders[0] (a).base_url",
		"senders[0] (a).number_id: is required",
		"senders[0] (a).credentials: give env or file",
		"senders[0] (a).rate",
		"senders[1] (a).name: sender \"a\" is listed twice",
		"senders[2] (b).tenants: at least one tenant",
		"senders[2] (b).number_id: \"9\" is also the number of sender \"a\"",
		"tenants[0] (acme).default_sender: sender \"b\" does not list tenant \"acme\"",
		"tenants[1] (Bad Name).name",
		"tenants[1] (Bad Name).default_sender: sender \"nowhere\" is not listed",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestUnknownFieldRefused(t *testing.T) {
	_, err := senders.Parse([]byte("senders:\n  - name: a\n    tenant: [acme]\n    number_id: '1'\n"), "test")
	if err == nil || !strings.Contains(err.Error(), "tenant") {
		t.Fatalf("a misspelt field must be refused: %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "senders.yaml")
	if err := os.WriteFile(path, []byte(twoTenants), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func(vars map[string]string) (*senders.Registry, error) {
		e := config.New(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, nil)
		r := senders.Load(e)
		return r, e.Err()
	}
	r, err := load(map[string]string{senders.EnvFile: path})
	if err != nil || r.DefaultSender("acme") != "acme-otp" {
		t.Fatalf("file: %v %v", r, err)
	}
	r, err = load(map[string]string{senders.EnvInline: `{"senders":[{"name":"s","tenants":["t"],"number_id":"1"}],"tenants":[{"name":"t","default_sender":"s"}]}`})
	if err != nil || r.DefaultSender("t") != "s" {
		t.Fatalf("inline JSON: %v", err)
	}
	r, err = load(nil)
	if err != nil || r.DefaultSender(senders.LocalTenant) != senders.LocalSender {
		t.Fatalf("default: %v", err)
	}
	if _, err := load(map[string]string{senders.EnvFile: path, senders.EnvInline: twoTenants}); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("both set: %v", err)
	}
	if _, err := load(map[string]string{senders.EnvFile: filepath.Join(dir, "missing.yaml")}); err == nil || !strings.Contains(err.Error(), senders.EnvFile) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := load(map[string]string{senders.EnvInline: "senders: []"}); err == nil || !strings.Contains(err.Error(), senders.EnvInline+": senders: at least one") {
		t.Fatalf("empty inline: %v", err)
	}
}

func TestInlineRoundTrip(t *testing.T) {
	f := senders.File{
		Senders: []senders.Sender{{Name: "s", Tenants: []string{"t"}, NumberID: "1", Rate: 2.5, Credentials: senders.Credentials{Env: "K"}}},
		Tenants: []senders.Tenant{{Name: "t", DefaultSender: "s", Templates: []string{"x"}, FreeText: true}},
	}
	r, err := senders.Parse([]byte(senders.Inline(f)), "inline")
	if err != nil {
		t.Fatal(err)
	}
	s, ok := r.Sender("s")
	if !ok || s.Rate != 2.5 || s.Credentials.Env != "K" {
		t.Fatalf("round trip: %+v", s)
	}
	if _, ref := r.Check(senders.Message{Tenant: "t", Template: "y"}); ref == nil {
		t.Fatal("template list lost in the round trip")
	}
}

func TestSecretByReference(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "key")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ACME_KEY": "from-env", "WANOTIFY_XPRESSBOT_API_KEY": "fallback"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, c := range []struct {
		cred senders.Credentials
		want string
	}{
		{senders.Credentials{Env: "ACME_KEY"}, "from-env"},
		{senders.Credentials{File: file}, "from-file"},
		{senders.Credentials{}, "fallback"},
	} {
		got, err := senders.Sender{Name: "s", Credentials: c.cred}.Secret(lookup, "WANOTIFY_XPRESSBOT_API_KEY")
		if err != nil || got != c.want {
			t.Errorf("%+v: %q %v", c.cred, got, err)
		}
	}
	_, err := senders.Sender{Name: "s", Credentials: senders.Credentials{Env: "MISSING"}}.Secret(lookup, "X")
	if err == nil || !strings.Contains(err.Error(), "MISSING") {
		t.Errorf("missing variable: %v", err)
	}
}

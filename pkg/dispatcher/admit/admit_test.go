package admit_test

import (
	"testing"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/dispatcher/admit"
	"github.com/wanotify/wanotify/pkg/senders"
)

func TestOwnership(t *testing.T) {
	reg, err := senders.New(senders.File{
		Senders: []senders.Sender{
			{Name: "a-otp", Tenants: []string{"tenant-a"}, NumberID: "1"},
			{Name: "b-main", Tenants: []string{"tenant-b"}, NumberID: "2"},
		},
		Tenants: []senders.Tenant{
			{Name: "tenant-a", DefaultSender: "a-otp", Templates: []string{"otp_code"}},
			{Name: "tenant-b", DefaultSender: "b-main", FreeText: true},
		},
	}, "test")
	if err != nil {
		t.Fatal(err)
	}
	rule := admit.Rules{admit.Ownership{Registry: reg}}
	tmpl := func(name string) *contract.Template { return &contract.Template{Name: name, Language: "en"} }
	cases := []struct {
		name string
		n    contract.Notification
		code string // "" admitted
	}{
		{"own sender and template", contract.Notification{Tenant: "tenant-a", Sender: "a-otp", Template: tmpl("otp_code")}, ""},
		{"own sender, free text", contract.Notification{Tenant: "tenant-b", Sender: "b-main", Text: &contract.Text{Body: "hi"}}, ""},
		{"other tenant's sender", contract.Notification{Tenant: "tenant-b", Sender: "a-otp", Text: &contract.Text{Body: "hi"}}, senders.CodeSender},
		{"unregistered sender", contract.Notification{Tenant: "tenant-a", Sender: "sender-13", Template: tmpl("otp_code")}, senders.CodeSender},
		{"template off the list", contract.Notification{Tenant: "tenant-a", Sender: "a-otp", Template: tmpl("bank_alert")}, senders.CodeTemplate},
		{"free text not allowed", contract.Notification{Tenant: "tenant-a", Sender: "a-otp", Text: &contract.Text{Body: "hi"}}, senders.CodeFreeText},
		{"unknown tenant", contract.Notification{Tenant: "tenant-c", Sender: "a-otp", Text: &contract.Text{Body: "hi"}}, senders.CodeUnknownTenant},
		{"no sender", contract.Notification{Tenant: "tenant-a", Template: tmpl("otp_code")}, senders.CodeSender},
	}
	for _, c := range cases {
		err := rule.Admit(&c.n)
		if c.code == "" {
			if err != nil {
				t.Errorf("%s: refused: %v", c.name, err)
			}
			continue
		}
		r, ok := admit.AsRefused(err)
		if !ok || r.Code != c.code || r.Info().Retryable {
			t.Errorf("%s: got %v, want refusal %s", c.name, err, c.code)
		}
	}
}

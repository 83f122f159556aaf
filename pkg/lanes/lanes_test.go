package lanes

import (
	"testing"

	"github.com/wanotify/wanotify/pkg/topics"
)

func TestDerive(t *testing.T) {
	for et, want := range map[string]Lane{
		"otp": Critical, "otp.login": Critical, "auth.reset": Critical, "Authentication": Critical, "password.reset": Critical,
		"marketing": Bulk, "campaign.spring": Bulk, "newsletter.weekly": Bulk, "promo.black_friday": Bulk,
		"invoice.reminder": Transactional, "server.alert": Transactional, "otpx": Transactional, "marketingish": Transactional,
	} {
		if got := Derive(et); got != want {
			t.Errorf("Derive(%q) = %s, want %s", et, got, want)
		}
	}
}

func TestTopicsAndParse(t *testing.T) {
	for _, l := range All {
		got, ok := OfTopic(l.Topic())
		if !ok || got != l {
			t.Errorf("OfTopic(%s.Topic()) = %s %v", l, got, ok)
		}
		if p, err := Parse(string(l)); err != nil || p != l {
			t.Errorf("Parse(%s) = %s, %v", l, p, err)
		}
	}
	if Transactional.Topic() != topics.Requested {
		t.Fatalf("the transactional lane must stay on %s, where producers that know no lanes write", topics.Requested)
	}
	if _, ok := OfTopic(topics.Retry5s); ok {
		t.Fatal("a retry tier is no lane's topic")
	}
	if _, err := Parse("urgent"); err == nil {
		t.Fatal("Parse accepted an unknown lane")
	}
	if Critical.Index() != 0 || Transactional.Index() != 1 || Bulk.Index() != 2 || Lane("").Index() != 1 {
		t.Fatal("lane indexes")
	}
}

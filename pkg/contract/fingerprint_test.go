package contract

import "testing"

func TestFingerprintTellsContentApartButNotRetries(t *testing.T) {
	base := func() *Notification {
		return &Notification{Recipient: "+447911123456", Sender: "acme-main", EventType: "invoice.paid", UserID: "u-1",
			Template: &Template{Name: "paid", Language: "en", Parameters: []string{"order-42", "10.00"}}}
	}
	fp := Fingerprint(base())
	if fp == 0 {
		t.Fatal("zero fingerprint")
	}
	// A retry: times, source service and metadata may differ.
	retry := base()
	retry.SourceService, retry.Metadata = "other", map[string]string{"k": "v"}
	if Fingerprint(retry) != fp {
		t.Fatal("a retry got another fingerprint")
	}
	for name, edit := range map[string]func(n *Notification){
		"recipient":  func(n *Notification) { n.Recipient = "+447911123457" },
		"sender":     func(n *Notification) { n.Sender = "acme-other" },
		"event type": func(n *Notification) { n.EventType = "invoice.due" },
		"user":       func(n *Notification) { n.UserID = "u-2" },
		"amount":     func(n *Notification) { n.Template.Parameters[1] = "99.00" },
		"parameters": func(n *Notification) { n.Template.Parameters = []string{"order-4", "210.00"} },
		"one more":   func(n *Notification) { n.Template.Parameters = append(n.Template.Parameters, "") },
		"template":   func(n *Notification) { n.Template.Name = "paid2" },
		"language":   func(n *Notification) { n.Template.Language = "de" },
		"text":       func(n *Notification) { n.Template, n.Text = nil, &Text{Body: "paid"} },
	} {
		n := base()
		edit(n)
		if Fingerprint(n) == fp {
			t.Errorf("%s changed, same fingerprint", name)
		}
	}
}

package contract_test

import (
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/schemas"
)

// Validation errors reach logs, problem answers and
// dead_letters.value_error: they name the field and the rule it broke,
// never the value (a phone number, an OTP, a message).
func TestValidationErrorsDoNotQuoteValues(t *testing.T) {
	const secretDigits = "447700900123"
	cases := []struct {
		name, schema, doc, field, leak string
	}{
		{"pattern", schemas.NotificationRequestedV1,
			`{"notification_id":"n-1","tenant":"acme","event_type":"otp","recipient":"+447700900123x","created_at":"2026-01-01T00:00:00Z"}`,
			"/recipient", secretDigits},
		{"format", schemas.NotificationRequestedV1,
			`{"notification_id":"n-1","tenant":"acme","event_type":"otp","recipient":"+447700900123","created_at":"2026-01-01T00:00:00Z","expires_at":"OTP 482913 then 447700900123"}`,
			"/expires_at", "482913"},
		{"maximum", schemas.NotificationStatusV1,
			`{"attempt":447712}`, "/attempt", "447712"},
		{"minimum", schemas.NotificationStatusV1,
			`{"attempt":-44771}`, "/attempt", "44771"},
		{"header pattern", schemas.FailureHeadersV1,
			`{"wanotify-attempt":"x447700900123"}`, "/wanotify-attempt", secretDigits},
	}
	for _, c := range cases {
		err := contract.ValidateJSON(c.schema, []byte(c.doc))
		if err == nil {
			t.Fatalf("%s: %s accepted", c.name, c.doc)
		}
		msg := err.Error()
		// The validator prints numbers with thousands separators.
		if strings.Contains(strings.ReplaceAll(msg, ",", ""), c.leak) {
			t.Errorf("%s: the error quotes the value: %s", c.name, msg)
		}
		if !strings.Contains(msg, c.field+": ") {
			t.Errorf("%s: the error does not name %s: %s", c.name, c.field, msg)
		}
	}
}

func TestUndecodableNumbersAreNotQuoted(t *testing.T) {
	// The schema takes 9.99e2 as the integer 999; encoding/json cannot
	// store it in an int and quotes it.
	doc := `{"schema_version":1,"event_id":"wh/wamid.X/delivered","provider_message_id":"wamid.X","provider":"xpressbot",` +
		`"recipient":"+447700900123","status":"delivered","occurred_at":"2026-11-28T10:00:02Z","emitter":"webhook","attempt":9.99e2}`
	_, err := contract.DecodeStatusEvent([]byte(doc))
	if err == nil {
		t.Fatal("accepted")
	}
	if strings.Contains(err.Error(), "9.99e2") || !strings.Contains(err.Error(), "attempt") {
		t.Errorf("the error quotes the number or does not name the field: %v", err)
	}
	_, err = contract.DecodeNotification([]byte(`{"recipient":"+447700900123", x}`))
	if err == nil || strings.Contains(err.Error(), "447700900123") {
		t.Errorf("syntax error: %v", err)
	}
}

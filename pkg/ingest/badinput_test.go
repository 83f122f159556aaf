package ingest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
)

// textBody is a template request whose second parameter is param (JSON);
// slow sends it to encoding/json's path (a member name in another case).
func textBody(param string, slow bool) string {
	et := `"event_type"`
	if slow {
		et = `"Event_Type"`
	}
	return `{` + et + `:"otp","recipient":"+447100900123","template":{"name":"otp_code","language":"en","parameters":["ok",` + param + `]}}`
}

// Bad input tried on purpose, each with the answer it must get. Whatever
// is refused writes nothing; what is accepted is exactly what was asked.
func TestBadInputGetsItsAnswerAndWritesNothing(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxBody = 2048 })
	valid := `{"event_type":"otp","recipient":"+447100900123","text":{"body":"hi"}}`
	withRecipient := func(r string) string {
		return `{"event_type":"otp","recipient":` + r + `,"text":{"body":"hi"}}`
	}
	cases := []struct {
		name   string
		key    string
		hdr    []string
		body   string
		status int
		typ    string
		field  string
	}{
		// Keys.
		{name: "no API key", body: valid, status: http.StatusUnauthorized},
		{name: "wrong API key", key: "acme-key-0", body: valid, status: http.StatusUnauthorized},
		{name: "API key of one tenant, prefix only", key: keyAcme[:len(keyAcme)-1], body: valid, status: http.StatusUnauthorized},
		{name: "empty X-API-Key", hdr: []string{"X-API-Key", " "}, body: valid, status: http.StatusUnauthorized},
		// Size.
		{name: "oversized body", key: keyAcme, body: `{"event_type":"otp","recipient":"+447100900123","text":{"body":"` + strings.Repeat("x", 2100) + `"}}`,
			status: http.StatusRequestEntityTooLarge, typ: TypeTooLarge},
		// Phone numbers.
		{name: "letters", key: keyAcme, body: withRecipient(`"+44abc900123"`), status: http.StatusBadRequest, typ: TypeInvalid, field: "/recipient"},
		{name: "too short", key: keyAcme, body: withRecipient(`"+441"`), status: http.StatusBadRequest, typ: TypeInvalid, field: "/recipient"},
		{name: "too long", key: keyAcme, body: withRecipient(`"+4471009001234567890"`), status: http.StatusBadRequest, typ: TypeInvalid, field: "/recipient"},
		{name: "no country code", key: keyAcme, body: withRecipient(`"7700900123"`), status: http.StatusBadRequest, typ: TypeInvalid, field: "/recipient"},
		{name: "country code 0", key: keyAcme, body: withRecipient(`"+0447700900123"`), status: http.StatusBadRequest, typ: TypeInvalid, field: "/recipient"},
		{name: "unassigned country code", key: keyAcme, body: withRecipient(`"+9997700900123"`), status: http.StatusBadRequest, typ: TypeInvalid, field: "/recipient"},
		{name: "only punctuation", key: keyAcme, body: withRecipient(`"+-() "`), status: http.StatusBadRequest, typ: TypeInvalid, field: "/recipient"},
		{name: "number as a JSON number", key: keyAcme, body: withRecipient(`447700900123`), status: http.StatusBadRequest, typ: TypeInvalid, field: "/recipient"},
		{name: "control characters", key: keyAcme, body: withRecipient(`"+44710090\u0000123"`), status: http.StatusBadRequest, typ: TypeInvalid, field: "/recipient"},
		// A number that is not the one written: letters O for zeros would
		// have been read as +4477901118, another person's number.
		{name: "letters O for zeros", key: keyAcme, body: withRecipient(`"+44 77OO 901118"`), status: http.StatusBadRequest, typ: TypeInvalid, field: "/recipient"},
		{name: "an extension", key: keyAcme, body: withRecipient(`"+44 7100 900123 ext 7"`), status: http.StatusBadRequest, typ: TypeInvalid, field: "/recipient"},
		{name: "a national prefix kept", key: keyAcme, body: withRecipient(`"+44 (0)7100 900123"`), status: http.StatusBadRequest, typ: TypeInvalid, field: "/recipient"},
		{name: "possible but not valid", key: keyAcme, body: withRecipient(`"+447700900123"`), status: http.StatusBadRequest, typ: TypeInvalid, field: "/recipient"},
		// Text that should not reach WhatsApp, on the one pass (plain
		// bodies and escapes) and on encoding/json's path (a name in
		// another case sends the body there) alike.
		{name: "invalid UTF-8 in a parameter", key: keyAcme, body: textBody("\"a\xffb\"", false), status: http.StatusBadRequest, typ: TypeInvalid, field: "/template/parameters/1"},
		{name: "invalid UTF-8 in a parameter (slow path)", key: keyAcme, body: textBody("\"a\xffb\"", true), status: http.StatusBadRequest, typ: TypeInvalid, field: "/template/parameters/1"},
		{name: "a lone surrogate in a parameter", key: keyAcme, body: textBody(`"\ud800"`, false), status: http.StatusBadRequest, typ: TypeInvalid, field: "/template/parameters/1"},
		{name: "a lone surrogate in a parameter (slow path)", key: keyAcme, body: textBody(`"\ud800"`, true), status: http.StatusBadRequest, typ: TypeInvalid, field: "/template/parameters/1"},
		{name: "NUL in a parameter", key: keyAcme, body: textBody(`"a\u0000b"`, false), status: http.StatusBadRequest, typ: TypeInvalid, field: "/template/parameters/1"},
		{name: "NUL in a parameter (slow path)", key: keyAcme, body: textBody(`"a\u0000b"`, true), status: http.StatusBadRequest, typ: TypeInvalid, field: "/template/parameters/1"},
		{name: "escape character in a parameter", key: keyAcme, body: textBody(`"a\u001b[31mb"`, false), status: http.StatusBadRequest, typ: TypeInvalid, field: "/template/parameters/1"},
		{name: "DEL in a parameter", key: keyAcme, body: textBody("\"a\x7fb\"", false), status: http.StatusBadRequest, typ: TypeInvalid, field: "/template/parameters/1"},
		{name: "a C1 control in a parameter", key: keyAcme, body: textBody("\"a\u0085b\"", false), status: http.StatusBadRequest, typ: TypeInvalid, field: "/template/parameters/1"},
		{name: "NUL in a text body", key: keyAcme, body: `{"event_type":"otp","recipient":"+447100900123","text":{"body":"a\u0000"}}`, status: http.StatusBadRequest, typ: TypeInvalid, field: "/text/body"},
		{name: "a carriage return in a metadata value", key: keyAcme, body: `{"event_type":"otp","recipient":"+447100900123","text":{"body":"a"},"metadata":{"k":"a\rb"}}`, status: http.StatusBadRequest, typ: TypeInvalid, field: "/metadata/k"},
		{name: "a repeated member", key: keyAcme, body: `{"event_type":"otp","recipient":"+447100900123","recipient":"+447100900124","text":{"body":"hi"}}`, status: http.StatusBadRequest, typ: TypeInvalid, field: "/recipient"},
		{name: "a repeated nested member", key: keyAcme, body: `{"event_type":"otp","recipient":"+447100900123","text":{"body":"hi","body":"ho"}}`, status: http.StatusBadRequest, typ: TypeInvalid, field: "/text/body"},
		{name: "a repeated metadata key", key: keyAcme, body: `{"event_type":"otp","recipient":"+447100900123","text":{"body":"hi"},"metadata":{"k":"1","k":"2"}}`, status: http.StatusBadRequest, typ: TypeInvalid, field: "/metadata/k"},
		{name: "a member repeated in another case", key: keyAcme, body: `{"event_type":"otp","recipient":"+447100900123","Recipient":"+447100900124","text":{"body":"hi"}}`, status: http.StatusBadRequest, typ: TypeInvalid, field: "/Recipient"},
		{name: "a repeated member (slow path)", key: keyAcme, body: `{"Event_Type":"otp","recipient":"+447100900123","text":{"body":"hi"},"text":{"body":"ho"}}`, status: http.StatusBadRequest, typ: TypeInvalid, field: "/text"},
		// Template fields.
		{name: "unknown template field", key: keyAcme,
			body:   `{"event_type":"otp","recipient":"+447100900123","template":{"name":"otp_code","language":"en","header":"x"}}`,
			status: http.StatusBadRequest, typ: TypeInvalid, field: "/template/header"},
		{name: "template field of the wrong type", key: keyAcme,
			body:   `{"event_type":"otp","recipient":"+447100900123","template":{"name":"otp_code","language":["en"]}}`,
			status: http.StatusBadRequest, typ: TypeInvalid, field: "/template/language"},
		// Malformed JSON.
		{name: "empty body", key: keyAcme, body: ``, status: http.StatusBadRequest, typ: TypeInvalid},
		{name: "truncated", key: keyAcme, body: valid[:len(valid)-2], status: http.StatusBadRequest, typ: TypeInvalid},
		{name: "single quotes", key: keyAcme, body: strings.ReplaceAll(valid, `"`, `'`), status: http.StatusBadRequest, typ: TypeInvalid},
		{name: "trailing comma", key: keyAcme, body: strings.TrimSuffix(valid, "}") + `,}`, status: http.StatusBadRequest, typ: TypeInvalid},
		{name: "null", key: keyAcme, body: `null`, status: http.StatusBadRequest, typ: TypeInvalid},
		{name: "deep nesting", key: keyAcme, body: strings.Repeat("[", 1000) + strings.Repeat("]", 1000), status: http.StatusBadRequest, typ: TypeInvalid},
		// Expiry against our clock.
		{name: "expiry long past", key: keyAcme,
			body:   `{"event_type":"otp","recipient":"+447100900123","text":{"body":"hi"},"expires_at":"` + time.Now().Add(-time.Minute).UTC().Format(time.RFC3339) + `"}`,
			status: http.StatusBadRequest, typ: TypeInvalid, field: "/expires_at"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.post(c.key, c.body, c.hdr...)
			if r.code != c.status {
				t.Fatalf("status %d, want %d: %s", r.code, c.status, r.body)
			}
			p := r.problem(t)
			if c.typ != "" && p.Type != c.typ {
				t.Errorf("problem type %q, want %q", p.Type, c.typ)
			}
			if c.field != "" {
				r.hasField(t, c.field)
			}
			if strings.Contains(string(r.body), keyAcme) {
				t.Error("the answer repeats the API key")
			}
		})
	}
	if n := endOffset(t, h.brokers); n != 0 {
		t.Fatalf("%d records written for refused requests", n)
	}
}

// Every prefix of a valid body is malformed JSON: each is a 400 problem,
// never a 5xx and never a write.
func TestEveryTruncationOfAValidBodyIsRefused(t *testing.T) {
	h := newHarness(t, nil)
	for i := 0; i < len(otpBody); i++ {
		r := h.post(keyAcme, otpBody[:i])
		if r.code != http.StatusBadRequest {
			t.Fatalf("%d bytes of %d: status %d: %s", i, len(otpBody), r.code, r.body)
		}
		r.problem(t)
	}
	if n := endOffset(t, h.brokers); n != 0 {
		t.Fatalf("%d records written for truncated bodies", n)
	}
}

// A producer whose clock runs a little ahead of ours sends an expiry that
// has just passed here: it is accepted (and then recorded as expired by
// the dispatcher, never sent), while one beyond the allowed skew is
// refused naming the field.
func TestClockSkewedExpiry(t *testing.T) {
	h := newHarness(t, nil)
	body := func(exp time.Time) string {
		return `{"event_type":"otp","recipient":"+447100900123","text":{"body":"hi"},"idempotency_key":"skew-` +
			exp.Format(time.RFC3339Nano) + `","expires_at":"` + exp.UTC().Format(time.RFC3339Nano) + `"}`
	}
	justPast := time.Now().Add(-2 * time.Second)
	a := accepted(t, h.post(keyAcme, body(justPast)))
	rec := consume(t, h.brokers, 1)[0]
	n, err := contract.DecodeNotification(rec.Value)
	if err != nil {
		t.Fatal(err)
	}
	if n.ID != a.ID || n.ExpiresAt == nil || !n.ExpiresAt.Equal(justPast.UTC()) || !n.Expired(time.Now()) {
		t.Fatalf("accepted notification %+v does not carry the expiry it was given (%s)", n, justPast)
	}
	r := h.post(keyAcme, body(time.Now().Add(-time.Minute)))
	if r.code != http.StatusBadRequest {
		t.Fatalf("an expiry a minute ago: status %d: %s", r.code, r.body)
	}
	r.hasField(t, "/expires_at")
	if got := endOffset(t, h.brokers); got != 1 {
		t.Fatalf("%d records, want only the one accepted", got)
	}
}

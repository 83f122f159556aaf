package webhook

import (
	"net/http"
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/metawebhook"
)

// Bad webhooks tried on purpose: each gets its answer, none produces a
// record, and a good webhook is still taken afterwards.
func TestBadWebhooksGetTheirAnswerAndProduceNothing(t *testing.T) {
	h := newHarness(t, nil, func(c *Config) { c.MaxBodyBytes = 8192 })
	good := mustJSON(t, metaPayload(metaStatus("wamid.1", "delivered", "447700900123", 1764324002)))
	sig := metawebhook.Sign([]byte(testSecret), good)
	signed := func(body string) map[string]string {
		return map[string]string{h.cfg.SignatureHeader: metawebhook.Sign([]byte(testSecret), []byte(body))}
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == '0' {
			b[i] = '1'
		} else {
			b[i] = '0'
		}
		return string(b)
	}
	status := func(fields string) string {
		return `{"object":"whatsapp_business_account","entry":[{"id":"w","changes":[{"field":"messages","value":{"statuses":[{` + fields + `}]}}]}]}`
	}
	cases := []struct {
		name    string
		body    string
		headers map[string]string
		want    int
		typ     string
		field   string
	}{
		// Signatures.
		{"first hex digit of the signature changed", string(good), map[string]string{h.cfg.SignatureHeader: flip(sig, len("sha256="))}, http.StatusUnauthorized, ProblemSignature, ""},
		{"last hex digit of the signature changed", string(good), map[string]string{h.cfg.SignatureHeader: flip(sig, len(sig)-1)}, http.StatusUnauthorized, ProblemSignature, ""},
		{"signature cut short", string(good), map[string]string{h.cfg.SignatureHeader: sig[:len(sig)-2]}, http.StatusUnauthorized, ProblemSignature, ""},
		{"signature without its prefix", string(good), map[string]string{h.cfg.SignatureHeader: strings.TrimPrefix(sig, "sha256=")}, http.StatusUnauthorized, ProblemSignature, ""},
		{"signature that is not hex", string(good), map[string]string{h.cfg.SignatureHeader: "sha256=" + strings.Repeat("zz", 32)}, http.StatusUnauthorized, ProblemSignature, ""},
		{"empty signature", string(good), map[string]string{h.cfg.SignatureHeader: ""}, http.StatusUnauthorized, ProblemSignature, ""},
		{"body changed after signing", strings.Replace(string(good), "delivered", "read", 1), map[string]string{h.cfg.SignatureHeader: sig}, http.StatusUnauthorized, ProblemSignature, ""},
		// Malformed and truncated bodies, correctly signed.
		{"empty body", "", signed(""), http.StatusBadRequest, ProblemInvalidPayload, ""},
		{"truncated", string(good[:len(good)/2]), signed(string(good[:len(good)/2])), http.StatusBadRequest, ProblemInvalidPayload, ""},
		{"not an object", `[]`, signed(`[]`), http.StatusBadRequest, ProblemInvalidPayload, ""},
		{"deep nesting", strings.Repeat("[", 5000), signed(strings.Repeat("[", 5000)), http.StatusBadRequest, ProblemInvalidPayload, ""},
		{"NUL bytes", "\x00\x00\x00", signed("\x00\x00\x00"), http.StatusBadRequest, ProblemInvalidPayload, ""},
		// Fields of the wrong type.
		{"statuses not a list", `{"object":"whatsapp_business_account","entry":[{"id":"w","changes":[{"field":"messages","value":{"statuses":{}}}]}]}`,
			nil, http.StatusBadRequest, ProblemInvalidPayload, ""},
		{"timestamp not a number", status(`"id":"wamid.1","status":"delivered","timestamp":"soon","recipient_id":"447700900123"`),
			nil, http.StatusBadRequest, ProblemInvalidPayload, "/entry/0/changes/0/value/statuses/0/timestamp"},
		{"id missing", status(`"status":"delivered","timestamp":"1764324002","recipient_id":"447700900123"`),
			nil, http.StatusBadRequest, ProblemInvalidPayload, "/entry/0/changes/0/value/statuses/0/id"},
		// A recipient_id that is not a number is not bad input: the status
		// is counted and left out, the body answered 200 (see
		// payload.TestParseNeverRefusesASignedStatusForItsRecipient).
		// Size.
		{"oversized", status(`"id":"` + strings.Repeat("x", 9000) + `","status":"read","timestamp":"1","recipient_id":"447700900123"`),
			nil, http.StatusRequestEntityTooLarge, ProblemTooLarge, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := c.headers
			if hdr == nil {
				hdr = signed(c.body)
			}
			got := h.postWith([]byte(c.body), hdr)
			if got.status != c.want {
				t.Fatalf("status %d %s, want %d", got.status, got.body, c.want)
			}
			p := got.problem(t)
			if p.Type != c.typ {
				t.Errorf("problem type %q, want %q", p.Type, c.typ)
			}
			if c.field != "" {
				found := false
				for _, f := range p.Errors {
					found = found || f.Field == c.field
				}
				if !found {
					t.Errorf("problem %v does not name %s", p.Errors, c.field)
				}
			}
			if strings.Contains(string(got.body), testSecret) {
				t.Error("the answer repeats the secret")
			}
		})
	}
	if n := statusRecordCount(t, h.brokers); n != 0 {
		t.Fatalf("%d records on notifications.status after refused webhooks, want 0", n)
	}
	if got := h.post(good); got.status != http.StatusOK {
		t.Fatalf("good webhook after the refusals: %d %s", got.status, got.body)
	}
	consumeStatus(t, h.brokers, 1)
}

// Every prefix of a valid payload, each signed correctly, is malformed: a
// 400 problem, never a 5xx and never a record.
func TestEveryTruncationOfASignedPayloadIsRefused(t *testing.T) {
	h := newHarness(t, nil, nil)
	good := mustJSON(t, metaPayload(metaStatus("wamid.1", "sent", "447700900123", 1764324002)))
	for i := 0; i < len(good); i++ {
		got := h.post(good[:i])
		if got.status != http.StatusBadRequest {
			t.Fatalf("%d bytes of %d: status %d %s", i, len(good), got.status, got.body)
		}
	}
	if n := statusRecordCount(t, h.brokers); n != 0 {
		t.Fatalf("%d records written for truncated payloads", n)
	}
}

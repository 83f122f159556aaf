package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/metawebhook"
)

// Seeds beyond testdata/fuzz/FuzzParse: shapes the corpus files may not
// reach quickly.
var parseSeeds = []string{
	`{"object":"whatsapp_business_account","entry":[{"id":"w","changes":[{"field":"messages","value":{"statuses":[{"id":"wamid.1","status":"delivered","timestamp":"1764324002","recipient_id":"447700900123","biz_opaque_callback_data":"n-1"}]}}]}]}`,
	`{"success":true,"data":{"entry":[{"changes":[{"value":{"statuses":[{"id":"a","status":"failed","timestamp":"1","recipient_id":"14155550100","errors":[{"code":131026}]}]}}]}]}}`,
	`{"entry":[{"changes":[{"value":{"statuses":[{"id":5}]}}]}]}`,
	`{"entry":[{"changes":[{"value":{"messages":[{"from":"1","type":"text"}]}}]}]}`,
	`{"entry":[]}`,
	`[]`,
	`null`,
	`{"data":"x"}`,
}

// FuzzParse: the parser never panics, fails only with a *Error,
// and every event it returns is a valid status record keyed by an E.164
// recipient.
func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	parsers := []Parser{
		{Provider: "xpressbot", Format: FormatMeta},
		{Provider: "xpressbot", Format: FormatEnvelope, EnvelopeField: "data"},
		{Provider: "xpressbot", Format: FormatAuto, EnvelopeField: "data"},
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, p := range parsers {
			b, err := p.Parse(body)
			if err != nil {
				if b != nil {
					t.Fatalf("%s: batch and error both returned", p.Format)
				}
				var pe *Error
				if !errors.As(err, &pe) || !errors.Is(err, ErrMalformed) || len(pe.Fields) == 0 || len(pe.Fields) > MaxFieldErrors {
					t.Fatalf("%s: error %T %v is not a bounded *Error", p.Format, err, err)
				}
				continue
			}
			ids := map[string]bool{}
			for _, ev := range b.Events {
				got, err := contract.DecodeStatusEvent(ev.Value)
				if err != nil {
					t.Fatalf("%s: produced an invalid record %s: %v", p.Format, ev.Value, err)
				}
				if got.EventID != ev.Status.EventID || string(ev.Key()) != got.Recipient || !strings.HasPrefix(got.Recipient, "+") {
					t.Fatalf("%s: record %s does not match its event %+v", p.Format, ev.Value, ev.Status)
				}
				if got.Emitter != contract.EmitterWebhook || got.EventID != contract.WebhookEventID(got.ProviderMessageID, got.Status) {
					t.Fatalf("%s: event id %q not deterministic", p.Format, got.EventID)
				}
				if ids[got.EventID] {
					t.Fatalf("%s: event %s twice in one batch", p.Format, got.EventID)
				}
				ids[got.EventID] = true
			}
			for _, r := range b.Rejected {
				// Every status kept aside keeps its raw JSON and says why.
				if (r.Kind != RejectedMalformed && r.Kind != RejectedUntracked) || r.Reason == "" || !json.Valid(r.Raw) ||
					(r.Recipient != "" && !strings.HasPrefix(r.Recipient, "+")) {
					t.Fatalf("%s: rejected status %+v", p.Format, r)
				}
			}
		}
	})
}

// FuzzVerify: the signature check never panics, accepts exactly the
// signature of the body under the secret, and refuses any change to the
// body or the signature.
func FuzzVerify(f *testing.F) {
	f.Add([]byte("dev-webhook-secret"), []byte(`{"entry":[]}`), "")
	f.Add([]byte("s"), []byte(""), "sha256=")
	f.Add([]byte("s"), []byte("x"), "SHA256=00")
	f.Add([]byte(""), []byte("x"), "sha256=zz")
	f.Fuzz(func(t *testing.T, secret, body []byte, header string) {
		err := VerifySignature(secret, body, header)
		if err != nil && !errors.Is(err, ErrMissingSignature) && !errors.Is(err, ErrBadSignature) {
			t.Fatalf("unexpected error %v", err)
		}
		// A Verifier reuses its keyed hashes: every call, after a refusal
		// or an acceptance, answers as the first.
		v := NewVerifier(secret)
		for range 2 {
			if got := v.Verify(body, header); !errors.Is(got, err) {
				t.Fatalf("Verifier: %v, VerifySignature: %v", got, err)
			}
			if len(secret) > 0 && v.Verify(body, metawebhook.Sign(secret, body)) != nil {
				t.Fatal("Verifier refused the body's own signature")
			}
		}
		if err == nil && len(secret) == 0 {
			t.Fatal("accepted a signature with an empty secret")
		}
		if len(secret) == 0 {
			return
		}
		good := metawebhook.Sign(secret, body)
		if err := VerifySignature(secret, body, good); err != nil {
			t.Fatalf("refused the body's own signature: %v", err)
		}
		if err := VerifySignature(secret, body, "  "+strings.ToUpper(good[:7])+good[7:]+"\t"); err != nil {
			t.Fatalf("refused the signature with a rewritten prefix: %v", err)
		}
		if err == nil && header != "" {
			// header was accepted: it must be the same digest.
			if !strings.EqualFold(strings.TrimSpace(header), good) {
				t.Fatalf("accepted %q, the signature is %q", header, good)
			}
		}
		other := append(bytes.Clone(body), 'x')
		if VerifySignature(secret, other, good) == nil {
			t.Fatal("accepted the signature of another body")
		}
		flipped := []byte(good)
		i := len("sha256=") + len(body)%(len(good)-len("sha256="))
		if flipped[i] == '0' {
			flipped[i] = '1'
		} else {
			flipped[i] = '0'
		}
		if VerifySignature(secret, body, string(flipped)) == nil {
			t.Fatal("accepted a changed signature")
		}
	})
}

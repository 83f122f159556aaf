package privacy

import (
	"strings"
	"testing"
)

// FuzzRedaction feeds arbitrary bytes to both paths: Value (any record)
// must never panic; for bytes that decode as a notification, what
// Notification stores is a valid notification without the parameters.
func FuzzRedaction(f *testing.F) {
	n := notification("acme", "invoice.reminder", "invoice_due", "SECRETVALUE")
	raw, _ := n.Encode()
	f.Add(raw)
	f.Add([]byte(`{"tenant":"acme","template":{"parameters":["SECRETVALUE"]}}`))
	f.Add([]byte(`{"text":{"body":"SECRETVALUE\\"}}`))
	f.Add([]byte("\xff"))
	r := New(Policy{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = r.Value(b)
		n, err := contractDecode(b)
		if err != nil {
			return
		}
		out := r.Notification(b, n)
		s, err := contractDecode(out)
		if err != nil {
			t.Fatalf("stored payload is not a notification: %v\n%s", err, out)
		}
		if s.Template != nil {
			for _, p := range s.Template.Parameters {
				if p != Redacted && p != RedactedCode {
					t.Fatalf("parameter %q stored", p)
				}
			}
		}
		if s.Text != nil && !strings.HasPrefix(s.Text.Body, "[redacted") {
			t.Fatalf("body %q stored", s.Text.Body)
		}
		for k, v := range s.Metadata {
			if v != Redacted {
				t.Fatalf("metadata %q = %q stored", k, v)
			}
		}
	})
}

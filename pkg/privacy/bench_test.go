package privacy

import (
	"testing"

	"github.com/wanotify/wanotify/pkg/contract"
)

// BenchmarkNotification is the sink's cost per requested record: the
// default policy re-encodes a notification with its parameters hidden.
func BenchmarkNotification(b *testing.B) {
	for _, c := range []struct {
		name string
		p    Policy
	}{{"marker", Policy{}}, {"hmac", Policy{HashKey: []byte("k")}}, {"opted-in", Policy{StoreContentTenants: []string{"acme"}}}} {
		b.Run(c.name, func(b *testing.B) {
			r := New(c.p)
			n := notification("acme", "invoice.reminder", "invoice_due", "Jane Doe", "€120.50")
			raw, err := n.Encode()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				_ = r.Notification(raw, n)
			}
		})
	}
}

// BenchmarkDecodeBaseline is what the sink already spends per requested
// record (schema-checked decoding), for comparison.
func BenchmarkDecodeBaseline(b *testing.B) {
	n := notification("acme", "invoice.reminder", "invoice_due", "Jane Doe", "€120.50")
	raw, err := n.Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := contract.DecodeNotification(raw); err != nil {
			b.Fatal(err)
		}
	}
}

package contract

import (
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/schemas"
)

// Each benchmark runs the package's codec (impl=current) next to the
// schema-only codec it replaced (impl=schema, see legacy_test.go), on
// examples in /schemas, so both are measured in the same run. The invalid
// examples measure a refusal, which takes the schema path on both.
// cpu-ns/op is the process's CPU time per operation, which, unlike ns/op,
// does not grow when other processes share the machine.

func example(b *testing.B, name string) []byte {
	b.Helper()
	raw, err := schemas.FS.ReadFile("examples/" + name)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// measure runs op in the benchmark loop; op must succeed if and only if
// valid.
func measure(b *testing.B, valid bool, op func() error) {
	b.ReportAllocs()
	cpu0 := testinfra.CPUTime(b)
	for b.Loop() {
		if err := op(); (err == nil) != valid {
			b.Fatalf("valid=%v, err=%v", valid, err)
		}
	}
	b.ReportMetric(float64((testinfra.CPUTime(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func BenchmarkDecodeNotification(b *testing.B) {
	for _, doc := range []string{"valid/requested-template.json", "valid/requested-text.json", "invalid/requested-bad-recipient.json"} {
		raw := example(b, doc)
		valid := strings.HasPrefix(doc, "valid/")
		b.Run("doc="+doc+"/impl=current", func(b *testing.B) {
			measure(b, valid, func() error { _, err := DecodeNotification(raw); return err })
		})
		b.Run("doc="+doc+"/impl=schema", func(b *testing.B) {
			measure(b, valid, func() error { _, err := legacyDecodeNotification(raw); return err })
		})
	}
}

func BenchmarkDecodeStatusEvent(b *testing.B) {
	for _, doc := range []string{"valid/status-accepted.json", "valid/status-retry.json", "valid/status-webhook-delivered.json", "invalid/status-bad-status.json"} {
		raw := example(b, doc)
		valid := strings.HasPrefix(doc, "valid/")
		b.Run("doc="+doc+"/impl=current", func(b *testing.B) {
			measure(b, valid, func() error { _, err := DecodeStatusEvent(raw); return err })
		})
		b.Run("doc="+doc+"/impl=schema", func(b *testing.B) {
			measure(b, valid, func() error { _, err := legacyDecodeStatusEvent(raw); return err })
		})
	}
}

func BenchmarkEncodeNotification(b *testing.B) {
	n, err := legacyDecodeNotification(example(b, "valid/requested-template.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("impl=current", func(b *testing.B) {
		measure(b, true, func() error { _, err := n.Encode(); return err })
	})
	b.Run("impl=schema", func(b *testing.B) {
		measure(b, true, func() error { _, err := legacyEncodeNotification(n); return err })
	})
}

func BenchmarkEncodeStatusEvent(b *testing.B) {
	e, err := legacyDecodeStatusEvent(example(b, "valid/status-retry.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("impl=current", func(b *testing.B) {
		measure(b, true, func() error { _, err := e.Encode(); return err })
	})
	b.Run("impl=schema", func(b *testing.B) {
		measure(b, true, func() error { _, err := legacyEncodeStatusEvent(e); return err })
	})
}

package envelope

import (
	"encoding/json"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/schemas"
)

// encodeHeaders packs headers into the fuzzer's byte string: one header
// per line, key and value separated by the first '='.
func encodeHeaders(hs map[string]string) []byte {
	var b strings.Builder
	for k, v := range hs {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// decodeHeaders is the inverse; a line without '=' is a header with an
// empty value, and a key given twice appears twice (Parse keeps the last).
func decodeHeaders(raw []byte) []kgo.RecordHeader {
	var hs []kgo.RecordHeader
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return hs
}

// FuzzParse feeds arbitrary failure headers (the context of every retry
// and DLQ record) to Parse: it never panics, refuses with ErrNoEnvelope or
// a validation error, and what it accepts renders as headers again that
// parse to the same failure.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"examples/valid", "examples/invalid"} {
		entries, err := fs.ReadDir(schemas.FS, dir)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), "failure-headers-") {
				continue
			}
			b, err := fs.ReadFile(schemas.FS, dir+"/"+e.Name())
			if err != nil {
				f.Fatal(err)
			}
			var m map[string]string
			if err := json.Unmarshal(b, &m); err != nil {
				f.Fatalf("%s: %v", e.Name(), err)
			}
			f.Add(encodeHeaders(m))
		}
	}
	f.Add([]byte("wanotify-attempt=one\nwanotify-due-at=yesterday\n"))
	f.Add([]byte("wanotify-attempt=1\nwanotify-attempt=2\nwanotify-error-code=x\n"))
	f.Add([]byte("wanotify-error-code=\nwanotify-origin-partition=\xff\x00\n"))
	f.Add([]byte("traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		hs := decodeHeaders(raw)
		fl, err := Parse(hs)
		if err != nil {
			var ve *contract.ValidationError
			if !errors.Is(err, ErrNoEnvelope) && !errors.As(err, &ve) && !strings.HasPrefix(err.Error(), "header ") {
				t.Fatalf("unexpected kind of error %v (%T)", err, err)
			}
			return
		}
		again, err := fl.Headers()
		if err != nil {
			t.Fatalf("accepted %q but cannot render it again: %v", raw, err)
		}
		f2, err := Parse(again)
		if err != nil {
			t.Fatalf("rendered headers refused: %v\n%v", err, again)
		}
		if !sameFailure(fl, f2) {
			t.Fatalf("round trip changed the failure:\n%+v\n%+v", fl, f2)
		}
	})
}

// sameFailure compares by instant and ignores the replay offset of a
// failure never replayed (it is not rendered then).
func sameFailure(a, b *Failure) bool {
	times := func(x, y time.Time) bool { return x.Equal(y) }
	if !times(a.DueAt, b.DueAt) || !times(a.FailedAt, b.FailedAt) || !times(a.FirstFailedAt, b.FirstFailedAt) {
		return false
	}
	ac, bc := *a, *b
	ac.DueAt, bc.DueAt, ac.FailedAt, bc.FailedAt, ac.FirstFailedAt, bc.FirstFailedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if ac.ReplayCount == 0 {
		ac.ReplayedFrom, bc.ReplayedFrom = -1, -1
	}
	if len(ac.Error.Message) > 2048 {
		ac.Error.Message = ac.Error.Message[:2048]
	}
	return ac == bc
}

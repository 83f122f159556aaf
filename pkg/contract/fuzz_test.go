package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/wanotify/wanotify/schemas"
)

// addExamples seeds f with every schema example whose name starts with
// prefix, valid and invalid.
func addExamples(f *testing.F, prefix string) {
	f.Helper()
	for _, dir := range []string{"examples/valid", "examples/invalid"} {
		entries, err := fs.ReadDir(schemas.FS, dir)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), prefix) {
				continue
			}
			b, err := fs.ReadFile(schemas.FS, dir+"/"+e.Name())
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
			if len(b) > 10 {
				f.Add(b[:len(b)/2]) // truncated
			}
		}
	}
}

// FuzzDecodeNotification feeds arbitrary bytes to the decoder of
// notifications.requested values: it never panics, refuses with a
// *ValidationError (ErrInvalid), and whatever it accepts encodes again and
// decodes to the same notification.
func FuzzDecodeNotification(f *testing.F) {
	addExamples(f, "requested-")
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[1,2,3]`))
	f.Add([]byte(`{"schema_version":1e400}`))
	f.Add([]byte("\xff\xfe{\"notification_id\":\"\u0000\"}"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		n, err := DecodeNotification(raw)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
			}
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		again, err := n.Encode()
		if err != nil {
			t.Fatalf("accepted %q but its encoding is refused: %v", raw, err)
		}
		n2, err := DecodeNotification(again)
		if err != nil {
			t.Fatalf("re-encoded notification refused: %v\n%s", err, again)
		}
		if !reflect.DeepEqual(normalizeNotification(n), normalizeNotification(n2)) {
			t.Fatalf("round trip changed the notification:\n%+v\n%+v", n, n2)
		}
	})
}

// normalizeNotification compares times by instant and ignores the
// difference between an empty and a missing metadata map.
func normalizeNotification(n *Notification) string {
	c := *n
	if len(c.Metadata) == 0 {
		c.Metadata = nil
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// FuzzDecodeStatusEvent does the same for notifications.status values.
func FuzzDecodeStatusEvent(f *testing.F) {
	addExamples(f, "status-")
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"schema_version":1,"status":"read","attempt":-1}`))
	f.Add([]byte(`{"schema_version":1,"event_id":"x","status":"delivered","occurred_at":"not a time","emitter":"webhook"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := DecodeStatusEvent(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v (%T) does not match ErrInvalid", err, err)
			}
			return
		}
		again, err := e.Encode()
		if err != nil {
			t.Fatalf("accepted %q but its encoding is refused: %v", raw, err)
		}
		e2, err := DecodeStatusEvent(again)
		if err != nil {
			t.Fatalf("re-encoded event refused: %v\n%s", err, again)
		}
		a, _ := json.Marshal(e)
		b, _ := json.Marshal(e2)
		if !bytes.Equal(a, b) {
			t.Fatalf("round trip changed the event:\n%s\n%s", a, b)
		}
	})
}

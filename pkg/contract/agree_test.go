package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/wanotify/wanotify/schemas"
)

// The helpers below hold the package's codec to the schema-only codec of
// legacy_test.go: the same decision, the same value, the same error text,
// and a fast path that never accepts what the schema refuses.

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// agreeNotification decodes raw with DecodeNotification and with the
// schema path and fails t if they differ in any way, or if the fast path
// alone accepts raw while the schema refuses it. It reports whether the
// fast path accepted.
func agreeNotification(t testing.TB, raw []byte) bool {
	t.Helper()
	got, err := DecodeNotification(raw)
	want, wantErr := legacyDecodeNotification(raw)
	if err != nil && wantErr == nil {
		// Allowed only where the schema path returned a value whose own
		// encoding the schema refuses (a repeated member merged into it),
		// and refused with that verdict.
		enc, _ := json.Marshal(want)
		verr := ValidateJSON(schemas.NotificationRequestedV1, enc)
		if verr == nil || !strings.Contains(errText(err), strings.TrimPrefix(errText(verr), "invalid "+schemas.NotificationRequestedV1+": ")) {
			t.Fatalf("DecodeNotification(%q) refused (%v), the schema path accepted %+v", raw, err, want)
		}
		want = nil
		wantErr = err
	}
	if errText(err) != errText(wantErr) {
		t.Fatalf("DecodeNotification(%q):\n error %s\n schema path: %s", raw, errText(err), errText(wantErr))
	}
	if err != nil && (!errors.Is(err, ErrInvalid) || !errors.As(err, new(*ValidationError))) {
		t.Fatalf("DecodeNotification(%q): error %v (%T) is not a *ValidationError", raw, err, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeNotification(%q):\n value %+v\n schema path: %+v", raw, got, want)
	}
	_, fast := fastDecodeNotification(raw)
	if fast {
		if verr := ValidateJSON(schemas.NotificationRequestedV1, raw); verr != nil {
			t.Fatalf("fast path accepted %q, the schema refuses it: %v", raw, verr)
		}
	}
	return fast
}

// agreeStatusEvent is agreeNotification for status events.
func agreeStatusEvent(t testing.TB, raw []byte) bool {
	t.Helper()
	got, err := DecodeStatusEvent(raw)
	want, wantErr := legacyDecodeStatusEvent(raw)
	if err != nil && wantErr == nil {
		// Allowed only where the schema path returned a value whose own
		// encoding the schema refuses (a repeated member merged into it),
		// and refused with that verdict.
		enc, _ := json.Marshal(want)
		verr := ValidateJSON(schemas.NotificationStatusV1, enc)
		if verr == nil || !strings.Contains(errText(err), strings.TrimPrefix(errText(verr), "invalid "+schemas.NotificationStatusV1+": ")) {
			t.Fatalf("DecodeStatusEvent(%q) refused (%v), the schema path accepted %+v", raw, err, want)
		}
		want = nil
		wantErr = err
	}
	if errText(err) != errText(wantErr) {
		t.Fatalf("DecodeStatusEvent(%q):\n error %s\n schema path: %s", raw, errText(err), errText(wantErr))
	}
	if err != nil && (!errors.Is(err, ErrInvalid) || !errors.As(err, new(*ValidationError))) {
		t.Fatalf("DecodeStatusEvent(%q): error %v (%T) is not a *ValidationError", raw, err, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeStatusEvent(%q):\n value %+v\n schema path: %+v", raw, got, want)
	}
	_, fast := fastDecodeStatusEvent(raw)
	if fast {
		if verr := ValidateJSON(schemas.NotificationStatusV1, raw); verr != nil {
			t.Fatalf("fast path accepted %q, the schema refuses it: %v", raw, verr)
		}
	}
	return fast
}

// agreeEncodeNotification encodes n with Encode and with the schema path
// and fails t if the bytes or errors differ, or if the typed checks accept
// a value whose encoding the schema refuses. It reports whether the typed
// checks accepted.
func agreeEncodeNotification(t testing.TB, n *Notification) bool {
	t.Helper()
	a, b := *n, *n
	got, err := a.Encode()
	want, wantErr := legacyEncodeNotification(&b)
	if errText(err) != errText(wantErr) || !bytes.Equal(got, want) {
		t.Fatalf("Encode(%+v):\n %s, %s\n schema path: %s, %s", n, got, errText(err), want, errText(wantErr))
	}
	if a.SchemaVersion != b.SchemaVersion {
		t.Fatalf("Encode set schema_version %d, the schema path %d", a.SchemaVersion, b.SchemaVersion)
	}
	c := *n
	if c.SchemaVersion == 0 {
		c.SchemaVersion = SchemaVersion
	}
	ok := notificationValid(&c, encodedNotification(&c))
	if ok {
		out, merr := json.Marshal(&c)
		if merr == nil {
			if verr := ValidateJSON(schemas.NotificationRequestedV1, out); verr != nil {
				t.Fatalf("typed checks accepted %+v, the schema refuses its encoding %s: %v", n, out, verr)
			}
		}
	}
	return ok
}

// agreeEncodeStatusEvent is agreeEncodeNotification for status events.
func agreeEncodeStatusEvent(t testing.TB, e *StatusEvent) bool {
	t.Helper()
	a, b := *e, *e
	got, err := a.Encode()
	want, wantErr := legacyEncodeStatusEvent(&b)
	if errText(err) != errText(wantErr) || !bytes.Equal(got, want) {
		t.Fatalf("Encode(%+v):\n %s, %s\n schema path: %s, %s", e, got, errText(err), want, errText(wantErr))
	}
	if a.SchemaVersion != b.SchemaVersion {
		t.Fatalf("Encode set schema_version %d, the schema path %d", a.SchemaVersion, b.SchemaVersion)
	}
	c := *e
	if c.SchemaVersion == 0 {
		c.SchemaVersion = SchemaVersion
	}
	ok := statusEventValid(&c, encodedStatusEvent(&c))
	if ok {
		out, merr := json.Marshal(&c)
		if merr == nil {
			if verr := ValidateJSON(schemas.NotificationStatusV1, out); verr != nil {
				t.Fatalf("typed checks accepted %+v, the schema refuses its encoding %s: %v", e, out, verr)
			}
		}
	}
	return ok
}

// examples returns the schema examples whose names start with prefix,
// valid and invalid, by name.
func examples(t testing.TB, prefix string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, dir := range []string{"examples/valid", "examples/invalid"} {
		entries, err := fs.ReadDir(schemas.FS, dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), prefix) {
				continue
			}
			b, err := fs.ReadFile(schemas.FS, dir+"/"+e.Name())
			if err != nil {
				t.Fatal(err)
			}
			out[dir+"/"+e.Name()] = b
		}
	}
	if len(out) == 0 {
		t.Fatalf("no examples named %s*", prefix)
	}
	return out
}

// validExample is one valid example as a generic JSON object.
func validExample(t testing.TB, name string) map[string]any {
	t.Helper()
	raw, err := schemas.FS.ReadFile("examples/valid/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return mustObject(t, raw)
}

func mustObject(t testing.TB, raw []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// deepCopy copies a generic JSON value.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = deepCopy(e)
		}
		return s
	}
	return v
}

// withMember returns a copy of doc with the member at path ("a" or "a/b")
// set to v, or removed if del. It reports false if the parent object is
// missing or not an object.
func withMember(doc map[string]any, path string, v any, del bool) (map[string]any, bool) {
	c := deepCopy(doc).(map[string]any)
	parent := c
	parts := strings.Split(path, "/")
	for _, p := range parts[:len(parts)-1] {
		next, ok := parent[p].(map[string]any)
		if !ok {
			return nil, false
		}
		parent = next
	}
	last := parts[len(parts)-1]
	if del {
		delete(parent, last)
	} else {
		parent[last] = v
	}
	return c, true
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(fmt.Errorf("marshal %v: %w", v, err))
	}
	return b
}

package contract

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// addExamples seeds f with every schema example whose name starts with
// prefix, valid and invalid, whole and truncated.
func addExamples(f *testing.F, prefix string) {
	f.Helper()
	for _, b := range examples(f, prefix) {
		f.Add(b)
		if len(b) > 10 {
			f.Add(b[:len(b)/2])
		}
	}
}

// rawTricks are documents where encoding/json and the schema part ways:
// member names in another case or with escapes, repeated members, nulls,
// numbers and times in unusual spellings. Each %s is replaced by one valid
// example with its closing brace removed.
var rawTricks = []string{
	`%s,"Recipient":"+447700900123"}`,
	`%s,"recipient":"+447700900123","recipient":"0"}`,
	`%s,"recipient":"0","recipient":"+447700900123"}`,
	`%s,"recip\u0069ent":"+447700900123"}`,
	`%s,"user_id":null}`,
	`%s,"metadata":null}`,
	`%s,"metadata":{"a":null}}`,
	`%s,"metadata":{"a":"1"},"metadata":{"b":"2"}}`,
	`%s,"template":{"name":"otp_code","language":"en"},"template":{"name":"otp_code"}}`,
	`%s,"text":{"body":"hi"},"text":{"preview_url":true}}`,
	`%s,"error":{"code":"x","retryable":true},"error":{"code":"y"}}`,
	`%s,"error":null}`,
	`%s,"attempt":1.0}`,
	`%s,"attempt":1e2}`,
	`%s,"attempt":-0}`,
	`%s,"schema_version":1.0}`,
	`%s,"schema_version":1}`,
	`%s,"schema_version":01}`,
	`%s,"attempt":01}`,
	`%s,"attempt":-}`,
	"%s,\"user_id\":\"a\tb\"}",
	"%s,\"sender\":\"a\x01\"}",
	`%s,"created_at":"2026-11-28t10:00:00z"}`,
	`%s,"occurred_at":"2026-11-28T10:00:00\u005a"}`,
	`%s,"created_at":"2026-11-28T10:00:00,5Z"}`,
	`%s,"occurred_at":"2026-11-28T23:59:60Z"}`,
	`%s,"user_id":"caf\u00e9 \ud800 \ud83d\ude00"}`,
	"%s,\"user_id\":\"\xff\xfe\"}",
	"%s,\"sender\":\"\xc3\"}",
	`%s,"ſender":"x"}`,
	"%s}\n\t ",
	"\ufeff%s}",
	`%s} {}`,
}

func addTricks(f *testing.F, prefix string) {
	f.Helper()
	for name, b := range examples(f, prefix) {
		if !strings.HasPrefix(name, "examples/valid/") {
			continue
		}
		open := strings.TrimSuffix(strings.TrimSpace(string(b)), "}")
		for _, tr := range rawTricks {
			f.Add([]byte(strings.Replace(tr, "%s", open, 1)))
		}
	}
}

// FuzzDecodeNotification feeds arbitrary bytes to the decoder of
// notifications.requested values. It never panics; it decides, decodes
// and words its errors exactly as the schema path (schema validation,
// then encoding/json) does; its fast path never accepts what the schema
// refuses; and whatever it accepts encodes again and decodes to the same
// notification.
func FuzzDecodeNotification(f *testing.F) {
	addExamples(f, "requested-")
	addTricks(f, "requested-")
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[1,2,3]`))
	f.Add([]byte(`{"schema_version":1e400}`))
	f.Add([]byte("\xff\xfe{\"notification_id\":\"\u0000\"}"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		agreeNotification(t, raw)
		n, err := DecodeNotification(raw)
		if err != nil {
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
	addTricks(f, "status-")
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"schema_version":1,"status":"read","attempt":-1}`))
	f.Add([]byte(`{"schema_version":1,"event_id":"x","status":"delivered","occurred_at":"not a time","emitter":"webhook"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		agreeStatusEvent(t, raw)
		e, err := DecodeStatusEvent(raw)
		if err != nil {
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

// memberValues seed the member fuzzers: each is set as a JSON string, and
// also as raw JSON where it is valid JSON.
var memberValues = []string{
	"", "x", "A", "a-b_c", "a.b", "-a", "_a", "0", "n1", "acme", "Acme", "otp", "invoice.reminder", "a b", "é",
	"+447700900123", "+1234567", "+123456", "+123456789012345", "+1234567890123456", "+0123456789", "447700900123",
	"en", "en_US", "e", "eng", "engl", "en-GB-x1", "en_", "EN", "zh_Hant_TW", "en_abcdefghi",
	"otp_code", "OTP", "2026-11-28T10:00:00Z", "2026-11-28T10:00:00.123456789+05:30", "2026-02-29T00:00:00Z",
	"2024-02-29T00:00:00Z", "0000-01-01T00:00:00Z", "2026-11-28T10:00:00+24:00", "2026-11-28T24:00:00Z",
	"2026-11-28 10:00:00Z", "tomorrow", "dispatcher", "webhook", "ingest", "notifyctl", "accepted", "read",
	"teleported", "null", "1", "1.0", "-1", "0", "1000", "1001", "1e3", "true", "false", "{}", "[]", `["a"]`,
	`{"a":"b"}`, `{"":"b"}`, `[null]`, `{"code":"x","retryable":true}`, `{"code":"x"}`,
	`{"name":"otp_code","language":"en"}`, `{"body":"hi"}`,
	strings.Repeat("a", 64), strings.Repeat("a", 65), strings.Repeat("é", 64), strings.Repeat("é", 65),
	strings.Repeat("a", 129), strings.Repeat("a", 257),
}

var notificationPaths = []string{
	"schema_version", "notification_id", "idempotency_key", "tenant", "source_service", "event_type", "user_id",
	"event_time", "recipient", "sender", "template", "text", "expires_at", "created_at", "metadata", "template/name",
	"template/language", "template/parameters", "text/body", "text/preview_url", "metadata/k", "unknown",
}

var statusPaths = []string{
	"schema_version", "event_id", "notification_id", "provider_message_id", "provider", "tenant", "event_type",
	"sender", "recipient", "status", "attempt", "retry_tier", "due_at", "error", "occurred_at", "emitter",
	"route", "error/code", "error/message", "error/retryable", "unknown",
}

var (
	notificationBases = []string{"requested-template.json", "requested-text.json"}
	statusBases       = []string{"status-accepted.json", "status-retry.json", "status-webhook-delivered.json"}
)

// memberDoc builds a document from a valid example with the member at
// path set to value (mode 0: as a string, 1: as raw JSON if value is JSON,
// 2: removed, 3: renamed to value).
func memberDoc(t testing.TB, bases []string, base uint8, path, value string, mode uint8) ([]byte, bool) {
	doc := validExample(t, bases[int(base)%len(bases)])
	var v any = value
	if mode%4 == 1 && json.Valid([]byte(value)) {
		v = json.RawMessage(value)
	}
	switch mode % 4 {
	case 2:
		d, ok := withMember(doc, path, nil, true)
		if !ok {
			return nil, false
		}
		doc = d
	case 3:
		parent := path[:strings.LastIndex(path, "/")+1]
		old, ok := lookup(doc, path)
		if !ok {
			return nil, false
		}
		d, ok := withMember(doc, path, nil, true)
		if !ok {
			return nil, false
		}
		if doc, ok = withMember(d, parent+value, old, false); !ok {
			return nil, false
		}
	default:
		d, ok := withMember(doc, path, v, false)
		if !ok {
			return nil, false
		}
		doc = d
	}
	raw, err := json.Marshal(doc)
	return raw, err == nil
}

func lookup(doc map[string]any, path string) (any, bool) {
	var cur any = doc
	for _, p := range strings.Split(path, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func addMemberSeeds(f *testing.F, paths []string, bases int) {
	for _, p := range paths {
		for i, v := range memberValues {
			f.Add(uint8(i%bases), p, v, uint8(i%2))
		}
		f.Add(uint8(0), p, "", uint8(2))
		f.Add(uint8(1), p, strings.ToUpper(p[:1])+p[1:], uint8(3))
	}
}

// FuzzNotificationMember sets, removes or renames one member of a valid
// notification and holds DecodeNotification to the schema path: the fast
// path may only accept what the schema accepts, and every decision, value
// and error must be the schema path's.
func FuzzNotificationMember(f *testing.F) {
	addMemberSeeds(f, notificationPaths, len(notificationBases))
	f.Fuzz(func(t *testing.T, base uint8, path, value string, mode uint8) {
		raw, ok := memberDoc(t, notificationBases, base, path, value, mode)
		if !ok {
			return
		}
		agreeNotification(t, raw)
	})
}

// FuzzStatusEventMember does the same for status events.
func FuzzStatusEventMember(f *testing.F) {
	addMemberSeeds(f, statusPaths, len(statusBases))
	f.Fuzz(func(t *testing.T, base uint8, path, value string, mode uint8) {
		raw, ok := memberDoc(t, statusBases, base, path, value, mode)
		if !ok {
			return
		}
		agreeStatusEvent(t, raw)
	})
}

// FuzzEncodeNotification builds a notification from the seed, mostly
// valid and sometimes with members at or past a limit of the schema, and
// holds Encode to the schema path: the same bytes or the same error, and
// typed checks that never pass a value whose encoding the schema refuses.
// The encoding, valid or not, is then decoded by both paths too.
func FuzzEncodeNotification(f *testing.F) {
	for i := range uint64(16) {
		f.Add(i)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		n := genNotification(rand.New(rand.NewPCG(seed, 1)))
		agreeEncodeNotification(t, n)
		if raw, err := json.Marshal(n); err == nil {
			agreeNotification(t, raw)
		}
	})
}

// FuzzEncodeStatusEvent does the same for status events.
func FuzzEncodeStatusEvent(f *testing.F) {
	for i := range uint64(16) {
		f.Add(i)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		e := genStatusEvent(rand.New(rand.NewPCG(seed, 2)))
		agreeEncodeStatusEvent(t, e)
		if raw, err := json.Marshal(e); err == nil {
			agreeStatusEvent(t, raw)
		}
	})
}

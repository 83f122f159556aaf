package ingest

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// agreeRequest fails t unless the one pass declines raw as a request, or
// takes it as exactly the wireRequest encoding/json decodes, which must
// accept it. It reports whether the one pass took it.
func agreeRequest(t *testing.T, raw []byte) bool {
	t.Helper()
	got, ok := fastRequest(raw)
	if !ok {
		if !reflect.DeepEqual(got, wireRequest{}) {
			t.Fatalf("declined %q but returned %+v", raw, got)
		}
		return false
	}
	var want wireRequest
	if err := decodeStrict(raw, &want, ""); err != nil {
		t.Fatalf("one pass took %q as %+v; encoding/json refuses it: %v", raw, got, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("one pass took %q as\n%s\nencoding/json decodes\n%s", raw, dump(got), dump(want))
	}
	return true
}

// agreeBatch is agreeRequest for batch bodies.
func agreeBatch(t *testing.T, raw []byte) bool {
	t.Helper()
	got, ok := fastBatch(raw)
	if !ok {
		if !reflect.DeepEqual(got, wireBatchRequests{}) {
			t.Fatalf("declined batch %q but returned %+v", raw, got)
		}
		return false
	}
	var want wireBatchRequests
	if err := decodeStrict(raw, &want, ""); err != nil {
		t.Fatalf("one pass took batch %q; encoding/json refuses it: %v", raw, err)
	}
	if !reflect.DeepEqual(got, want) {
		for i := range min(len(got.Notifications), len(want.Notifications)) {
			if g, w := got.Notifications[i], want.Notifications[i]; !reflect.DeepEqual(g, w) {
				t.Fatalf("one pass took batch %q with item %d\n%s\nencoding/json decodes\n%s", raw, i, dump(g), dump(w))
			}
		}
		t.Fatalf("one pass took batch %q as %d items (nil %v); encoding/json decodes %d (nil %v)",
			raw, len(got.Notifications), got.Notifications == nil, len(want.Notifications), want.Notifications == nil)
	}
	return true
}

// dump shows a wireRequest with what its pointers point at.
func dump(w wireRequest) string {
	s := fmt.Sprintf("%#v", w)
	if w.Template != nil {
		s += fmt.Sprintf(" template=%#v", *w.Template)
	}
	if w.Text != nil {
		s += fmt.Sprintf(" text=%#v", *w.Text)
	}
	if w.TTL != nil {
		s += fmt.Sprintf(" ttl=%d", *w.TTL)
	}
	return s
}

// fastDecodeSeeds are the documents the one pass must get right, taken
// or declined: the cases where encoding/json is easy to mistake.
var fastDecodeSeeds = []string{
	// not text, or a repeated name: both paths refuse
	"{\"template\":{\"name\":\"a\",\"parameters\":[\"ok\",\"a\xffb\"]}}",
	`{"template":{"name":"a","parameters":["ok","\ud800"]}}`,
	`{"text":{"body":"\ud83d\ude00"}}`,
	`{"text":{"body":"a\u0000b"}}`,
	`{"metadata":{"k":"1","k":"2"}}`,
	`{"text":{"body":"a","body":"b"}}`,
	// taken
	otpBody,
	`{"idempotency_key":"k","source_service":"s","event_type":"otp","user_id":"u","event_time":"2026-11-28T10:00:00Z","recipient":"+447100900123",` +
		`"sender":"x","template":{"name":"n","language":"en","parameters":["a","b"]},"text":{"body":"b","preview_url":true},"expires_at":"2099-01-01T00:00:00Z","ttl":60,"metadata":{"a":"1"}}`,
	" \t\n\r{ \"event_type\" : \"otp\" ,\n\"ttl\" :\t-0 , \"template\" : { \"parameters\" : [ ] } , \"metadata\" : { } }\r\n ",
	`{}`,
	`{"event_type":null,"template":null,"text":null,"ttl":null,"metadata":null}`,
	`{"template":{"name":null,"language":null,"parameters":null},"text":{"body":null,"preview_url":null}}`,
	`{"recipient":"\u002b44\t\"7700\"\\900123","text":{"body":"\ud83d\ude00 \u00e9 \ud800"}}`,
	"{\"text\":{\"body\":\"a\xffb\xed\xa0\x80c\"},\"user_id\":\"é ☃\"}",
	`{"metadata":{"a":"1","a":"2","\u00e9":"3","":""}}`,
	`{"ttl":999999999999999999}`,
	`{"ttl":-999999999999999999}`,
	`{"text":{"preview_url":false}}`,
	// declined: names encoding/json matches to a field regardless of case
	`{"Recipient":"+447100900123"}`,
	`{"EVENT_TYPE":"otp"}`,
	`{"ſender":"s"}`,
	`{"template":{"Name":"n"}}`,
	`{"text":{"Preview_URL":true}}`,
	// declined: escaped or unknown names
	`{"recip\u0069ent":"+447100900123"}`,
	`{"tenant":"other"}`,
	`{"template":{"name":"n","x":1}}`,
	// declined: repeated members (encoding/json keeps the last, merges objects)
	`{"recipient":"+1","recipient":"+2"}`,
	`{"template":{"name":"a"},"template":{"language":"b"}}`,
	`{"template":{"name":"a"},"template":null}`,
	`{"template":null,"template":{"name":"a"}}`,
	`{"ttl":5,"ttl":null}`,
	`{"metadata":{"a":"1"},"metadata":{"b":"2"}}`,
	`{"text":{"body":"a","body":"b"}}`,
	// declined: ttl that is not a plain integer, or too long for the one pass
	`{"ttl":1.0}`,
	`{"ttl":1e3}`,
	`{"ttl":1E3}`,
	`{"ttl":01}`,
	`{"ttl":+1}`,
	`{"ttl":"60"}`,
	`{"ttl":1000000000000000000}`,
	`{"ttl":9223372036854775808}`,
	`{"ttl":nul}`,
	`{"ttl":nullx}`,
	// declined: values of another type, or null where encoding/json keeps it
	`{"metadata":{"a":null}}`,
	`{"metadata":{"a":1}}`,
	`{"template":{"parameters":[null]}}`,
	`{"template":{"parameters":"a"}}`,
	`{"text":{"preview_url":"true"}}`,
	`{"event_type":1}`,
	`{"template":[]}`,
	// declined: not one object
	`{"event_type":"otp"} x`,
	`{"event_type":"otp"}{}`,
	`{"event_type":"otp"`,
	`{"event_type":"otp",}`,
	"\ufeff{}",
	`null`,
	`[]`,
	``,
	"{\"event_type\":\"o\x00tp\"}",
	"{\"event_type\":\"o\ntp\"}",
	`{"event_type":"\x"}`,
}

// fastBatchSeeds are the batch bodies the one pass must get right.
var fastBatchSeeds = []string{
	`{"notifications":[` + otpBody + `,{"event_type":"alert","text":{"body":"x"}}]}`,
	` { "notifications" : [ { } , {"ttl":1} ] } `,
	`{"notifications":[]}`,
	`{"notifications":null}`,
	`{}`,
	`{"notifications":[{"Recipient":"+1"}]}`,
	`{"notifications":[null]}`,
	`{"notifications":[{}],"notifications":[{}]}`,
	`{"Notifications":[{}]}`,
	`{"notifications":[{}]} {}`,
	`{"notifications":[{},]}`,
	`{"notifications":{}}`,
	`{"notifications":[{"ttl":1.5}]}`,
}

func TestFastDecodeAgreesOnSeeds(t *testing.T) {
	for _, s := range fastDecodeSeeds {
		agreeRequest(t, []byte(s))
	}
	for _, s := range fastBatchSeeds {
		agreeBatch(t, []byte(s))
	}
}

// TestFastDecodeTakesOrDeclines names what the one pass takes (and so
// no longer costs encoding/json) and what it leaves to encoding/json.
func TestFastDecodeTakesOrDeclines(t *testing.T) {
	for _, c := range []struct {
		name, body string
		taken      bool
	}{
		{"a typical request", otpBody, true},
		{"the benchmark's request", string(benchBody(7)), true},
		{"white space everywhere", " \t\n\r{ \"event_type\" : \"otp\" ,\n\"ttl\" :\t-0 , \"metadata\" : { } }\r\n ", true},
		{"nulls", `{"event_type":null,"template":null,"text":{"body":null},"ttl":null,"metadata":null}`, true},
		{"escapes", `{"recipient":"\u002b44\t\"7700\"","text":{"body":"\u00e9 \n"}}`, true},
		{"an escaped surrogate pair", `{"text":{"body":"\ud83d\ude00"}}`, true},
		{"a lone surrogate", `{"text":{"body":"\ud800"}}`, false},
		{"invalid UTF-8", "{\"text\":{\"body\":\"a\xffb\"}}", false},
		{"a repeated metadata key", `{"metadata":{"a":"1","a":"2"}}`, false},
		{"the longest ttl taken", `{"ttl":999999999999999999}`, true},
		{"a name in another case", `{"Recipient":"+447100900123"}`, false},
		{"a name with a folding letter", `{"ſender":"s"}`, false},
		{"a nested name in another case", `{"template":{"Name":"n"}}`, false},
		{"an escaped name", `{"recip\u0069ent":"+447100900123"}`, false},
		{"an unknown field", `{"tenant":"other"}`, false},
		{"a repeated member", `{"recipient":"+1","recipient":"+2"}`, false},
		{"a repeated object", `{"template":{"name":"a"},"template":{"language":"b"}}`, false},
		{"a null after a value", `{"ttl":5,"ttl":null}`, false},
		{"ttl 1.0", `{"ttl":1.0}`, false},
		{"ttl 1e3", `{"ttl":1e3}`, false},
		{"ttl as a string", `{"ttl":"60"}`, false},
		{"a ttl of 19 digits", `{"ttl":1000000000000000000}`, false},
		{"a null metadata value", `{"metadata":{"a":null}}`, false},
		{"trailing data", `{"event_type":"otp"} x`, false},
		{"a second object", `{"event_type":"otp"}{}`, false},
		{"null for the body", `null`, false},
		{"an empty body", ``, false},
	} {
		if got := agreeRequest(t, []byte(c.body)); got != c.taken {
			t.Errorf("%s: taken %v, want %v: %s", c.name, got, c.taken, c.body)
		}
	}
	for _, c := range []struct {
		name, body string
		taken      bool
	}{
		{"a typical batch", `{"notifications":[` + otpBody + `,{"event_type":"alert","text":{"body":"x"}}]}`, true},
		{"the benchmark's batch", string(batch100Body(0)), true},
		{"white space", ` { "notifications" : [ { } , {"ttl":1} ] } `, true},
		{"no items", `{"notifications":[]}`, true},
		{"an item with a name in another case", `{"notifications":[{"Recipient":"+1"}]}`, false},
		{"a null item", `{"notifications":[null]}`, false},
		{"repeated notifications", `{"notifications":[{}],"notifications":[{}]}`, false},
		{"Notifications", `{"Notifications":[{}]}`, false},
		{"trailing data", `{"notifications":[{}]} {}`, false},
	} {
		if got := agreeBatch(t, []byte(c.body)); got != c.taken {
			t.Errorf("batch %s: taken %v, want %v: %s", c.name, got, c.taken, c.body)
		}
	}
}

// A body the one pass declines is still decoded, by encoding/json, with
// its answers: taken after all, or refused naming the field.
func TestDeclinedBodiesGoToEncodingJSON(t *testing.T) {
	r, err := DecodeRequest([]byte(`{"event_type":"otp","Recipient":"+447100900123","text":{"body":"x"},"ttl":60}`))
	if err != nil || r.Recipient != "+447100900123" || r.TTL.Seconds() != 60 {
		t.Fatalf("got %+v, %v; want the recipient and the ttl", r, err)
	}
	// encoding/json would keep the last ttl, and merge the two templates:
	// refused instead, naming the member.
	_, err = DecodeRequest([]byte(`{"event_type":"otp","text":{"body":"x"},"ttl":5,"ttl":60}`))
	if err == nil || !strings.Contains(err.Error(), "/ttl: is given more than once") {
		t.Fatalf("a repeated ttl: %v", err)
	}
	_, err = DecodeRequest([]byte(`{"template":{"name":"a"},"template":{"language":"b"}}`))
	if err == nil || !strings.Contains(err.Error(), "/template: is given more than once") {
		t.Fatalf("a repeated template: %v", err)
	}
	_, err = DecodeRequest([]byte(`{"ttl":1e3}`))
	if err == nil || !strings.Contains(err.Error(), "/ttl") {
		t.Fatalf("ttl 1e3: %v, want an error naming /ttl", err)
	}
	items, err := decodeBatch([]byte(`{"notifications":[{"Event_Type":"alert"}]}`))
	if err != nil || len(items) != 1 || items[0].err != nil || items[0].req.EventType != "alert" {
		t.Fatalf("batch: %+v, %v; want one item of event type alert", items, err)
	}
	// One member in two cases is refused in its item, not last-wins.
	items, err = decodeBatch([]byte(`{"notifications":[{"event_type":"otp","Event_Type":"alert"},{"event_type":"otp"}]}`))
	if err != nil || len(items) != 2 || items[0].err == nil || !strings.Contains(items[0].err.Error(), "/Event_Type: is given more than once") ||
		items[1].err != nil || items[1].req.EventType != "otp" {
		t.Fatalf("batch: %+v, %v; want the first item refused naming /Event_Type, the second taken", items, err)
	}
}

// The one pass must know exactly the fields of each type, in the order
// its decoders switch on them: the order of the fields.
func TestFastDecodeKnowsEveryField(t *testing.T) {
	for _, c := range []struct {
		names []string
		typ   reflect.Type
	}{
		{requestNames, reflect.TypeFor[wireRequest]()},
		{templateNames, reflect.TypeFor[wireTemplate]()},
		{textNames, reflect.TypeFor[wireText]()},
		{batchNames, reflect.TypeFor[wireBatchRequests]()},
	} {
		var tags []string
		for f := range c.typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			tags = append(tags, name)
		}
		if !slices.Equal(c.names, tags) {
			t.Errorf("%v: one pass knows %q, the type has %q", c.typ, c.names, tags)
		}
	}
}

// FuzzFastDecodeAgrees: whatever the one pass takes, as a request or as a
// batch, encoding/json decodes without error to the same value; it never
// panics. Each input is also tried as the item of a batch.
func FuzzFastDecodeAgrees(f *testing.F) {
	for _, s := range slices.Concat(fuzzSeeds, fastDecodeSeeds, fastBatchSeeds) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		agreeRequest(t, raw)
		agreeBatch(t, raw)
		item := string(raw)
		agreeBatch(t, []byte(`{"notifications":[`+item+`]}`))
		agreeBatch(t, []byte(`{"notifications":[`+otpBody+`,`+item+`]}`))
	})
}

// Ingest reads bodies into recycled buffers (pkg/internal/bodypool): a
// decoded request must not refer to the body's bytes.
func TestDecodedRequestsOutliveTheBody(t *testing.T) {
	one := []byte(`{"idempotency_key":"k-1","event_type":"otp","user_id":"u-1","recipient":"+447100900123","sender":"s",` +
		`"template":{"name":"otp_code","language":"en_US","parameters":["482913"]},"text":{"body":"hi"},` +
		`"event_time":"2026-11-28T10:00:00Z","ttl":300,"metadata":{"a":"b"}}`)
	for _, body := range [][]byte{one, []byte(`{"notifications":[` + string(one) + `,` + string(one) + `]}`)} {
		batch := bytes.HasPrefix(body, []byte(`{"notifications"`))
		decode := func(b []byte) any {
			if batch {
				items, err := decodeBatch(b)
				if err != nil {
					t.Fatal(err)
				}
				return items
			}
			r, _, err := decodeRequest(b)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		want := decode(bytes.Clone(body))
		got := decode(body)
		for i := range body {
			body[i] = 'x'
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("batch=%v: after the body's buffer was overwritten the request changed:\n got %+v\nwant %+v", batch, got, want)
		}
	}
}

package payload

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/metawebhook"
)

// decodeSeeds are bodies at the edges of the one-pass decoder: the
// envelope field next to entry, repeated keys, keys differing only in
// case, a wrapper's object that is not a string, null payloads, trailing
// data.
var decodeSeeds = []string{
	`{"object":"whatsapp_business_account","entry":[]}`,
	`{"entry":[],"object":"x"}`,
	`{"success":true,"message":"m","data":{"object":"o","entry":[]}}`,
	`{"data":{"entry":[]},"entry":[]}`,
	`{"entry":[],"data":{"entry":[]}}`,
	`{"entry":[],"entry":[{"id":"a"}]}`,
	`{"data":{"entry":[]},"data":{"entry":[{"id":"a"}]}}`,
	`{"object":"o","object":"p","entry":[]}`,
	`{"Entry":[],"data":{"entry":[]}}`,
	`{"entry":[],"Object":"o"}`,
	`{"object":{"x":1},"data":{"entry":[]}}`,
	`{"object":null,"entry":[]}`,
	`{"entry":null,"data":{"entry":[]}}`,
	`{"data":null}`,
	`{"data":{}}`,
	`{"data":[]}`,
	`{"d\u0061ta":{"entry":[]}}`,
	`{"data":{"entry":[]}} `,
	`{"data":{"entry":[]}} {}`,
	`{"data":{"entry":[]}}x`,
	`{"entry":[]`,
	`{"entry":[{"id":"w","changes":[{"field":"messages","value":{"statuses":[{"id":"a","status":"sent","timestamp":"1","recipient_id":"1","extra":1}]}}]}]}`,
	`{"data":{"entry":[{"changes":[{"value":{"statuses":[{"id":"a","ID":"b"}]}}]}]}}`,
	`{"extra":{"entry":[]},"data":{"entry":[{"changes":[]}]}}`,
	// Inside the payload: repeated and case-folded members, null, numbers
	// encoding/json decodes differently or not at all, escapes.
	`{"entry":[{"changes":[{"value":{"statuses":[{"id":"a","id":"b"}]}}]}]}`,
	`{"entry":[{"changes":[{"value":{"statuses":[{"id":"a"},{"ID":"b"}]}}]}]}`,
	`{"entry":[{"changes":[{"value":{"statuses":[{"id":null,"status":"sent"}]}}]}]}`,
	`{"entry":[{"changes":[{"value":{"statuses":null}}]}]}`,
	`{"entry":[{"changes":[{"value":{"statuses":[{"errors":[{"code":1.0}]}]}}]}]}`,
	`{"entry":[{"changes":[{"value":{"statuses":[{"errors":[{"code":1e3}]}]}}]}]}`,
	`{"entry":[{"changes":[{"value":{"statuses":[{"errors":[{"code":-0},{"code":01}]}]}}]}]}`,
	`{"entry":[{"changes":[{"value":{"statuses":[{"errors":[{"code":99999999999999999999}]}]}}]}]}`,
	`{"entry":[{"changes":[{"value":{"statuses":[{"errors":[{"code":7,"error_data":{"details":"d"},"error_data":{}}]}]}}]}]}`,
	`{"entry":[{"changes":[{"value":{"statuses":[{"errors":[{"error_data":null}]}]}}]}]}`,
	`{"entry":[{"changes":[{"value":{"statuses":[{"id":"a\"b\u00e9\ud83d\ude00","status":"\ud800"}]}}]}]}`,
	`{"entry":[{"changes":[{"value":{"statuses":[{"st\u0061tus":"sent"}]}}]}]}`,
	"{\"entry\":[{\"changes\":[{\"value\":{\"statuses\":[{\"id\":\"\xff\xfe\",\"status\":\"s\xc3\xa9\"}]}}]}]}",
	`{"entry":[{"changes":[{"value":{"statuses":[{"conversation":null,"pricing":{"a":[1,{"b":"}"}]}}],"messages":[null,"\\",1e5,[]],"contacts":[]}}]}]}`,
	`{"entry":[{"changes":[{"value":{"messages":[{"a":1]}}]}]}`,
	`{"entry":[{"changes":[{"value":{"messages":[tru]}}]}]}`,
	`{"entry":[{"changes":[{"value":{"metadata":{},"messaging_product":"whatsapp"},"field":"messages"}],"id":""}],"object":""}`,
	"\ufeff{\"entry\":[]}",
	" \t\r\n{ \"entry\" : [ ] } \n",
}

var decodeParsers = []Parser{
	{Provider: "xpressbot", Format: FormatMeta},
	{Provider: "xpressbot", Format: FormatEnvelope, EnvelopeField: "data"},
	{Provider: "xpressbot", Format: FormatAuto, EnvelopeField: "data"},
	{Provider: "xpressbot", Format: FormatAuto, EnvelopeField: "entry"},
	{Provider: "xpressbot", Format: FormatAuto, EnvelopeField: "object"},
	{Provider: "xpressbot", Format: FormatEnvelope, EnvelopeField: "entry"},
}

// checkDecodeAgrees: whenever the one-pass decoder takes a body, the
// diagnosed path takes it too, without remark, to the same payload at the
// same base. (The converse need not hold: the one pass leaves the rare
// cases to the diagnosed path.)
func checkDecodeAgrees(t *testing.T, body []byte) {
	t.Helper()
	for _, p := range decodeParsers {
		fast, fastBase, ok := p.decode(body)
		if !ok {
			continue
		}
		batch := &Batch{}
		slow, slowBase, perr := p.decodeDiagnosed(body, batch)
		if perr != nil {
			t.Fatalf("%s/%s: %q: one pass took the body, the diagnosed path refused it: %v", p.Format, p.EnvelopeField, body, perr)
		}
		if len(batch.Ignored) != 0 {
			t.Fatalf("%s/%s: %q: one pass took the body, the diagnosed path ignored %v", p.Format, p.EnvelopeField, body, batch.Ignored)
		}
		if fastBase != slowBase || !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s/%s: %q: one pass gave %q %+v, the diagnosed path %q %+v", p.Format, p.EnvelopeField, body, fastBase, fast, slowBase, slow)
		}
	}
}

func FuzzDecodeAgreesWithDiagnosed(f *testing.F) {
	for _, s := range append(append([]string{}, parseSeeds...), decodeSeeds...) {
		f.Add([]byte(s))
	}
	// The parser's corpus too: real shapes, one pass or not.
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParse", "*"))
	for _, file := range files {
		if body, ok := corpusBytes(file); ok {
			f.Add(body)
		}
	}
	f.Fuzz(checkDecodeAgrees)
}

// corpusBytes reads the []byte of a one-value fuzz corpus file.
func corpusBytes(path string) ([]byte, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "[]byte(") {
		return nil, false
	}
	var s string
	if _, err := fmt.Sscanf(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"), "%q", &s); err != nil {
		return nil, false
	}
	return []byte(s), true
}

// The bodies providers really send take the one pass, in every format
// that accepts them: so does every body of the parser's corpus that the
// diagnosed path takes without remark.
func TestDecodeTakesTypicalBodiesInOnePass(t *testing.T) {
	failed := metaStatus("wamid.F", "failed", "447700900123", 1764324002)
	failed.Errors = []metawebhook.Error{{Code: 131026, Title: "Message undeliverable", Message: "Empfänger \"nicht\" erreichbar\n",
		Href:      "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
		ErrorData: &metawebhook.ErrorData{Details: "Message Undeliverable. \u00e9"}}}
	sent := metaStatus("wamid.1", "sent", "447700900123", 1764324002)
	sent.BizOpaqueCallbackData = "6d1f7a52-3c55-5b8e-a1a4-0f3f7e0b9c21"
	sent.Conversation = json.RawMessage(`{"id":"c","expiration_timestamp":"1764410402","origin":{"type":"utility"}}`)
	sent.Pricing = json.RawMessage(`{"billable":true,"pricing_model":"CBP","category":"utility"}`)
	pl := metaPayload(sent, metaStatus("wamid.2", "read", "14155550100", 1764324003), failed)
	pl.Entry[0].Changes[0].Value.Messages = []json.RawMessage{json.RawMessage(`{"from":"447700900123","id":"wamid.in","type":"text","text":{"body":"h\u00e9 \"x\""}}`)}
	pl.Entry[0].Changes[0].Value.Contacts = []json.RawMessage{json.RawMessage(`{"profile":{"name":"Zoë"},"wa_id":"447700900123"}`)}
	meta := mustJSON(t, pl)
	indented, err := json.MarshalIndent(pl, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	wrapped := []byte(`{"success":true,"message":"status update","data":` + string(meta) + `,"meta":{"n":[1,2.5e3,null,"x"]}}`)
	cases := []struct {
		p    Parser
		body []byte
		base string
		same bool // decodes to pl (raw values keep their indentation)
	}{
		{Parser{Format: FormatMeta}, meta, "", true},
		{Parser{Format: FormatMeta}, indented, "", false},
		{Parser{Format: FormatAuto, EnvelopeField: "data"}, meta, "", true},
		{Parser{Format: FormatAuto, EnvelopeField: "data"}, wrapped, "/data", true},
		{Parser{Format: FormatEnvelope, EnvelopeField: "data"}, wrapped, "/data", true},
	}
	for i, c := range cases {
		got, base, ok := c.p.decode(c.body)
		if !ok || base != c.base || (c.same && !reflect.DeepEqual(got, pl)) {
			t.Errorf("case %d (%s): one pass took it %v at %q as %+v; want it taken at %q as %+v", i, c.p.Format, ok, base, got, c.base, pl)
		}
		checkDecodeAgrees(t, c.body)
	}

	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParse", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	for _, file := range files {
		body, ok := corpusBytes(file)
		if !ok {
			t.Fatalf("%s: not a one-value corpus file", file)
		}
		for _, p := range decodeParsers {
			batch := &Batch{}
			if _, _, perr := p.decodeDiagnosed(body, batch); perr != nil || len(batch.Ignored) > 0 {
				continue
			}
			if _, _, ok := p.decode(body); !ok {
				t.Errorf("%s (%s/%s): the diagnosed path takes it without remark, the one pass does not", filepath.Base(file), p.Format, p.EnvelopeField)
			}
		}
	}

	// And what it leaves to the diagnosed path still comes out right.
	unknown := []byte(`{"object":"o","entry":[{"id":"w","time":1,"changes":[{"field":"messages","value":{"statuses":[` +
		`{"id":"wamid.1","status":"read","timestamp":"1764324002","recipient_id":"447700900123"}]}}]}]}`)
	if _, _, ok := (Parser{Format: FormatAuto, EnvelopeField: "data"}).decode(unknown); ok {
		t.Fatal("one pass took a body with an unknown property; it must leave it to be counted")
	}
	b, err := Parser{Provider: "x", Format: FormatAuto, EnvelopeField: "data"}.Parse(unknown)
	if err != nil || len(b.Events) != 1 || b.Ignored[IgnoredUnknownFields] != 1 {
		t.Fatalf("unknown property: %+v %v, want the event and the property counted", b, err)
	}
}

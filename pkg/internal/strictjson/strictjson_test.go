package strictjson

import (
	"encoding/json"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		doc, pointer, reason string
	}{
		{`{"a":1,"b":[1,"x"],"c":{"d":"é\u00e9\ud83d\ude00\n"}}`, "", ""},
		{`{"a":1,"a":2}`, "/a", ReasonRepeated},
		{`{"t":{"p":["x","y"]},"m":{"k":"1","k":"2"}}`, "/m/k", ReasonRepeated},
		{"{\"t\":{\"p\":[\"x\",\"y\xff\"]}}", "/t/p/1", ReasonNotText},
		{`{"t":{"p":["x","\ud800"]}}`, "/t/p/1", ReasonNotText},
		{`{"t":"\udc00\ud800"}`, "/t", ReasonNotText},
		{"{\"k\xff\":1}", "", ReasonNotText},
		{`{"a~b/c":1,"a~b/c":2}`, "/a~0b~1c", ReasonRepeated},
		// Not JSON: encoding/json's to name.
		{`{"a":1`, "", ""},
		{`{"a":tru}`, "", ""},
		{"{\"a\":\"\x01\"}", "", ""},
		{``, "", ""},
		// Only the first value is read.
		{`{"a":1} {"a":1,"a":1}`, "", ""},
		// NUL escaped is text (a rule on characters is the caller's).
		{`{"a":"\u0000"}`, "", ""},
	} {
		p, ok := Check([]byte(c.doc))
		if ok != (c.reason == "") || p.Pointer != c.pointer || p.Reason != c.reason {
			t.Errorf("Check(%q) = %+v, %v; want %q %q", c.doc, p, ok, c.pointer, c.reason)
		}
		if !ok && json.Valid([]byte(c.doc)) && c.reason == "" {
			t.Errorf("%q", c.doc)
		}
	}
}

func TestCheckTop(t *testing.T) {
	for _, c := range []struct {
		doc, pointer string
	}{
		{`{"notifications":[{"a":1,"a":2},"\ud800"]}`, ""},
		{`{"notifications":[],"notifications":[]}`, "/notifications"},
		{`{"x":1,"y":{"x":1},"x":2}`, "/x"},
		{`{"notifications":[],"Notifications":[]}`, "/Notifications"},
		{`[1,1]`, ""},
		{`{"a":`, ""},
	} {
		p, ok := CheckTop([]byte(c.doc))
		if ok != (c.pointer == "") || p.Pointer != c.pointer {
			t.Errorf("CheckTop(%q) = %+v, %v; want %q", c.doc, p, ok, c.pointer)
		}
	}
}

// FuzzCheck: Check, CheckTop and CheckFolded never panic on any input, and a refusal
// gives one of the two reasons.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, "{\"a\":\"\xff\"}", `{"a":"\ud800"}`, `{"a":[{"b":1},{"b":1}]}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, ok := Check(doc)
		if !ok && p.Reason != ReasonRepeated && p.Reason != ReasonNotText {
			t.Fatalf("%q: reason %q", doc, p.Reason)
		}
		CheckTop(doc)
		CheckFolded(doc)
	})
}

func TestCheckFolded(t *testing.T) {
	for _, c := range []struct {
		doc, pointer string
	}{
		{`{"recipient":"a","sender":"b","template":{"name":"x","parameters":["a",{"n":1}]},"m":[{"a":1},{"a":2}]}`, ""},
		{`{"recipient":"a","Recipient":"b"}`, "/Recipient"},
		{`{"sender":"a","ſender":"b"}`, "/ſender"},
		{`{"t":{"name":"a","x":[1,{"k":1}],"NAME":"b"}}`, "/t/NAME"},
		{`{"t":[{"a":1},{"b":{"c":1,"C":2}}]}`, "/t/1/b/C"},
		{`{"a":{"x":1},"A":2}`, "/A"},
		{`[1,"x",{"a":1,"b":[]}]`, ""},
		{`{"a":`, ""},
		{`7`, ""},
	} {
		p, ok := CheckFolded([]byte(c.doc))
		if ok != (c.pointer == "") || p.Pointer != c.pointer {
			t.Errorf("CheckFolded(%q) = %+v, %v; want %q", c.doc, p, ok, c.pointer)
		}
	}
}

package jsonpass

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// whole reads all of doc with read, which must consume one value:
// accepted means read took it and only white space follows.
func whole[T any](doc string, read func(r *Reader) (T, bool)) (T, bool) {
	r := NewReader([]byte(doc))
	v, ok := read(&r)
	if !ok || !r.End() {
		var zero T
		return zero, false
	}
	return v, true
}

func readString(r *Reader) (string, bool)               { return r.String() }
func readBool(r *Reader) (bool, bool)                   { return r.Bool() }
func readNull(r *Reader) (bool, bool)                   { return true, r.Null() }
func readRaw(r *Reader) (json.RawMessage, bool)         { return r.Raw() }
func readStrings(r *Reader) ([]string, bool)            { return r.Strings() }
func readStringMap(r *Reader) (map[string]string, bool) { return r.StringMap() }
func readInt(maxDigits int) func(r *Reader) (int, bool) {
	return func(r *Reader) (int, bool) { return r.Int(maxDigits) }
}

// readRawText is Raw as text, for tables.
func readRawText(r *Reader) (string, bool) {
	v, ok := r.Raw()
	return string(v), ok
}

// reads is a table of documents for one way of reading: each taken whole
// as want (ok), or refused (want is then the zero value).
type reads[T any] []struct {
	doc  string
	want T
	ok   bool
}

// check reads each document of the table with read and compares, then
// holds the document to encoding/json with agree.
func (cases reads[T]) check(t *testing.T, what string, read func(r *Reader) (T, bool), agree func(t *testing.T, doc []byte)) {
	t.Helper()
	for _, c := range cases {
		got, ok := whole(c.doc, read)
		if ok != c.ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s(%q) = %#v, %v; want %#v, %v", what, c.doc, got, ok, c.want, c.ok)
		}
		agree(t, []byte(c.doc))
	}
}

func TestString(t *testing.T) {
	reads[string]{
		{`"abc"`, "abc", true},
		{` "" `, "", true},
		{`"é ☃"`, "é ☃", true},
		{`"a\"b\\c\/\n\u00e9\ud83d\ude00"`, "a\"b\\c/\né😀", true},
		{`"\ud800"`, "\ufffd", true},     // a lone surrogate, as encoding/json decodes it
		{"\"a\xffb\"", "a\ufffdb", true}, // invalid UTF-8, likewise
		{"\"\xc3\xa9\xed\xa0\x80\"", "é\ufffd\ufffd\ufffd", true},
		{"\"a\x7fb\"", "a\x7fb", true},
		{"\"a\tb\"", "", false}, // a control character
		{"\"a\x00\"", "", false},
		{`"\x"`, "", false}, // not an escape
		{`"\u12"`, "", false},
		{`"abc`, "", false},
		{`"abc\"`, "", false},
		{`abc`, "", false},
		{``, "", false},
		{`"a" "b"`, "", false},
		{`null`, "", false},
		{`1`, "", false},
	}.check(t, "String", readString, agreeString)
}

func TestToken(t *testing.T) {
	for _, c := range []struct {
		doc       string
		tok       string
		plain, ok bool
	}{
		{` "abc" `, `"abc"`, true, true},
		{`"a b~"`, `"a b~"`, true, true},
		{`"a\"b"`, `"a\"b"`, false, true},
		{`"é"`, `"é"`, false, true},
		{"\"a\nb\"", "", false, false},
		{`"abc`, "", false, false},
		{`abc`, "", false, false},
	} {
		r := NewReader([]byte(c.doc))
		tok, plain, ok := r.Token()
		if string(tok) != c.tok || plain != c.plain || ok != c.ok {
			t.Errorf("Token(%q) = %q, %v, %v; want %q, %v, %v", c.doc, tok, plain, ok, c.tok, c.plain, c.ok)
		}
	}
}

func TestInt(t *testing.T) {
	reads[int]{
		{`0`, 0, true},
		{`-0`, 0, true},
		{` 42 `, 42, true},
		{`-1000`, -1000, true},
		{`999999999`, 999999999, true},
		{`1000000000`, 0, false}, // ten digits
		{`01`, 0, false},
		{`-01`, 0, false},
		{`1.0`, 0, false},
		{`1e3`, 0, false},
		{`1E3`, 0, false},
		{`+1`, 0, false},
		{`-`, 0, false},
		{`- 1`, 0, false},
		{`"1"`, 0, false},
		{`1x`, 0, false},
		{`null`, 0, false},
		{``, 0, false},
	}.check(t, "Int(9)", readInt(9), agreeInt)
	reads[int]{
		{`1000000000`, 1000000000, true},
		{`-999999999999999999`, -999999999999999999, true},
		{`1000000000000000000`, 0, false},
	}.check(t, "Int(18)", readInt(18), agreeInt)
	// Never more digits than an int always holds.
	reads[int]{
		{`999999999`, 999999999, true},
		{`1000000000000000000`, 0, false},
		{`99999999999999999999`, 0, false},
	}.check(t, "Int(40)", readInt(40), agreeInt)
}

func TestBool(t *testing.T) {
	reads[bool]{
		{`true`, true, true},
		{` false `, false, true},
		{`tru`, false, false},
		{`truex`, false, false},
		{`True`, false, false},
		{`null`, false, false},
		{`0`, false, false},
		{``, false, false},
	}.check(t, "Bool", readBool, agreeBool)
}

func TestNull(t *testing.T) {
	reads[bool]{
		{`null`, true, true},
		{` null `, true, true},
		{`nul`, false, false},
		{`nullx`, false, false},
		{`Null`, false, false},
		{`"null"`, false, false},
		{`0`, false, false},
		{`{}`, false, false},
		{``, false, false},
	}.check(t, "Null", readNull, agreeNull)

	// A value that is not null is left for the caller to read.
	r := NewReader([]byte(` "nu" `))
	if r.Null() {
		t.Fatal(`Null took "nu"`)
	}
	if s, ok := r.String(); !ok || s != "nu" || !r.End() {
		t.Errorf(`after Null: String = %q, %v; want "nu"`, s, ok)
	}
	r = NewReader([]byte(`[null,nullx]`))
	var got []bool
	ok := r.Array(func() bool {
		got = append(got, r.Null())
		return got[len(got)-1]
	})
	if ok || !reflect.DeepEqual(got, []bool{true, true}) {
		t.Errorf("[null,nullx]: %v, %v; want the second null refused by its delimiter", got, ok)
	}
}

func TestRaw(t *testing.T) {
	reads[string]{
		{`null`, `null`, true},
		{` 1.5e3 `, `1.5e3`, true},
		{`"a\"}"`, `"a\"}"`, true},
		{`{"a":[1,{"b":"}"}],"c":null}`, `{"a":[1,{"b":"}"}],"c":null}`, true},
		{"[ 1 ,\n2 ]", "[ 1 ,\n2 ]", true},
		{`[]`, `[]`, true},
		{`{"a":1]`, ``, false},
		{`[1,]`, ``, false},
		{`tru`, ``, false},
		{`"abc`, ``, false},
		{`{"a":1`, ``, false},
		{`1 2`, ``, false},
		{`:`, ``, false},
		{``, ``, false},
		{`]`, ``, false},
	}.check(t, "Raw", readRawText, agreeRaw)

	// A raw value is a copy: changing the document leaves it as it was.
	doc := []byte(`{"a":1}`)
	r := NewReader(doc)
	v, ok := r.Raw()
	doc[2] = 'b'
	if !ok || string(v) != `{"a":1}` {
		t.Errorf("Raw = %q, %v; want a copy of {\"a\":1}", v, ok)
	}
}

func TestValueInsideContainers(t *testing.T) {
	// Value stops at the delimiter that ends it, inside an array or an
	// object, so the caller reads the delimiter next.
	r := NewReader([]byte(`[1 , "x",{"a":[2]}]`))
	var got []string
	ok := r.Array(func() bool {
		v, ok := r.Value()
		got = append(got, string(v))
		return ok
	})
	if want := []string{"1", `"x"`, `{"a":[2]}`}; !ok || !r.End() || !reflect.DeepEqual(got, want) {
		t.Errorf("values %q, %v; want %q", got, ok, want)
	}
}

func TestArray(t *testing.T) {
	reads[[]int]{
		{`[]`, []int{}, true},
		{` [ 1 , -2 ,3 ] `, []int{1, -2, 3}, true},
		{`[1,]`, nil, false},
		{`[,1]`, nil, false},
		{`[1 2]`, nil, false},
		{`[1.5]`, nil, false}, // the fraction is left for the delimiter check
		{`[1e2]`, nil, false},
		{`[1`, nil, false},
		{`{}`, nil, false},
	}.check(t, "Array of Int", readInts, agreeInts)
}

func TestStrings(t *testing.T) {
	reads[[]string]{
		{`[]`, []string{}, true},
		{` [ "a" , "b\n" ] `, []string{"a", "b\n"}, true},
		{`["a",]`, nil, false},
		{`["a" "b"]`, nil, false},
		{`["a",1]`, nil, false},
		{`[null]`, nil, false},
		{`null`, nil, false},
		{`[`, nil, false},
	}.check(t, "Strings", readStrings, agreeStrings)
}

func TestStringMap(t *testing.T) {
	reads[map[string]string]{
		{`{}`, map[string]string{}, true},
		{`{"a":"1","b":"2"}`, map[string]string{"a": "1", "b": "2"}, true},
		{`{"a":"1","a":"2"}`, map[string]string{"a": "2"}, true}, // the last one, as encoding/json
		{`{"\u0061":"1","é":"2"}`, map[string]string{"a": "1", "é": "2"}, true},
		{`{"a":1}`, nil, false},
		{`{"a":null}`, nil, false},
		{`{"a":"1",}`, nil, false},
		{`{"a" "1"}`, nil, false},
		{`{1:"1"}`, nil, false},
		{`{"a":"1"`, nil, false},
		{`[]`, nil, false},
	}.check(t, "StringMap", readStringMap, agreeStringMap)
}

func TestMembers(t *testing.T) {
	for _, c := range []struct {
		doc   string
		names []string
		ok    bool
	}{
		{`{}`, nil, true},
		{` { "a" : 1 , "B~ x" : 2 } `, []string{"a", "B~ x"}, true},
		{`{"a":1,"a":2}`, []string{"a", "a"}, true}, // Members does not judge names
		{`{"\u0061":1}`, nil, false},                // an escape in a name
		{`{"a\"":1}`, nil, false},
		{`{"é":1}`, nil, false}, // not ASCII
		{"{\"a\tb\":1}", nil, false},
		{`{"a" 1}`, nil, false},
		{`{"a":1,}`, nil, false},
		{`{"a":1 "b":2}`, nil, false},
		{`{"a":1`, nil, false},
		{`{a:1}`, nil, false},
		{`{"a`, nil, false},
		{`[]`, nil, false},
	} {
		r := NewReader([]byte(c.doc))
		var names []string
		ok := r.Members(func(name []byte) bool {
			names = append(names, string(name))
			_, ok := r.Int(9)
			return ok
		}) && r.End()
		if ok != c.ok || (ok && !reflect.DeepEqual(names, c.names)) {
			t.Errorf("Members(%q): names %q, %v; want %q, %v", c.doc, names, ok, c.names, c.ok)
		}
	}
	// A member that refuses its value refuses the object.
	r := NewReader([]byte(`{"a":1}`))
	if r.Members(func([]byte) bool { return false }) {
		t.Error("Members took an object whose member was refused")
	}
}

func TestObject(t *testing.T) {
	names := []string{"id", "status", "code"}
	for _, c := range []struct {
		doc     string
		present uint32
		ok      bool
	}{
		{`{}`, 0, true},
		{`{"status":"x"}`, 0b010, true},
		{`{"code":"1","id":"2","status":"3"}`, 0b111, true},
		{`{"id":"1","id":"2"}`, 0, false}, // repeated
		{`{"ID":"1"}`, 0, false},          // encoding/json would take it for id
		{`{"ſtatus":"1"}`, 0, false},      // likewise
		{`{"st\u0061tus":"1"}`, 0, false}, // an escape
		{`{"other":"1"}`, 0, false},       // unknown
		{`{"id":1}`, 0, false},            // refused by the value
		{`{"id":"1",}`, 0, false},
		{`{"id":"1"} x`, 0, false},
		{`null`, 0, false},
	} {
		r := NewReader([]byte(c.doc))
		got := map[string]string{}
		present, ok := r.Object(names, func(i int) bool {
			s, ok := r.String()
			got[names[i]] = s
			return ok
		})
		ok = ok && r.End()
		if ok != c.ok || (ok && present != c.present) {
			t.Errorf("Object(%q) = %b, %v; want %b, %v", c.doc, present, ok, c.present, c.ok)
		}
		if ok && len(got) != bitCount(present) {
			t.Errorf("Object(%q): decoded %v, present %b", c.doc, got, present)
		}
	}

	many := make([]string, MaxNames+1)
	for i := range many {
		many[i] = fmt.Sprintf("m%d", i)
	}
	r := NewReader([]byte(`{}`))
	if _, ok := r.Object(many, func(int) bool { return true }); ok {
		t.Errorf("Object took %d names; it tells %d apart", len(many), MaxNames)
	}
	r = NewReader([]byte(`{"m31":true}`))
	if present, ok := r.Object(many[:MaxNames], func(int) bool { _, ok := r.Bool(); return ok }); !ok || present != 1<<31 {
		t.Errorf("Object with %d names = %b, %v; want bit 31", MaxNames, present, ok)
	}
}

func bitCount(x uint32) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

func readInts(r *Reader) ([]int, bool) {
	out := []int{}
	ok := r.Array(func() bool {
		v, ok := r.Int(intDigits)
		out = append(out, v)
		return ok
	})
	return out, ok
}

// The agreement checks: whenever the Reader takes a document, encoding/json
// decodes it without error to the same value.

func agree[T any](t *testing.T, what string, doc []byte, read func(r *Reader) (T, bool)) {
	t.Helper()
	got, ok := whole(string(doc), read)
	if !ok {
		return
	}
	var want T
	if err := json.Unmarshal(doc, &want); err != nil {
		t.Fatalf("%s took %q as %#v; encoding/json refuses it: %v", what, doc, got, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s took %q as %#v; encoding/json decodes %#v", what, doc, got, want)
	}
}

func agreeString(t *testing.T, doc []byte)    { agree(t, "String", doc, readString) }
func agreeInt(t *testing.T, doc []byte)       { agree(t, "Int", doc, readInt(intDigits)) }
func agreeBool(t *testing.T, doc []byte)      { agree(t, "Bool", doc, readBool) }
func agreeStrings(t *testing.T, doc []byte)   { agree(t, "Strings", doc, readStrings) }
func agreeStringMap(t *testing.T, doc []byte) { agree(t, "StringMap", doc, readStringMap) }
func agreeInts(t *testing.T, doc []byte)      { agree(t, "Array of Int", doc, readInts) }

// agreeNull: a null the Reader takes sets a pointer, a map and a slice
// to nil through encoding/json, and leaves a string, an integer and a
// bool as they were.
func agreeNull(t *testing.T, doc []byte) {
	t.Helper()
	if _, ok := whole(string(doc), readNull); !ok {
		return
	}
	one := 1
	p, m, l := &one, map[string]string{"k": "v"}, []string{"x"}
	s, n, b := "x", 5, true
	for _, v := range []any{&p, &m, &l, &s, &n, &b} {
		if err := json.Unmarshal(doc, v); err != nil {
			t.Fatalf("Null took %q; encoding/json refuses it into %T: %v", doc, v, err)
		}
	}
	if p != nil || m != nil || l != nil || s != "x" || n != 5 || !b {
		t.Fatalf("Null took %q; encoding/json decodes it to %v %v %v and keeps %q %d %v", doc, p, m, l, s, n, b)
	}
}

func agreeRaw(t *testing.T, doc []byte) {
	t.Helper()
	got, ok := whole(string(doc), readRaw)
	if !ok {
		return
	}
	var want json.RawMessage
	if err := json.Unmarshal(doc, &want); err != nil {
		t.Fatalf("Raw took %q as %q; encoding/json refuses it: %v", doc, got, err)
	}
	if !bytes.Equal(got, want) || got == nil {
		t.Fatalf("Raw took %q as %q; encoding/json copies %q", doc, got, want)
	}
}

// record is a struct as the Reader's callers decode them: members named
// in lower case, of every kind the Reader reads.
type record struct {
	Name  string            `json:"name"`
	Count int               `json:"count"`
	On    bool              `json:"on"`
	Raw   json.RawMessage   `json:"raw"`
	List  []string          `json:"list"`
	Map   map[string]string `json:"map"`
	Sub   *record           `json:"sub"`
}

var recordNames = []string{"name", "count", "on", "raw", "list", "map", "sub"}

// readRecord takes null for any member but raw, which keeps it as a
// value of its own.
func readRecord(r *Reader) (*record, bool) {
	rec := new(record)
	_, ok := r.Object(recordNames, func(i int) (ok bool) {
		if i != 3 && r.Null() {
			return true
		}
		switch i {
		case 0:
			rec.Name, ok = r.String()
		case 1:
			rec.Count, ok = r.Int(intDigits)
		case 2:
			rec.On, ok = r.Bool()
		case 3:
			rec.Raw, ok = r.Raw()
		case 4:
			rec.List, ok = r.Strings()
		case 5:
			rec.Map, ok = r.StringMap()
		case 6:
			rec.Sub, ok = readRecord(r)
		}
		return ok
	})
	return rec, ok
}

// agreeRecord: an object the Reader takes decodes to the same struct
// through encoding/json, which matches names without regard to case and
// merges repeated members, so this holds only because Object refuses
// those.
func agreeRecord(t *testing.T, doc []byte) {
	t.Helper()
	got, ok := whole(string(doc), readRecord)
	if !ok {
		return
	}
	want := new(record)
	if err := json.Unmarshal(doc, want); err != nil {
		t.Fatalf("Object took %q as %+v; encoding/json refuses it: %v", doc, got, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Object took %q as %+v; encoding/json decodes %+v", doc, got, want)
	}
}

func TestRecordAgrees(t *testing.T) {
	taken := 0
	for _, doc := range recordSeeds {
		if _, ok := whole(doc, readRecord); ok {
			taken++
		}
		agreeRecord(t, []byte(doc))
	}
	if taken == 0 {
		t.Fatal("no seed record was taken: the check above checked nothing")
	}
	if _, ok := whole(recordSeeds[0], readRecord); !ok {
		t.Fatalf("the full record %s was refused", recordSeeds[0])
	}
}

var recordSeeds = []string{
	`{"name":"n\u00e9","count":-12,"on":true,"raw":{"a":[1,2.5,null]},"list":["x","y"],"map":{"k":"v"},"sub":{"name":"s","sub":{}}}`,
	`{}`,
	`{"name":"a","Name":"b"}`,
	`{"name":"a","name":"b"}`,
	`{"sub":{"count":1},"sub":{"on":true}}`,
	`{"count":1.0}`,
	`{"count":1e2}`,
	`{"count":01}`,
	`{"count":99999999999999999999}`,
	`{"on":null}`,
	`{"name":null,"count":null,"on":null,"list":null,"map":null,"sub":null}`,
	`{"sub":null,"sub":{}}`,
	`{"name":nul}`,
	`{"count":nullx}`,
	`{"raw":null}`,
	`{"raw":1 }`,
	`{"list":null}`,
	`{"list":[]}`,
	`{"map":{}}`,
	`{"map":{"a":"1","a":"2"}}`,
	`{"n\u0061me":"x"}`,
	`{"ſub":{}}`,
	"{\"name\":\"\xff\"}",
	`{"name":"\ud800"}`,
	` { "name" : "x" , "count" : 3 } `,
	`{"name":"x"} {}`,
	`[1,2]`,
}

// FuzzReaderAgreesWithEncodingJSON: whenever the Reader takes a document
// as a string, an integer, a bool, null, a raw value, an array of strings
// or integers, an object of strings or a struct's object, encoding/json
// decodes the same bytes, without error, to the same value. The Reader
// never panics either.
func FuzzReaderAgreesWithEncodingJSON(f *testing.F) {
	for _, s := range recordSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{`null`, ` null `, `nullx`, `"a\u00e9\"x"`, "\"\xed\xa0\x80\"", `-0`, `123456789012345678`, `true`, `false `,
		`[1,-2]`, `["a","\n"]`, `{"a":"b","\u00e9":"c"}`, `{"a":[{}],"b":"}"}`, strings.Repeat("[", 40)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		agreeString(t, doc)
		agreeInt(t, doc)
		agreeBool(t, doc)
		agreeNull(t, doc)
		agreeRaw(t, doc)
		agreeStrings(t, doc)
		agreeStringMap(t, doc)
		agreeInts(t, doc)
		agreeRecord(t, doc)
	})
}

// A strict Reader leaves to the slow path what encoding/json would take
// silently: strings that are not UTF-8 text and repeated names in an
// object of strings. The rest it reads as a Reader does.
func TestStrictReader(t *testing.T) {
	for _, c := range []struct {
		doc  string
		want string
		ok   bool
	}{
		{`"abc"`, "abc", true},
		{`"é ☃"`, "é ☃", true},
		{`"a\"b\\c\/\n\u00e9"`, "a\"b\\c/\né", true},
		{`"\ud83d\ude00"`, "😀", true}, // a pair
		{`"x\ud83d\ude00\ud83d\ude00y"`, "x😀😀y", true},
		{`"\\ud800"`, `\ud800`, true}, // an escaped backslash, then text
		{`"\u0000"`, "\x00", true},    // a character: rules on characters are the caller's
		{`"\ud800"`, "", false},       // lone halves
		{`"\udc00"`, "", false},
		{`"\ud800x"`, "", false},
		{`"\ud800\n"`, "", false},
		{`"\ud800\u0041"`, "", false},
		{`"\ud800\ud800"`, "", false},
		{`"\ude00\ud83d"`, "", false},
		{"\"a\xffb\"", "", false}, // invalid UTF-8
		{"\"\xed\xa0\x80\"", "", false},
	} {
		r := NewStrictReader([]byte(c.doc))
		got, ok := r.String()
		ok = ok && r.End()
		if !ok {
			got = ""
		}
		if ok != c.ok || got != c.want {
			t.Errorf("strict String(%q) = %q, %v; want %q, %v", c.doc, got, ok, c.want, c.ok)
		}
	}
	r := NewStrictReader([]byte(`{"a":"1","a":"2"}`))
	if m, ok := r.StringMap(); ok {
		t.Errorf("strict StringMap took a repeated name: %v", m)
	}
	r = NewStrictReader([]byte(`{"a":"1","b":"2"}`))
	if m, ok := r.StringMap(); !ok || len(m) != 2 {
		t.Errorf("strict StringMap: %v, %v", m, ok)
	}
}

// FuzzStrictReader: what a strict Reader takes, a Reader takes too, as
// the same value; and a string in valid UTF-8 that encoding/json decodes
// without any U+FFFD (so without a lone surrogate) it takes.
func FuzzStrictReader(f *testing.F) {
	for _, s := range []string{`"a"`, `"\ud83d\ude00"`, `"\ud800"`, "\"\xff\"", `"\ufffd"`, `"\\ud800"`, `"\ud800\u0041"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		lax := NewReader(doc)
		want, wantOK := lax.String()
		strict := NewStrictReader(doc)
		got, ok := strict.String()
		if ok && (!wantOK || got != want) {
			t.Fatalf("%q: strict %q, reader %q, %v", doc, got, want, wantOK)
		}
		if wantOK && !ok && utf8.Valid(doc) && !strings.ContainsRune(want, utf8.RuneError) {
			t.Fatalf("%q: strict refused text %q", doc, want)
		}
	})
}

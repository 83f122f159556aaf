// Package jsonpass reads JSON in one pass over the bytes, for decoders
// that may only ever accept.
//
// A Reader never decides that input is wrong: every method returns false
// for input it does not decode exactly as encoding/json would, or that is
// not valid JSON, and the caller then leaves the whole document to its
// slow path (encoding/json, a schema validator), which accepts it after
// all or names what is wrong. What a method does accept, encoding/json
// decodes to the same value: strings, integers, bools, null, raw values,
// arrays of strings and objects of strings (FuzzReaderAgreesWithEncodingJSON
// holds the Reader to that).
//
// Scalars end where their syntax ends: Int stops before "." or "e", Bool
// before any letter after "true", Null after "null". The value is only certain once what
// follows it has been read as a delimiter (Next(','), Next('}'),
// Next(']') or End), as every caller does.
//
// After a method returned false, the Reader's position is unspecified;
// the caller gives up on the document. Null alone is a question: its
// false consumes only white space, and the value is read another way.
package jsonpass

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// Reader reads the JSON of one document.
type Reader struct {
	b      []byte
	i      int
	strict bool
}

// NewReader returns a Reader at the start of b.
func NewReader(b []byte) Reader { return Reader{b: b} }

// NewStrictReader returns a Reader at the start of b that also refuses
// what encoding/json takes silently, for a slow path that refuses it with
// a reason (pkg/internal/strictjson): strings that are not UTF-8 text
// (invalid bytes, an unpaired surrogate escape), which encoding/json
// turns into U+FFFD, and a name repeated in an object of strings
// (StringMap), of which encoding/json keeps the last.
func NewStrictReader(b []byte) Reader { return Reader{b: b, strict: true} }

// Space moves past white space.
func (r *Reader) Space() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// Next consumes c, after white space, if it is there.
func (r *Reader) Next(c byte) bool {
	r.Space()
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

// End reports whether only white space is left.
func (r *Reader) End() bool {
	r.Space()
	return r.i == len(r.b)
}

// Token consumes a string, after white space, and returns it with its
// quotes; plain reports that its contents are printable ASCII without
// escapes. A string with a control character is not valid JSON, and
// refused.
func (r *Reader) Token() (tok []byte, plain, ok bool) {
	r.Space()
	if r.i >= len(r.b) || r.b[r.i] != '"' {
		return nil, false, false
	}
	start := r.i
	plain = true
	for j := start + 1; j < len(r.b); j++ {
		switch c := r.b[j]; {
		case c == '"':
			r.i = j + 1
			return r.b[start:r.i], plain, true
		case c == '\\':
			plain = false
			j++
		case c < 0x20:
			return nil, false, false
		case c >= utf8.RuneSelf:
			plain = false
		}
	}
	return nil, false, false
}

// String decodes a string value. Strings without escapes in valid UTF-8
// are what encoding/json returns for them, and are taken as they are; the
// others (escapes, invalid UTF-8, which encoding/json turns into U+FFFD)
// are decoded by encoding/json itself. A strict Reader refuses strings
// that are not UTF-8 text.
func (r *Reader) String() (string, bool) {
	tok, plain, ok := r.Token()
	if !ok {
		return "", false
	}
	body := tok[1 : len(tok)-1]
	if plain {
		return string(body), true
	}
	valid := utf8.Valid(body)
	if !valid && r.strict {
		return "", false
	}
	if valid && !containsByte(body, '\\') {
		return string(body), true
	}
	if r.strict && !escapesAreText(body) {
		return "", false
	}
	var s string
	if json.Unmarshal(tok, &s) != nil {
		return "", false
	}
	return s, true
}

// escapesAreText reports whether every UTF-16 surrogate escaped in the
// body of a string is half of a pair (\uD800-\uDBFF, then \uDC00-\uDFFF),
// so that the string decodes without U+FFFD standing in for one.
func escapesAreText(b []byte) bool {
	pendingHigh := false
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			if pendingHigh {
				return false
			}
			continue
		}
		if i+1 < len(b) && b[i+1] != 'u' {
			if pendingHigh {
				return false
			}
			i++ // the escaped character
			continue
		}
		if i+5 >= len(b) {
			return false // not a whole escape: encoding/json refuses it anyway
		}
		v, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 16)
		if err != nil {
			return false
		}
		i += 5
		switch {
		case v >= 0xD800 && v < 0xDC00:
			if pendingHigh {
				return false
			}
			pendingHigh = true
		case v >= 0xDC00 && v < 0xE000:
			if !pendingHigh {
				return false
			}
			pendingHigh = false
		default:
			if pendingHigh {
				return false
			}
		}
	}
	return !pendingHigh
}

func containsByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}

// intDigits is the most digits of which every integer fits in an int:
// 18 where int has 64 bits, 9 where it has 32.
const intDigits = 9 * (strconv.IntSize / 32)

// Int decodes an integer written as -?(0|[1-9][0-9]*) with at most
// maxDigits digits (and never more than an int always holds), where
// strconv.ParseInt, encoding/json's decoder for int, gives the same value.
// Fractions and exponents are left unread, for the caller's delimiter
// check to refuse.
func (r *Reader) Int(maxDigits int) (int, bool) {
	r.Space()
	neg := r.i < len(r.b) && r.b[r.i] == '-'
	if neg {
		r.i++
	}
	start := r.i
	v := 0
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		v = v*10 + int(r.b[r.i]-'0')
		r.i++
	}
	digits := r.i - start
	if digits == 0 || digits > maxDigits || digits > intDigits || (digits > 1 && r.b[start] == '0') {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// Bool decodes true or false.
func (r *Reader) Bool() (bool, bool) {
	r.Space()
	rest := r.b[r.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		r.i += 4
		return true, true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		r.i += 5
		return false, true
	}
	return false, false
}

// Null consumes null, after white space, if it is there; otherwise it
// consumes nothing but the white space, and the caller reads the value
// another way. encoding/json decodes null to nil for a pointer, a map, a
// slice or an interface, and leaves a value of any other kind as it was,
// unless its type decodes itself (a json.RawMessage keeps the null: Raw
// reads it).
func (r *Reader) Null() bool {
	r.Space()
	if rest := r.b[r.i:]; len(rest) >= 4 && string(rest[:4]) == "null" {
		r.i += 4
		return true
	}
	return false
}

// Members reads an object, calling member for each member with its name
// and the Reader at its value, which member must consume. Names must be
// printable ASCII without escapes, else the object is refused: then the
// name member is given is exactly the name encoding/json reads.
func (r *Reader) Members(member func(name []byte) bool) bool {
	if !r.Next('{') {
		return false
	}
	if r.Next('}') {
		return true
	}
	for {
		name, ok := r.name()
		if !ok || !member(name) {
			return false
		}
		if r.Next(',') {
			continue
		}
		return r.Next('}')
	}
}

// name reads a member name for Members, and the colon after it.
func (r *Reader) name() ([]byte, bool) {
	r.Space()
	if r.i >= len(r.b) || r.b[r.i] != '"' {
		return nil, false
	}
	start := r.i + 1
	for j := start; j < len(r.b); j++ {
		switch c := r.b[j]; {
		case c == '"':
			r.i = j + 1
			return r.b[start:j], r.Next(':')
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return nil, false
		}
	}
	return nil, false
}

// MaxNames is how many member names Object tells apart.
const MaxNames = 32

// Object reads an object whose member names are all in names (at most
// MaxNames), spelled exactly, without escapes, each at most once:
// encoding/json would also match a name differing in case (or "ſ" for
// "s") to a field, and merges a repeated member into the value decoded
// before it. value decodes the value of the member at index i. present
// has bit i set for each member present.
func (r *Reader) Object(names []string, value func(i int) bool) (present uint32, ok bool) {
	if len(names) > MaxNames {
		return 0, false
	}
	ok = r.Members(func(name []byte) bool {
		i := index(names, name)
		if i < 0 || present&(1<<i) != 0 {
			return false
		}
		present |= 1 << i
		return value(i)
	})
	if !ok {
		return 0, false
	}
	return present, true
}

func index(names []string, name []byte) int {
	for i, n := range names {
		if n == string(name) {
			return i
		}
	}
	return -1
}

// Array reads an array, calling elem for each element with the Reader at
// it, which elem must consume. encoding/json decodes [] to an empty,
// non-nil slice: a caller decoding into a slice sets that before.
func (r *Reader) Array(elem func() bool) bool {
	if !r.Next('[') {
		return false
	}
	if r.Next(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if r.Next(',') {
			continue
		}
		return r.Next(']')
	}
}

// Strings decodes an array of strings; [] is an empty, non-nil slice, as
// from encoding/json.
func (r *Reader) Strings() ([]string, bool) {
	out := []string{}
	ok := r.Array(func() bool {
		s, ok := r.String()
		out = append(out, s)
		return ok
	})
	if !ok {
		return nil, false
	}
	return out, true
}

// StringMap decodes an object of strings into a map, as encoding/json
// does: names may be any string, and a repeated name keeps its last value
// (a strict Reader refuses it).
func (r *Reader) StringMap() (map[string]string, bool) {
	if !r.Next('{') {
		return nil, false
	}
	out := map[string]string{}
	if r.Next('}') {
		return out, true
	}
	for {
		k, ok := r.String()
		if !ok || !r.Next(':') {
			return nil, false
		}
		v, ok := r.String()
		if !ok {
			return nil, false
		}
		if _, dup := out[k]; dup && r.strict {
			return nil, false
		}
		out[k] = v
		if r.Next(',') {
			continue
		}
		return out, r.Next('}')
	}
}

// Value consumes one JSON value of any kind, after white space, and
// returns its bytes, once json.Valid, encoding/json's own scanner,
// accepted them.
func (r *Reader) Value() ([]byte, bool) {
	r.Space()
	start := r.i
	if !r.skip() {
		return nil, false
	}
	v := r.b[start:r.i]
	return v, json.Valid(v)
}

// Raw decodes a value kept as it is, copied as encoding/json copies a
// json.RawMessage.
func (r *Reader) Raw() (json.RawMessage, bool) {
	v, ok := r.Value()
	if !ok {
		return nil, false
	}
	return append(json.RawMessage(nil), v...), true
}

// skip moves past one value by its structure alone (json.Valid then
// judges it): a string, a literal up to the next delimiter, or an object
// or array up to its matching end.
func (r *Reader) skip() bool {
	start, depth := r.i, 0
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case '"':
			if !r.skipString() {
				return false
			}
			if depth == 0 {
				return true
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return r.i > start // the end of the enclosing value
			}
			depth--
			if depth == 0 {
				r.i++
				return true
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return r.i > start
			}
		case ':':
			if depth == 0 {
				return false
			}
		}
		r.i++
	}
	return depth == 0 && r.i > start
}

// skipString moves past the string starting at r.i.
func (r *Reader) skipString() bool {
	for j := r.i + 1; j < len(r.b); j++ {
		switch r.b[j] {
		case '\\':
			j++
		case '"':
			r.i = j + 1
			return true
		}
	}
	return false
}

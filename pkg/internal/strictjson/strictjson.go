// Package strictjson finds what encoding/json lets through silently: a
// member name repeated in an object (encoding/json keeps the last value,
// or merges objects) and strings that are not text (invalid UTF-8, or an
// escaped UTF-16 surrogate without its other half), which it turns into
// U+FFFD. The slow paths of ingest and of the contract's decoders run it
// before encoding/json, so such a document is refused naming the member,
// instead of reaching WhatsApp as someone else's content.
//
// It is built on the jsontext package of github.com/go-json-experiment/json
// (encoding/json/v2's syntactic layer), which refuses both by default and
// names the place by JSON pointer.
package strictjson

import (
	"bytes"
	"errors"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// Problem is what is wrong, and where.
type Problem struct {
	// Pointer is the JSON pointer of the member or string ("" for the
	// document).
	Pointer string
	// Reason reads after the pointer: "/metadata/k: is given more than
	// once". It never quotes the value.
	Reason string
}

// Reasons.
const (
	ReasonRepeated = "is given more than once (a member name may appear only once in an object)"
	ReasonNotText  = "is not valid UTF-8 text (invalid bytes or an unpaired UTF-16 surrogate escape)"
)

// Check reports the first repeated member name or string that is not
// UTF-8 text in raw. Anything else wrong with raw (it is not JSON at all)
// is not its business: ok is true, and encoding/json names it.
func Check(raw []byte) (p Problem, ok bool) {
	err := read(raw, jsontext.AllowDuplicateNames(false), jsontext.AllowInvalidUTF8(false))
	var strict *jsontext.SyntacticError
	if !errors.As(err, &strict) {
		return Problem{}, true
	}
	if errors.Is(err, jsontext.ErrDuplicateName) {
		return Problem{Pointer: string(strict.JSONPointer), Reason: ReasonRepeated}, false
	}
	// Whether the error is about UTF-8 is told by the same reading with
	// invalid UTF-8 allowed: it then gets past that place.
	lenient := read(raw, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	var le *jsontext.SyntacticError
	if lenient == nil || (errors.As(lenient, &le) && le.ByteOffset > strict.ByteOffset) {
		return Problem{Pointer: string(strict.JSONPointer), Reason: ReasonNotText}, false
	}
	return Problem{}, true
}

// CheckTop is Check and CheckFolded for the members of the top-level
// object only: their names may not repeat, even in another case; their
// values are not looked into (a batch's items are checked one by one,
// each with its own answer).
func CheckTop(raw []byte) (p Problem, ok bool) {
	d := jsontext.NewDecoder(bytes.NewReader(raw), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '{' {
		return Problem{}, true
	}
	seen := map[string]bool{}
	for d.PeekKind() == '"' {
		name, err := d.ReadToken()
		if err != nil {
			return Problem{}, true
		}
		n := name.String()
		key := foldKey(n)
		if seen[key] {
			return Problem{Pointer: string(jsontext.Pointer("").AppendToken(n)), Reason: ReasonRepeated}, false
		}
		seen[key] = true
		if d.SkipValue() != nil {
			return Problem{}, true
		}
	}
	return Problem{}, true
}

// CheckFolded reports the first member name that repeats another of its
// object under case folding ("recipient" and "Recipient", "sender" and
// "ſender"): encoding/json matches a struct field by such names too, and
// keeps the last of them. Check must have passed first; anything else
// wrong with raw is left to the decoder (ok true).
func CheckFolded(raw []byte) (p Problem, ok bool) {
	d := jsontext.NewDecoder(bytes.NewReader(raw), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	var stack []map[string]bool // one per open object; nil for arrays
	for {
		tok, err := d.ReadToken()
		if err != nil {
			return Problem{}, true
		}
		switch tok.Kind() {
		case '{':
			stack = append(stack, map[string]bool{})
			if !objectMembers(d, &stack, &p) {
				return p, false
			}
		case '[':
			stack = append(stack, nil)
		case '}', ']':
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1] != nil && !objectMembers(d, &stack, &p) {
				return p, false
			}
		default:
			if len(stack) > 0 && stack[len(stack)-1] != nil && !objectMembers(d, &stack, &p) {
				return p, false
			}
		}
		if len(stack) == 0 {
			return Problem{}, true
		}
	}
}

// objectMembers reads the names of the object on top of the stack up to
// its next value that is an object or an array (or its end), refusing a
// name that folds to one seen before in that object. Scalars are read
// here; the caller reads what opens or closes a level.
func objectMembers(d *jsontext.Decoder, stack *[]map[string]bool, p *Problem) bool {
	seen := (*stack)[len(*stack)-1]
	for d.PeekKind() == '"' {
		name, err := d.ReadToken()
		if err != nil {
			return true
		}
		key := foldKey(name.String())
		if seen[key] {
			*p = Problem{Pointer: string(d.StackPointer()), Reason: ReasonRepeated}
			return false
		}
		seen[key] = true
		switch d.PeekKind() {
		case '{', '[':
			return true
		}
		if d.SkipValue() != nil {
			return true
		}
	}
	return true
}

// read reads the first value of raw; what follows it is for the
// caller's decoder to judge.
func read(raw []byte, opts ...jsontext.Options) error {
	_, err := jsontext.NewDecoder(bytes.NewReader(raw), opts...).ReadValue()
	return err
}

// foldKey is the same for names encoding/json matches to one field: equal
// under Unicode case folding ("ſ" and "s", the Kelvin sign and "k").
func foldKey(s string) string { return strings.ToLower(strings.ToUpper(s)) }

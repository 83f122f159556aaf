package payload

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/wanotify/wanotify/pkg/metawebhook"
)

// The one pass.
//
// Decoding the body with encoding/json (and, for the envelope and auto
// formats, finding the payload in it first) was the largest cost of a
// webhook after the signature check. decode reads the bodies providers
// really send in one pass over the bytes, straight into the typed
// payload, and may only ever accept: whatever it is not sure about goes
// to decodeDiagnosed, the encoding/json path, which then accepts it after
// all (counting unknown properties) or names what is wrong. decode
// accepts a body only if decodeDiagnosed would accept it without remark
// and decode it to the same payload at the same base;
// FuzzDecodeAgreesWithDiagnosed holds it to that.
//
// What decode takes:
//
//   - every member of the payload's objects must be one the payload type
//     names, spelled exactly (encoding/json would also match "Status" or
//     "ſtatus" to a field), without escapes, at most once (encoding/json
//     merges a repeated member into the value decoded before it);
//   - every value must have the JSON type of its field: no null
//     (encoding/json leaves the field as it is), integers only in plain
//     form;
//   - strings without escapes in valid UTF-8 are taken as they are, other
//     strings are decoded by encoding/json itself;
//   - values kept raw (conversation, pricing, messages, contacts) and the
//     wrapper's own members are checked with json.Valid, encoding/json's
//     own scanner, and raw values are copied as encoding/json copies them.

// decode reads body in one pass. ok is false for any body it leaves to
// decodeDiagnosed (see above).
func (p Parser) decode(body []byte) (pl metawebhook.Payload, base string, ok bool) {
	d := decoder{b: body}
	if p.Format == FormatMeta || p.Format == "" {
		if !d.payload(&pl) || !d.end() || pl.Entry == nil {
			return metawebhook.Payload{}, "", false
		}
		return pl, "", true
	}
	auto := p.Format == FormatAuto
	var (
		top, inner                               metawebhook.Payload
		sawEntry, sawObject, sawField, sawOthers bool
	)
	ok = d.members(func(name []byte) bool {
		switch {
		case auto && string(name) == "entry":
			// The payload at the top level (auto only).
			if sawEntry || !d.entries(&top.Entry) {
				return false
			}
			sawEntry = true
		case auto && string(name) == "object":
			// A string in a payload at the top level; any JSON in a
			// wrapper: only the first case is taken here.
			if sawObject || !d.string(&top.Object) {
				return false
			}
			sawObject = true
		case string(name) == p.EnvelopeField:
			if sawField || !d.payload(&inner) {
				return false
			}
			sawField = true
		default:
			// The wrapper's own members, whatever they hold.
			if _, ok := d.valid(); !ok {
				return false
			}
			sawOthers = true
		}
		return true
	})
	if !ok || !d.end() {
		return metawebhook.Payload{}, "", false
	}
	if auto && sawEntry {
		// The payload is the body itself: the envelope field and any
		// other member would be unknown properties of it.
		if sawField || sawOthers || top.Entry == nil {
			return metawebhook.Payload{}, "", false
		}
		return top, "", true
	}
	if !sawField || inner.Entry == nil {
		return metawebhook.Payload{}, "", false
	}
	return inner, "/" + pointerEscape(p.EnvelopeField), true
}

// decoder reads the JSON of one body. Every method returns false for
// input it does not decode exactly as encoding/json would, or that is not
// valid JSON.
type decoder struct {
	b []byte
	i int
}

func (d *decoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next consumes c, after white space, if it is there.
func (d *decoder) next(c byte) bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (d *decoder) end() bool {
	d.space()
	return d.i == len(d.b)
}

// members reads an object, calling member for each member name (printable
// ASCII without escapes, else the object is refused) with the decoder at
// its value, which member must consume.
func (d *decoder) members(member func(name []byte) bool) bool {
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		return true
	}
	for {
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return false
		}
		start := d.i + 1
		end := start
		for end < len(d.b) && d.b[end] != '"' {
			if c := d.b[end]; c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
				return false
			}
			end++
		}
		if end == len(d.b) {
			return false
		}
		d.i = end + 1
		if !d.next(':') || !member(d.b[start:end]) {
			return false
		}
		if d.next(',') {
			continue
		}
		return d.next('}')
	}
}

// fields reads an object whose member names are all in names, each at
// most once, decoding the value of the member at index i with value(i).
func (d *decoder) fields(names []string, value func(i int) bool) bool {
	var seen uint32
	return d.members(func(name []byte) bool {
		for i, n := range names {
			if n == string(name) {
				if seen&(1<<i) != 0 {
					return false
				}
				seen |= 1 << i
				return value(i)
			}
		}
		return false
	})
}

// array reads an array, calling elem for each element with the decoder
// at it. [] is an empty, non-nil slice in encoding/json: the caller's
// start is called first, for that.
func (d *decoder) array(start func(), elem func() bool) bool {
	if !d.next('[') {
		return false
	}
	start()
	if d.next(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if d.next(',') {
			continue
		}
		return d.next(']')
	}
}

// string decodes a string. Strings without escapes in valid UTF-8 are
// what encoding/json returns for them; the others are decoded by
// encoding/json itself.
func (d *decoder) string(out *string) bool {
	d.space()
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return false
	}
	start := d.i
	plain := true // printable ASCII without escapes
	for j := start + 1; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			d.i = j + 1
			body := d.b[start+1 : j]
			if plain || (!containsByte(body, '\\') && utf8.Valid(body)) {
				*out = string(body)
				return true
			}
			return json.Unmarshal(d.b[start:d.i], out) == nil
		case c == '\\':
			plain = false
			j++
		case c < 0x20:
			return false // not valid JSON
		case c >= utf8.RuneSelf:
			plain = false
		}
	}
	return false
}

func containsByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}

// int decodes an integer written as -?(0|[1-9][0-9]*) with at most 18
// digits, where strconv.ParseInt (encoding/json's decoder for int) gives
// the same value. What follows it must end the value (the caller checks
// for , } or ]), so 1.5 and 1e3 are refused.
func (d *decoder) int(out *int) bool {
	d.space()
	neg := d.i < len(d.b) && d.b[d.i] == '-'
	if neg {
		d.i++
	}
	start := d.i
	v := 0
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		v = v*10 + int(d.b[d.i]-'0')
		d.i++
	}
	digits := d.i - start
	if digits == 0 || digits > 18 || (digits > 1 && d.b[start] == '0') {
		return false
	}
	if neg {
		v = -v
	}
	*out = v
	return true
}

// valid consumes one JSON value of any kind and returns it, after
// json.Valid accepted it.
func (d *decoder) valid() ([]byte, bool) {
	d.space()
	start := d.i
	if !d.skip() {
		return nil, false
	}
	v := d.b[start:d.i]
	return v, json.Valid(v)
}

// raw decodes a value kept as it is, copied as json.RawMessage copies it.
func (d *decoder) raw(out *json.RawMessage) bool {
	v, ok := d.valid()
	if ok {
		*out = append(json.RawMessage(nil), v...)
	}
	return ok
}

// skip moves past one value by its structure alone (json.Valid then
// judges it): a string, a literal up to the next delimiter, or an object
// or array up to its matching end.
func (d *decoder) skip() bool {
	start, depth := d.i, 0
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case '"':
			if !d.skipString() {
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
				return d.i > start // the end of the enclosing value
			}
			depth--
			if depth == 0 {
				d.i++
				return true
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return d.i > start
			}
		case ':':
			if depth == 0 {
				return false
			}
		}
		d.i++
	}
	return depth == 0 && d.i > start
}

// skipString moves past the string starting at d.i.
func (d *decoder) skipString() bool {
	for j := d.i + 1; j < len(d.b); j++ {
		switch d.b[j] {
		case '\\':
			j++
		case '"':
			d.i = j + 1
			return true
		}
	}
	return false
}

// The payload's objects, member by member as metawebhook names them.

var (
	payloadNames   = []string{"object", "entry"}
	entryNames     = []string{"id", "changes"}
	changeNames    = []string{"field", "value"}
	valueNames     = []string{"messaging_product", "metadata", "statuses", "messages", "contacts"}
	metadataNames  = []string{"display_phone_number", "phone_number_id"}
	statusNames    = []string{"id", "status", "timestamp", "recipient_id", "biz_opaque_callback_data", "errors", "conversation", "pricing"}
	errorNames     = []string{"code", "title", "message", "href", "error_data"}
	errorDataNames = []string{"details"}
)

func (d *decoder) payload(pl *metawebhook.Payload) bool {
	return d.fields(payloadNames, func(i int) bool {
		if i == 0 {
			return d.string(&pl.Object)
		}
		return d.entries(&pl.Entry)
	})
}

func (d *decoder) entries(out *[]metawebhook.Entry) bool {
	return d.array(func() { *out = []metawebhook.Entry{} }, func() bool {
		*out = append(*out, metawebhook.Entry{})
		e := &(*out)[len(*out)-1]
		return d.fields(entryNames, func(i int) bool {
			if i == 0 {
				return d.string(&e.ID)
			}
			return d.changes(&e.Changes)
		})
	})
}

func (d *decoder) changes(out *[]metawebhook.Change) bool {
	return d.array(func() { *out = []metawebhook.Change{} }, func() bool {
		*out = append(*out, metawebhook.Change{})
		c := &(*out)[len(*out)-1]
		return d.fields(changeNames, func(i int) bool {
			if i == 0 {
				return d.string(&c.Field)
			}
			return d.value(&c.Value)
		})
	})
}

func (d *decoder) value(v *metawebhook.Value) bool {
	return d.fields(valueNames, func(i int) bool {
		switch i {
		case 0:
			return d.string(&v.MessagingProduct)
		case 1:
			return d.fields(metadataNames, func(i int) bool {
				if i == 0 {
					return d.string(&v.Metadata.DisplayPhoneNumber)
				}
				return d.string(&v.Metadata.PhoneNumberID)
			})
		case 2:
			return d.statuses(&v.Statuses)
		case 3:
			return d.raws(&v.Messages)
		default:
			return d.raws(&v.Contacts)
		}
	})
}

func (d *decoder) raws(out *[]json.RawMessage) bool {
	return d.array(func() { *out = []json.RawMessage{} }, func() bool {
		*out = append(*out, nil)
		return d.raw(&(*out)[len(*out)-1])
	})
}

func (d *decoder) statuses(out *[]metawebhook.Status) bool {
	return d.array(func() { *out = []metawebhook.Status{} }, func() bool {
		*out = append(*out, metawebhook.Status{})
		s := &(*out)[len(*out)-1]
		return d.fields(statusNames, func(i int) bool {
			switch i {
			case 0:
				return d.string(&s.ID)
			case 1:
				return d.string(&s.Status)
			case 2:
				return d.string(&s.Timestamp)
			case 3:
				return d.string(&s.RecipientID)
			case 4:
				return d.string(&s.BizOpaqueCallbackData)
			case 5:
				return d.errors(&s.Errors)
			case 6:
				return d.raw(&s.Conversation)
			default:
				return d.raw(&s.Pricing)
			}
		})
	})
}

func (d *decoder) errors(out *[]metawebhook.Error) bool {
	return d.array(func() { *out = []metawebhook.Error{} }, func() bool {
		*out = append(*out, metawebhook.Error{})
		e := &(*out)[len(*out)-1]
		return d.fields(errorNames, func(i int) bool {
			switch i {
			case 0:
				return d.int(&e.Code)
			case 1:
				return d.string(&e.Title)
			case 2:
				return d.string(&e.Message)
			case 3:
				return d.string(&e.Href)
			default:
				e.ErrorData = &metawebhook.ErrorData{}
				return d.fields(errorDataNames, func(int) bool { return d.string(&e.ErrorData.Details) })
			}
		})
	})
}

package privacy

import (
	"encoding/json"

	"github.com/wanotify/wanotify/pkg/contract"
)

// rewrite returns raw with the content values of a notification replaced
// in place — template.parameters[*], text.body and, unless stored,
// metadata.* — leaving every other byte as it came (so fields this
// package does not know survive). It reports false when raw does not have
// the shape n says it has (a key spelt with escapes, a duplicate key):
// the caller then re-encodes n instead. Re-encoding the whole document
// costs as much again as decoding it did; this is a single pass.
func (r *Redactor) rewrite(raw []byte, n *contract.Notification, code, stored bool) ([]byte, bool) {
	w := rewriter{raw: raw, out: make([]byte, 0, len(raw)+64), r: r, tenant: n.Tenant, code: code}
	i := skipWS(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return nil, false
	}
	var params, bodies, meta int
	ok := w.object(i, func(key []byte, v int) (int, bool) {
		switch string(key) {
		case `"template"`:
			return w.fieldsOf(v, func(key []byte, v int) (int, bool) {
				if string(key) != `"parameters"` {
					return scanValue(raw, v)
				}
				return w.array(v, func(e int) (int, bool) {
					params++
					return w.replaceString(e)
				})
			})
		case `"text"`:
			return w.fieldsOf(v, func(key []byte, v int) (int, bool) {
				if string(key) != `"body"` {
					return scanValue(raw, v)
				}
				bodies++
				return w.replaceString(v)
			})
		case `"metadata"`:
			if stored {
				return scanValue(raw, v)
			}
			return w.fieldsOf(v, func(_ []byte, v int) (int, bool) {
				meta++
				w.codeOff = true
				defer func() { w.codeOff = false }()
				return w.replaceString(v)
			})
		}
		return scanValue(raw, v)
	})
	if !ok {
		return nil, false
	}
	wantParams, wantBodies, wantMeta := 0, 0, 0
	if n.Template != nil {
		wantParams = len(n.Template.Parameters)
	}
	if n.Text != nil {
		wantBodies = 1
	}
	if !stored {
		wantMeta = len(n.Metadata)
	}
	if params != wantParams || bodies != wantBodies || meta != wantMeta {
		return nil, false
	}
	return append(w.out, raw[w.copied:]...), true
}

// rewriter copies raw to out, replacing string values as it goes.
type rewriter struct {
	raw, out []byte
	copied   int // raw[:copied] is in out
	r        *Redactor
	tenant   string
	code     bool
	codeOff  bool // metadata values are never one-time codes
}

// replaceString replaces the string value at i with what is stored in
// its place, and returns the index after it.
func (w *rewriter) replaceString(i int) (int, bool) {
	if i >= len(w.raw) || w.raw[i] != '"' {
		return 0, false
	}
	end, ok := scanString(w.raw, i)
	if !ok {
		return 0, false
	}
	var v string
	code := w.code && !w.codeOff
	if !code && len(w.r.key) > 0 {
		if err := json.Unmarshal(w.raw[i:end], &v); err != nil {
			return 0, false
		}
	}
	w.out = append(w.out, w.raw[w.copied:i]...)
	w.out = append(w.out, '"')
	w.out = append(w.out, w.r.hidden(w.tenant, v, code)...) // markers and hex need no escaping
	w.out = append(w.out, '"')
	w.copied = end
	return end, true
}

// object walks the object at i, calling field for each member with the
// key's raw bytes (quotes included) and the index of its value; field
// returns the index after the value. object returns the index after '}'.
func (w *rewriter) object(i int, field func(key []byte, v int) (int, bool)) bool {
	_, ok := w.fieldsOf(i, field)
	return ok
}

func (w *rewriter) fieldsOf(i int, field func(key []byte, v int) (int, bool)) (int, bool) {
	raw := w.raw
	i = skipWS(raw, i)
	if i >= len(raw) || raw[i] != '{' {
		// Not an object (null, say): nothing inside to replace.
		return scanValue(raw, i)
	}
	i = skipWS(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(raw) || raw[i] != '"' {
			return 0, false
		}
		kend, ok := scanString(raw, i)
		if !ok {
			return 0, false
		}
		key := raw[i:kend]
		i = skipWS(raw, kend)
		if i >= len(raw) || raw[i] != ':' {
			return 0, false
		}
		i = skipWS(raw, i+1)
		if i, ok = field(key, i); !ok {
			return 0, false
		}
		i = skipWS(raw, i)
		if i >= len(raw) {
			return 0, false
		}
		switch raw[i] {
		case ',':
			i = skipWS(raw, i+1)
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// array walks the array at i like fieldsOf walks an object.
func (w *rewriter) array(i int, elem func(e int) (int, bool)) (int, bool) {
	raw := w.raw
	if i >= len(raw) || raw[i] != '[' {
		return scanValue(raw, i)
	}
	i = skipWS(raw, i+1)
	if i < len(raw) && raw[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = elem(i); !ok {
			return 0, false
		}
		i = skipWS(raw, i)
		if i >= len(raw) {
			return 0, false
		}
		switch raw[i] {
		case ',':
			i = skipWS(raw, i+1)
		case ']':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the index after the string starting at b[i] == '"'.
func scanString(b []byte, i int) (int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// scanValue returns the index after the JSON value starting at b[i].
func scanValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return scanString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, ok := scanString(b, j)
				if !ok {
					return 0, false
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
		j++
	}
	if j == i {
		return 0, false
	}
	return j, true
}

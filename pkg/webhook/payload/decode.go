package payload

import (
	"encoding/json"

	"github.com/wanotify/wanotify/pkg/internal/jsonpass"
	"github.com/wanotify/wanotify/pkg/metawebhook"
)

// The one pass.
//
// Decoding the body with encoding/json (and, for the envelope and auto
// formats, finding the payload in it first) was the largest cost of a
// webhook after the signature check. decode reads the bodies providers
// really send in one pass over the bytes (with pkg/internal/jsonpass),
// straight into the typed payload, and may only ever accept: whatever it is not sure about goes
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
	d := decoder{jsonpass.NewReader(body)}
	if p.Format == FormatMeta || p.Format == "" {
		if !d.payload(&pl) || !d.End() || pl.Entry == nil {
			return metawebhook.Payload{}, "", false
		}
		return pl, "", true
	}
	auto := p.Format == FormatAuto
	var (
		top, inner                               metawebhook.Payload
		sawEntry, sawObject, sawField, sawOthers bool
	)
	ok = d.Members(func(name []byte) bool {
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
			if _, ok := d.Value(); !ok {
				return false
			}
			sawOthers = true
		}
		return true
	})
	if !ok || !d.End() {
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

// decoder reads the JSON of one body with jsonpass, which returns false
// for input it does not decode exactly as encoding/json would, or that is
// not valid JSON.
type decoder struct {
	jsonpass.Reader
}

// intDigits is the most digits of an integer the one pass takes.
const intDigits = 18

// The payload's fields are decoded in place; on false the caller drops
// the whole payload.

func (d *decoder) string(out *string) bool {
	s, ok := d.String()
	*out = s
	return ok
}

func (d *decoder) int(out *int) bool {
	v, ok := d.Int(intDigits)
	*out = v
	return ok
}

func (d *decoder) raw(out *json.RawMessage) bool {
	v, ok := d.Raw()
	*out = v
	return ok
}

// fields is jsonpass's Object, for objects whose presence of members
// does not matter.
func (d *decoder) fields(names []string, value func(i int) bool) bool {
	_, ok := d.Object(names, value)
	return ok
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
	*out = []metawebhook.Entry{}
	return d.Array(func() bool {
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
	*out = []metawebhook.Change{}
	return d.Array(func() bool {
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
	*out = []json.RawMessage{}
	return d.Array(func() bool {
		*out = append(*out, nil)
		return d.raw(&(*out)[len(*out)-1])
	})
}

func (d *decoder) statuses(out *[]metawebhook.Status) bool {
	*out = []metawebhook.Status{}
	return d.Array(func() bool {
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
	*out = []metawebhook.Error{}
	return d.Array(func() bool {
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

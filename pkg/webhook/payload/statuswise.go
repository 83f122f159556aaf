package payload

import (
	"encoding/json"
	"regexp"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/metawebhook"
)

// A value of the wrong JSON type inside one status (an id that is a
// number, a timestamp sent as a number) makes encoding/json refuse the
// whole body. Like a status missing a field, that must not sink the other
// statuses: decodeStatuswise decodes the payload with each status kept
// raw, then each status on its own, and hands back the ones that fail as
// type errors for Parse to reject.

// statusPointer matches a JSON pointer inside one status.
var statusPointer = regexp.MustCompile(`/entry/[0-9]+/changes/[0-9]+/value/statuses/[0-9]+(/|$)`)

// rawStatusPayload is metawebhook.Payload with every status kept raw.
type rawStatusPayload struct {
	Object string `json:"object"`
	Entry  []struct {
		ID      string `json:"id"`
		Changes []struct {
			Field string `json:"field"`
			Value struct {
				MessagingProduct string               `json:"messaging_product,omitempty"`
				Metadata         metawebhook.Metadata `json:"metadata"`
				Statuses         []json.RawMessage    `json:"statuses,omitempty"`
				Messages         []json.RawMessage    `json:"messages,omitempty"`
				Contacts         []json.RawMessage    `json:"contacts,omitempty"`
			} `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

// decodeStatuswise decodes raw (the payload, at base) when the only type
// errors are inside statuses: the payload with a zero Status in place of
// each status that cannot be decoded, and the field error of each such
// status by location. ok is false when the payload fails elsewhere.
func decodeStatuswise(raw []byte, base string) (pl metawebhook.Payload, bad map[location]contract.FieldError, ok bool) {
	var rp rawStatusPayload
	if json.Unmarshal(raw, &rp) != nil {
		return pl, nil, false
	}
	pl.Object = rp.Object
	pl.Entry = make([]metawebhook.Entry, len(rp.Entry))
	for i := range rp.Entry {
		e := &rp.Entry[i]
		pl.Entry[i] = metawebhook.Entry{ID: e.ID, Changes: make([]metawebhook.Change, len(e.Changes))}
		for j := range e.Changes {
			c := &e.Changes[j]
			v := metawebhook.Value{MessagingProduct: c.Value.MessagingProduct, Metadata: c.Value.Metadata,
				Messages: c.Value.Messages, Contacts: c.Value.Contacts}
			if c.Value.Statuses != nil {
				v.Statuses = make([]metawebhook.Status, len(c.Value.Statuses))
			}
			for k, rs := range c.Value.Statuses {
				if err := json.Unmarshal(rs, &v.Statuses[k]); err != nil {
					at := location{base: base, entry: i, change: j, status: k}
					if bad == nil {
						bad = map[location]contract.FieldError{}
					}
					v.Statuses[k] = metawebhook.Status{}
					bad[at] = contract.FieldError{Field: jsonErrorField(at.String(), rs, err), Reason: jsonErrorReason(err)}
				}
			}
			pl.Entry[i].Changes[j] = metawebhook.Change{Field: c.Field, Value: v}
		}
	}
	return pl, bad, len(bad) > 0
}

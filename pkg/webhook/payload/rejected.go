package payload

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/wanotify/wanotify/pkg/contract"
)

// Why a status was kept aside, the values of Rejected.Kind.
const (
	// RejectedMalformed: a status missing a required field or carrying an
	// unusable one (no id, a timestamp that is not unix seconds, a
	// recipient that is not a phone number, …).
	RejectedMalformed = "malformed"
	// RejectedUntracked: a well-formed status whose value the pipeline
	// does not track ("deleted", "warning", …).
	RejectedUntracked = "untracked"
)

// Rejected is one status of a signed webhook that did not become a status
// event. It is not refused: refusing the request would make the provider
// resend the whole batch (the good statuses with it) for days. The
// receiver keeps it, raw and with its reason, where the sink keeps the
// records it cannot use (ingest_errors), and counts it.
type Rejected struct {
	// Kind is RejectedMalformed or RejectedUntracked.
	Kind string
	// Raw is the status object as it appeared in the body (a copy).
	Raw json.RawMessage
	// Reason says what is wrong, naming each field by its JSON pointer
	// into the body; it never quotes a phone number.
	Reason string
	// Fields are the field errors behind Reason (malformed statuses only).
	Fields []contract.FieldError
	// Status is the status value as sent (trimmed, lower case; may be
	// empty).
	Status string
	// Recipient is the status's recipient in E.164 when it has a usable
	// one, for the record key; else empty.
	Recipient string

	at location // where it is in the body
}

// Key is the record key: the recipient, when known.
func (r *Rejected) Key() []byte {
	if r.Recipient == "" {
		return nil
	}
	return []byte(r.Recipient)
}

// maxUntrackedValueLen bounds the status value quoted in a reason.
const maxUntrackedValueLen = 64

// reject records the status at `at` as rejected: malformed when serr holds
// field errors, untracked (value) otherwise. recipient is its recipient_id
// as sent.
func (b *Batch) reject(at location, recipient string, serr *Error, value string) {
	r := Rejected{Kind: RejectedMalformed, Status: value, at: at}
	if serr != nil && len(serr.Fields) > 0 {
		r.Fields = serr.Fields
		parts := make([]string, len(serr.Fields))
		for i, f := range serr.Fields {
			parts[i] = f.String()
		}
		r.Reason = strings.Join(parts, "; ")
	} else {
		r.Kind = RejectedUntracked
		r.Reason = fmt.Sprintf("%s/status: %q is not a status the pipeline tracks", at, truncate(value, maxUntrackedValueLen))
	}
	if recipient = strings.TrimSpace(recipient); recipient != "" {
		// The same reading as a good status's recipient, so a rejected
		// part lands in its recipient's partition.
		if e164, ok := webhookRecipient(recipient); ok {
			r.Recipient = e164
		}
	}
	b.Rejected = append(b.Rejected, r)
}

// rawPayload is the payload down to each status, kept raw.
type rawPayload struct {
	Entry []struct {
		Changes []struct {
			Value struct {
				Statuses []json.RawMessage `json:"statuses"`
			} `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

// fillRaw copies into b.Rejected the status objects they stand for, as
// they are in body. Only a body with rejections pays for this second
// decode.
func (p Parser) fillRaw(body []byte, b *Batch) {
	if len(b.Rejected) == 0 {
		return
	}
	raw, _ := p.unwrap(body, &Error{})
	var pl rawPayload
	if raw == nil || json.Unmarshal(raw, &pl) != nil {
		return
	}
	for i := range b.Rejected {
		at := b.Rejected[i].at
		if at.entry < len(pl.Entry) && at.change < len(pl.Entry[at.entry].Changes) &&
			at.status < len(pl.Entry[at.entry].Changes[at.change].Value.Statuses) {
			b.Rejected[i].Raw = pl.Entry[at.entry].Changes[at.change].Value.Statuses[at.status]
		}
	}
}

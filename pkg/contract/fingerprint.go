package contract

import (
	"crypto/sha256"
	"encoding/binary"
)

// Fingerprint is a hash of what a notification sends, and to whom: the
// recipient, the sender, the event type, the user id and the template
// (name, language, parameters) or text (body, preview). Two requests that
// share an idempotency key (and so a notification id) but not a
// fingerprint are a key reused for another message, which must not be
// taken for a retry of the first: ingest answers it 422 when it still
// remembers the first, and the dispatcher records it as a duplicate whose
// payload differed.
//
// What may differ between honest retries is left out: times (created_at,
// and event_time and expires_at, which default to the moment of the
// request or derive from it), the source service and the metadata, which
// are not sent, and the lane, which says how soon, not what: it may be
// derived anew from configuration (template categories) on a retry. Zero means "no fingerprint" (a record written before
// fingerprints existed); Fingerprint never returns it.
func Fingerprint(n *Notification) uint64 {
	h := sha256.New()
	var lenBuf [binary.MaxVarintLen64]byte
	field := func(s string) {
		h.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	field(n.Recipient)
	field(n.Sender)
	field(n.EventType)
	field(n.UserID)
	switch {
	case n.Template != nil:
		field("template")
		field(n.Template.Name)
		field(n.Template.Language)
		h.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(n.Template.Parameters)))])
		for _, p := range n.Template.Parameters {
			field(p)
		}
	case n.Text != nil:
		field("text")
		field(n.Text.Body)
		if n.Text.PreviewURL {
			field("preview")
		}
	}
	var sum [sha256.Size]byte
	fp := binary.BigEndian.Uint64(h.Sum(sum[:0]))
	if fp == 0 {
		fp = 1
	}
	return fp
}

// Package metawebhook holds the WhatsApp Cloud API webhook payload shape
// (entry[].changes[].value.statuses[]) and its X-Hub-Signature-256
// signature. The provider simulator writes these payloads and the webhook
// receiver reads them, so both share one definition.
package metawebhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"strings"
	"sync"
)

// DefaultSignatureHeader is the header Meta signs webhooks with.
const DefaultSignatureHeader = "X-Hub-Signature-256"

// Payload is one webhook request body.
type Payload struct {
	Object string  `json:"object"`
	Entry  []Entry `json:"entry"`
}

// Entry is one WhatsApp Business Account's changes.
type Entry struct {
	ID      string   `json:"id"`
	Changes []Change `json:"changes"`
}

// Change is one change notification; Field is "messages" for statuses.
type Change struct {
	Field string `json:"field"`
	Value Value  `json:"value"`
}

// Value carries statuses of outbound messages and inbound user messages.
type Value struct {
	MessagingProduct string            `json:"messaging_product,omitempty"`
	Metadata         Metadata          `json:"metadata"`
	Statuses         []Status          `json:"statuses,omitempty"`
	Messages         []json.RawMessage `json:"messages,omitempty"`
	Contacts         []json.RawMessage `json:"contacts,omitempty"`
}

// Metadata names the business phone number the change concerns.
type Metadata struct {
	DisplayPhoneNumber string `json:"display_phone_number,omitempty"`
	PhoneNumberID      string `json:"phone_number_id,omitempty"`
}

// Status is one status change of one outbound message.
type Status struct {
	ID                    string          `json:"id"`
	Status                string          `json:"status"`
	Timestamp             string          `json:"timestamp"` // unix seconds, as a string
	RecipientID           string          `json:"recipient_id"`
	BizOpaqueCallbackData string          `json:"biz_opaque_callback_data,omitempty"`
	Errors                []Error         `json:"errors,omitempty"`
	Conversation          json.RawMessage `json:"conversation,omitempty"`
	Pricing               json.RawMessage `json:"pricing,omitempty"`
}

// Error is an error attached to a failed status.
type Error struct {
	Code      int        `json:"code"`
	Title     string     `json:"title,omitempty"`
	Message   string     `json:"message,omitempty"`
	Href      string     `json:"href,omitempty"` // link to Meta's error code reference
	ErrorData *ErrorData `json:"error_data,omitempty"`
}

// ErrorData carries the error's details.
type ErrorData struct {
	Details string `json:"details,omitempty"`
}

// Sign returns the header value for body: "sha256=" + hex(HMAC-SHA256).
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks header against body in constant time. It returns false for
// a missing or malformed header.
func Verify(secret, body []byte, header string) bool {
	if len(secret) == 0 {
		return false
	}
	return verify(hmac.New(sha256.New, secret), body, header)
}

// Verifier checks headers against bodies as Verify does, under one
// secret, reusing its keyed hashes across calls (keying a new one costs
// more than hashing a status webhook). It is safe for concurrent use.
type Verifier struct {
	secret []byte
	macs   sync.Pool
}

// NewVerifier returns a Verifier for secret. With an empty secret every
// header is refused.
func NewVerifier(secret []byte) *Verifier {
	v := &Verifier{secret: bytes.Clone(secret)}
	v.macs.New = func() any { return hmac.New(sha256.New, v.secret) }
	return v
}

// Verify checks header against body in constant time, as the package's
// Verify does.
func (v *Verifier) Verify(body []byte, header string) bool {
	if len(v.secret) == 0 {
		return false
	}
	m := v.macs.Get().(hash.Hash)
	defer v.macs.Put(m)
	m.Reset()
	return verify(m, body, header)
}

// verify checks header against body with the keyed hash m, fresh or
// reset.
func verify(m hash.Hash, body []byte, header string) bool {
	const prefix = "sha256="
	if !strings.HasPrefix(header, prefix) || len(header) != len(prefix)+2*sha256.Size {
		return false
	}
	var got, want [sha256.Size]byte
	if _, err := hex.Decode(got[:], []byte(header[len(prefix):])); err != nil {
		return false
	}
	m.Write(body)
	return hmac.Equal(got[:], m.Sum(want[:0]))
}

// Package metawebhook holds the WhatsApp Cloud API webhook payload shape
// (entry[].changes[].value.statuses[]) and its X-Hub-Signature-256
// signature. The provider simulator writes these payloads and the webhook
// receiver reads them, so both share one definition.
package metawebhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
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
	const prefix = "sha256="
	if len(secret) == 0 || !strings.HasPrefix(header, prefix) {
		return false
	}
	got, err := hex.DecodeString(header[len(prefix):])
	if err != nil || len(got) != sha256.Size {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// Package privacy decides what of a notification's content may be stored
// outside Kafka, and how a person's number is referred to once their data
// is erased. The sink applies it to every row it writes to ClickHouse
// (notification_events.payload, dead_letters.value, ingest_errors.value);
// package erasure uses its recipient hash in the erasures audit table.
//
// By default message content is not stored: template parameters, text
// bodies and metadata values are replaced by a marker, or by a keyed,
// tenant-scoped HMAC when a key is configured (so an analyst can still
// tell equal values apart without seeing them). A tenant listed in
// StoreContentTenants has its content stored as sent, except one-time
// codes: the parameters of an authentication notification are never
// stored, in clear or hashed, because a six-digit code is recovered from
// its hash by anyone holding the key in a million tries.
//
// Recipients stay in clear in their own columns: they are what analysts
// and operators look notifications up by, and what an erasure finds.
package privacy

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"strings"
	"sync"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/contract"
)

// HashKeyVar is the environment variable of the HMAC key shared by the
// sink (content hashes) and notifyctl / the erase API (the erasures
// audit's hash of a number).
const HashKeyVar = "WANOTIFY_PRIVACY_HASH_KEY"

// HashKey reads WANOTIFY_PRIVACY_HASH_KEY (a secret).
func HashKey(e *config.Env) string {
	return e.Secret(HashKeyVar, "key of the HMACs stored instead of message content and of erased numbers in the erasures audit (empty: content is replaced by a marker, audit hashes are salted only)")
}

// Markers written in place of content that is not stored.
const (
	// Redacted replaces content that is not stored.
	Redacted = "[redacted]"
	// RedactedCode replaces the parameters and body of an authentication
	// (one-time code) notification, whatever the tenant's setting.
	RedactedCode = "[redacted:otp]"
	// HashPrefix starts a content value replaced by its keyed hash.
	HashPrefix = "hmac:"
)

// Policy is what content the sink may store. The zero Policy stores no
// content and hashes nothing (markers only).
type Policy struct {
	// StoreContentTenants lists the tenants whose message content is
	// stored as sent (one-time codes excepted); "*" means every tenant.
	StoreContentTenants []string
	// HashKey, when set, replaces content by HMAC-SHA256(key, tenant,
	// value) instead of a marker.
	HashKey []byte
}

// Redactor applies a Policy. It is safe for concurrent use.
type Redactor struct {
	all     bool
	tenants map[string]bool
	key     []byte
	macs    sync.Pool // of HMAC-SHA256 keyed with key
}

// New returns the redactor of p.
func New(p Policy) *Redactor {
	r := &Redactor{tenants: map[string]bool{}, key: append([]byte(nil), p.HashKey...)}
	r.macs.New = func() any { return hmac.New(sha256.New, r.key) }
	for _, t := range p.StoreContentTenants {
		t = strings.TrimSpace(t)
		if t == "*" {
			r.all = true
		} else if t != "" {
			r.tenants[t] = true
		}
	}
	return r
}

// StoresContent reports whether tenant's message content is stored.
func (r *Redactor) StoresContent(tenant string) bool {
	return r.all || r.tenants[tenant]
}

// authWords are the words of an event type or template name that mark an
// authentication (one-time code) notification: WhatsApp's authentication
// template category. Erring towards redaction is harmless.
var authWords = map[string]bool{
	"otp": true, "auth": true, "authentication": true, "verification": true, "verify": true,
	"2fa": true, "mfa": true, "passcode": true, "totp": true, "code": true,
}

// IsAuthentication reports whether a notification of this event type and
// template carries a one-time code: one of their words (split on . _ -)
// is otp, auth, authentication, verification, verify, 2fa, mfa, passcode,
// totp or code.
func IsAuthentication(eventType, template string) bool {
	return hasAuthWord(eventType) || hasAuthWord(template)
}

// hasAuthWord splits s on . _ - without allocating (it runs for every
// record the sink stores).
func hasAuthWord(s string) bool {
	var buf [16]byte
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' && s[i] != '_' && s[i] != '-' {
			continue
		}
		if w := s[start:i]; len(w) > 0 && len(w) <= len(buf) {
			b := buf[:len(w)]
			for j := 0; j < len(w); j++ {
				c := w[j]
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				b[j] = c
			}
			if authWords[string(b)] {
				return true
			}
		}
		start = i + 1
	}
	return false
}

// hidden returns what is stored in place of one content value.
func (r *Redactor) hidden(tenant, v string, code bool) string {
	if code {
		return RedactedCode
	}
	if len(r.key) == 0 {
		return Redacted
	}
	m := r.macs.Get().(hash.Hash)
	defer r.macs.Put(m)
	m.Reset()
	m.Write([]byte(tenant))
	m.Write([]byte{0})
	m.Write([]byte(v))
	return HashPrefix + hex.EncodeToString(m.Sum(nil)[:16])
}

// needed reports whether n has content that is not stored as is.
func (r *Redactor) needed(n *contract.Notification, code bool) bool {
	hasContent := (n.Template != nil && len(n.Template.Parameters) > 0) || n.Text != nil
	if r.StoresContent(n.Tenant) {
		return code && hasContent
	}
	return hasContent || len(n.Metadata) > 0
}

// Notification returns the JSON of n as it may be stored: raw itself when
// nothing needs hiding, else n with its template parameters, text body
// and metadata values replaced (see the package comment). raw must be n's
// encoding.
func (r *Redactor) Notification(raw []byte, n *contract.Notification) []byte {
	var template string
	if n.Template != nil {
		template = n.Template.Name
	}
	code := IsAuthentication(n.EventType, template)
	if !r.needed(n, code) {
		return raw
	}
	stored := r.StoresContent(n.Tenant)
	if b, ok := r.rewrite(raw, n, code, stored); ok {
		return b
	}
	return r.reencode(n, code, stored)
}

// reencode is Notification by encoding a redacted copy of n: for
// documents rewrite cannot follow.
func (r *Redactor) reencode(n *contract.Notification, code, stored bool) []byte {
	c := *n
	if n.Template != nil && len(n.Template.Parameters) > 0 {
		t := *n.Template
		t.Parameters = make([]string, len(n.Template.Parameters))
		for i, p := range n.Template.Parameters {
			t.Parameters[i] = r.hidden(n.Tenant, p, code)
		}
		c.Template = &t
	}
	if n.Text != nil {
		t := *n.Text
		t.Body = r.hidden(n.Tenant, n.Text.Body, code)
		c.Text = &t
	}
	if !stored && len(n.Metadata) > 0 {
		c.Metadata = make(map[string]string, len(n.Metadata))
		for k, v := range n.Metadata {
			c.Metadata[k] = r.hidden(n.Tenant, v, false)
		}
	}
	b, err := json.Marshal(&c)
	if err != nil {
		// A decoded notification always encodes; should it not, store
		// nothing of it rather than its content.
		return []byte(`{"redacted":true}`)
	}
	return b
}

// Value returns what may be stored of a record value that is not a valid
// notification (an ingest error, a poison record on the DLQ). A JSON
// object is kept with the content fields of a notification hidden
// (template.parameters, text.body, metadata values, and any string inside
// a value that is not an object); anything else is replaced by a marker
// giving its size. Values of opted-in tenants (by their "tenant" field)
// are kept as they are, unless they look like one-time codes.
func (r *Redactor) Value(raw []byte) string {
	var doc map[string]any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil || d.More() {
		return fmt.Sprintf("[redacted: %d bytes, not a JSON object]", len(raw))
	}
	tenant, _ := doc["tenant"].(string)
	eventType, _ := doc["event_type"].(string)
	var template string
	tpl, _ := doc["template"].(map[string]any)
	if tpl != nil {
		template, _ = tpl["name"].(string)
	}
	code := IsAuthentication(eventType, template)
	if r.StoresContent(tenant) && !code {
		return string(raw)
	}
	stored := r.StoresContent(tenant)
	_, hasText := doc["text"]
	_, hasMeta := doc["metadata"]
	if _, hasTpl := doc["template"]; !hasTpl && !hasText && !(hasMeta && !stored) {
		// Nothing that is content: keep the bytes as they came.
		return string(raw)
	}
	if tpl != nil {
		if ps, ok := tpl["parameters"]; ok {
			tpl["parameters"] = r.hideAll(tenant, ps, code)
		}
	} else if v, ok := doc["template"]; ok {
		doc["template"] = r.hideAll(tenant, v, code)
	}
	if txt, ok := doc["text"].(map[string]any); ok {
		if b, ok := txt["body"]; ok {
			txt["body"] = r.hideAll(tenant, b, code)
		}
	} else if v, ok := doc["text"]; ok {
		doc["text"] = r.hideAll(tenant, v, code)
	}
	if md, ok := doc["metadata"]; ok && !stored {
		doc["metadata"] = r.hideAll(tenant, md, false)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return fmt.Sprintf("[redacted: %d bytes]", len(raw))
	}
	return string(out)
}

// hideAll replaces every string and number inside v.
func (r *Redactor) hideAll(tenant string, v any, code bool) any {
	switch x := v.(type) {
	case string:
		return r.hidden(tenant, x, code)
	case json.Number:
		return r.hidden(tenant, x.String(), code)
	case []any:
		for i := range x {
			x[i] = r.hideAll(tenant, x[i], code)
		}
		return x
	case map[string]any:
		for k := range x {
			x[k] = r.hideAll(tenant, x[k], code)
		}
		return x
	}
	return v
}

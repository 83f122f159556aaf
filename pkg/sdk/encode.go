package sdk

import (
	"slices"
	"time"
	"unicode/utf8"

	"github.com/wanotify/wanotify/pkg/contract"
)

// appendNotification appends the JSON of n, byte for byte what
// json.Marshal(n) writes (field order, omitempty, sorted metadata keys,
// HTML-safe escaping, U+FFFD for invalid UTF-8), without reflection: on
// the publish path encoding/json costs as much as validating the request.
// The tests compare the two on every shape Build accepts, and fail when
// contract.Notification gains a field this encoder does not know.
func appendNotification(b []byte, n *contract.Notification) []byte {
	b = append(b, `{"schema_version":`...)
	b = appendInt(b, n.SchemaVersion)
	b = appendField(b, "notification_id", n.ID)
	b = appendField(b, "idempotency_key", n.IdempotencyKey)
	b = appendField(b, "tenant", n.Tenant)
	b = appendField(b, "source_service", n.SourceService)
	b = appendField(b, "event_type", n.EventType)
	if n.UserID != "" {
		b = appendField(b, "user_id", n.UserID)
	}
	if n.EventTime != nil {
		b = appendTimeField(b, "event_time", *n.EventTime)
	}
	b = appendField(b, "recipient", n.Recipient)
	b = appendField(b, "sender", n.Sender)
	if n.Lane != "" {
		b = appendField(b, "lane", n.Lane)
	}
	if t := n.Template; t != nil {
		b = append(b, `,"template":{"name":`...)
		b = appendString(b, t.Name)
		b = appendField(b, "language", t.Language)
		if len(t.Parameters) > 0 {
			b = append(b, `,"parameters":[`...)
			for i, p := range t.Parameters {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendString(b, p)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if t := n.Text; t != nil {
		b = append(b, `,"text":{"body":`...)
		b = appendString(b, t.Body)
		if t.PreviewURL {
			b = append(b, `,"preview_url":true`...)
		}
		b = append(b, '}')
	}
	if n.ExpiresAt != nil {
		b = appendTimeField(b, "expires_at", *n.ExpiresAt)
	}
	b = appendTimeField(b, "created_at", n.CreatedAt)
	if len(n.Metadata) > 0 {
		keys := make([]string, 0, len(n.Metadata))
		for k := range n.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, `,"metadata":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, n.Metadata[k])
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// encodedFields lists the JSON fields appendNotification writes; a test
// holds it to contract.Notification's tags.
var encodedFields = []string{"schema_version", "notification_id", "idempotency_key", "tenant", "source_service",
	"event_type", "user_id", "event_time", "recipient", "sender", "lane", "template", "text", "expires_at", "created_at", "metadata"}

func appendField(b []byte, name, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

func appendTimeField(b []byte, name string, t time.Time) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':', '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func appendInt(b []byte, v int) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, buf[i:]...)
}

const hexDigits = "0123456789abcdef"

// appendString is encoding/json's string encoding with HTML escaping on.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// encodedSizeHint is a capacity that usually fits the encoded notification
// in one allocation.
func encodedSizeHint(n *contract.Notification) int {
	size := 420 + len(n.IdempotencyKey) + len(n.SourceService) + len(n.EventType) + len(n.UserID) + len(n.Sender)
	if n.Template != nil {
		size += len(n.Template.Name) + len(n.Template.Language)
		for _, p := range n.Template.Parameters {
			size += len(p) + 3
		}
	}
	if n.Text != nil {
		size += len(n.Text.Body) + 8
	}
	for k, v := range n.Metadata {
		size += len(k) + len(v) + 6
	}
	return size
}

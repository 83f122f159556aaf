// Package payload turns provider status webhook bodies into status
// events: Meta's WhatsApp Cloud API shape (entry[].changes[].value
// .statuses[]), optionally inside a provider's wrapper object, checked
// against its HMAC-SHA256 signature. It is pure (no I/O), so the receiver
// stays thin and the parser can be fuzzed on its own.
package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/metawebhook"
)

// Format is the shape status webhooks arrive in.
type Format string

// Formats.
const (
	// FormatMeta is Meta's WhatsApp Cloud API payload at the top level:
	// {"object":…, "entry":[{"changes":[{"value":{"statuses":[…]}}]}]}.
	FormatMeta Format = "meta"
	// FormatEnvelope is the same payload inside a field of a wrapper
	// object, as in Xpressbot's {"success":…, "data":{…}, "message":…}
	// envelope; Parser.EnvelopeField names the field.
	FormatEnvelope Format = "envelope"
	// FormatAuto takes the payload at the top level when the body has an
	// "entry" field and from Parser.EnvelopeField otherwise, so a
	// provider may send either without reconfiguration.
	FormatAuto Format = "auto"
)

// Limits that keep every event within the notifications.status schema.
const (
	// MaxProviderMessageIDLen keeps the event id ("wh/<id>/<status>")
	// within the schema's 128 characters for every status.
	MaxProviderMessageIDLen = 128 - len("wh/") - len("/delivered")
	// MaxFieldErrors bounds the problem document of a huge bad payload.
	MaxFieldErrors = 20
	// MaxErrorMessageLen is the schema's bound on an error message.
	MaxErrorMessageLen = 2048
	// maxNotificationIDLen is the schema's notification_id bound. Longer
	// callback data was not written by the dispatcher, so it names no
	// notification: the sink attaches the status by provider message id.
	maxNotificationIDLen = 64
)

// ErrMalformed is matched (errors.Is) by every *Error.
var ErrMalformed = errors.New("malformed webhook payload")

// Error names every field of a webhook body that could not be
// turned into status events. Fields are JSON pointers into the body.
type Error struct {
	Fields []contract.FieldError
	// Omitted counts field errors beyond those listed.
	Omitted int
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.String()
	}
	s := "malformed webhook payload: " + strings.Join(parts, "; ")
	if e.Omitted > 0 {
		s += fmt.Sprintf(" (and %d more)", e.Omitted)
	}
	return s
}

// Is makes errors.Is(err, ErrMalformed) true.
func (e *Error) Is(target error) bool { return target == ErrMalformed }

func (e *Error) add(field, reason string) {
	if len(e.Fields) >= MaxFieldErrors {
		e.Omitted++
		return
	}
	e.Fields = append(e.Fields, contract.FieldError{Field: field, Reason: reason})
}

// Event is one status ready to produce: the decoded event and its
// schema-validated JSON.
type Event struct {
	Status contract.StatusEvent
	Value  []byte
}

// Key is the record key: the recipient.
func (e *Event) Key() []byte { return e.Status.Key() }

// Ignored kinds, the values of the kind attribute of
// wanotify.webhook.ignored.
const (
	// IgnoredUnknownFields: the body carried JSON properties this
	// receiver does not know (counted once per request).
	IgnoredUnknownFields = "unknown_fields"
	// IgnoredChange: a change whose field is not "messages"
	// (account_update, message_template_status_update, …).
	IgnoredChange = "change"
	// IgnoredCallbackData: biz_opaque_callback_data too long to be a
	// notification id.
	IgnoredCallbackData = "callback_data"
	// IgnoredDuplicate: the same status of the same message twice in one
	// request; produced once.
	IgnoredDuplicate = "duplicate_in_request"
	// IgnoredRecipient: a status whose recipient_id is not a number in
	// E.164 shape (digits only), which no status event can be keyed by.
	IgnoredRecipient = "recipient"
)

// Batch is what one webhook body carries.
type Batch struct {
	// Events are the statuses to produce, in payload order, without
	// repeats.
	Events []Event
	// Skipped are status values this pipeline does not track ("deleted",
	// "warning", …), accepted so the provider stops resending them. Each
	// is also in Rejected (RejectedUntracked), to be kept.
	Skipped []string
	// Rejected are the statuses that did not become events (malformed or
	// untracked), in payload order.
	Rejected []Rejected
	// InboundMessages counts user messages (value.messages[]).
	InboundMessages int
	// Ignored counts what was accepted but not used, by kind.
	Ignored map[string]int

	// typeErrors are the statuses that could not be decoded (see
	// statuswise.go), by location.
	typeErrors map[location]contract.FieldError
}

func (b *Batch) ignore(kind string) {
	if b.Ignored == nil {
		b.Ignored = map[string]int{}
	}
	b.Ignored[kind]++
}

// Parser turns webhook bodies into status events. It is pure (no I/O)
// and safe for concurrent use.
type Parser struct {
	// Provider is stamped on every event.
	Provider string
	// Format is the body shape (default FormatMeta when empty).
	Format Format
	// EnvelopeField names the wrapper field of FormatEnvelope/FormatAuto.
	EnvelopeField string
}

// Parse reads one webhook body. A body that cannot be read as a webhook
// (not JSON, no payload, a value of the wrong JSON type outside the
// statuses) fails with a *Error naming each field. A status missing id,
// status, recipient_id or timestamp, or carrying an unusable one or one of
// the wrong JSON type, does not fail the body: it is
// returned in Batch.Rejected with the fields at fault, and every other
// status still becomes an event (a refused batch would be resent for
// days, good statuses included).
//
// A body is decoded once, straight into the typed payload (decode, in
// decode.go). Only a body that pass leaves aside (not valid JSON, a field
// of the wrong type, a property this parser does not know, no payload,
// or a rarer form it does not decide) goes through decodeDiagnosed, which
// names what is wrong, or counts the unknown properties and decodes the
// rest.
func (p Parser) Parse(body []byte) (*Batch, error) {
	batch := &Batch{}
	payload, base, ok := p.decode(body)
	if !ok {
		var perr *Error
		if payload, base, perr = p.decodeDiagnosed(body, batch); perr != nil {
			return nil, perr
		}
	}
	seen := make(map[string]struct{}, statusCount(&payload))
	for i := range payload.Entry {
		entry := &payload.Entry[i]
		for j := range entry.Changes {
			change := &entry.Changes[j]
			if change.Field != "" && change.Field != "messages" {
				batch.ignore(IgnoredChange)
				continue
			}
			batch.InboundMessages += len(change.Value.Messages)
			for k := range change.Value.Statuses {
				at := location{base: base, entry: i, change: j, status: k}
				st := &change.Value.Statuses[k]
				serr := &Error{}
				if fe, bad := batch.typeErrors[at]; bad {
					serr.add(fe.Field, fe.Reason)
					batch.reject(at, "", serr, "")
					continue
				}
				ev, skipped, ok := p.status(st, at, batch, serr)
				if !ok {
					batch.reject(at, st.RecipientID, serr, strings.ToLower(strings.TrimSpace(st.Status)))
					continue
				}
				if skipped != "" {
					batch.Skipped = append(batch.Skipped, skipped)
					batch.reject(at, st.RecipientID, nil, skipped)
					continue
				}
				if _, dup := seen[ev.Status.EventID]; dup {
					batch.ignore(IgnoredDuplicate)
					continue
				}
				seen[ev.Status.EventID] = struct{}{}
				if batch.Events == nil {
					batch.Events = make([]Event, 0, statusCount(&payload))
				}
				batch.Events = append(batch.Events, ev)
			}
		}
	}
	p.fillRaw(body, batch)
	batch.typeErrors = nil
	return batch, nil
}

// statusCount is the number of statuses in the payload.
func statusCount(pl *metawebhook.Payload) int {
	n := 0
	for i := range pl.Entry {
		for j := range pl.Entry[i].Changes {
			n += len(pl.Entry[i].Changes[j].Value.Statuses)
		}
	}
	return n
}

// location is the JSON pointer of one status, built only when an error
// names it.
type location struct {
	base                  string
	entry, change, status int
}

func (l location) String() string {
	return fmt.Sprintf("%s/entry/%d/changes/%d/value/statuses/%d", l.base, l.entry, l.change, l.status)
}

// decodeDiagnosed finds and decodes the payload field by field: it names
// what is wrong with a body that cannot be used, and accepts one whose
// only fault is properties this parser does not know, counting them.
func (p Parser) decodeDiagnosed(body []byte, batch *Batch) (payload metawebhook.Payload, base string, perr *Error) {
	perr = &Error{}
	raw, base := p.unwrap(body, perr)
	if len(perr.Fields) > 0 {
		return payload, "", perr
	}
	if strict(raw, &payload) != nil {
		payload = metawebhook.Payload{}
		if err := json.Unmarshal(raw, &payload); err != nil {
			field := jsonErrorField(base, raw, err)
			if statusPointer.MatchString(field) {
				// A type error inside a status: that status is rejected,
				// not the body (statuswise.go).
				if pl, bad, ok := decodeStatuswise(raw, base); ok {
					batch.typeErrors = bad
					return pl, base, nil
				}
			}
			perr.add(field, jsonErrorReason(err))
			return payload, "", perr
		}
		batch.ignore(IgnoredUnknownFields)
	}
	if payload.Entry == nil {
		perr.add(base+"/entry", "is required")
		return payload, "", perr
	}
	return payload, base, nil
}

// unwrap finds the Meta payload in body according to the format and
// returns it with its JSON pointer prefix. A wrapper's own fields
// (success, message, …) are expected, not unknown.
func (p Parser) unwrap(body []byte, perr *Error) (raw []byte, base string) {
	if len(bytes.TrimSpace(body)) == 0 {
		perr.add("", "body is empty")
		return nil, ""
	}
	if p.Format == FormatMeta || p.Format == "" {
		return body, ""
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		perr.add(jsonErrorField("", body, err), jsonErrorReason(err))
		return nil, ""
	}
	if top == nil {
		perr.add("", "must be a JSON object")
		return nil, ""
	}
	if _, ok := top["entry"]; ok && p.Format == FormatAuto {
		return body, ""
	}
	field := "/" + pointerEscape(p.EnvelopeField)
	inner, ok := top[p.EnvelopeField]
	if !ok || bytes.Equal(bytes.TrimSpace(inner), []byte("null")) {
		if p.Format == FormatAuto {
			perr.add("/entry", "is required (or the payload in "+field+")")
		} else {
			perr.add(field, "is required")
		}
		return nil, ""
	}
	return inner, field
}

// strict decodes raw rejecting unknown properties and trailing data.
func strict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

// webhookStatuses maps Meta's status values to the pipeline's.
var webhookStatuses = map[string]contract.Status{
	"sent":      contract.StatusSent,
	"delivered": contract.StatusDelivered,
	"read":      contract.StatusRead,
	"failed":    contract.StatusFailed,
}

// status turns one Meta status into an event. ok is false when it added
// errors to perr; skipped names a status value that is not tracked.
func (p Parser) status(s *metawebhook.Status, at location, batch *Batch, perr *Error) (ev Event, skipped string, ok bool) {
	before := len(perr.Fields) + perr.Omitted
	id := strings.TrimSpace(s.ID)
	value := strings.ToLower(strings.TrimSpace(s.Status))
	rid := strings.TrimSpace(s.RecipientID)
	ts := strings.TrimSpace(s.Timestamp)
	if id == "" || value == "" || rid == "" || ts == "" {
		for _, f := range []struct{ name, v string }{{"id", id}, {"status", value}, {"recipient_id", rid}, {"timestamp", ts}} {
			if f.v == "" {
				perr.add(at.String()+"/"+f.name, "is required")
			}
		}
	}
	if len(perr.Fields)+perr.Omitted > before {
		return ev, "", false
	}
	st, tracked := webhookStatuses[value]
	if !tracked {
		return ev, value, true
	}
	if len(id) > MaxProviderMessageIDLen {
		perr.add(at.String()+"/id", fmt.Sprintf("is longer than %d characters", MaxProviderMessageIDLen))
	}
	occurred, err := parseUnix(ts)
	if err != nil {
		perr.add(at.String()+"/timestamp", err.Error())
	}
	if len(perr.Fields)+perr.Omitted > before {
		return ev, "", false
	}
	recipient, ok := webhookRecipient(rid)
	if !ok {
		// Counted, never refused: the status is signed by Meta, and a 400
		// would only make Meta retry the whole body for days.
		batch.ignore(IgnoredRecipient)
		return ev, "", false
	}
	ev.Status = contract.StatusEvent{
		SchemaVersion:     contract.SchemaVersion,
		EventID:           contract.WebhookEventID(id, st),
		ProviderMessageID: id,
		Provider:          p.Provider,
		Recipient:         recipient,
		Status:            st,
		OccurredAt:        occurred,
		Emitter:           contract.EmitterWebhook,
	}
	if cb := strings.TrimSpace(s.BizOpaqueCallbackData); cb != "" {
		if len(cb) <= maxNotificationIDLen {
			ev.Status.NotificationID = cb
		} else {
			batch.ignore(IgnoredCallbackData)
		}
	}
	if st == contract.StatusFailed {
		ev.Status.Error = failure(s.Errors)
	}
	ev.Value, err = ev.Status.Encode()
	if err != nil {
		// Only the event's field is named: a schema's reason may quote the
		// value, and that could be a phone number.
		var ve *contract.ValidationError
		if errors.As(err, &ve) {
			for _, f := range ve.Fields {
				perr.add(at.String(), "gives a status event whose "+f.Field+" is invalid")
			}
		} else {
			perr.add(at.String(), "cannot be turned into a status event")
		}
		return ev, "", false
	}
	return ev, "", true
}

// Unix seconds a status timestamp may carry: JSON's time encoding stops at
// year 9999.
const maxUnix = 253402300799

func parseUnix(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > maxUnix {
		return time.Time{}, errors.New("must be unix seconds")
	}
	return time.Unix(n, 0).UTC(), nil
}

// failure describes a failed status from its first error. Meta reports a
// delivery failure after the fact: nothing retries it, so it is never
// retryable.
func failure(errs []metawebhook.Error) *contract.ErrorInfo {
	info := &contract.ErrorInfo{Code: "meta_unknown"}
	if len(errs) == 0 {
		return info
	}
	e := errs[0]
	if e.Code > 0 {
		info.Code = "meta_" + strconv.Itoa(e.Code)
	}
	msg := e.Message
	if msg == "" {
		msg = e.Title
	}
	if msg == "" && e.ErrorData != nil {
		msg = e.ErrorData.Details
	}
	info.Message = truncate(strings.ToValidUTF8(msg, "\uFFFD"), MaxErrorMessageLen)
	return info
}

// truncate cuts s to at most n characters without splitting one (the
// schema counts characters).
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}

func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// jsonErrorField locates a decoding error as a JSON pointer into raw
// (prefixed with base). encoding/json names a mistyped field without
// array indices, so the pointer is recovered from the error's offset.
func jsonErrorField(base string, raw []byte, err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return base + pointerAt(raw, te.Offset)
	}
	return base
}

// pointerAt is the JSON pointer of the value raw's tokenizer has just
// read when it reaches offset. raw is valid JSON up to there (the caller
// got a type error, not a syntax error, at offset).
func pointerAt(raw []byte, offset int64) string {
	type frame struct {
		array     bool
		index     int
		key       string
		expectKey bool
	}
	var stack []frame
	path := func() string {
		var sb strings.Builder
		for _, f := range stack {
			sb.WriteByte('/')
			if f.array {
				sb.WriteString(strconv.Itoa(f.index))
			} else {
				sb.WriteString(pointerEscape(f.key))
			}
		}
		return sb.String()
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return path()
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			if n := len(stack); n > 0 && !stack[n-1].array {
				stack[n-1].expectKey = true
			}
			if dec.InputOffset() >= offset {
				return path()
			}
			continue
		}
		if n := len(stack); n > 0 {
			top := &stack[n-1]
			switch {
			case top.array:
				top.index++
			case top.expectKey:
				top.key, _ = tok.(string)
				top.expectKey = false
				continue
			}
		}
		// tok starts a value at path().
		if dec.InputOffset() >= offset {
			return path()
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, frame{array: d == '[', index: -1, expectKey: d == '{'})
			continue
		}
		if n := len(stack); n > 0 && !stack[n-1].array {
			stack[n-1].expectKey = true
		}
	}
}

func jsonErrorReason(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("must be a JSON %s, got %s", jsonType(te.Type.String()), te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON at byte %d: %s", se.Offset, se.Error())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "not valid JSON: unexpected end of input"
	}
	return "not valid JSON: " + err.Error()
}

func jsonType(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "array"
	case strings.HasPrefix(goType, "map[") || strings.Contains(goType, "."):
		return "object"
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "float"):
		return "number"
	case goType == "bool":
		return "boolean"
	}
	return goType
}

// webhookRecipient turns Meta's recipient_id (the number's digits,
// without "+") into E.164. Meta is the authority on its own recipients:
// the number it delivered to exists, whatever libphonenumber's metadata
// (which may lag behind a new numbering range) says, so the region check
// of ingest's way in (phone.Valid) does not apply. The format is stricter
// than ingest's instead: only digits (an optional leading "+"), no
// separators, no letters, in the shape of E.164, which is then the
// number as Meta wrote it (normalising digits-only input with
// libphonenumber gives the same digits back, or refuses it). false: the
// id cannot be an E.164 number at all.
func webhookRecipient(rid string) (string, bool) {
	digits := strings.TrimPrefix(rid, "+")
	if len(digits) < 7 || len(digits) > 15 || digits[0] == '0' {
		return "", false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return "", false
		}
	}
	return "+" + digits, true
}

package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/internal/jsonpass"
	"github.com/wanotify/wanotify/pkg/internal/strictjson"
	"github.com/wanotify/wanotify/pkg/sdk"
)

// wireRequest is the JSON body of POST /v1/notifications. Times stay
// strings here so a bad one is reported with its field name. There is
// deliberately no tenant field: the tenant comes from the API key.
type wireRequest struct {
	IdempotencyKey string            `json:"idempotency_key"`
	SourceService  string            `json:"source_service"`
	EventType      string            `json:"event_type"`
	UserID         string            `json:"user_id"`
	EventTime      string            `json:"event_time"`
	Recipient      string            `json:"recipient"`
	Sender         string            `json:"sender"`
	Template       *wireTemplate     `json:"template"`
	Text           *wireText         `json:"text"`
	ExpiresAt      string            `json:"expires_at"`
	TTL            *int64            `json:"ttl"`
	Metadata       map[string]string `json:"metadata"`
	Lane           string            `json:"lane"`
}

// wireRequestRaw is wireRequest with template and text left raw. It is
// decoded only to locate an error: encoding/json names an unknown field
// without the object it sits in.
type wireRequestRaw struct {
	IdempotencyKey string            `json:"idempotency_key"`
	SourceService  string            `json:"source_service"`
	EventType      string            `json:"event_type"`
	UserID         string            `json:"user_id"`
	EventTime      string            `json:"event_time"`
	Recipient      string            `json:"recipient"`
	Sender         string            `json:"sender"`
	Template       json.RawMessage   `json:"template"`
	Text           json.RawMessage   `json:"text"`
	ExpiresAt      string            `json:"expires_at"`
	TTL            *int64            `json:"ttl"`
	Metadata       map[string]string `json:"metadata"`
	Lane           string            `json:"lane"`
}

type wireTemplate struct {
	Name       string   `json:"name"`
	Language   string   `json:"language"`
	Parameters []string `json:"parameters"`
}

type wireText struct {
	Body       string `json:"body"`
	PreviewURL bool   `json:"preview_url"`
}

type wireBatch struct {
	Notifications []json.RawMessage `json:"notifications"`
}

// DecodeRequest parses one request body into an sdk.Request. Unknown
// fields, values of the wrong type, malformed times and a bad ttl are
// reported as a *contract.ValidationError naming the field; the rules on
// the values themselves are sdk.Build's.
func DecodeRequest(raw []byte) (sdk.Request, error) {
	r, fields, err := decodeRequest(raw)
	if err != nil {
		return r, err
	}
	if len(fields) > 0 {
		return r, &contract.ValidationError{Schema: sdk.RequestSchema, Fields: fields}
	}
	return r, nil
}

// decodeRequest returns a structural error (the body cannot be read as a
// request at all) or the request with the field errors found while
// converting it, which the caller reports together with sdk.Build's.
// The body is read in one pass (fastRequest) when it can be, else by
// encoding/json, which alone judges bodies that are wrong.
func decodeRequest(raw []byte) (sdk.Request, []contract.FieldError, error) {
	w, ok := fastRequest(raw)
	if !ok {
		if err := decodeStrict(raw, &w, ""); err != nil {
			return sdk.Request{}, nil, locate(raw, err)
		}
	}
	r, fields := w.request()
	return r, fields, nil
}

// request converts a decoded body into an sdk.Request, with an error for
// each time or ttl that cannot be one.
func (w *wireRequest) request() (sdk.Request, []contract.FieldError) {
	var fields []contract.FieldError
	bad := func(field, reason string) { fields = append(fields, contract.FieldError{Field: field, Reason: reason}) }
	r := sdk.Request{
		IdempotencyKey: w.IdempotencyKey,
		SourceService:  w.SourceService,
		EventType:      w.EventType,
		UserID:         w.UserID,
		Recipient:      w.Recipient,
		Sender:         w.Sender,
		Lane:           w.Lane,
		Metadata:       w.Metadata,
	}
	if t := w.Template; t != nil {
		r.Template = &contract.Template{Name: t.Name, Language: t.Language, Parameters: t.Parameters}
	}
	if t := w.Text; t != nil {
		r.Text = &contract.Text{Body: t.Body, PreviewURL: t.PreviewURL}
	}
	if w.EventTime != "" {
		t, err := time.Parse(time.RFC3339Nano, w.EventTime)
		if err != nil {
			bad("/event_time", "must be an RFC 3339 date-time such as 2026-11-28T10:00:00Z")
		} else {
			r.EventTime = t
		}
	}
	if w.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339Nano, w.ExpiresAt)
		if err != nil {
			bad("/expires_at", "must be an RFC 3339 date-time such as 2026-11-28T10:05:00Z")
		} else {
			r.ExpiresAt = t
		}
	}
	if w.TTL != nil {
		switch ttl := *w.TTL; {
		case ttl < 1:
			bad("/ttl", "must be at least 1 second")
		case ttl > int64(sdk.MaxTTL/time.Second):
			bad("/ttl", "must be at most 2592000 seconds (30 days)")
		default:
			r.TTL = time.Duration(ttl) * time.Second
		}
	}
	return r, fields
}

// locate turns a decoding error into one that names the field by its
// full path, decoding the body again member by member. Only bodies that
// failed pay for it.
func locate(raw []byte, err error) error {
	var w wireRequestRaw
	if lerr := decodeStrict(raw, &w, ""); lerr != nil {
		return lerr
	}
	if present(w.Template) {
		if lerr := decodeStrict(w.Template, &wireTemplate{}, "/template"); lerr != nil {
			return lerr
		}
	}
	if present(w.Text) {
		if lerr := decodeStrict(w.Text, &wireText{}, "/text"); lerr != nil {
			return lerr
		}
	}
	return err
}

// present reports whether a raw member was given and not null.
func present(m json.RawMessage) bool {
	return len(m) > 0 && !bytes.Equal(m, []byte("null"))
}

// decodeStrict decodes one JSON object into v, rejecting unknown fields
// and trailing data. Errors are *contract.ValidationError naming the field
// by JSON pointer under prefix.
//
// Before encoding/json, strictjson refuses what it would let through
// silently: a member name given twice (encoding/json keeps the last) and
// strings that are not UTF-8 text (encoding/json makes them U+FFFD).
func decodeStrict(raw []byte, v any, prefix string) error {
	p, ok := strictjson.Check(raw)
	if ok {
		// encoding/json also takes "Recipient" for recipient: two names
		// that differ only in case are one member given twice.
		p, ok = strictjson.CheckFolded(raw)
	}
	if !ok {
		return &contract.ValidationError{Schema: sdk.RequestSchema, Fields: []contract.FieldError{{Field: prefix + p.Pointer, Reason: p.Reason}}}
	}
	return decodeJSON(raw, v, prefix)
}

// decodeEnvelope is decodeStrict for a batch body read with its items
// raw: only the envelope's own member names are checked here, each item
// is checked when it is decoded, with its own answer.
func decodeEnvelope(raw []byte, b *wireBatch) error {
	if p, ok := strictjson.CheckTop(raw); !ok {
		return &contract.ValidationError{Schema: sdk.RequestSchema, Fields: []contract.FieldError{{Field: p.Pointer, Reason: p.Reason}}}
	}
	return decodeJSON(raw, b, "")
}

func decodeJSON(raw []byte, v any, prefix string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fieldError(err, prefix)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &contract.ValidationError{Schema: sdk.RequestSchema, Fields: []contract.FieldError{{Field: prefix, Reason: "unexpected data after the JSON object"}}}
	}
	return nil
}

func fieldError(err error, prefix string) error {
	fe := contract.FieldError{Field: prefix}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		fe.Reason = "not valid JSON: " + se.Error()
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		fe.Reason = "not valid JSON: unexpected end of input"
	case errors.As(err, &te):
		if te.Field == "" {
			fe.Reason = "must be a JSON object"
			break
		}
		fe.Field = prefix + "/" + strings.ReplaceAll(te.Field, ".", "/")
		fe.Reason = "must be " + jsonKind(te.Type)
		if fe.Field == "/ttl" {
			fe.Reason = "must be a whole number of seconds"
		}
		if fe.Field == "/metadata" {
			fe.Reason = "must be an object of strings"
		}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		fe.Field = prefix + "/" + name
		fe.Reason = "unknown field"
		if prefix == "" && name == "tenant" {
			fe.Reason = "is not accepted: the tenant is the one of the API key"
		}
	default:
		fe.Reason = "cannot be decoded: " + err.Error()
	}
	return &contract.ValidationError{Schema: sdk.RequestSchema, Fields: []contract.FieldError{fe}}
}

func jsonKind(t reflect.Type) string {
	if t == nil {
		return "of another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t == reflect.TypeFor[json.RawMessage]() {
			return "a JSON value"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "of another type"
}

// batchItem is one decoded item of a batch: its request and the field
// errors found converting it, or the error that kept it from decoding.
type batchItem struct {
	req    sdk.Request
	fields []contract.FieldError
	err    error
}

// wireBatchRequests is a batch body read in one pass, every item straight
// into its request shape.
type wireBatchRequests struct {
	Notifications []wireRequest `json:"notifications"`
}

// decodeBatch parses a batch body into its items. A body whose items all
// decode (the usual case) is read once, straight into the items' request
// shape, in one pass (fastBatch) when it can be. Otherwise it is read
// again item by item (decodeBatchEach), so that each bad item gets its
// own answer and the others are kept; both ways give the same items.
func decodeBatch(raw []byte) ([]batchItem, error) {
	b, ok := fastBatch(raw)
	if !ok && decodeStrict(raw, &b, "") != nil {
		return decodeBatchEach(raw)
	}
	if err := checkBatchSize(len(b.Notifications)); err != nil {
		return nil, err
	}
	items := make([]batchItem, len(b.Notifications))
	for i := range b.Notifications {
		items[i].req, items[i].fields = b.Notifications[i].request()
	}
	return items, nil
}

// decodeBatchEach parses a batch body into its raw items, then decodes
// each on its own.
func decodeBatchEach(raw []byte) ([]batchItem, error) {
	var b wireBatch
	if err := decodeEnvelope(raw, &b); err != nil {
		return nil, err
	}
	if err := checkBatchSize(len(b.Notifications)); err != nil {
		return nil, err
	}
	items := make([]batchItem, len(b.Notifications))
	for i, item := range b.Notifications {
		items[i].req, items[i].fields, items[i].err = decodeRequest(item)
	}
	return items, nil
}

func checkBatchSize(n int) error {
	switch {
	case n == 0:
		return &contract.ValidationError{Schema: sdk.RequestSchema, Fields: []contract.FieldError{{Field: "/notifications", Reason: "at least one notification is required"}}}
	case n > MaxBatchItems:
		return &contract.ValidationError{Schema: sdk.RequestSchema, Fields: []contract.FieldError{{Field: "/notifications", Reason: "at most 1000 notifications per batch"}}}
	}
	return nil
}

// The one pass.
//
// encoding/json reads a body twice (its scanner, then its decoder) and
// through reflection, at several times the cost of reading it once; it
// was about a tenth of ingest's CPU. fastRequest and fastBatch read the
// bodies callers really send in one pass over the bytes (with
// pkg/internal/jsonpass), straight into wireRequest and
// wireBatchRequests, and may only ever accept: whatever they are not sure
// about goes to decodeStrict, which then accepts it after all or names
// what is wrong, so every refusal and its wording stay encoding/json's.
// What they accept, decodeStrict accepts too and decodes to the same
// value; FuzzFastDecodeAgrees holds them to that.
//
// What the one pass takes:
//
//   - objects whose members are all fields of their type, spelled exactly
//     (encoding/json would also match "Recipient" or "ſender" to a field),
//     without escapes, each at most once (encoding/json merges a repeated
//     member into the value decoded before it; the slow path refuses it),
//     metadata keys too;
//   - values of the JSON type of their field, or null, which leaves the
//     field at its zero value as it does in encoding/json for a member
//     seen once;
//   - ttl only as an integer in plain form of at most 18 digits (1.0 and
//     1e3 are refused by encoding/json for an integer);
//   - strings without escapes in valid UTF-8 as they are, other strings
//     as encoding/json itself decodes them, except strings that are not
//     UTF-8 text (invalid bytes, escaped surrogates), which the slow path
//     refuses (strictjson);
//   - nothing but white space after the body.
//
// Every string is a copy: the body's buffer is reused once it is decoded.

// fastRequest reads one request body in one pass. ok is false for any
// body it leaves to decodeStrict (see above).
func fastRequest(raw []byte) (w wireRequest, ok bool) {
	d := fastDecoder{jsonpass.NewStrictReader(raw)}
	if !d.request(&w) || !d.End() {
		return wireRequest{}, false
	}
	return w, true
}

// fastBatch reads a batch body in one pass, every item straight into its
// request shape. ok is false for any body it leaves to decodeStrict.
func fastBatch(raw []byte) (b wireBatchRequests, ok bool) {
	d := fastDecoder{jsonpass.NewStrictReader(raw)}
	_, ok = d.Object(batchNames, func(int) bool {
		if d.Null() {
			return true
		}
		b.Notifications = []wireRequest{}
		return d.Array(func() bool {
			b.Notifications = append(b.Notifications, wireRequest{})
			return d.request(&b.Notifications[len(b.Notifications)-1])
		})
	})
	if !ok || !d.End() {
		return wireBatchRequests{}, false
	}
	return b, true
}

// fastDecoder reads the JSON of one body with jsonpass, which returns
// false for input it does not decode exactly as encoding/json would, or
// that is not valid JSON.
type fastDecoder struct {
	jsonpass.Reader
}

// ttlDigits is the most digits of a ttl the one pass takes: every such
// integer fits in an int64.
const ttlDigits = 18

// The member names of each object, in the order the decoders below
// switch on them; TestFastDecodeKnowsEveryField holds them to the
// types' json tags.
var (
	batchNames    = []string{"notifications"}
	requestNames  = []string{"idempotency_key", "source_service", "event_type", "user_id", "event_time", "recipient", "sender", "template", "text", "expires_at", "ttl", "metadata", "lane"}
	templateNames = []string{"name", "language", "parameters"}
	textNames     = []string{"body", "preview_url"}
)

// The fields are decoded in place into a zero value; on false the caller
// drops the whole value. A null member leaves its field at zero.

func (d *fastDecoder) request(w *wireRequest) bool {
	_, ok := d.Object(requestNames, func(i int) bool {
		if d.Null() {
			return true
		}
		switch i {
		case 0:
			return d.string(&w.IdempotencyKey)
		case 1:
			return d.string(&w.SourceService)
		case 2:
			return d.string(&w.EventType)
		case 3:
			return d.string(&w.UserID)
		case 4:
			return d.string(&w.EventTime)
		case 5:
			return d.string(&w.Recipient)
		case 6:
			return d.string(&w.Sender)
		case 7:
			w.Template = new(wireTemplate)
			return d.template(w.Template)
		case 8:
			w.Text = new(wireText)
			return d.text(w.Text)
		case 9:
			return d.string(&w.ExpiresAt)
		case 10:
			ttl, ok := d.Int(ttlDigits)
			w.TTL = new(int64(ttl))
			return ok
		case 11:
			m, ok := d.StringMap()
			w.Metadata = m
			return ok
		default:
			return d.string(&w.Lane)
		}
	})
	return ok
}

func (d *fastDecoder) template(t *wireTemplate) bool {
	_, ok := d.Object(templateNames, func(i int) bool {
		if d.Null() {
			return true
		}
		switch i {
		case 0:
			return d.string(&t.Name)
		case 1:
			return d.string(&t.Language)
		default:
			p, ok := d.Strings()
			t.Parameters = p
			return ok
		}
	})
	return ok
}

func (d *fastDecoder) text(t *wireText) bool {
	_, ok := d.Object(textNames, func(i int) bool {
		if d.Null() {
			return true
		}
		if i == 0 {
			return d.string(&t.Body)
		}
		v, ok := d.Bool()
		t.PreviewURL = v
		return ok
	})
	return ok
}

func (d *fastDecoder) string(out *string) bool {
	s, ok := d.String()
	*out = s
	return ok
}

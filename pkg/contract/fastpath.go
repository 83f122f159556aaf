package contract

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/wanotify/wanotify/pkg/internal/jsonpass"
	"github.com/wanotify/wanotify/schemas"
)

// The fast path.
//
// Running the JSON Schema validator on every record costs tens of
// microseconds and well over a hundred allocations, so every codec
// function first tries a cheap judgement in Go that implements the
// constraints of notification-requested.v1.json and
// notification-status.v1.json. It may only ever accept: whatever it is
// not sure about goes through the schema validator exactly as before,
// which then produces the error naming the field (or accepts after all).
// The schema therefore stays the only judge of what is refused and of how
// the refusal reads, and the fast path never accepts a document the schema
// refuses; fuzz_test.go and fastpath_test.go hold it to that, and to
// decoding every document to the same value as the schema path.
//
// Decoding is one pass over the bytes (with pkg/internal/jsonpass),
// driven by the member names the schema defines:
//
//   - every member must be one the schema names, spelled exactly
//     (encoding/json would also match "Recipient" or "ſender" to a field;
//     the schema refuses those), without escapes, at most once
//     (encoding/json merges a repeated object member into the value decoded
//     before it, while the schema sees only the last one);
//   - every value must have the JSON type the schema requires: no null
//     (encoding/json cannot tell it from an absent member), integers only
//     in plain form, date-times only in strict RFC 3339 form (a subset of
//     the schema's date-time format);
//   - values decode as encoding/json decodes them: strings without escapes
//     and in valid UTF-8 are taken as they are, other strings go through
//     encoding/json, time stamps through time.Time's JSON decoder (the one
//     encoding/json calls), integers as strconv.ParseInt reads them.
//
// The typed checks then enforce the remaining constraints on the value and
// on which members were present (required members, lengths in code points,
// patterns, enums, const, template-xor-text, emitter-dependent members,
// metadata bounds).
//
// Encode marshals with encoding/json, then applies the same typed checks to
// the value, with presence given by what encoding/json writes (omitempty);
// encoding/json writes time stamps only in RFC 3339 form and fails on the
// ones that have none.

// Each fast path is bound to the exact bytes of the schema it implements.
// If a schema file changes, the fast path for it switches off and every
// document goes through the schema validator until the checks here have
// been reviewed against the new schema and the digest updated
// (TestFastPathIsPinnedToTheSchemas fails until then).
const (
	notificationSchemaDigest = "3aede6657e3aa7bcbfbf4b8f4afe10d3f00b6eec8b6ae52e12fb2f2491f67c30"
	statusSchemaDigest       = "6e1dc81fab10d1fcd835785229fce99f017b8cddddd47b6fdef3cfd298ccbd68"
)

var (
	notificationFastPath = schemaDigest(schemas.NotificationRequestedV1) == notificationSchemaDigest
	statusFastPath       = schemaDigest(schemas.NotificationStatusV1) == statusSchemaDigest
)

func schemaDigest(name string) string {
	raw, err := schemas.FS.ReadFile(name)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// fieldSet holds which members of an object were present, one bit per
// member index.
type fieldSet uint32

func (f fieldSet) has(i int) bool         { return f&(1<<i) != 0 }
func (f fieldSet) hasAll(m fieldSet) bool { return f&m == m }

func (f *fieldSet) set(i int, present bool) {
	if present {
		*f |= 1 << i
	}
}

func fields(idx ...int) (f fieldSet) {
	for _, i := range idx {
		f |= 1 << i
	}
	return f
}

// present is which members a document and its nested objects carried.
type present struct {
	top fieldSet
	sub [2]fieldSet // by slot
}

// The members of notifications.requested, by bit.
const (
	nSchemaVersion = iota
	nNotificationID
	nIdempotencyKey
	nTenant
	nSourceService
	nEventType
	nUserID
	nEventTime
	nRecipient
	nSender
	nTemplate
	nText
	nExpiresAt
	nCreatedAt
	nMetadata
	nLane
)

const (
	tName = iota
	tLanguage
	tParameters
)

const (
	xBody = iota
	xPreviewURL
)

// Slots of present.sub.
const (
	slotTemplate = 0
	slotText     = 1
	slotError    = 0
)

var (
	notificationMembers = []string{
		nSchemaVersion:  "schema_version",
		nNotificationID: "notification_id",
		nIdempotencyKey: "idempotency_key",
		nTenant:         "tenant",
		nSourceService:  "source_service",
		nEventType:      "event_type",
		nUserID:         "user_id",
		nEventTime:      "event_time",
		nRecipient:      "recipient",
		nSender:         "sender",
		nTemplate:       "template",
		nText:           "text",
		nExpiresAt:      "expires_at",
		nCreatedAt:      "created_at",
		nMetadata:       "metadata",
		nLane:           "lane",
	}
	templateMembers = []string{tName: "name", tLanguage: "language", tParameters: "parameters"}
	textMembers     = []string{xBody: "body", xPreviewURL: "preview_url"}

	notificationRequired = fields(nSchemaVersion, nNotificationID, nIdempotencyKey, nTenant, nSourceService,
		nEventType, nRecipient, nSender, nCreatedAt)
	templateRequired = fields(tName, tLanguage)
	textRequired     = fields(xBody)
)

// The members of notifications.status, by bit.
const (
	sSchemaVersion = iota
	sEventID
	sNotificationID
	sProviderMessageID
	sProvider
	sTenant
	sEventType
	sSender
	sRecipient
	sStatus
	sAttempt
	sRetryTier
	sDueAt
	sError
	sOccurredAt
	sEmitter
	sRoute
)

const (
	eCode = iota
	eMessage
	eRetryable
)

var (
	statusMembers = []string{
		sSchemaVersion:     "schema_version",
		sEventID:           "event_id",
		sNotificationID:    "notification_id",
		sProviderMessageID: "provider_message_id",
		sProvider:          "provider",
		sTenant:            "tenant",
		sEventType:         "event_type",
		sSender:            "sender",
		sRecipient:         "recipient",
		sStatus:            "status",
		sAttempt:           "attempt",
		sRetryTier:         "retry_tier",
		sDueAt:             "due_at",
		sError:             "error",
		sOccurredAt:        "occurred_at",
		sEmitter:           "emitter",
		sRoute:             "route",
	}
	errorMembers = []string{eCode: "code", eMessage: "message", eRetryable: "retryable"}

	statusRequired = fields(sSchemaVersion, sEventID, sRecipient, sStatus, sOccurredAt, sEmitter)
	errorRequired  = fields(eCode, eRetryable)
)

// fastDecodeNotification returns the notification and true only if raw
// is certainly valid; false means "ask the schema".
func fastDecodeNotification(raw []byte) (*Notification, bool) {
	d := decoder{jsonpass.NewStrictReader(raw)}
	n := new(Notification)
	var p present
	top, ok := d.object(notificationMembers, func(i int) (ok bool) {
		switch i {
		case nSchemaVersion:
			n.SchemaVersion, ok = d.Int(intDigits)
		case nNotificationID:
			n.ID, ok = d.String()
		case nIdempotencyKey:
			n.IdempotencyKey, ok = d.String()
		case nTenant:
			n.Tenant, ok = d.String()
		case nSourceService:
			n.SourceService, ok = d.String()
		case nEventType:
			n.EventType, ok = d.String()
		case nUserID:
			n.UserID, ok = d.String()
		case nEventTime:
			n.EventTime, ok = d.timePtr()
		case nRecipient:
			n.Recipient, ok = d.String()
		case nSender:
			n.Sender, ok = d.String()
		case nTemplate:
			t := new(Template)
			n.Template = t
			p.sub[slotTemplate], ok = d.object(templateMembers, func(j int) (ok bool) {
				switch j {
				case tName:
					t.Name, ok = d.String()
				case tLanguage:
					t.Language, ok = d.String()
				case tParameters:
					t.Parameters, ok = d.Strings()
				}
				return ok
			})
		case nText:
			x := new(Text)
			n.Text = x
			p.sub[slotText], ok = d.object(textMembers, func(j int) (ok bool) {
				switch j {
				case xBody:
					x.Body, ok = d.String()
				case xPreviewURL:
					x.PreviewURL, ok = d.Bool()
				}
				return ok
			})
		case nExpiresAt:
			n.ExpiresAt, ok = d.timePtr()
		case nCreatedAt:
			n.CreatedAt, ok = d.time()
		case nMetadata:
			n.Metadata, ok = d.StringMap()
		case nLane:
			n.Lane, ok = d.String()
		}
		return ok
	})
	if !ok || !d.End() {
		return nil, false
	}
	p.top = top
	if !notificationValid(n, p) {
		return nil, false
	}
	return n, true
}

// fastDecodeStatusEvent is fastDecodeNotification for status events.
func fastDecodeStatusEvent(raw []byte) (*StatusEvent, bool) {
	d := decoder{jsonpass.NewStrictReader(raw)}
	e := new(StatusEvent)
	var p present
	top, ok := d.object(statusMembers, func(i int) (ok bool) {
		switch i {
		case sSchemaVersion:
			e.SchemaVersion, ok = d.Int(intDigits)
		case sEventID:
			e.EventID, ok = d.String()
		case sNotificationID:
			e.NotificationID, ok = d.String()
		case sProviderMessageID:
			e.ProviderMessageID, ok = d.String()
		case sProvider:
			e.Provider, ok = d.String()
		case sTenant:
			e.Tenant, ok = d.String()
		case sEventType:
			e.EventType, ok = d.String()
		case sSender:
			e.Sender, ok = d.String()
		case sRecipient:
			e.Recipient, ok = d.String()
		case sStatus:
			var s string
			s, ok = d.String()
			e.Status = Status(s)
		case sAttempt:
			e.Attempt, ok = d.Int(intDigits)
		case sRetryTier:
			e.RetryTier, ok = d.String()
		case sDueAt:
			e.DueAt, ok = d.timePtr()
		case sError:
			x := new(ErrorInfo)
			e.Error = x
			p.sub[slotError], ok = d.object(errorMembers, func(j int) (ok bool) {
				switch j {
				case eCode:
					x.Code, ok = d.String()
				case eMessage:
					x.Message, ok = d.String()
				case eRetryable:
					x.Retryable, ok = d.Bool()
				}
				return ok
			})
		case sOccurredAt:
			e.OccurredAt, ok = d.time()
		case sEmitter:
			e.Emitter, ok = d.String()
		case sRoute:
			e.Route, ok = d.String()
		}
		return ok
	})
	if !ok || !d.End() {
		return nil, false
	}
	p.top = top
	if !statusEventValid(e, p) {
		return nil, false
	}
	return e, true
}

// encodedNotification is the presence encoding/json gives n's members:
// the ones without omitempty always, the others when not empty.
func encodedNotification(n *Notification) present {
	p := present{top: notificationRequired}
	p.top.set(nUserID, n.UserID != "")
	p.top.set(nEventTime, n.EventTime != nil)
	p.top.set(nTemplate, n.Template != nil)
	p.top.set(nText, n.Text != nil)
	p.top.set(nExpiresAt, n.ExpiresAt != nil)
	p.top.set(nMetadata, len(n.Metadata) > 0)
	p.top.set(nLane, n.Lane != "")
	if n.Template != nil {
		p.sub[slotTemplate] = templateRequired
		p.sub[slotTemplate].set(tParameters, len(n.Template.Parameters) > 0)
	}
	if n.Text != nil {
		p.sub[slotText] = textRequired
		p.sub[slotText].set(xPreviewURL, n.Text.PreviewURL)
	}
	return p
}

// encodedStatusEvent is encodedNotification for status events.
func encodedStatusEvent(e *StatusEvent) present {
	p := present{top: statusRequired}
	p.top.set(sNotificationID, e.NotificationID != "")
	p.top.set(sProviderMessageID, e.ProviderMessageID != "")
	p.top.set(sProvider, e.Provider != "")
	p.top.set(sTenant, e.Tenant != "")
	p.top.set(sEventType, e.EventType != "")
	p.top.set(sSender, e.Sender != "")
	p.top.set(sAttempt, e.Attempt != 0)
	p.top.set(sRetryTier, e.RetryTier != "")
	p.top.set(sRoute, e.Route != "")
	p.top.set(sDueAt, e.DueAt != nil)
	p.top.set(sError, e.Error != nil)
	if e.Error != nil {
		p.sub[slotError] = errorRequired
		p.sub[slotError].set(eMessage, e.Error.Message != "")
	}
	return p
}

// notificationValid applies the schema's constraints to a decoded (or
// about to be encoded) notification whose members' presence is p.
// Date-time formats are judged while decoding (decoder.time) or by
// encoding/json's time encoding, which only writes RFC 3339 (encode).
func notificationValid(n *Notification, p present) bool {
	top := p.top
	if !top.hasAll(notificationRequired) {
		return false
	}
	if n.SchemaVersion != 1 ||
		!runesIn(n.ID, 1, 64) || !notificationIDSyntax(n.ID) ||
		!runesIn(n.IdempotencyKey, 1, 256) || !IsText(n.IdempotencyKey) ||
		!runesIn(n.Tenant, 1, 64) || !tenantSyntax(n.Tenant) ||
		!runesIn(n.SourceService, 1, 128) || !IsText(n.SourceService) ||
		!runesIn(n.EventType, 1, 64) || !eventTypeSyntax(n.EventType) ||
		!runesIn(n.UserID, 0, 128) || !IsText(n.UserID) ||
		!e164(n.Recipient) ||
		!runesIn(n.Sender, 1, 64) || !IsText(n.Sender) {
		return false
	}
	// enum: a lane, when present, is one of the three (an empty string is
	// not in the enum either).
	if top.has(nLane) && !laneEnum(n.Lane) {
		return false
	}
	// oneOf: exactly one of template and text.
	if top.has(nTemplate) == top.has(nText) {
		return false
	}
	if top.has(nTemplate) {
		t := n.Template
		if t == nil || !p.sub[slotTemplate].hasAll(templateRequired) ||
			!runesIn(t.Name, 1, 512) || !templateNameSyntax(t.Name) ||
			!runesIn(t.Language, 2, 15) || !languageSyntax(t.Language) ||
			len(t.Parameters) > 20 {
			return false
		}
		for _, p := range t.Parameters {
			if !runesIn(p, 0, 1024) || !IsText(p) {
				return false
			}
		}
	}
	if top.has(nText) {
		x := n.Text
		if x == nil || !p.sub[slotText].hasAll(textRequired) || !runesIn(x.Body, 1, 4096) || !IsText(x.Body) {
			return false
		}
	}
	if top.has(nMetadata) {
		if len(n.Metadata) > 32 {
			return false
		}
		for k, v := range n.Metadata {
			if !runesIn(k, 1, 64) || !runesIn(v, 0, 512) || !IsText(k) || !IsText(v) {
				return false
			}
		}
	}
	return true
}

// statusEventValid is notificationValid for status events.
func statusEventValid(e *StatusEvent, p present) bool {
	top := p.top
	if !top.hasAll(statusRequired) {
		return false
	}
	if e.SchemaVersion != 1 ||
		!runesIn(e.EventID, 1, 128) ||
		(top.has(sNotificationID) && !runesIn(e.NotificationID, 1, 64)) ||
		(top.has(sProviderMessageID) && !runesIn(e.ProviderMessageID, 1, 256)) ||
		!runesIn(e.Provider, 0, 32) ||
		!runesIn(e.Tenant, 0, 64) ||
		!runesIn(e.EventType, 0, 64) ||
		!runesIn(e.Sender, 0, 64) ||
		!e164(e.Recipient) ||
		!statusEnum(e.Status) ||
		e.Attempt < 0 || e.Attempt > 1000 ||
		!runesIn(e.RetryTier, 0, 32) {
		return false
	}
	if top.has(sRoute) && e.Route != RoutePrimary && e.Route != RouteFailover {
		return false
	}
	if top.has(sError) {
		x := e.Error
		if x == nil || !p.sub[slotError].hasAll(errorRequired) ||
			!runesIn(x.Code, 1, 64) || !runesIn(x.Message, 0, 2048) {
			return false
		}
	}
	switch e.Emitter {
	case EmitterDispatcher:
		return top.has(sNotificationID)
	case EmitterWebhook:
		return top.has(sProviderMessageID)
	case EmitterIngest, EmitterNotifyctl:
		return true
	}
	return false
}

// laneEnum is the schema's lane enum: exactly the names in lanes.All (a
// test holds the three together), spelled exactly (lanes.Parse would also
// take surrounding spaces, which the schema refuses).
func laneEnum(s string) bool {
	return s == "critical" || s == "transactional" || s == "bulk"
}

func statusEnum(s Status) bool {
	switch s {
	case StatusAccepted, StatusRetryScheduled, StatusFailed, StatusDeadLettered, StatusDuplicate,
		StatusOutcomeUnknown, StatusExpired, StatusSent, StatusDelivered, StatusRead:
		return true
	}
	return false
}

// runesIn reports whether s is min to max characters long, counted as
// the schema counts them (code points; encoding/json writes each byte of
// an invalid UTF-8 sequence as one U+FFFD, which utf8 counts the same way).
func runesIn(s string, min, max int) bool {
	if len(s) <= max && (min == 0 || (min == 1 && len(s) > 0)) {
		return true
	}
	n := utf8.RuneCountInString(s)
	return n >= min && n <= max
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isAlnum(c byte) bool { return isDigit(c) || isLower(c) || (c >= 'A' && c <= 'Z') }

// e164: ^\+[1-9][0-9]{6,14}$
func e164(s string) bool {
	if len(s) < 8 || len(s) > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9' {
		return false
	}
	for i := 2; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// notificationIDSyntax: ^[A-Za-z0-9._:-]+$
func notificationIDSyntax(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != ':' && c != '-' {
			return false
		}
	}
	return true
}

// tenantSyntax: ^[a-z0-9][a-z0-9_-]*$
func tenantSyntax(s string) bool {
	if s == "" || !(isLower(s[0]) || isDigit(s[0])) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLower(c) && !isDigit(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// eventTypeSyntax: ^[a-z0-9][a-z0-9_.-]*$
func eventTypeSyntax(s string) bool {
	if s == "" || !(isLower(s[0]) || isDigit(s[0])) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLower(c) && !isDigit(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// templateNameSyntax: ^[a-z0-9_]+$
func templateNameSyntax(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLower(c) && !isDigit(c) && c != '_' {
			return false
		}
	}
	return true
}

// languageSyntax: ^[a-z]{2,3}([_-][A-Za-z0-9]{2,8})*$
func languageSyntax(s string) bool {
	i := 0
	for i < len(s) && isLower(s[i]) {
		i++
	}
	if i < 2 || i > 3 {
		return false
	}
	for i < len(s) {
		if s[i] != '_' && s[i] != '-' {
			return false
		}
		i++
		j := i
		for j < len(s) && isAlnum(s[j]) {
			j++
		}
		if j-i < 2 || j-i > 8 {
			return false
		}
		i = j
	}
	return true
}

// dateTime accepts YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM) with every
// number in range and the day existing in its month: a subset of both
// the schema's date-time format and what time.Time decodes.
func dateTime(b []byte) bool {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return false
	}
	for _, i := range [...]int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18} {
		if !isDigit(b[i]) {
			return false
		}
	}
	year := int(b[0]-'0')*1000 + int(b[1]-'0')*100 + int(b[2]-'0')*10 + int(b[3]-'0')
	month, day := num2(b[5:]), num2(b[8:])
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		num2(b[11:]) > 23 || num2(b[14:]) > 59 || num2(b[17:]) > 59 {
		return false
	}
	rest := b[19:]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && isDigit(rest[n]) {
			n++
		}
		if n == 1 {
			return false
		}
		rest = rest[n:]
	}
	if len(rest) == 1 {
		return rest[0] == 'Z'
	}
	return len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && isDigit(rest[1]) && isDigit(rest[2]) &&
		rest[3] == ':' && isDigit(rest[4]) && isDigit(rest[5]) && num2(rest[1:]) <= 23 && num2(rest[4:]) <= 59
}

func num2(b []byte) int { return int(b[0]-'0')*10 + int(b[1]-'0') }

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// checkDecoded holds a value decoded on the schema path to the schema.
// The schema judges the document, but encoding/json merges an object
// member that appears twice into the value decoded before it, where the
// schema sees only the last one, so the value can break the schema the
// document passed. typedOK is the typed checks' verdict on the value; if
// they cannot vouch for it, its encoding goes through the schema.
func checkDecoded(schemaName string, v any, typedOK bool) error {
	if typedOK {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return &ValidationError{Schema: schemaName, Fields: []FieldError{{Reason: "decoded value cannot be encoded: " + err.Error()}}}
	}
	err = ValidateJSON(schemaName, b)
	var ve *ValidationError
	if errors.As(err, &ve) {
		fields := append([]FieldError{{Reason: "members repeated in the document merge into a value the schema refuses"}}, ve.Fields...)
		return &ValidationError{Schema: schemaName, Fields: fields}
	}
	return err
}

// decoder reads the JSON of one document with jsonpass, which returns
// false for input it does not decode exactly as encoding/json would, or
// that is not valid JSON; the caller then leaves the document to the
// schema path. Date-times are the contract's own.
type decoder struct {
	jsonpass.Reader
}

// intDigits is the most digits of an integer the fast path takes.
const intDigits = 9

// object is jsonpass's Object, with the members present as a fieldSet.
func (d *decoder) object(names []string, value func(i int) bool) (fieldSet, bool) {
	got, ok := d.Object(names, value)
	return fieldSet(got), ok
}

// time decodes a date-time in strict RFC 3339 form with time.Time's JSON
// decoder, the one encoding/json calls.
func (d *decoder) time() (time.Time, bool) {
	var t time.Time
	tok, plain, ok := d.Token()
	if !ok || !plain || !dateTime(tok[1:len(tok)-1]) || t.UnmarshalJSON(tok) != nil {
		return time.Time{}, false
	}
	return t, true
}

func (d *decoder) timePtr() (*time.Time, bool) {
	t, ok := d.time()
	if !ok {
		return nil, false
	}
	return &t, true
}

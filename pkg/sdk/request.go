package sdk

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/lanes"

	"github.com/wanotify/wanotify/pkg/phone"
)

// Request is one notification as a producer asks for it. The publisher,
// not the request, decides the tenant; everything else the request may
// leave empty has a documented default.
//
// The fields mirror the JSON body of POST /v1/notifications (see
// schemas/openapi.yaml) and validation errors name them by the same JSON
// pointer ("/recipient", "/template/name").
type Request struct {
	// IdempotencyKey makes the notification id deterministic: the same
	// tenant and key always yield the same id, so a retried publish is
	// sent once. Empty: user id (or, without one, the recipient) + event
	// type + event time.
	IdempotencyKey string
	// SourceService names the producing service; empty: the publisher's.
	SourceService string
	// EventType classifies the notification ("otp", "invoice.reminder").
	EventType string
	// UserID is the producer's id of the person notified (optional).
	UserID string
	// EventTime is when the event happened; zero: the time of publishing.
	// It is part of the default idempotency key, so a retry that must be
	// recognised as the same notification has to repeat it.
	EventTime time.Time
	// Recipient is the WhatsApp number in international form; it is
	// normalised to E.164.
	Recipient string
	// Sender is the sender account whose rate limit applies; empty: the
	// publisher's default.
	Sender string
	// Lane asks for a priority lane (lanes.Critical, lanes.Transactional,
	// lanes.Bulk); empty: lanes.Derive(EventType) in the SDK, and in
	// ingest the template's category or else the event type. The record
	// goes to the lane's topic.
	Lane string
	// Template or Text: exactly one of them.
	Template *contract.Template
	Text     *contract.Text
	// ExpiresAt or TTL (at most one): after that moment the notification
	// is recorded as expired instead of being sent.
	ExpiresAt time.Time
	TTL       time.Duration
	// Metadata is copied to the record and the logs as is.
	Metadata map[string]string
}

// Limits of a request. They match schemas/notification-requested.v1.json;
// the fuzz tests check that anything Build accepts also passes the schema.
const (
	MaxIdempotencyKey  = 256
	MaxSourceService   = 128
	MaxEventType       = 64
	MaxUserID          = 128
	MaxSender          = 64
	MaxTemplateName    = 512
	MaxTemplateParams  = 20
	MaxTemplateParam   = 1024
	MaxTextBody        = 4096
	MaxMetadataEntries = 32
	MaxMetadataKey     = 64
	MaxMetadataValue   = 512
	// MaxTTL bounds TTL; a notification that may wait longer than the
	// topic's retention has no meaningful expiry.
	MaxTTL = 30 * 24 * time.Hour
	// DefaultClockSkew is how far in the past an expiry may lie and still
	// be accepted, because the producer's clock may run behind ours. Such a
	// notification is accepted and then recorded as expired, not rejected.
	DefaultClockSkew = 5 * time.Second
)

// BuildOptions are the values the publisher, not the request, decides.
type BuildOptions struct {
	// SourceService is used when the request names none.
	SourceService string
	// Sender is used when the request names none.
	Sender string
	// ClockSkew overrides DefaultClockSkew when positive.
	ClockSkew time.Duration
	// PhoneRule is how strictly recipients are checked: phone.Valid (the
	// zero value) or phone.Possible (WANOTIFY_PHONE_VALIDATION=possible).
	PhoneRule phone.Rule
}

// languagePattern is the template language rule of the schema.
var languagePattern = regexp.MustCompile(`^[a-z]{2,3}([_-][A-Za-z0-9]{2,8})*$`)

// Build validates r and returns the notification it describes for tenant,
// created at now. Every problem is reported at once in a
// *contract.ValidationError (errors.Is(err, contract.ErrInvalid)) whose
// fields are JSON pointers into the request body.
//
// Build does not modify r. It is the one place where ingest and the SDK
// turn a request into a notification, so both apply the same rules and
// derive the same id.
func Build(tenant string, r *Request, o BuildOptions, now time.Time) (*contract.Notification, error) {
	var v validator
	now = now.UTC()
	n := &contract.Notification{
		SchemaVersion: contract.SchemaVersion,
		Tenant:        tenant,
		SourceService: r.SourceService,
		EventType:     r.EventType,
		UserID:        r.UserID,
		Sender:        r.Sender,
		CreatedAt:     now,
	}
	if n.SourceService == "" {
		n.SourceService = o.SourceService
	}
	if n.Sender == "" {
		n.Sender = o.Sender
	}

	if r.IdempotencyKey != "" {
		v.length("/idempotency_key", r.IdempotencyKey, 1, MaxIdempotencyKey)
	}
	v.length("/source_service", n.SourceService, 1, MaxSourceService)
	if v.length("/event_type", r.EventType, 1, MaxEventType) && !isEventType(r.EventType) {
		v.add("/event_type", "must start with a lower-case letter or digit and hold only a-z, 0-9, '_', '.' and '-'")
	}
	v.length("/user_id", r.UserID, 0, MaxUserID)
	if r.Lane != "" {
		if l, err := lanes.Parse(r.Lane); err != nil || string(l) != r.Lane {
			v.add("/lane", "must be critical, transactional or bulk")
		} else {
			n.Lane = r.Lane
		}
	}
	if n.Sender == "" {
		v.add("/sender", "is required (no default sender is configured)")
	} else {
		v.length("/sender", n.Sender, 1, MaxSender)
	}

	if r.Recipient == "" {
		v.add("/recipient", "is required")
	} else if _, ok := phone.Digits(strings.TrimSpace(r.Recipient)); !ok {
		v.add("/recipient", "may hold only digits, a leading + and spaces, dashes, dots or parentheses")
	} else if e164, err := o.PhoneRule.NormalizeCached(r.Recipient); err != nil || !isE164(e164) {
		v.add("/recipient", "must be a "+o.PhoneRule.String()+" phone number in international E.164 form (e.g. +14155550123)")
	} else {
		n.Recipient = e164
	}

	switch {
	case r.Template == nil && r.Text == nil:
		v.add("", "one of template or text is required")
	case r.Template != nil && r.Text != nil:
		v.add("/text", "template and text are mutually exclusive")
	case r.Template != nil:
		t := r.Template
		if v.length("/template/name", t.Name, 1, MaxTemplateName) && !isTemplateName(t.Name) {
			v.add("/template/name", "may hold only a-z, 0-9 and '_'")
		}
		if t.Language == "" {
			v.add("/template/language", "is required")
		} else if len(t.Language) > 15 || !languagePattern.MatchString(t.Language) {
			v.add("/template/language", "must be a language code such as en or en_US")
		}
		if len(t.Parameters) > MaxTemplateParams {
			v.add("/template/parameters", fmt.Sprintf("at most %d parameters", MaxTemplateParams))
		}
		for i, p := range t.Parameters {
			if tooLong(p, MaxTemplateParam) {
				v.add(fmt.Sprintf("/template/parameters/%d", i), fmt.Sprintf("must be at most %d characters", MaxTemplateParam))
			}
		}
		cp := *t
		if len(t.Parameters) > 0 {
			cp.Parameters = append([]string(nil), t.Parameters...)
		}
		n.Template = &cp
	default:
		v.length("/text/body", r.Text.Body, 1, MaxTextBody)
		cp := *r.Text
		n.Text = &cp
	}

	eventTime := now
	if !r.EventTime.IsZero() {
		eventTime = r.EventTime.UTC()
		if !encodableTime(eventTime) {
			v.add("/event_time", "must be between years 0 and 9999")
		}
	}
	n.EventTime = &eventTime

	skew := o.ClockSkew
	if skew <= 0 {
		skew = DefaultClockSkew
	}
	switch {
	case !r.ExpiresAt.IsZero() && r.TTL != 0:
		v.add("/ttl", "give expires_at or ttl, not both")
	case !r.ExpiresAt.IsZero():
		exp := r.ExpiresAt.UTC()
		switch {
		case !encodableTime(exp):
			v.add("/expires_at", "must be between years 0 and 9999")
		case !exp.After(now.Add(-skew)):
			v.add("/expires_at", "must be in the future")
		default:
			n.ExpiresAt = &exp
		}
	case r.TTL < 0:
		v.add("/ttl", "must be positive")
	case r.TTL > MaxTTL:
		v.add("/ttl", fmt.Sprintf("must be at most %d seconds", int64(MaxTTL/time.Second)))
	case r.TTL > 0:
		exp := now.Add(r.TTL)
		n.ExpiresAt = &exp
	}

	if len(r.Metadata) > MaxMetadataEntries {
		v.add("/metadata", fmt.Sprintf("at most %d entries", MaxMetadataEntries))
	}
	if len(r.Metadata) > 0 {
		n.Metadata = make(map[string]string, len(r.Metadata))
		for k, val := range r.Metadata {
			switch {
			case k == "":
				v.add("/metadata", "keys must not be empty")
			case tooLong(k, MaxMetadataKey):
				v.add("/metadata", fmt.Sprintf("keys must be at most %d characters", MaxMetadataKey))
			case tooLong(val, MaxMetadataValue):
				v.add("/metadata/"+escapePointer(k), fmt.Sprintf("must be at most %d characters", MaxMetadataValue))
			}
			n.Metadata[k] = val
		}
	}

	v.text(r, n)
	if err := v.err(); err != nil {
		return nil, err
	}
	n.IdempotencyKey = r.IdempotencyKey
	if n.IdempotencyKey == "" {
		// Without a user id the recipient stands in for it, so two people
		// alerted by the same event never share one id.
		who := r.UserID
		if who == "" {
			who = n.Recipient
		}
		n.IdempotencyKey = contract.DefaultIdempotencyKey(who, r.EventType, eventTime)
	}
	n.ID = contract.NotificationID(tenant, n.IdempotencyKey)
	return n, nil
}

// RequestSchema names the document in validation errors about requests.
const RequestSchema = "notification request"

type validator struct{ fields []contract.FieldError }

func (v *validator) add(field, reason string) {
	v.fields = append(v.fields, contract.FieldError{Field: field, Reason: reason})
}

// length checks a string's length in characters (as the schema counts
// them) and reports whether it was acceptable.
func (v *validator) length(field, s string, minChars, maxChars int) bool {
	if s == "" {
		if minChars > 0 {
			v.add(field, "is required")
			return false
		}
		return true
	}
	if tooLong(s, maxChars) {
		v.add(field, fmt.Sprintf("must be at most %d characters", maxChars))
		return false
	}
	return true
}

// TextReason is the reason given for a string that is not text.
const TextReason = "must be UTF-8 text without control characters (newline and tab are allowed)"

// text checks every free-form string of the request against
// contract.IsText
// (the fields with a pattern of their own are checked by it).
func (v *validator) text(r *Request, n *contract.Notification) {
	check := func(field, s string) {
		if !contract.IsText(s) {
			v.add(field, TextReason)
		}
	}
	check("/idempotency_key", r.IdempotencyKey)
	check("/source_service", n.SourceService)
	check("/user_id", r.UserID)
	check("/sender", n.Sender)
	if r.Template != nil {
		for i, p := range r.Template.Parameters {
			check(fmt.Sprintf("/template/parameters/%d", i), p)
		}
	}
	if r.Text != nil {
		check("/text/body", r.Text.Body)
	}
	for k, val := range r.Metadata {
		if !contract.IsText(k) {
			v.add("/metadata", "keys "+TextReason)
		} else {
			check("/metadata/"+escapePointer(k), val)
		}
	}
}

func (v *validator) err() error {
	if len(v.fields) == 0 {
		return nil
	}
	sort.SliceStable(v.fields, func(i, j int) bool { return v.fields[i].Field < v.fields[j].Field })
	return &contract.ValidationError{Schema: RequestSchema, Fields: v.fields}
}

func tooLong(s string, maxChars int) bool {
	// A string never has more characters than bytes, so most strings are
	// decided without counting.
	return len(s) > maxChars && utf8.RuneCountInString(s) > maxChars
}

func isEventType(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return s != ""
}

func isTemplateName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return s != ""
}

// isE164 is the schema's recipient rule: "+", a non-zero digit, then 6 to
// 14 digits.
func isE164(s string) bool {
	if len(s) < 8 || len(s) > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9' {
		return false
	}
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// IsTenant reports whether s is a valid tenant name: 1 to 64 characters,
// lower-case letters, digits, '_' and '-', starting with a letter or digit.
func IsTenant(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func encodableTime(t time.Time) bool {
	y := t.Year()
	return y >= 0 && y <= 9999
}

func escapePointer(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '~':
			out = append(out, '~', '0')
		case '/':
			out = append(out, '~', '1')
		default:
			out = append(out, s[i])
		}
	}
	return string(out)
}

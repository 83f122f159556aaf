package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Meta (WhatsApp Cloud API and the Graph API under it) error codes the
// classification table knows by name. Xpressbot sits on the Cloud API and
// passes these codes through. docs/provider-errors.md is the table in
// prose, with the source of each meaning.
const (
	MetaUnknown             = 1      // API Unknown: invalid request or possible server error
	MetaService             = 2      // API Service: temporary downtime or overload
	MetaAPIMethod           = 3      // API Method: capability or permission missing
	MetaAppRateLimit        = 4      // application request limit reached
	MetaPermissionDenied    = 10     // permission not granted or removed
	MetaInvalidParameter    = 100    // invalid parameter in the request
	MetaAccessToken         = 190    // access token expired or invalid
	MetaPolicyBlock         = 368    // temporarily blocked for policy violations
	MetaAccountRateLimit    = 80007  // WhatsApp Business Account rate limit
	MetaThroughput          = 130429 // cloud API throughput (messages/s per number) exceeded
	MetaExperiment          = 130472 // recipient is part of an experiment group
	MetaGenericError        = 131000 // "something went wrong"
	MetaAccessDenied        = 131005 // permission not granted or removed
	MetaMissingParameter    = 131008 // required parameter missing
	MetaParameterValue      = 131009 // parameter value invalid
	MetaServiceUnavailable  = 131016 // service temporarily unavailable
	MetaSelfRecipient       = 131021 // sender and recipient are the same number
	MetaUndeliverable       = 131026 // message undeliverable (not on WhatsApp, old app, …)
	MetaAccountLocked       = 131031 // business account restricted or disabled
	MetaDisplayName         = 131037 // display name needs approval before sending
	MetaPayment             = 131042 // business eligibility: payment issue
	MetaRegistration        = 131045 // phone number not registered (certificate)
	MetaReengagement        = 131047 // more than 24 h since the user last replied: needs a template
	MetaSpamRateLimit       = 131048 // too many messages flagged as spam
	MetaEcosystem           = 131049 // per-user marketing cap ("healthy ecosystem engagement")
	MetaUserStoppedMkt      = 131050 // user stopped marketing messages
	MetaUnsupportedType     = 131051 // unsupported message type
	MetaMediaDownload       = 131052 // media download error
	MetaMediaUpload         = 131053 // media upload error
	MetaPairRate            = 131056 // too many messages to one recipient (pair rate)
	MetaMaintenance         = 131057 // business account in maintenance mode
	MetaTemplateLimited     = 131064 // sending limited because of template misuse
	MetaTemplateParams      = 132000 // template parameter count does not match
	MetaTemplateMissing     = 132001 // template does not exist (name or language)
	MetaTemplateTooLong     = 132005 // translated template text too long
	MetaTemplatePolicy      = 132007 // template format character policy violated
	MetaTemplateParamFormat = 132012 // template parameter format mismatch
	MetaTemplatePaused      = 132015 // template paused for low quality
	MetaTemplateDisabled    = 132016 // template disabled for low quality
	MetaServerUnavailable   = 133004 // server temporarily unavailable
	MetaNotRegistered       = 133010 // phone number not registered on the platform
)

// PairRateRetryAfter is the wait assumed for a pair-rate error (131056)
// that came without Retry-After: Meta allows about one message every six
// seconds to the same recipient.
const PairRateRetryAfter = 6 * time.Second

// EcosystemRetryAfter is the wait assumed for Meta's per-user marketing
// cap (131049): Meta's advice is to try again after about a day.
const EcosystemRetryAfter = 24 * time.Hour

// Sources of the meanings in the table.
const (
	SourceWhatsApp = "https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes/"
	SourceGraph    = "https://developers.facebook.com/docs/graph-api/guides/error-handling"
)

// Rule is one row of the provider error table.
type Rule struct {
	Code  int
	Class Class
	Scope Scope
	// NotAccepted: an answer with this code proves the provider did not
	// take the message (it refused the request: authorization, account
	// standing, validation, rate limits), so sending it another way
	// cannot make a second message. False for server trouble (the
	// platform may have failed after taking it) and for codes Meta also
	// reports about accepted messages in status webhooks. Overrides do
	// not change it: they change what the pipeline does, not what the
	// answer proves. docs/provider-errors.md gives each row's reason.
	NotAccepted bool
	// RetryAfter applies when the response carried no Retry-After.
	RetryAfter time.Duration
	// Desc is the meaning, used as the message when the provider gave none.
	Desc string
	// Source is where the meaning is documented.
	Source string
}

// table is the provider error table, in code order. A code that is not in
// it is retryable: an unknown code is more likely a new transient
// condition than a reason to drop a notification, and retries are bounded
// by the DLQ.
var table = []Rule{
	{MetaUnknown, Retryable, ScopeSender, false, 0, "unknown API error (invalid request or possible server error)", SourceWhatsApp},
	{MetaService, Retryable, ScopeSender, false, 0, "API service temporarily down or overloaded", SourceWhatsApp},
	{MetaAPIMethod, AccountFault, ScopeSender, false, 0, "capability or permission missing for this app", SourceWhatsApp},
	{MetaAppRateLimit, Throttled, ScopeSender, true, 0, "application request limit", SourceWhatsApp},
	{MetaPermissionDenied, AccountFault, ScopeSender, true, 0, "permission not granted or removed", SourceWhatsApp},
	{MetaInvalidParameter, Permanent, ScopeMessage, true, 0, "invalid parameter", SourceWhatsApp},
	{MetaAccessToken, AccountFault, ScopeSender, true, 0, "access token expired or invalid", SourceWhatsApp},
	{MetaPolicyBlock, AccountFault, ScopeSender, true, 0, "account temporarily blocked for policy violations", SourceWhatsApp},
	{MetaAccountRateLimit, Throttled, ScopeSender, true, 0, "business account rate limit", SourceWhatsApp},
	{MetaThroughput, Throttled, ScopeSender, true, 0, "throughput limit of the sending number reached", SourceWhatsApp},
	{MetaExperiment, Permanent, ScopeRecipient, false, 0, "recipient is part of an experiment group", SourceWhatsApp},
	{MetaGenericError, Retryable, ScopeSender, false, 0, "something went wrong at the provider", SourceWhatsApp},
	{MetaAccessDenied, AccountFault, ScopeSender, true, 0, "access denied: permission not granted or removed", SourceWhatsApp},
	{MetaMissingParameter, Permanent, ScopeMessage, true, 0, "required parameter missing", SourceWhatsApp},
	{MetaParameterValue, Permanent, ScopeMessage, true, 0, "parameter value invalid", SourceWhatsApp},
	{MetaServiceUnavailable, Retryable, ScopeSender, false, 0, "service temporarily unavailable", SourceWhatsApp},
	{MetaSelfRecipient, Permanent, ScopeMessage, true, 0, "recipient is the sender's own number", SourceWhatsApp},
	{MetaUndeliverable, Permanent, ScopeRecipient, false, 0, "message undeliverable", SourceWhatsApp},
	{MetaAccountLocked, AccountFault, ScopeSender, true, 0, "business account locked or restricted", SourceWhatsApp},
	{MetaDisplayName, AccountFault, ScopeSender, true, 0, "display name needs approval before sending", SourceWhatsApp},
	{MetaPayment, AccountFault, ScopeSender, true, 0, "business eligibility: payment issue", SourceWhatsApp},
	{MetaRegistration, AccountFault, ScopeSender, true, 0, "phone number not registered (certificate)", SourceWhatsApp},
	{MetaReengagement, Permanent, ScopeRecipient, false, 0, "outside the 24 h customer service window", SourceWhatsApp},
	{MetaSpamRateLimit, Throttled, ScopeSender, true, 0, "spam rate limit hit: slow this number down", SourceWhatsApp},
	{MetaEcosystem, Deferred, ScopeRecipient, false, EcosystemRetryAfter, "per-user marketing cap: try this recipient again in about a day", SourceWhatsApp},
	{MetaUserStoppedMkt, Permanent, ScopeRecipient, false, 0, "recipient stopped marketing messages", SourceWhatsApp},
	{MetaUnsupportedType, Permanent, ScopeMessage, false, 0, "unsupported message type", SourceWhatsApp},
	{MetaMediaDownload, Permanent, ScopeMessage, false, 0, "media download error", SourceWhatsApp},
	{MetaMediaUpload, Permanent, ScopeMessage, false, 0, "media upload error", SourceWhatsApp},
	{MetaPairRate, Throttled, ScopeRecipient, true, PairRateRetryAfter, "too many messages to this recipient (pair rate)", SourceWhatsApp},
	{MetaMaintenance, Retryable, ScopeSender, false, 0, "business account in maintenance mode", SourceWhatsApp},
	{MetaTemplateLimited, Permanent, ScopeMessage, false, 0, "sending limited because of template misuse", SourceWhatsApp},
	{MetaTemplateParams, Permanent, ScopeMessage, true, 0, "template parameters do not match", SourceWhatsApp},
	{MetaTemplateMissing, Permanent, ScopeMessage, true, 0, "template does not exist", SourceWhatsApp},
	{MetaTemplateTooLong, Permanent, ScopeMessage, true, 0, "template text too long after translation", SourceWhatsApp},
	{MetaTemplatePolicy, Permanent, ScopeMessage, true, 0, "template format character policy violated", SourceWhatsApp},
	{MetaTemplateParamFormat, Permanent, ScopeMessage, true, 0, "template parameter format mismatch", SourceWhatsApp},
	{MetaTemplatePaused, Permanent, ScopeMessage, true, 0, "template paused for low quality", SourceWhatsApp},
	{MetaTemplateDisabled, Permanent, ScopeMessage, true, 0, "template disabled for low quality", SourceWhatsApp},
	{MetaServerUnavailable, Retryable, ScopeSender, false, 0, "server temporarily unavailable", SourceWhatsApp},
	{MetaNotRegistered, AccountFault, ScopeSender, true, 0, "phone number not registered on the platform", SourceWhatsApp},
}

// metaCodes indexes the active table (the built-in one with any
// overrides applied) by code.
var metaCodes atomic.Pointer[map[int]Rule]

// builtin indexes the table as written, without overrides.
var builtin = index(table, nil)

func init() { metaCodes.Store(builtin) }

func index(rows []Rule, over map[int]Class) *map[int]Rule {
	m := make(map[int]Rule, len(rows))
	for _, r := range rows {
		if c, ok := over[r.Code]; ok && c != r.Class {
			r.Class = c
			if c != Throttled && c != Deferred {
				r.RetryAfter = 0
			}
		}
		m[r.Code] = r
	}
	return &m
}

// Table returns the active error table (overrides applied), in code order.
func Table() []Rule {
	m := *metaCodes.Load()
	out := make([]Rule, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Rule) int { return a.Code - b.Code })
	return out
}

// Lookup returns the active table's row for a provider error code.
func Lookup(code int) (Rule, bool) {
	r, ok := (*metaCodes.Load())[code]
	return r, ok
}

// ParseOverrides reads class overrides in the form
// "131048=throttled,131049=deferred": each code must be in the table and
// each class one of ParseClass's names. Empty input is no override.
func ParseOverrides(s string) (map[int]Class, error) {
	out := map[int]Class{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want code=class", item)
		}
		code, err := strconv.Atoi(strings.TrimSpace(k))
		if err != nil || code <= 0 {
			return nil, fmt.Errorf("%q: code %q is not a positive number", item, strings.TrimSpace(k))
		}
		if _, known := (*builtin)[code]; !known {
			return nil, fmt.Errorf("%q: code %d is not in the provider error table (docs/provider-errors.md)", item, code)
		}
		c, err := ParseClass(strings.ToLower(strings.TrimSpace(v)))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", item, err)
		}
		if _, dup := out[code]; dup {
			return nil, fmt.Errorf("%q: code %d is overridden twice", item, code)
		}
		out[code] = c
	}
	return out, nil
}

// SetOverrides installs class overrides over the built-in table for the
// whole process (nil restores the built-in table). Configuration calls it
// once at start, after ParseOverrides accepted the setting.
func SetOverrides(over map[int]Class) {
	metaCodes.Store(index(table, over))
}

// classifyHTTP is the table for HTTP statuses that came without a provider
// error code.
func classifyHTTP(status int) Class {
	switch {
	case status == http.StatusTooManyRequests:
		return Throttled
	case status == http.StatusRequestTimeout:
		return Retryable
	case status == http.StatusUnauthorized:
		// The provider refused our credentials: no message of this
		// sender can go until someone fixes them, and none is at fault.
		return AccountFault
	case status >= 500:
		return Retryable
	case status >= 400:
		return Permanent
	}
	// A non-error status with a failure body: we cannot tell what happened,
	// so let the bounded retries decide.
	return Retryable
}

// Classify turns a provider's failure response into a classified *Error.
// metaCode is the provider error code from the body (0 if none); when it is
// known it decides, because Meta answers most errors with HTTP 400 whatever
// their nature. Otherwise the HTTP status decides (429 throttled, 408 and
// 5xx retryable, 401 an account fault, other 4xx permanent), except that an unknown provider code
// is never permanent. retryAfter is the parsed Retry-After (0 if absent).
//
// Codes are stable strings: "meta_<code>" when the provider gave a code,
// "http_<status>" otherwise, "provider_error" for a failure with neither.
func Classify(httpStatus, metaCode int, retryAfter time.Duration, msg string) *Error {
	e := &Error{Message: msg, HTTPStatus: httpStatus, RetryAfter: max(retryAfter, 0)}
	switch {
	case metaCode != 0:
		e.Code = "meta_" + strconv.Itoa(metaCode)
		if rule, ok := Lookup(metaCode); ok {
			e.Class, e.Scope = rule.Class, rule.Scope
			if e.RetryAfter == 0 {
				e.RetryAfter = rule.RetryAfter
			}
			if e.Message == "" {
				e.Message = rule.Desc
			}
		} else if httpStatus == http.StatusTooManyRequests {
			e.Class, e.Scope = Throttled, ScopeSender
		} else {
			e.Class = Retryable
		}
	case httpStatus >= 400:
		e.Code = "http_" + strconv.Itoa(httpStatus)
		e.Class = classifyHTTP(httpStatus)
		if e.Class != Permanent {
			e.Scope = ScopeSender
		}
	default:
		e.Code = "provider_error"
		e.Class = classifyHTTP(httpStatus)
	}
	if e.Class == Permanent || e.Class == AccountFault {
		e.RetryAfter = 0
	}
	return e
}

// ClassifyTransport classifies an error that came with no provider
// response. All of them are retryable: the request may never have reached
// the provider. The code tells them apart: "canceled" when the caller's
// context was canceled (shutdown, not a provider problem), "timeout" for a
// deadline or I/O timeout, "network" for everything else. An err that is
// already a *Error is returned as is.
func ClassifyTransport(err error) *Error {
	if err == nil {
		return nil
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	e := &Error{Class: Retryable, Code: "network", Err: err}
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		e.Code = "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		e.Code = "timeout"
	}
	return e
}

// ParseRetryAfter reads a Retry-After header value: delay-seconds or an
// HTTP-date (RFC 9110 §10.2.3). It returns 0 for an absent, malformed or
// past value.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		const maxSecs = int64(1<<63-1) / int64(time.Second)
		return time.Duration(min(secs, maxSecs)) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	if d := t.Sub(now); d > 0 {
		return d
	}
	return 0
}

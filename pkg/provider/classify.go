package provider

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Meta (WhatsApp Cloud API) error codes the classification table knows by
// name. Xpressbot sits on the Cloud API and passes these codes through.
const (
	MetaInvalidParameter   = 100    // invalid parameter in the request
	MetaAppRateLimit       = 4      // application request limit reached
	MetaAccessToken        = 190    // access token expired or invalid
	MetaPolicyBlock        = 368    // temporarily blocked for policy violations
	MetaAccountRateLimit   = 80007  // WhatsApp Business Account rate limit
	MetaThroughput         = 130429 // cloud API throughput (messages/s per number) exceeded
	MetaGenericError       = 131000 // "something went wrong"
	MetaServiceUnavailable = 131016 // service temporarily unavailable
	MetaUndeliverable      = 131026 // message undeliverable (not on WhatsApp, old app, …)
	MetaReengagement       = 131047 // more than 24 h since the user last replied: needs a template
	MetaSpamRateLimit      = 131048 // too many messages flagged as spam
	MetaPairRate           = 131056 // too many messages to one recipient (pair rate)
	MetaTemplateParams     = 132000 // template parameter count does not match
	MetaTemplateMissing    = 132001 // template does not exist (name or language)
)

// PairRateRetryAfter is the wait assumed for a pair-rate error (131056)
// that came without Retry-After: Meta allows about one message every six
// seconds to the same recipient.
const PairRateRetryAfter = 6 * time.Second

// metaRule is one row of the Meta error-code table.
type metaRule struct {
	class Class
	// minRetryAfter applies when the response carried no Retry-After.
	minRetryAfter time.Duration
	desc          string
}

// metaCodes is the table for provider error codes. A code that is not in
// it is retryable: an unknown code is more likely a new transient condition
// than a reason to drop a notification, and retries are bounded by the DLQ.
var metaCodes = map[int]metaRule{
	MetaThroughput:       {class: Throttled, desc: "throughput limit reached"},
	MetaPairRate:         {class: Throttled, minRetryAfter: PairRateRetryAfter, desc: "too many messages to this recipient"},
	MetaSpamRateLimit:    {class: Throttled, desc: "spam rate limit hit"},
	MetaAccountRateLimit: {class: Throttled, desc: "business account rate limit"},
	MetaAppRateLimit:     {class: Throttled, desc: "application request limit"},

	MetaUndeliverable:    {class: Permanent, desc: "message undeliverable"},
	MetaReengagement:     {class: Permanent, desc: "outside the 24 h customer service window"},
	MetaTemplateParams:   {class: Permanent, desc: "template parameters do not match"},
	MetaTemplateMissing:  {class: Permanent, desc: "template does not exist"},
	MetaInvalidParameter: {class: Permanent, desc: "invalid parameter"},
	MetaAccessToken:      {class: Permanent, desc: "access token invalid"},
	MetaPolicyBlock:      {class: Permanent, desc: "account blocked for policy violations"},

	MetaGenericError:       {class: Retryable, desc: "provider error"},
	MetaServiceUnavailable: {class: Retryable, desc: "service unavailable"},
}

// classifyHTTP is the table for HTTP statuses that came without a provider
// error code.
func classifyHTTP(status int) Class {
	switch {
	case status == http.StatusTooManyRequests:
		return Throttled
	case status == http.StatusRequestTimeout:
		return Retryable
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
// 5xx retryable, other 4xx permanent), except that an unknown provider code
// is never permanent. retryAfter is the parsed Retry-After (0 if absent).
//
// Codes are stable strings: "meta_<code>" when the provider gave a code,
// "http_<status>" otherwise, "provider_error" for a failure with neither.
func Classify(httpStatus, metaCode int, retryAfter time.Duration, msg string) *Error {
	e := &Error{Message: msg, HTTPStatus: httpStatus, RetryAfter: max(retryAfter, 0)}
	switch {
	case metaCode != 0:
		e.Code = "meta_" + strconv.Itoa(metaCode)
		if rule, ok := metaCodes[metaCode]; ok {
			e.Class = rule.class
			if e.RetryAfter == 0 {
				e.RetryAfter = rule.minRetryAfter
			}
			if e.Message == "" {
				e.Message = rule.desc
			}
		} else if httpStatus == http.StatusTooManyRequests {
			e.Class = Throttled
		} else {
			e.Class = Retryable
		}
	case httpStatus >= 400:
		e.Code = "http_" + strconv.Itoa(httpStatus)
		e.Class = classifyHTTP(httpStatus)
	default:
		e.Code = "provider_error"
		e.Class = classifyHTTP(httpStatus)
	}
	if e.Class != Throttled && e.Class != Retryable {
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

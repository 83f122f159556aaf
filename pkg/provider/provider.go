// Package provider is the boundary between wanotify and the WhatsApp
// messaging providers it sends through (Xpressbot, Meta's WhatsApp Cloud
// API). A Provider sends one message and returns the provider's message id
// or a classified *Error; Classify and its table (classify.go,
// docs/provider-errors.md) are the one place that decides whether a
// failure is retryable, throttled, permanent, an account fault or deferred.
package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
)

// Message is what a Provider sends: one notification's content.
type Message struct {
	NotificationID string
	// IdempotencyKey is the key the provider deduplicates sends by. It
	// must be unique per tenant: the provider account is shared, so a
	// tenant's own key (guessable, "order-1001") would let one tenant's
	// send silence another's. FromNotification sets it to ProviderKey.
	IdempotencyKey string
	Sender         string // sender account (phone number id / channel)
	Recipient      string // E.164
	Template       *contract.Template
	Text           *contract.Text
}

// FromNotification builds the Message for n, with ProviderKey(n) as its
// idempotency key.
func FromNotification(n *contract.Notification) Message {
	return Message{NotificationID: n.ID, IdempotencyKey: ProviderKey(n), Sender: n.Sender,
		Recipient: n.Recipient, Template: n.Template, Text: n.Text}
}

// ProviderKey is the idempotency key sent to the provider for n: the
// notification id derived from n's tenant and its idempotency key, so two
// tenants using the same key never share one, and a resend of the same
// notification always carries the same one. It is derived again rather
// than taken from n.ID, so a record written straight to Kafka with a
// notification id of its choosing cannot borrow another tenant's key.
func ProviderKey(n *contract.Notification) string {
	return contract.NotificationID(n.Tenant, n.IdempotencyKey)
}

// Provider sends WhatsApp messages.
//
// Send must return the provider's message id on success. On failure it must
// return an error for which AsError yields a classified *Error (transport
// failures included). Send must honour ctx cancellation and be safe for
// concurrent use.
type Provider interface {
	Name() string
	Send(ctx context.Context, m Message) (providerMessageID string, err error)
}

// Class is how a failure may be handled.
type Class int

const (
	// Retryable failures may succeed on a later attempt (timeouts, 5xx).
	Retryable Class = iota + 1
	// Throttled failures mean "slow down": retry after RetryAfter at least.
	Throttled
	// Permanent failures will fail again for this message; never retry them.
	Permanent
	// AccountFault means the sender cannot send anything until someone
	// fixes its account (token, payment, policy block, registration). The
	// message itself is fine: it must not be failed or dead-lettered.
	AccountFault
	// Deferred means this recipient cannot get this kind of message now
	// but may much later (Meta's per-user marketing cap, 131049):
	// retrying within seconds is pointless.
	Deferred
)

// classNames are the names in String, ParseClass and overrides.
var classNames = map[Class]string{
	Retryable:    "retryable",
	Throttled:    "throttled",
	Permanent:    "permanent",
	AccountFault: "account_fault",
	Deferred:     "deferred",
}

func (c Class) String() string {
	if n, ok := classNames[c]; ok {
		return n
	}
	return "unknown"
}

// ParseClass reads a class name as String writes it.
func ParseClass(s string) (Class, error) {
	for c, n := range classNames {
		if n == s {
			return c, nil
		}
	}
	return 0, fmt.Errorf("unknown error class %q (want retryable, throttled, permanent, account_fault or deferred)", s)
}

// Scope is what a failure is about: the one message, its recipient for a
// while, or the sending number/account as a whole.
type Scope int

const (
	// ScopeMessage: this message only (its content, its parameters).
	ScopeMessage Scope = iota
	// ScopeRecipient: this recipient, for a while (pair rate, marketing
	// cap, opt-out); other recipients of the same sender are unaffected.
	ScopeRecipient
	// ScopeSender: the sending number or account (rate limits, account
	// faults, provider trouble).
	ScopeSender
)

func (s Scope) String() string {
	switch s {
	case ScopeRecipient:
		return "recipient"
	case ScopeSender:
		return "sender"
	}
	return "message"
}

// Error is a classified provider failure.
type Error struct {
	Class      Class
	Code       string        // stable code: "http_503", "meta_131047", "timeout", "network"
	Message    string        // human-readable detail from the provider
	HTTPStatus int           // 0 when no response was received
	RetryAfter time.Duration // from Retry-After (or the table's default), 0 if none
	Scope      Scope         // what the failure is about (ScopeMessage when unknown)
	Err        error         // underlying cause, if any
}

func (e *Error) Error() string {
	s := fmt.Sprintf("provider %s error %s", e.Class, e.Code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil && e.Message == "" {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether another attempt may succeed. Only Permanent
// says no: an account fault clears once the account is fixed, a deferred
// message may go through later.
func (e *Error) Retryable() bool { return e.Class != Permanent }

// ProviderFault reports whether the failure says the provider or the
// sender's account is not working, so it should count against a circuit
// breaker. A failure about one message or one recipient (permanent,
// deferred, pair rate) is the provider working and refusing one thing.
func (e *Error) ProviderFault() bool {
	switch e.Class {
	case Retryable, AccountFault:
		return true
	case Throttled:
		return e.Scope != ScopeRecipient
	}
	return false
}

// Info converts e to the contract's error description.
func (e *Error) Info() contract.ErrorInfo {
	return contract.ErrorInfo{Code: e.Code, Message: e.Message, Retryable: e.Retryable()}
}

// AsError extracts the classified error from err. Errors that are not
// classified are treated as retryable network failures, so nothing is
// dropped because of an unexpected error type.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	return ClassifyTransport(err)
}

// Ambiguous reports whether the provider may have taken the message
// although the call failed: the request went out and no answer came back
// (a timeout). Resending it is only safe with a provider that deduplicates
// by idempotency key.
func (e *Error) Ambiguous() bool { return e.Code == "timeout" }

// KeyedProvider is implemented by providers that deduplicate sends by the
// Message's IdempotencyKey: a repeated key is answered with the first
// send's message id and nothing is sent again.
type KeyedProvider interface {
	DeduplicatesByKey() bool
}

// DeduplicatesByKey reports whether p deduplicates sends by idempotency
// key, so a call that timed out may be retried without risking a second
// message.
func DeduplicatesByKey(p Provider) bool {
	k, ok := p.(KeyedProvider)
	return ok && k.DeduplicatesByKey()
}

// EnvAllowInsecureURL lets a provider client call an http:// base URL on a
// host that is not loopback, which sends its API key or access token in
// clear. Off (the default), such a URL is refused at start; http:// on
// loopback (the local simulator) is always allowed.
const EnvAllowInsecureURL = "WANOTIFY_PROVIDER_ALLOW_INSECURE_URL"

// AllowInsecureURLDoc is EnvAllowInsecureURL's description.
const AllowInsecureURLDoc = "allow an http:// provider base URL on a host that is not loopback (the API key crosses the network in clear); off: refused"

// Package xpressbot is the provider.Provider for Xpressbot's Workspace API.
//
// Xpressbot does not publish its send endpoint, so the path and the auth
// header are options. The request carries the sender's WhatsApp
// phone_number_id, the recipient, the message, and the notification id
// twice: as biz_opaque_callback_data, which status webhooks echo back, and
// as idempotency_key material so the provider side can recognise a resend.
// Answers use the Workspace envelope {"success","data","message"}; failures
// carry an HTTP status and/or a Meta error code in data.error.code, and are
// classified by provider.Classify.
package xpressbot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/insecure"
	"github.com/wanotify/wanotify/pkg/phone"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/provider/internal/httpcall"
	"github.com/wanotify/wanotify/pkg/secretcheck"
)

// Name is what Client.Name returns.
const Name = "xpressbot"

// AuthMode is how the API key is sent.
type AuthMode string

const (
	// AuthAPIKey sends "X-API-Key: <key>".
	AuthAPIKey AuthMode = "x-api-key"
	// AuthBearer sends "Authorization: Bearer <key>".
	AuthBearer AuthMode = "bearer"
)

// Defaults applied by Options.withDefaults for zero fields.
const (
	DefaultSendPath     = "/api/workspace/v1/messages/send"
	DefaultAuthMode     = AuthAPIKey
	DefaultTimeout      = 10 * time.Second
	DefaultMaxIdleConns = 100
)

// Environment variables read by Load; Validate names them.
const (
	EnvBaseURL      = "WANOTIFY_XPRESSBOT_BASE_URL"
	EnvAPIKey       = "WANOTIFY_XPRESSBOT_API_KEY"
	EnvAuthMode     = "WANOTIFY_XPRESSBOT_AUTH_MODE"
	EnvSendPath     = "WANOTIFY_XPRESSBOT_SEND_PATH"
	EnvTimeout      = "WANOTIFY_XPRESSBOT_TIMEOUT"
	EnvMaxIdleConns = "WANOTIFY_XPRESSBOT_MAX_IDLE_CONNS"
)

// Options configures a Client.
type Options struct {
	// BaseURL is the Xpressbot origin, e.g. "https://app.xpressbot.example".
	// Required.
	BaseURL string
	// APIKey authenticates every call. Required; never logged.
	APIKey string
	// AuthMode selects the auth header. Default AuthAPIKey.
	AuthMode AuthMode
	// SendPath is appended to BaseURL. Default DefaultSendPath.
	SendPath string
	// Timeout bounds one send, including reading the answer. Default 10s.
	Timeout time.Duration
	// MaxIdleConns sizes the keep-alive pool. Default (0)
	// DefaultMaxIdleConns; the dispatcher sizes it to its calls in flight.
	MaxIdleConns int
	// Logger receives debug lines about failed sends (recipients masked).
	// Default: discard.
	Logger *slog.Logger
	// Transport replaces the pooled HTTP transport (tests). It is still
	// wrapped in otelhttp.
	Transport http.RoundTripper
	// AllowInsecureURL accepts an http:// BaseURL on a host that is not
	// loopback (the credentials then cross the network in clear).
	// provider.EnvAllowInsecureURL.
	AllowInsecureURL bool
	// NoIdempotencyKeys declares that the Xpressbot account does not
	// deduplicate sends by the body's idempotency_key. A send whose answer
	// never came (timeout) is then reported outcome_unknown instead of
	// retried. Default false: keys are honoured.
	NoIdempotencyKeys bool
}

func (o Options) withDefaults() Options {
	if o.AuthMode == "" {
		o.AuthMode = DefaultAuthMode
	}
	if o.SendPath == "" {
		o.SendPath = DefaultSendPath
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxIdleConns == 0 {
		o.MaxIdleConns = DefaultMaxIdleConns
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate reports every bad field, after defaults, naming the field and
// the environment variable behind it.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	bad := func(field, env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("xpressbot.%s (%s): %s", field, env, fmt.Sprintf(format, args...)))
	}
	if o.BaseURL == "" {
		bad("BaseURL", EnvBaseURL, "is required")
	} else if u, err := url.Parse(o.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("BaseURL", EnvBaseURL, "%q is not an absolute http(s) URL", o.BaseURL)
	} else if insecure.PlainHTTP(o.BaseURL) && !o.AllowInsecureURL {
		bad("BaseURL", EnvBaseURL, "%q is plain http to a host that is not loopback: the API key would cross the network in clear; use https, or set %s=true to accept it", o.BaseURL, provider.EnvAllowInsecureURL)
	}
	if o.APIKey == "" {
		bad("APIKey", EnvAPIKey, "is required")
	} else if err := secretcheck.NotExample(EnvAPIKey, o.APIKey); err != nil {
		bad("APIKey", EnvAPIKey, "%v", err)
	}
	if o.AuthMode != AuthAPIKey && o.AuthMode != AuthBearer {
		bad("AuthMode", EnvAuthMode, "%q must be %q or %q", o.AuthMode, AuthAPIKey, AuthBearer)
	}
	if !strings.HasPrefix(o.SendPath, "/") {
		bad("SendPath", EnvSendPath, "%q must start with /", o.SendPath)
	}
	if o.Timeout < 0 {
		bad("Timeout", EnvTimeout, "must be positive, got %s", o.Timeout)
	}
	if o.MaxIdleConns < 0 {
		bad("MaxIdleConns", EnvMaxIdleConns, "must be positive, got %d", o.MaxIdleConns)
	}
	return errors.Join(errs...)
}

// Client sends through Xpressbot. It is safe for concurrent use.
type Client struct {
	opts   Options
	url    string
	header http.Header
	call   *httpcall.Caller
}

var _ provider.Provider = (*Client)(nil)

// New validates opts and builds a Client.
func New(opts Options) (*Client, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	h := http.Header{}
	if opts.AuthMode == AuthBearer {
		h.Set("Authorization", "Bearer "+opts.APIKey)
	} else {
		h.Set("X-API-Key", opts.APIKey)
	}
	return &Client{
		opts:   opts,
		url:    strings.TrimRight(opts.BaseURL, "/") + opts.SendPath,
		header: h,
		call: httpcall.New(httpcall.Config{
			SpanName:     "xpressbot send",
			Timeout:      opts.Timeout,
			MaxIdleConns: opts.MaxIdleConns,
			Transport:    opts.Transport,
		}),
	}, nil
}

// DeduplicatesByKey implements provider.KeyedProvider.
func (c *Client) DeduplicatesByKey() bool { return !c.opts.NoIdempotencyKeys }

var _ provider.KeyedProvider = (*Client)(nil)

// Name implements provider.Provider.
func (c *Client) Name() string { return Name }

// Close releases pooled connections.
func (c *Client) Close() { c.call.Close() }

// SendRequest is the JSON body of a send call.
type SendRequest struct {
	PhoneNumberID         string             `json:"phone_number_id"`
	To                    string             `json:"to"`
	Type                  string             `json:"type"` // "text" or "template"
	Text                  *contract.Text     `json:"text,omitempty"`
	Template              *contract.Template `json:"template,omitempty"`
	BizOpaqueCallbackData string             `json:"biz_opaque_callback_data,omitempty"`
	IdempotencyKey        string             `json:"idempotency_key,omitempty"`
}

// Envelope is every Workspace API answer.
type Envelope struct {
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data,omitempty"`
	Message string          `json:"message,omitempty"`
}

// SendData is Envelope.Data of a send answer. On success MessageID is the
// WhatsApp message id (wamid) that status webhooks refer to; the
// Cloud-API-shaped Messages list is accepted as well.
type SendData struct {
	MessageID string      `json:"message_id,omitempty"`
	Messages  []MessageID `json:"messages,omitempty"`
	Status    string      `json:"status,omitempty"`
	Error     *ErrorData  `json:"error,omitempty"`
}

// MessageID is one entry of SendData.Messages.
type MessageID struct {
	ID string `json:"id"`
}

// ErrorData is a failed send's provider error.
type ErrorData struct {
	Code      int    `json:"code"`
	Subcode   int    `json:"error_subcode,omitempty"`
	Message   string `json:"message,omitempty"`
	Type      string `json:"type,omitempty"`
	FBTraceID string `json:"fbtrace_id,omitempty"`
}

// BuildRequest maps m to the send body. The idempotency key defaults to the
// notification id.
func BuildRequest(m provider.Message) (SendRequest, error) {
	if err := validateMessage(m); err != nil {
		return SendRequest{}, err
	}
	r := SendRequest{
		PhoneNumberID:         m.Sender,
		To:                    m.Recipient,
		Text:                  m.Text,
		Template:              m.Template,
		BizOpaqueCallbackData: m.NotificationID,
		IdempotencyKey:        m.IdempotencyKey,
	}
	if r.IdempotencyKey == "" {
		r.IdempotencyKey = m.NotificationID
	}
	if m.Template != nil {
		r.Type = "template"
	} else {
		r.Type = "text"
	}
	return r, nil
}

func validateMessage(m provider.Message) error {
	var why string
	switch {
	case m.Recipient == "":
		why = "no recipient"
	case m.Sender == "":
		why = "no sender phone number id"
	case (m.Text == nil) == (m.Template == nil):
		why = "exactly one of text and template is required"
	case m.Text != nil && m.Text.Body == "":
		why = "empty text body"
	case m.Template != nil && (m.Template.Name == "" || m.Template.Language == ""):
		why = "template needs a name and a language"
	default:
		return nil
	}
	return &provider.Error{Class: provider.Permanent, Code: provider.CodeInvalidMessage, Message: why}
}

// Send implements provider.Provider.
func (c *Client) Send(ctx context.Context, m provider.Message) (string, error) {
	req, err := BuildRequest(m)
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return "", &provider.Error{Class: provider.Permanent, Code: provider.CodeInvalidMessage, Message: err.Error(), Err: err}
	}
	// The key travels in the body only: an Idempotency-Key header would make
	// net/http replay the POST by itself after a dropped connection, and
	// whether to resend is the dispatcher's decision, not the transport's.
	resp, err := c.call.PostJSON(ctx, c.url, c.header, body)
	if err != nil {
		c.logFailure(m, err)
		return "", err
	}
	id, err := parseResponse(resp)
	if err != nil {
		c.logFailure(m, err)
		return "", err
	}
	return id, nil
}

func parseResponse(resp *httpcall.Response) (string, error) {
	var env Envelope
	envErr := json.Unmarshal(resp.Body, &env)
	var data SendData
	if envErr == nil && len(env.Data) > 0 && string(env.Data) != "null" {
		// data is not always an object on failures; a mismatch only loses the code.
		_ = json.Unmarshal(env.Data, &data)
	}
	ok := resp.Status >= 200 && resp.Status < 300
	if ok && envErr == nil && env.Success {
		id := data.MessageID
		if id == "" && len(data.Messages) > 0 {
			id = data.Messages[0].ID
		}
		if id != "" {
			return id, nil
		}
	}
	if ok && (envErr != nil || (env.Success && data.Error == nil)) {
		// 2xx that we cannot read: the message may well have been accepted.
		// Retryable, so the dispatcher's bounded retries and the idempotency
		// key decide, rather than dropping the notification.
		return "", &provider.Error{Class: provider.Retryable, Code: "bad_response", HTTPStatus: resp.Status,
			Message: "success answer without a message id"}
	}
	code, msg := 0, env.Message
	if data.Error != nil {
		code = data.Error.Code
		if data.Error.Message != "" {
			msg = data.Error.Message
		}
	}
	retryAfter := provider.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return "", provider.Classify(resp.Status, code, retryAfter, msg)
}

func (c *Client) logFailure(m provider.Message, err error) {
	pe := provider.AsError(err)
	c.opts.Logger.Debug("xpressbot send failed",
		slog.String("notification_id", m.NotificationID),
		slog.String("recipient", phone.Mask(m.Recipient)),
		slog.String("class", pe.Class.String()),
		slog.String("code", pe.Code),
		slog.Int("http_status", pe.HTTPStatus))
}

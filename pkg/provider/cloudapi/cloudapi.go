// Package cloudapi is the provider.Provider for Meta's WhatsApp Cloud API:
// POST {base}/{version}/{phone-number-id}/messages with a Bearer token, the
// message in Meta's shape, the notification id as biz_opaque_callback_data
// (status webhooks echo it), the message id from messages[0].id, and
// failures read from {"error":{"code",…}} and classified by
// provider.Classify.
package cloudapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/wanotify/wanotify/pkg/insecure"
	"github.com/wanotify/wanotify/pkg/phone"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/provider/internal/httpcall"
)

// Name is what Client.Name returns.
const Name = "cloudapi"

// Defaults applied for zero Options fields.
const (
	DefaultBaseURL      = "https://graph.facebook.com"
	DefaultVersion      = "v21.0"
	DefaultTimeout      = 10 * time.Second
	DefaultMaxIdleConns = 100
)

// Environment variables read by Load; Validate names them.
const (
	EnvBaseURL       = "WANOTIFY_CLOUDAPI_BASE_URL"
	EnvVersion       = "WANOTIFY_CLOUDAPI_VERSION"
	EnvAccessToken   = "WANOTIFY_CLOUDAPI_ACCESS_TOKEN"
	EnvPhoneNumberID = "WANOTIFY_CLOUDAPI_PHONE_NUMBER_ID"
	EnvTimeout       = "WANOTIFY_CLOUDAPI_TIMEOUT"
	EnvMaxIdleConns  = "WANOTIFY_CLOUDAPI_MAX_IDLE_CONNS"
)

var versionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+$`)

// Options configures a Client.
type Options struct {
	// BaseURL is the Graph API origin. Default DefaultBaseURL.
	BaseURL string
	// Version is the Graph API version path segment. Default DefaultVersion.
	Version string
	// AccessToken is the system-user token sent as Bearer. Required; never
	// logged.
	AccessToken string
	// PhoneNumberID is the sender used when a Message has no Sender.
	// Optional.
	PhoneNumberID string
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
}

func (o Options) withDefaults() Options {
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	if o.Version == "" {
		o.Version = DefaultVersion
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
		errs = append(errs, fmt.Errorf("cloudapi.%s (%s): %s", field, env, fmt.Sprintf(format, args...)))
	}
	if u, err := url.Parse(o.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("BaseURL", EnvBaseURL, "%q is not an absolute http(s) URL", o.BaseURL)
	} else if insecure.PlainHTTP(o.BaseURL) && !o.AllowInsecureURL {
		bad("BaseURL", EnvBaseURL, "%q is plain http to a host that is not loopback: the access token would cross the network in clear; use https, or set %s=true to accept it", o.BaseURL, provider.EnvAllowInsecureURL)
	}
	if !versionRE.MatchString(o.Version) {
		bad("Version", EnvVersion, "%q must look like v21.0", o.Version)
	}
	if o.AccessToken == "" {
		bad("AccessToken", EnvAccessToken, "is required")
	}
	if strings.Contains(o.PhoneNumberID, "/") {
		bad("PhoneNumberID", EnvPhoneNumberID, "must not contain /")
	}
	if o.Timeout < 0 {
		bad("Timeout", EnvTimeout, "must be positive, got %s", o.Timeout)
	}
	if o.MaxIdleConns < 0 {
		bad("MaxIdleConns", EnvMaxIdleConns, "must be positive, got %d", o.MaxIdleConns)
	}
	return errors.Join(errs...)
}

// Client sends through the WhatsApp Cloud API. It is safe for concurrent
// use.
type Client struct {
	opts   Options
	base   string
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
	h.Set("Authorization", "Bearer "+opts.AccessToken)
	return &Client{
		opts:   opts,
		base:   strings.TrimRight(opts.BaseURL, "/") + "/" + opts.Version + "/",
		header: h,
		call: httpcall.New(httpcall.Config{
			SpanName:     "cloudapi send",
			Timeout:      opts.Timeout,
			MaxIdleConns: opts.MaxIdleConns,
			Transport:    opts.Transport,
		}),
	}, nil
}

// Name implements provider.Provider.
func (c *Client) Name() string { return Name }

// Close releases pooled connections.
func (c *Client) Close() { c.call.Close() }

// Request is the body of POST /{phone-number-id}/messages.
type Request struct {
	MessagingProduct      string    `json:"messaging_product"` // "whatsapp"
	RecipientType         string    `json:"recipient_type"`    // "individual"
	To                    string    `json:"to"`                // digits, no "+"
	Type                  string    `json:"type"`              // "text" or "template"
	Text                  *Text     `json:"text,omitempty"`
	Template              *Template `json:"template,omitempty"`
	BizOpaqueCallbackData string    `json:"biz_opaque_callback_data,omitempty"`
}

// Text is a free-form message.
type Text struct {
	PreviewURL bool   `json:"preview_url"`
	Body       string `json:"body"`
}

// Template is a template message.
type Template struct {
	Name       string      `json:"name"`
	Language   Language    `json:"language"`
	Components []Component `json:"components,omitempty"`
}

// Language names the template translation.
type Language struct {
	Code string `json:"code"`
}

// Component is one template component ("body").
type Component struct {
	Type       string      `json:"type"`
	Parameters []Parameter `json:"parameters"`
}

// Parameter is one template variable.
type Parameter struct {
	Type string `json:"type"` // "text"
	Text string `json:"text"`
}

// Response is a successful answer.
type Response struct {
	MessagingProduct string    `json:"messaging_product"`
	Contacts         []Contact `json:"contacts,omitempty"`
	Messages         []Message `json:"messages"`
}

// Contact maps the input number to the WhatsApp id.
type Contact struct {
	Input string `json:"input"`
	WaID  string `json:"wa_id"`
}

// Message is an accepted message.
type Message struct {
	ID            string `json:"id"`
	MessageStatus string `json:"message_status,omitempty"`
}

// ErrorResponse is a failed answer.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody is Graph API's error object.
type ErrorBody struct {
	Message   string          `json:"message"`
	Type      string          `json:"type,omitempty"`
	Code      int             `json:"code"`
	Subcode   int             `json:"error_subcode,omitempty"`
	ErrorData json.RawMessage `json:"error_data,omitempty"`
	FBTraceID string          `json:"fbtrace_id,omitempty"`
}

// BuildRequest maps m to Meta's message shape.
func BuildRequest(m provider.Message) (Request, error) {
	var why string
	switch {
	case m.Recipient == "":
		why = "no recipient"
	case (m.Text == nil) == (m.Template == nil):
		why = "exactly one of text and template is required"
	case m.Text != nil && m.Text.Body == "":
		why = "empty text body"
	case m.Template != nil && (m.Template.Name == "" || m.Template.Language == ""):
		why = "template needs a name and a language"
	}
	if why != "" {
		return Request{}, &provider.Error{Class: provider.Permanent, Code: provider.CodeInvalidMessage, Message: why}
	}
	r := Request{
		MessagingProduct:      "whatsapp",
		RecipientType:         "individual",
		To:                    strings.TrimPrefix(m.Recipient, "+"),
		BizOpaqueCallbackData: m.NotificationID,
	}
	if m.Text != nil {
		r.Type = "text"
		r.Text = &Text{PreviewURL: m.Text.PreviewURL, Body: m.Text.Body}
		return r, nil
	}
	r.Type = "template"
	r.Template = &Template{Name: m.Template.Name, Language: Language{Code: m.Template.Language}}
	if len(m.Template.Parameters) > 0 {
		ps := make([]Parameter, len(m.Template.Parameters))
		for i, p := range m.Template.Parameters {
			ps[i] = Parameter{Type: "text", Text: p}
		}
		r.Template.Components = []Component{{Type: "body", Parameters: ps}}
	}
	return r, nil
}

// Send implements provider.Provider. m.Sender is the phone number id;
// Options.PhoneNumberID stands in when it is empty.
func (c *Client) Send(ctx context.Context, m provider.Message) (string, error) {
	sender := m.Sender
	if sender == "" {
		sender = c.opts.PhoneNumberID
	}
	if sender == "" || strings.ContainsAny(sender, "/?#") {
		return "", &provider.Error{Class: provider.Permanent, Code: provider.CodeInvalidMessage, Message: "no valid sender phone number id"}
	}
	req, err := BuildRequest(m)
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return "", &provider.Error{Class: provider.Permanent, Code: provider.CodeInvalidMessage, Message: err.Error(), Err: err}
	}
	resp, err := c.call.PostJSON(ctx, c.base+url.PathEscape(sender)+"/messages", c.header, body)
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
	if resp.Status >= 200 && resp.Status < 300 {
		var ok Response
		if err := json.Unmarshal(resp.Body, &ok); err == nil && len(ok.Messages) > 0 && ok.Messages[0].ID != "" {
			return ok.Messages[0].ID, nil
		}
		// Accepted or not, we cannot tell: retryable, see xpressbot.
		return "", &provider.Error{Class: provider.Retryable, Code: "bad_response", HTTPStatus: resp.Status,
			Message: "success answer without a message id"}
	}
	var er ErrorResponse
	_ = json.Unmarshal(resp.Body, &er) // an unreadable body still has its HTTP status
	retryAfter := provider.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return "", provider.Classify(resp.Status, er.Error.Code, retryAfter, er.Error.Message)
}

func (c *Client) logFailure(m provider.Message, err error) {
	pe := provider.AsError(err)
	c.opts.Logger.Debug("cloudapi send failed",
		slog.String("notification_id", m.NotificationID),
		slog.String("recipient", phone.Mask(m.Recipient)),
		slog.String("class", pe.Class.String()),
		slog.String("code", pe.Code),
		slog.Int("http_status", pe.HTTPStatus))
}

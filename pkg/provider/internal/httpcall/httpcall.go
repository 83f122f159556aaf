// Package httpcall is the HTTP plumbing the provider clients share: a pooled
// transport wrapped in otelhttp (one client span per call), a per-call
// timeout on top of the caller's context, bounded response reads, and
// transport failures classified through provider.ClassifyTransport.
package httpcall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/wanotify/wanotify/pkg/provider"
)

// MaxResponseBytes bounds how much of a provider response is read.
const MaxResponseBytes = 1 << 20

// Config configures a Caller.
type Config struct {
	// SpanName names the client span of every call ("xpressbot send").
	SpanName string
	// Timeout bounds one call, connection and body read included.
	Timeout time.Duration
	// MaxIdleConns is the size of the keep-alive pool to the provider (one
	// host, so it is also the per-host limit).
	MaxIdleConns int
	// Transport replaces the pooled transport (tests); it is still wrapped
	// in otelhttp.
	Transport http.RoundTripper
}

// Caller posts JSON to one provider.
type Caller struct {
	client  *http.Client
	base    *http.Transport // nil when Config.Transport was given
	timeout time.Duration
}

// New builds a Caller.
func New(cfg Config) *Caller {
	c := &Caller{timeout: cfg.Timeout}
	rt := cfg.Transport
	if rt == nil {
		c.base = &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{
				Timeout:   min(cfg.Timeout, 5*time.Second),
				KeepAlive: 30 * time.Second,
			}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          cfg.MaxIdleConns,
			MaxIdleConnsPerHost:   cfg.MaxIdleConns, // the default of 2 would churn connections under load
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   min(cfg.Timeout, 5*time.Second),
			ExpectContinueTimeout: time.Second,
		}
		rt = c.base
	}
	name := cfg.SpanName
	c.client = &http.Client{
		Transport: otelhttp.NewTransport(rt,
			otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return name })),
		// A provider redirect is not part of either API; surface it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c
}

// Response is a provider's answer, body fully read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// PostJSON posts body to url with the given headers, exactly once: header
// must not carry Idempotency-Key, which would let net/http replay the POST
// on its own after a dropped connection. A non-nil error is
// always a classified *provider.Error from ClassifyTransport: no response
// (or no complete response) was received.
func (c *Caller) PostJSON(ctx context.Context, url string, header http.Header, body []byte) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, provider.ClassifyTransport(err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, &provider.Error{Class: provider.Permanent, Code: provider.CodeBadRequest, Message: err.Error(), Err: err}
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, provider.ClassifyTransport(c.cause(ctx, err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if err != nil {
		return nil, provider.ClassifyTransport(c.cause(ctx, fmt.Errorf("read response: %w", err)))
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// cause makes sure a failure caused by the context says so: a body read cut
// short by the deadline surfaces as a plain read error otherwise.
func (c *Caller) cause(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("%w: %w", ctxErr, err)
	}
	return err
}

// Close releases idle connections.
func (c *Caller) Close() {
	if c.base != nil {
		c.base.CloseIdleConnections()
	}
	c.client.CloseIdleConnections()
}

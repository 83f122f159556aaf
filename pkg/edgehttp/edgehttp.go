// Package edgehttp is what the public HTTP listeners (ingest's API and
// the webhook receiver) share about how far they trust a caller:
//
//   - a caller does not choose our trace: every request starts a new
//     trace (sampled by our own sampler, not forced by the caller's
//     flag), and the caller's span context, when it sent one, is kept as a
//     link on the server span;
//   - a caller's baggage is never read, so it is never copied into Kafka
//     records: only W3C trace context crosses the edge, and the records
//     carry only ours (RecordPropagator);
//   - the Host header is not a metric label: the server name is fixed
//     (otelhttp would otherwise label every duration with whatever Host a
//     client sends, and any client could fill the series limit);
//   - request headers are bounded (MaxHeaderBytes, ReadHeaderTimeout)
//     and, for a handler that must hold a whole body before it can check
//     it, so is the memory of bodies being read (BodyGate).
package edgehttp

import (
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
)

// MaxHeaderBytes bounds a request's header block on the public ports.
// net/http's default is 1 MiB; a legitimate request here carries an API
// key or a signature and a traceparent, a few hundred bytes.
const MaxHeaderBytes = 32 << 10

// ReadHeaderTimeout bounds the wait for a request's headers: a client
// trickling its headers is cut off after it.
const ReadHeaderTimeout = 5 * time.Second

// RecordPropagator writes the trace context into Kafka record headers:
// traceparent (and tracestate) only, never baggage.
var RecordPropagator propagation.TextMapPropagator = propagation.TraceContext{}

// TraceOptions are the otelhttp options of a public route served as
// serverName (see ServerName): a new root span per request linked to the
// caller's span context, only W3C trace context extracted (no baggage),
// and the fixed server name in server.address and server.port.
func TraceOptions(serverName string) []otelhttp.Option {
	return []otelhttp.Option{
		otelhttp.WithPublicEndpointFn(func(*http.Request) bool { return true }),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithServerName(serverName),
	}
}

// ServerName is the server.address and server.port a service listening
// on addr reports: service:port. It always carries a port, because
// otelhttp takes the port from the Host header when the server name has
// none.
func ServerName(service, addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		// Port 0 is never a label, and never taken from the Host header.
		port = "0"
	}
	return net.JoinHostPort(service, port)
}

// SetReadDeadline sets the deadline for reading the rest of r's body,
// where the server supports it (not under httptest.ResponseRecorder).
// The server's ReadTimeout stays the outer bound.
func SetReadDeadline(w http.ResponseWriter, d time.Duration) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
}

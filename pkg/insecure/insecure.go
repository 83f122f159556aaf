// Package insecure decides which plaintext connections a service may make
// with credentials: over the machine's own loopback interface always
// (nothing leaves the host: the local stack and the tests run that way),
// anywhere else only when an explicit setting allows it. A service refuses
// to start otherwise; what it accepts (an http:// provider URL, SASL PLAIN
// without TLS, certificates not verified) it reports as a start warning.
package insecure

import (
	"net"
	"net/url"
	"strings"
)

// Loopback reports whether host (a name or an IP literal, without port)
// is this machine's loopback interface: "localhost" (and names under
// .localhost, RFC 6761) or a loopback IP.
func Loopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// LoopbackAddrs reports whether every host:port of addrs is on loopback
// (and there is at least one).
func LoopbackAddrs(addrs []string) bool {
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil || !Loopback(host) {
			return false
		}
	}
	return len(addrs) > 0
}

// PlainHTTP reports whether raw is an http:// URL to a host that is not
// loopback: whatever it sends (an API key in a header) crosses the
// network in clear.
func PlainHTTP(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Scheme, "http") && !Loopback(u.Hostname())
}

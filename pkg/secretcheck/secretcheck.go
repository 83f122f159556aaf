// Package secretcheck refuses secrets that protect nothing: too short to
// resist guessing, or copied unchanged from an example file that anyone
// can read (deploy/compose/example.env). Services call it from their
// configuration's Validate, so a deployment that forgot to replace an
// example value stops at start with the variable named, instead of
// running with a secret the whole internet knows.
package secretcheck

import (
	"fmt"
	"net"
	"strings"
)

// MinLen is the fewest bytes a secret wanotify generates or verifies
// (webhook HMAC secret, simulator credentials, admin tokens) may have:
// 32 bytes, the output size of the HMAC-SHA256 it keys.
const MinLen = 32

// ExampleMarker is in every placeholder value of the example files: a
// value containing it has not been replaced.
const ExampleMarker = "change-me"

// examples are the values shipped in example files and docs that do not
// carry ExampleMarker (hashes, older examples); a deploycheck test holds
// this list and deploy/compose/example.env together.
var examples = map[string]bool{
	// sha256 of "change-me-ingest-key", the example ingest key's hash.
	"57bd750bafb608e1427ee339bb3c212a73f2c5f176a4f3555a9c1555d0d795f8": true,
	"change-me-provider-key":        true,
	"change-me-webhook-secret":      true,
	"change-me-clickhouse-password": true,
	"admin":                         true, // Grafana's default password
}

// IsExample reports whether v is a value published in an example file.
func IsExample(v string) bool {
	return examples[v] || strings.Contains(strings.ToLower(v), ExampleMarker)
}

// NotExample is the check for secrets wanotify does not choose (a
// provider's API key, a database password): set values must not be an
// example's. Empty passes; whether a value is required is the caller's
// rule.
func NotExample(env, v string) error {
	if v != "" && IsExample(v) {
		return fmt.Errorf("%s: is the example value from deploy/compose/example.env or the docs; set a secret of your own", env)
	}
	return nil
}

// Strong is the check for secrets wanotify keys its own checks with: set,
// at least MinLen bytes, and not an example value. It never puts the
// value in the error.
func Strong(env, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%s: is required", env)
	case IsExample(v):
		return NotExample(env, v)
	case len(v) < MinLen:
		return fmt.Errorf("%s: is %d bytes; at least %d are required (e.g. openssl rand -hex 32)", env, len(v), MinLen)
	}
	return nil
}

// LoopbackOnly refuses a well-known development secret (one written in
// this repository for the local stack) unless the service listens on a
// loopback address named by addrEnv: off loopback anyone who can read
// the source could use it.
func LoopbackOnly(env, v, dev, addrEnv, addr string) error {
	if v == "" || v != dev {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err == nil && IsLoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("%s: the local development value is configured but %s %q is not a loopback address; set a secret of your own", env, addrEnv, addr)
}

// IsLoopbackHost reports whether host is localhost or a loopback IP.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

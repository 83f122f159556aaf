package payload

import (
	"errors"
	"strings"

	"github.com/wanotify/wanotify/pkg/metawebhook"
)

// Signature errors.
var (
	ErrMissingSignature = errors.New("signature header missing")
	ErrBadSignature     = errors.New("signature does not match the body")
)

// VerifySignature checks a signature header value ("sha256=<hex>") against
// the raw body in constant time. Surrounding blanks and the case of the
// "sha256=" prefix are forgiven, as proxies sometimes rewrite them; the
// digest must match (its hex digits in either case).
func VerifySignature(secret, body []byte, header string) error {
	return NewVerifier(secret).Verify(body, header)
}

// Verifier checks signature headers under one secret as VerifySignature
// does, reusing its keyed hashes. It is safe for concurrent use.
type Verifier struct{ v *metawebhook.Verifier }

// NewVerifier returns a Verifier for secret.
func NewVerifier(secret []byte) *Verifier { return &Verifier{v: metawebhook.NewVerifier(secret)} }

// Verify is VerifySignature under the Verifier's secret.
func (v *Verifier) Verify(body []byte, header string) error {
	const prefix = "sha256="
	header = strings.TrimSpace(header)
	if header == "" {
		return ErrMissingSignature
	}
	if len(header) > len(prefix) && header[:len(prefix)] != prefix && strings.EqualFold(header[:len(prefix)], prefix) {
		header = prefix + header[len(prefix):]
	}
	if !v.v.Verify(body, header) {
		return ErrBadSignature
	}
	return nil
}

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
	header = strings.TrimSpace(header)
	if header == "" {
		return ErrMissingSignature
	}
	if len(header) > len("sha256=") && strings.EqualFold(header[:len("sha256=")], "sha256=") {
		header = "sha256=" + header[len("sha256="):]
	}
	if !metawebhook.Verify(secret, body, header) {
		return ErrBadSignature
	}
	return nil
}

// Package phone validates recipients as E.164 numbers and masks them for
// logs and spans.
package phone

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// ErrInvalid is wrapped by every error Normalize returns.
var ErrInvalid = errors.New("invalid phone number")

// Normalize parses s, which must be in international form (leading "+"),
// and returns it in E.164. Numbers that are not possible for their region
// are rejected.
func Normalize(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "+") {
		return "", fmt.Errorf("%w: %q must be in international E.164 form, starting with +", ErrInvalid, Mask(s))
	}
	num, err := phonenumbers.Parse(s, "")
	if err != nil {
		return "", fmt.Errorf("%w: %s", ErrInvalid, err)
	}
	if !phonenumbers.IsPossibleNumber(num) {
		return "", fmt.Errorf("%w: %s is not a possible number", ErrInvalid, Mask(s))
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// Mask hides all but the country-code-ish prefix and the last two digits:
// "+447700900123" becomes "+447*******23". Safe on any input.
func Mask(s string) string {
	r := []rune(s)
	if len(r) <= 4 {
		return strings.Repeat("*", len(r))
	}
	keepHead := 4
	if len(r) < 8 {
		keepHead = 1
	}
	out := make([]rune, len(r))
	for i := range r {
		if i < keepHead || i >= len(r)-2 {
			out[i] = r[i]
		} else {
			out[i] = '*'
		}
	}
	return string(out)
}

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

// Rule is how strictly a number is checked against its region's
// numbering plan, once its characters passed.
type Rule uint8

const (
	// Valid (the default) accepts numbers that libphonenumber knows to be
	// in use in their region (IsValidNumber): an OTP to a number that
	// cannot exist goes to nobody or, worse, to someone else.
	Valid Rule = iota
	// Possible accepts numbers of a possible length for their region
	// (IsPossibleNumber). It is for numbering plans newer than the
	// library's metadata, and for identities the provider vouches for
	// (its own recipient ids in webhooks).
	Possible
)

// ParseRule reads a rule by its name ("valid", "possible"); "" is Valid.
func ParseRule(s string) (Rule, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "valid":
		return Valid, nil
	case "possible":
		return Possible, nil
	}
	return Valid, fmt.Errorf("%q is not a phone validation rule (valid or possible)", s)
}

func (r Rule) String() string {
	if r == Possible {
		return "possible"
	}
	return "valid"
}

// accepts applies the rule to a parsed number.
func (r Rule) accepts(num *phonenumbers.PhoneNumber) bool {
	if r == Possible {
		return phonenumbers.IsPossibleNumber(num)
	}
	return phonenumbers.IsValidNumber(num)
}

// Normalize is Valid.Normalize.
func Normalize(s string) (string, error) { return Valid.Normalize(s) }

// Normalize parses s, which must be in international form (leading "+"),
// and returns it in E.164.
//
// s may hold only digits, a leading "+" and the usual separators (space,
// '-', '.', '(' and ')'): libphonenumber reads letters as the digits of a
// phone keypad and skips much else, so "+44 77OO 901118" (letters O)
// would become another person's number. The digits of the result are
// exactly the digits of s: a national prefix written after the calling
// code ("+44 (0)7911…") is refused rather than silently dropped, since
// the sender cannot be sure which number was meant. Then the rule
// decides.
func (r Rule) Normalize(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "+") {
		return "", fmt.Errorf("%w: %q must be in international E.164 form, starting with +", ErrInvalid, Mask(s))
	}
	digits, ok := Digits(s)
	if !ok {
		return "", fmt.Errorf("%w: %s may hold only digits, a leading + and spaces, dashes, dots or parentheses", ErrInvalid, Mask(s))
	}
	num, err := phonenumbers.Parse(s, "")
	if err != nil {
		return "", fmt.Errorf("%w: %s", ErrInvalid, err)
	}
	if !phonenumbers.IsPossibleNumber(num) {
		return "", fmt.Errorf("%w: %s is not a possible number", ErrInvalid, Mask(s))
	}
	e164 := phonenumbers.Format(num, phonenumbers.E164)
	if e164[1:] != digits {
		return "", fmt.Errorf("%w: %s holds digits that are not part of the international number (a national prefix?)", ErrInvalid, Mask(s))
	}
	if !r.accepts(num) {
		return "", fmt.Errorf("%w: %s is not a valid number for its region", ErrInvalid, Mask(s))
	}
	return e164, nil
}

// Digits returns the digits of s if s holds nothing but a leading "+",
// digits and separators (space, '-', '.', '(' and ')').
func Digits(s string) (string, bool) {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == '+' && i == 0:
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", false
		}
	}
	return b.String(), true
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

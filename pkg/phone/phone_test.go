package phone

import (
	"errors"
	"testing"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"+447911123456", "+447911123456", true},
		{" +1 415 555 0100 ", "+14155550100", true},
		{"+14155550100", "+14155550100", true},
		{"+1 (415) 555-0100", "+14155550100", true},
		{"+44.7911.123.456", "+447911123456", true},
		// Letters O for zeros: libphonenumber reads them as keypad digits
		// and would drop them, giving +4477901118, another number.
		{"+44 77OO 901118", "", false},
		{"+44 7911 123456 ext. 7", "", false},
		{"+44\t7911123456", "", false},
		{"+４４7911123456", "", false},
		// A national prefix after the calling code is not silently dropped.
		{"+44 (0)7911 123456", "", false},
		// Ofcom's drama range: possible, but not a number in use.
		{"+447700900123", "", false},
		// The 555 exchange of the North American plan: not valid either.
		{"+15551234567", "", false},
		{"07700900123", "", false},
		{"+1", "", false},
		{"+999123", "", false},
		{"hello", "", false},
		{"", "", false},
	} {
		got, err := Normalize(tc.in)
		if tc.ok && (err != nil || got != tc.want) {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if !tc.ok && (err == nil || !errors.Is(err, ErrInvalid)) {
			t.Errorf("Normalize(%q) = %q, %v; want ErrInvalid", tc.in, got, err)
		}
	}
}

func TestMask(t *testing.T) {
	for in, want := range map[string]string{
		"+447700900123": "+447*******23",
		"+1234567":      "+123**67",
		"abc":           "***",
		"":              "",
	} {
		if got := Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPossibleRuleRelaxesOnlyTheRegionCheck(t *testing.T) {
	if got, err := Possible.Normalize("+44 7700 900123"); err != nil || got != "+447700900123" {
		t.Fatalf("Possible.Normalize(drama range) = %q, %v", got, err)
	}
	for _, in := range []string{"+44 77OO 901118", "+44 (0)7911 123456", "+1"} {
		if got, err := Possible.Normalize(in); err == nil {
			t.Errorf("Possible.Normalize(%q) = %q, want an error", in, got)
		}
	}
	for in, want := range map[string]Rule{"": Valid, "valid": Valid, "POSSIBLE": Possible} {
		if got, err := ParseRule(in); err != nil || got != want {
			t.Errorf("ParseRule(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseRule("lenient"); err == nil {
		t.Error("ParseRule(lenient): no error")
	}
}

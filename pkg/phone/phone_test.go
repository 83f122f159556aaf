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
		{"+447700900123", "+447700900123", true},
		{" +1 415 555 0100 ", "+14155550100", true},
		{"+14155550100", "+14155550100", true},
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

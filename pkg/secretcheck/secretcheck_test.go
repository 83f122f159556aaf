package secretcheck

import (
	"strings"
	"testing"
)

func TestStrong(t *testing.T) {
	good := strings.Repeat("k", MinLen)
	for _, c := range []struct {
		v    string
		want string
	}{
		{"", "is required"},
		{"short", "at least 32"},
		{strings.Repeat("k", MinLen-1), "at least 32"},
		{"change-me-webhook-secret", "example value"},
		{"CHANGE-ME-0123456789abcdef0123456789abcdef", "example value"},
		{good, ""},
	} {
		err := Strong("WANOTIFY_X", c.v)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("Strong(%q) = %v, want nil", c.v, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "WANOTIFY_X")):
			t.Errorf("Strong(%q) = %v, want an error naming WANOTIFY_X with %q", c.v, err, c.want)
		}
		if err != nil && c.v != "" && strings.Contains(err.Error(), c.v) {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
}

func TestNotExample(t *testing.T) {
	if err := NotExample("V", "57bd750bafb608e1427ee339bb3c212a73f2c5f176a4f3555a9c1555d0d795f8"); err == nil {
		t.Error("the example key hash passes")
	}
	if err := NotExample("V", ""); err != nil {
		t.Errorf("empty: %v", err)
	}
	if err := NotExample("V", "a-real-password"); err != nil {
		t.Errorf("a real value: %v", err)
	}
}

func TestLoopbackOnly(t *testing.T) {
	const dev = "dev-secret-0123456789abcdef0123456789"
	for addr, ok := range map[string]bool{"127.0.0.1:1": true, "localhost:1": true, "[::1]:1": true, "0.0.0.0:1": false, ":1": false, "10.0.0.1:1": false} {
		err := LoopbackOnly("S", dev, dev, "A", addr)
		if (err == nil) != ok {
			t.Errorf("addr %s: %v", addr, err)
		}
	}
	if err := LoopbackOnly("S", "other", dev, "A", "0.0.0.0:1"); err != nil {
		t.Errorf("a value of its own: %v", err)
	}
}

package config

import (
	"strings"
	"testing"
	"time"
)

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestReadsEnvAndFlags(t *testing.T) {
	e := New(lookup(map[string]string{"WANOTIFY_A": "7", "WANOTIFY_D": "2s", "WANOTIFY_L": "a, b,,c"}),
		[]string{"--b=yes", "--s", "flag"})
	if got := e.Int("WANOTIFY_A", 1, ""); got != 7 {
		t.Errorf("Int = %d", got)
	}
	if !e.Bool("WANOTIFY_B", false, "") {
		t.Error("flag --b=yes not read")
	}
	if got := e.String("WANOTIFY_S", "def", ""); got != "flag" {
		t.Errorf("String = %q", got)
	}
	if got := e.Duration("WANOTIFY_D", time.Second, ""); got != 2*time.Second {
		t.Errorf("Duration = %v", got)
	}
	if got := e.List("WANOTIFY_L", nil, ""); strings.Join(got, "|") != "a|b|c" {
		t.Errorf("List = %q", got)
	}
	if got := e.Float("WANOTIFY_F", 1.5, ""); got != 1.5 {
		t.Errorf("Float default = %v", got)
	}
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestErrorsNameTheVariable(t *testing.T) {
	e := New(lookup(map[string]string{"WANOTIFY_PORT": "eighty", "WANOTIFY_WAIT": "soon", "WANOTIFY_ON": "maybe"}), []string{"--nope=1"})
	e.Int("WANOTIFY_PORT", 80, "")
	e.Duration("WANOTIFY_WAIT", time.Second, "")
	e.Bool("WANOTIFY_ON", false, "")
	err := e.Err()
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"WANOTIFY_PORT", "WANOTIFY_WAIT", "WANOTIFY_ON", "--nope"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestUsageHidesSecrets(t *testing.T) {
	e := New(lookup(map[string]string{"WANOTIFY_TOKEN_X": "hunter2"}), nil)
	if e.Secret("WANOTIFY_TOKEN_X", "a token") != "hunter2" {
		t.Fatal("secret not read")
	}
	if u := Usage("svc"); strings.Contains(u, "hunter2") || !strings.Contains(u, "WANOTIFY_TOKEN_X") {
		t.Errorf("usage leaks or misses the secret:\n%s", u)
	}
}

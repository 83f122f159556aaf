package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A secret passed as a flag is visible in ps to every user of the
// machine: it is refused, with an error naming the flag and the two
// places a secret may come from, and the value is not used.
func TestSecretsAreNotAcceptedAsFlags(t *testing.T) {
	e := New(lookup(nil), []string{"--webhook-secret=hunter2", "--kafka-sasl-password", "pa55", "--webhook-path=/x"})
	if got := e.Secret("WANOTIFY_WEBHOOK_SECRET", "app secret"); got != "" {
		t.Errorf("secret from a flag was used: %q", got)
	}
	if got := e.Secret("WANOTIFY_KAFKA_SASL_PASSWORD", "password"); got != "" {
		t.Errorf("secret from a flag was used: %q", got)
	}
	if got := e.String("WANOTIFY_WEBHOOK_PATH", "/", ""); got != "/x" {
		t.Errorf("a plain setting as a flag: %q", got)
	}
	err := e.Err()
	if err == nil {
		t.Fatal("secrets given as flags were accepted")
	}
	for _, want := range []string{"--webhook-secret", "WANOTIFY_WEBHOOK_SECRET_FILE", "--kafka-sasl-password", "WANOTIFY_KAFKA_SASL_PASSWORD"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	for _, leaked := range []string{"hunter2", "pa55"} {
		if strings.Contains(err.Error(), leaked) {
			t.Errorf("error shows the secret %q", leaked)
		}
	}
}

func TestSecretFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := New(lookup(map[string]string{"WANOTIFY_X_SECRET_FILE": path}), nil)
	if got := e.Secret("WANOTIFY_X_SECRET", "x"); got != "from-file" {
		t.Errorf("Secret = %q, want the file's content without its newline", got)
	}
	// The path may be a flag: it is no secret.
	e = New(lookup(nil), []string{"--x-secret-file=" + path})
	if got := e.Secret("WANOTIFY_X_SECRET", "x"); got != "from-file" || e.Err() != nil {
		t.Errorf("Secret via --x-secret-file = %q, %v", got, e.Err())
	}
	e = New(lookup(map[string]string{"WANOTIFY_X_SECRET_FILE": filepath.Join(t.TempDir(), "missing")}), nil)
	e.Secret("WANOTIFY_X_SECRET", "x")
	if err := e.Err(); err == nil || !strings.Contains(err.Error(), "WANOTIFY_X_SECRET_FILE") {
		t.Errorf("unreadable file: %v", err)
	}
	e = New(lookup(map[string]string{"WANOTIFY_X_SECRET": "env", "WANOTIFY_X_SECRET_FILE": path}), nil)
	e.Secret("WANOTIFY_X_SECRET", "x")
	if err := e.Err(); err == nil || !strings.Contains(err.Error(), "set one") {
		t.Errorf("both set: %v", err)
	}
}

package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRunExitCodes(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/readyz" && ready:
			_, _ = w.Write([]byte("ready\n"))
		case r.URL.Path == "/readyz":
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	cases := []struct {
		name    string
		args    []string
		ready   bool
		code    int
		message string
	}{
		{"ready", []string{srv.URL + "/readyz"}, true, 0, ""},
		{"not ready", []string{srv.URL + "/readyz"}, false, 1, "status 503"},
		{"not found", []string{srv.URL + "/nope"}, true, 1, "status 404"},
		{"no argument", nil, true, 2, "usage"},
		{"two arguments", []string{"a", "b"}, true, 2, "usage"},
		{"not a URL", []string{"127.0.0.1:8080/readyz"}, true, 1, "not an http(s) URL"},
		{"wrong scheme", []string{"ftp://127.0.0.1/readyz"}, true, 1, "not an http(s) URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ready = c.ready
			var stderr bytes.Buffer
			if got := run(c.args, &stderr); got != c.code {
				t.Fatalf("exit code %d, want %d (stderr %q)", got, c.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), c.message) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), c.message)
			}
		})
	}
}

func TestProbeTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	start := time.Now()
	err := probe(srv.URL+"/readyz", 200*time.Millisecond)
	if err == nil {
		t.Fatal("a hung endpoint passed the probe")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("probe took %v, want about its 200ms timeout", d)
	}
}

func TestProbeRefusedConnection(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	if err := probe(url+"/healthz", time.Second); err == nil {
		t.Fatal("a closed port passed the probe")
	}
}

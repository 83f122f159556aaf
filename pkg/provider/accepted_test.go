package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// wantNotAccepted is, per row of the table, whether an answer with the
// code proves the provider did not take the message (written out apart
// from classify.go, like wantRows).
var wantNotAccepted = map[int]bool{
	1: false, 2: false, 3: false, 4: true, 10: true, 100: true, 190: true, 368: true,
	80007: true, 130429: true, 130472: false,
	131000: false, 131005: true, 131008: true, 131009: true, 131016: false, 131021: true,
	131026: false, 131031: true, 131037: true, 131042: true, 131045: true, 131047: false,
	131048: true, 131049: false, 131050: false, 131051: false, 131052: false, 131053: false,
	131056: true, 131057: false, 131064: false,
	132000: true, 132001: true, 132005: true, 132007: true, 132012: true, 132015: true, 132016: true,
	133004: false, 133010: true,
}

// Each row's answer proves, or does not prove, that nothing was taken;
// the same code under a 5xx never does.
func TestNotAcceptedPerRow(t *testing.T) {
	rows := Table()
	if len(rows) != len(wantNotAccepted) {
		t.Fatalf("test covers %d codes, table has %d: add the new rows here", len(wantNotAccepted), len(rows))
	}
	for _, r := range rows {
		want, ok := wantNotAccepted[r.Code]
		if !ok {
			t.Errorf("code %d has no expectation", r.Code)
			continue
		}
		t.Run(fmt.Sprint(r.Code), func(t *testing.T) {
			if r.NotAccepted != want {
				t.Fatalf("row %d NotAccepted = %v, want %v", r.Code, r.NotAccepted, want)
			}
			for _, st := range []int{400, 401, 403, 404, 429, 200} {
				if got := Classify(st, r.Code, 0, "").NotAccepted(); got != want {
					t.Fatalf("Classify(%d, %d).NotAccepted() = %v, want %v", st, r.Code, got, want)
				}
			}
			for _, st := range []int{500, 502, 503} {
				if Classify(st, r.Code, 0, "").NotAccepted() {
					t.Fatalf("Classify(%d, %d).NotAccepted(): a 5xx never proves nothing was taken", st, r.Code)
				}
			}
		})
	}
	// The account faults a failover is for refuse before sending.
	for _, c := range []int{MetaAccessToken, MetaPolicyBlock, MetaAccountLocked, MetaPayment, MetaThroughput} {
		if !Classify(400, c, 0, "").NotAccepted() {
			t.Errorf("%d must be not accepted", c)
		}
	}
}

// A class override changes what the pipeline does, not what the answer
// proves.
func TestNotAcceptedIgnoresOverrides(t *testing.T) {
	t.Cleanup(func() { SetOverrides(nil) })
	SetOverrides(map[int]Class{MetaGenericError: Permanent, MetaAccessToken: Retryable})
	if Classify(400, MetaGenericError, 0, "").NotAccepted() || !Classify(401, MetaAccessToken, 0, "").NotAccepted() {
		t.Fatal("an override changed NotAccepted")
	}
}

func TestNotAcceptedHTTPWithoutCode(t *testing.T) {
	cases := map[int]bool{
		400: true, 401: true, 403: true, 404: true, 413: true, 422: true, 429: true,
		408: false, 500: false, 502: false, 503: false, 504: false, 599: false,
		200: false, 0: false,
	}
	for st, want := range cases {
		if got := Classify(st, 0, 0, "").NotAccepted(); got != want {
			t.Errorf("Classify(%d).NotAccepted() = %v, want %v", st, got, want)
		}
	}
	if Classify(400, 987654, 0, "").NotAccepted() {
		t.Error("a Meta code the table does not know proves nothing")
	}
	// A code that does not match its status is not trusted.
	if (&Error{Class: Permanent, Code: "http_400", HTTPStatus: 502}).NotAccepted() {
		t.Error("http_400 with status 502 was taken as a refusal")
	}
	for _, code := range []string{CodeInvalidMessage, CodeBadRequest, CodeUnknownSender} {
		if !(&Error{Class: Permanent, Code: code}).NotAccepted() {
			t.Errorf("%s: refused in this process, nothing sent", code)
		}
	}
	for _, code := range []string{"bad_response", "provider_error", "outcome_unknown", ""} {
		if (&Error{Class: Retryable, Code: code, HTTPStatus: 200}).NotAccepted() {
			t.Errorf("%s proves nothing", code)
		}
	}
	var nilErr *Error
	if nilErr.NotAccepted() {
		t.Error("nil")
	}
}

// Only a connection that could not be opened proves nothing was sent;
// timeouts (a connect timeout too), cancellations, resets and cut-short
// responses never do.
func TestNotAcceptedTransport(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"dial refused", &url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}, true},
		{"dial unreachable", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.EHOSTUNREACH}, true},
		{"unknown host", &url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}}}, true},
		{"connect timeout", &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}, false},
		{"dns timeout", &net.DNSError{Err: "timeout", Name: "x", IsTimeout: true}, false},
		{"read reset", &url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}}, false},
		{"write broken pipe", &net.OpError{Op: "write", Net: "tcp", Err: syscall.EPIPE}, false},
		{"eof", io.ErrUnexpectedEOF, false},
		{"deadline", context.DeadlineExceeded, false},
		{"deadline over a dial error", fmt.Errorf("%w: %w", context.DeadlineExceeded, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), false},
		{"canceled", context.Canceled, false},
		{"os deadline", os.ErrDeadlineExceeded, false},
		{"anything", errors.New("boom"), false},
	}
	for _, c := range cases {
		if got := ClassifyTransport(c.err).NotAccepted(); got != c.want {
			t.Errorf("%s: NotAccepted() = %v, want %v", c.name, got, c.want)
		}
	}
}

// A real refused connection, through net/http as the clients call it.
func TestNotAcceptedRealRefusedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: the dial is refused
	c := &http.Client{Timeout: 5 * time.Second}
	_, err = c.Post("http://"+addr+"/send", "application/json", strings.NewReader("{}"))
	if err == nil {
		t.Skip("something took the freed port")
	}
	if e := AsError(err); !e.NotAccepted() || e.Code != "network" {
		t.Fatalf("refused connection: %+v NotAccepted %v", e, e.NotAccepted())
	}
}

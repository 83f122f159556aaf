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
	"syscall"
	"testing"
	"time"
)

func TestClassifyHTTPStatus(t *testing.T) {
	cases := []struct {
		status int
		class  Class
		code   string
	}{
		{http.StatusBadRequest, Permanent, "http_400"},
		{http.StatusUnauthorized, Permanent, "http_401"},
		{http.StatusForbidden, Permanent, "http_403"},
		{http.StatusNotFound, Permanent, "http_404"},
		{http.StatusRequestTimeout, Retryable, "http_408"},
		{http.StatusRequestEntityTooLarge, Permanent, "http_413"},
		{http.StatusUnprocessableEntity, Permanent, "http_422"},
		{http.StatusTooManyRequests, Throttled, "http_429"},
		{http.StatusInternalServerError, Retryable, "http_500"},
		{http.StatusBadGateway, Retryable, "http_502"},
		{http.StatusServiceUnavailable, Retryable, "http_503"},
		{http.StatusGatewayTimeout, Retryable, "http_504"},
		{599, Retryable, "http_599"},
		// A failure body on a 2xx, or no status at all: unknown, so retryable.
		{http.StatusOK, Retryable, "provider_error"},
		{0, Retryable, "provider_error"},
	}
	for _, c := range cases {
		t.Run(c.code+"/"+fmt.Sprint(c.status), func(t *testing.T) {
			e := Classify(c.status, 0, 0, "detail")
			if e.Class != c.class || e.Code != c.code || e.HTTPStatus != c.status || e.Message != "detail" {
				t.Fatalf("Classify(%d) = %+v, want class %s code %s", c.status, e, c.class, c.code)
			}
			if e.Retryable() != (c.class != Permanent) {
				t.Fatalf("Retryable() = %v for class %s", e.Retryable(), c.class)
			}
		})
	}
}

func TestClassifyMetaCodes(t *testing.T) {
	cases := []struct {
		code       int
		class      Class
		retryAfter time.Duration // with no Retry-After header
	}{
		{MetaThroughput, Throttled, 0},
		{MetaPairRate, Throttled, PairRateRetryAfter},
		{MetaSpamRateLimit, Throttled, 0},
		{MetaAccountRateLimit, Throttled, 0},
		{MetaAppRateLimit, Throttled, 0},
		{MetaUndeliverable, Permanent, 0},
		{MetaReengagement, Permanent, 0},
		{MetaTemplateParams, Permanent, 0},
		{MetaTemplateMissing, Permanent, 0},
		{MetaInvalidParameter, Permanent, 0},
		{MetaAccessToken, Permanent, 0},
		{MetaPolicyBlock, Permanent, 0},
		{MetaGenericError, Retryable, 0},
		{MetaServiceUnavailable, Retryable, 0},
	}
	if len(cases) != len(metaCodes) {
		t.Fatalf("test covers %d codes, table has %d: add the new rows here", len(cases), len(metaCodes))
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.code), func(t *testing.T) {
			// Meta answers nearly everything with 400; the code must win.
			e := Classify(http.StatusBadRequest, c.code, 0, "")
			want := fmt.Sprintf("meta_%d", c.code)
			if e.Class != c.class || e.Code != want || e.HTTPStatus != 400 || e.RetryAfter != c.retryAfter {
				t.Fatalf("Classify(400, %d) = %+v, want class %s code %s retryAfter %s", c.code, e, c.class, want, c.retryAfter)
			}
			if e.Message == "" {
				t.Fatal("a known code with no provider message must get the table's description")
			}
			// The same code under a 5xx or 429 keeps its class.
			for _, st := range []int{429, 500, 503} {
				if got := Classify(st, c.code, 0, "x").Class; got != c.class {
					t.Fatalf("Classify(%d, %d).Class = %s, want %s", st, c.code, got, c.class)
				}
			}
		})
	}
}

func TestClassifyUnknownMetaCode(t *testing.T) {
	cases := []struct {
		status int
		class  Class
	}{
		{400, Retryable}, // unknown code: never permanent
		{403, Retryable},
		{500, Retryable},
		{429, Throttled},
		{200, Retryable},
	}
	for _, c := range cases {
		e := Classify(c.status, 987654, 0, "new thing")
		if e.Class != c.class || e.Code != "meta_987654" || e.Message != "new thing" {
			t.Fatalf("Classify(%d, unknown) = %+v, want %s meta_987654", c.status, e, c.class)
		}
	}
}

func TestClassifyRetryAfter(t *testing.T) {
	if e := Classify(429, 0, 7*time.Second, ""); e.RetryAfter != 7*time.Second {
		t.Fatalf("429 RetryAfter = %s, want 7s", e.RetryAfter)
	}
	if e := Classify(400, MetaThroughput, 3*time.Second, ""); e.RetryAfter != 3*time.Second {
		t.Fatalf("130429 RetryAfter = %s, want 3s", e.RetryAfter)
	}
	// A header beats the table's assumed pair-rate wait.
	if e := Classify(400, MetaPairRate, 2*time.Second, ""); e.RetryAfter != 2*time.Second {
		t.Fatalf("131056 RetryAfter = %s, want 2s from the header", e.RetryAfter)
	}
	if e := Classify(503, 0, 5*time.Second, ""); e.RetryAfter != 5*time.Second {
		t.Fatalf("503 RetryAfter = %s, want 5s", e.RetryAfter)
	}
	// Permanent errors never carry a wait: there is nothing to wait for.
	if e := Classify(400, MetaReengagement, 5*time.Second, ""); e.RetryAfter != 0 {
		t.Fatalf("permanent RetryAfter = %s, want 0", e.RetryAfter)
	}
	if e := Classify(429, 0, -time.Second, ""); e.RetryAfter != 0 {
		t.Fatalf("negative RetryAfter kept: %s", e.RetryAfter)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassifyTransport(t *testing.T) {
	already := &Error{Class: Permanent, Code: "meta_131026"}
	cases := []struct {
		name string
		err  error
		code string
	}{
		{"canceled", context.Canceled, "canceled"},
		{"canceled wrapped by net/http", &url.Error{Op: "Post", URL: "http://x", Err: context.Canceled}, "canceled"},
		{"deadline", context.DeadlineExceeded, "timeout"},
		{"deadline wrapped", fmt.Errorf("send: %w", &url.Error{Op: "Post", URL: "http://x", Err: context.DeadlineExceeded}), "timeout"},
		{"net timeout", &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}, "timeout"},
		{"os deadline", os.ErrDeadlineExceeded, "timeout"},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, "network"},
		{"reset", &url.Error{Op: "Post", URL: "http://x", Err: syscall.ECONNRESET}, "network"},
		{"eof", io.ErrUnexpectedEOF, "network"},
		{"anything", errors.New("boom"), "network"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := ClassifyTransport(c.err)
			if e.Class != Retryable || e.Code != c.code || e.HTTPStatus != 0 {
				t.Fatalf("ClassifyTransport(%v) = %+v, want retryable %s", c.err, e, c.code)
			}
			if !errors.Is(e, c.err) {
				t.Fatal("the cause must stay reachable through Unwrap")
			}
		})
	}
	if got := ClassifyTransport(fmt.Errorf("wrapped: %w", already)); got != already {
		t.Fatalf("an already classified error must pass through, got %+v", got)
	}
	if ClassifyTransport(nil) != nil {
		t.Fatal("nil must stay nil")
	}
	if e := AsError(context.Canceled); e.Code != "canceled" {
		t.Fatalf("AsError(context.Canceled).Code = %s", e.Code)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"  ", 0},
		{"0", 0},
		{"-3", 0},
		{"1", time.Second},
		{" 120 ", 2 * time.Minute},
		{"Sat, 01 Mar 2025 12:00:30 GMT", 30 * time.Second},  // IMF-fixdate
		{"Saturday, 01-Mar-25 12:01:00 GMT", time.Minute},    // RFC 850
		{"Sat Mar  1 12:00:05 2025", 5 * time.Second},        // asctime
		{"Sat, 01 Mar 2025 11:59:00 GMT", 0},                 // past
		{"soon", 0},                                          // malformed
		{"1.5", 0},                                           // not delay-seconds
		{"99999999999999999999", 0},                          // overflows int64: malformed
		{"9223372036854775807", 9223372036 * time.Second},    // clamped, no overflow
		{"Sat, 01 Mar 2025 12:00:30 +0000", 0},               // not an HTTP-date
		{"Sat, 01 Mar 2025 12:00:10 GMT ", 10 * time.Second}, // trailing space
	}
	for _, c := range cases {
		if got := ParseRetryAfter(c.in, now); got != c.want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

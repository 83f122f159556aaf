package failover

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/provider"
)

var (
	refused   = provider.ClassifyTransport(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	timedOut  = provider.ClassifyTransport(context.DeadlineExceeded)
	reset     = provider.ClassifyTransport(&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET})
	token     = provider.Classify(401, provider.MetaAccessToken, 0, "")
	blocked   = provider.Classify(403, provider.MetaPolicyBlock, 0, "")
	locked    = provider.Classify(403, provider.MetaAccountLocked, 0, "")
	payment   = provider.Classify(400, provider.MetaPayment, 0, "")
	tput      = provider.Classify(400, provider.MetaThroughput, 0, "")
	http503   = provider.Classify(503, 0, 0, "")
	generic   = provider.Classify(500, provider.MetaGenericError, 0, "")
	token5xx  = provider.Classify(502, provider.MetaAccessToken, 0, "")
	template  = provider.Classify(404, provider.MetaTemplateMissing, 0, "")
	pairRate  = provider.Classify(429, provider.MetaPairRate, 0, "")
	maint     = provider.Classify(500, provider.MetaMaintenance, 0, "")
	unknown   = provider.Classify(400, 987654, 0, "")
	notCalled = error(nil)
)

func TestDecide(t *testing.T) {
	cases := []struct {
		name string
		down bool
		h    History
		last error
		want bool
	}{
		{"down, not called", true, History{}, notCalled, true},
		{"down, connection refused", true, History{}, refused, true},
		{"down, token refused (190)", true, History{}, token, true},
		{"down, policy block (368)", true, History{}, blocked, true},
		{"down, account locked (131031)", true, History{}, locked, true},
		{"down, payment (131042)", true, History{}, payment, true},
		{"down, throughput refused (130429)", true, History{}, tput, true},

		{"up, not called", false, History{}, notCalled, false},
		{"up, connection refused", false, History{}, refused, false},
		{"up, token refused", false, History{}, token, false},

		// Never after anything the primary may have taken.
		{"down, timeout", true, History{}, timedOut, false},
		{"down, reset after sending", true, History{}, reset, false},
		{"down, 503", true, History{}, http503, false},
		{"down, 131000 under 500", true, History{}, generic, false},
		{"down, 190 under a 5xx", true, History{}, token5xx, false},
		{"down, maintenance (500)", true, History{}, maint, false},
		{"down, unknown code", true, History{}, unknown, false},
		{"down, not called, an earlier call timed out", true, History{Pinned: Primary}, notCalled, false},
		{"down, refused now, an earlier call timed out", true, History{Pinned: Primary}, refused, false},

		// Refused for the message or recipient: not the route's fault.
		{"down, template missing", true, History{}, template, false},
		{"down, pair rate", true, History{}, pairRate, false},

		// Once the second route may have taken it, it stays there.
		{"pinned to the second route, primary up", false, History{Pinned: Second}, notCalled, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(c.down, c.h, c.last)
			if d.Failover != c.want || d.Why == "" {
				t.Fatalf("Decide = %+v, want failover %v", d, c.want)
			}
		})
	}
}

func TestHistoryAfter(t *testing.T) {
	var h History
	if h = h.After(Primary, refused).After(Primary, token); h.Pinned != "" {
		t.Fatalf("refusals pinned the record: %+v", h)
	}
	if got := h.After(Primary, timedOut); got.Pinned != Primary {
		t.Fatalf("a timeout must pin the record to the primary: %+v", got)
	}
	if got := h.After(Second, nil); got.Pinned != Second {
		t.Fatalf("an accepted send pins its route: %+v", got)
	}
	if got := h.After(Second, http503).After(Primary, refused); got.Pinned != Second {
		t.Fatalf("a pin is never undone: %+v", got)
	}
}

func TestHistoryHeader(t *testing.T) {
	hs := []kgo.RecordHeader{{Key: "traceparent", Value: []byte("x")}}
	for _, h := range []History{{}, {Pinned: Primary}, {Pinned: Second}} {
		out := SetHeader(SetHeader(hs, History{Pinned: Primary}, 1), h, 2)
		n := 0
		for _, x := range out {
			if x.Key == Header {
				n++
			}
		}
		if n != 1 || len(out) != 2 {
			t.Fatalf("headers %v", out)
		}
		if got := FromRecord(out, true, 2); got != h {
			t.Fatalf("round trip %+v → %+v", h, got)
		}
		// Bound to its attempt: read for another attempt, it proves nothing.
		if got := FromRecord(out, true, 3); got.Pinned != Primary {
			t.Fatalf("stale header trusted: %+v", got)
		}
	}
	if got := FromRecord(hs, false, 0); got.Pinned != "" {
		t.Fatal("a fresh record has had no call")
	}
	if got := FromRecord(hs, true, 1); got.Pinned != Primary {
		t.Fatal("a retry record without the header must count as maybe taken by the primary")
	}
	if got := FromRecord([]kgo.RecordHeader{{Key: Header, Value: []byte("nonsense@1")}}, true, 1); got.Pinned != Primary {
		t.Fatal("a malformed header must count as maybe taken by the primary")
	}
	// A record replayed from the DLQ starts over at attempt 1, but its
	// earlier attempts still count, whatever attempt the header names.
	for v, want := range map[string]Route{"clean@4": "", "primary@4": Primary, "failover@2": Second, "junk": Primary} {
		if got := FromReplay([]kgo.RecordHeader{{Key: Header, Value: []byte(v)}}); got.Pinned != want {
			t.Errorf("FromReplay(%q) = %+v, want %q", v, got, want)
		}
	}
	if got := FromReplay(hs); got.Pinned != Primary {
		t.Fatal("a replayed record without the header must count as maybe taken by the primary")
	}
}

// fakeRoutes is the second route of a test: it records what it was sent.
type fakeRoutes struct {
	has  bool
	err  error
	sent []string
}

func (f *fakeRoutes) HasFailover(string) bool { return f.has }
func (f *fakeRoutes) SendFailover(_ context.Context, m provider.Message) (string, error) {
	f.sent = append(f.sent, m.NotificationID)
	if f.err != nil {
		return "", f.err
	}
	return "second-" + m.NotificationID, nil
}

func TestCall(t *testing.T) {
	m := provider.Message{NotificationID: "n1", Sender: "acme"}
	primaryErr := func(err error) func(context.Context, provider.Message) (string, error) {
		return func(context.Context, provider.Message) (string, error) {
			if err != nil {
				return "", err
			}
			return "primary-id", nil
		}
	}
	never := func(context.Context, provider.Message) (string, error) {
		t.Fatal("the primary was called while down")
		return "", nil
	}
	isDown := func(v bool) func() bool { return func() bool { return v } }

	t.Run("up and accepted", func(t *testing.T) {
		r := &fakeRoutes{has: true}
		res := Call(context.Background(), r, m, History{}, isDown(false), primaryErr(nil))
		if res.Route != Primary || res.ID != "primary-id" || res.Err != nil || len(r.sent) != 0 || res.History.Pinned != Primary {
			t.Fatalf("%+v sent %v", res, r.sent)
		}
	})
	t.Run("down: not called, sent through the second route", func(t *testing.T) {
		r := &fakeRoutes{has: true}
		res := Call(context.Background(), r, m, History{}, isDown(true), never)
		if res.Route != Second || res.ID != "second-n1" || res.Err != nil || res.History.Pinned != Second {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("down without failover: held", func(t *testing.T) {
		res := Call(context.Background(), &fakeRoutes{}, m, History{}, isDown(true), never)
		if res.Route != "" || !errors.Is(res.Err, ErrNotCalled) {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("down, but the primary may have taken it earlier: held", func(t *testing.T) {
		r := &fakeRoutes{has: true}
		res := Call(context.Background(), r, m, History{Pinned: Primary}, isDown(true), never)
		if res.Route != "" || !errors.Is(res.Err, ErrNotCalled) || len(r.sent) != 0 {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("refused by the breaker before sending", func(t *testing.T) {
		r := &fakeRoutes{has: true}
		res := Call(context.Background(), r, m, History{}, isDown(false), primaryErr(ErrNotCalled))
		if res.Route != Second || len(r.sent) != 1 {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("this failure opened the breaker: refused connection goes over", func(t *testing.T) {
		r := &fakeRoutes{has: true}
		calls := 0
		down := func() bool { calls++; return calls > 1 }
		res := Call(context.Background(), r, m, History{}, down, primaryErr(refused))
		if res.Route != Second || res.Err != nil || len(r.sent) != 1 {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("this failure opened the breaker: a timeout stays", func(t *testing.T) {
		r := &fakeRoutes{has: true}
		calls := 0
		down := func() bool { calls++; return calls > 1 }
		res := Call(context.Background(), r, m, History{}, down, primaryErr(timedOut))
		if res.Route != Primary || res.Err != timedOut || len(r.sent) != 0 || res.History.Pinned != Primary {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("primary up: a refusal is retried on the primary", func(t *testing.T) {
		r := &fakeRoutes{has: true}
		res := Call(context.Background(), r, m, History{}, isDown(false), primaryErr(refused))
		if res.Route != Primary || res.Err != refused || len(r.sent) != 0 || res.History.Pinned != "" {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("pinned to the second route: sent there even with the primary up", func(t *testing.T) {
		r := &fakeRoutes{has: true, err: timedOut}
		res := Call(context.Background(), r, m, History{Pinned: Second}, isDown(false), never)
		if res.Route != Second || res.Err != timedOut || res.History.Pinned != Second {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("the second route times out: pinned there", func(t *testing.T) {
		r := &fakeRoutes{has: true, err: timedOut}
		res := Call(context.Background(), r, m, History{}, isDown(true), never)
		if res.Route != Second || res.History.Pinned != Second {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("the second route refuses too: still free", func(t *testing.T) {
		r := &fakeRoutes{has: true, err: refused}
		res := Call(context.Background(), r, m, History{}, isDown(true), never)
		if res.Route != Second || res.History.Pinned != "" {
			t.Fatalf("%+v", res)
		}
	})
}

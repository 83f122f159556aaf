package edgehttp

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestServerNameAlwaysHasAPort(t *testing.T) {
	for addr, want := range map[string]string{"127.0.0.1:8080": "svc:8080", "0.0.0.0:8081": "svc:8081", ":9000": "svc:9000", "bad": "svc:0"} {
		if got := ServerName("svc", addr); got != want {
			t.Errorf("ServerName(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestBodyGateHoldsAtMostItsBudget(t *testing.T) {
	g := NewBodyGate(10_000, 4_000, 50*time.Millisecond)
	ctx := context.Background()
	r1, err := g.Reserve(ctx, 4_000)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := g.Reserve(ctx, 4_000)
	if err != nil {
		t.Fatal(err)
	}
	// 2 × (4000 + slack) held; a third of that size does not fit and is
	// refused after the wait, a small one still fits.
	if _, err := g.Reserve(ctx, 4_000); !errors.Is(err, ErrBusy) {
		t.Fatalf("third reservation: %v, want ErrBusy", err)
	}
	r3, err := g.Reserve(ctx, 100)
	if err != nil {
		t.Fatalf("small reservation: %v", err)
	}
	st := g.Stats()
	if st.Held != 2*(4_000+readSlack)+100+readSlack || st.Bodies != 3 || st.PeakHeld > st.Budget {
		t.Fatalf("stats %+v", st)
	}
	r1()
	r1() // a second release is harmless
	// Unknown length reserves twice the largest body: 8512 > 10000-4612.
	if _, err := g.Reserve(ctx, -1); !errors.Is(err, ErrBusy) {
		t.Fatalf("unknown length while 4612 bytes are held: %v, want ErrBusy", err)
	}
	r2()
	r3()
	r4, err := g.Reserve(ctx, -1)
	if err != nil {
		t.Fatalf("unknown length on an empty gate: %v", err)
	}
	r4()
	if st := g.Stats(); st.Held != 0 || st.Bodies != 0 || st.PeakCount != 3 {
		t.Fatalf("after releases: %+v", st)
	}
}

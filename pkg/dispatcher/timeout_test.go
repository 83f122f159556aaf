package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/provider/xpressbot"
	"github.com/wanotify/wanotify/pkg/simulator"
)

// A call that times out may have been sent. With a provider that
// deduplicates by idempotency key it is retried safely; without, it is
// reported outcome_unknown and never resent. Either way the provider sends
// the message at most once.
func TestTimedOutSendsAreNeverSentTwice(t *testing.T) {
	for _, keyed := range []bool{true, false} {
		name := map[bool]string{true: "provider deduplicates by key", false: "provider without keys"}[keyed]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, 2, simulator.Behavior{TimeoutAccepts: true, IdempotencyKeys: keyed})
			p, err := xpressbot.New(xpressbot.Options{BaseURL: e.simURL, APIKey: simKey,
				Timeout: 300 * time.Millisecond, NoIdempotencyKeys: !keyed})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Close)
			d, err := New(testConfig("timeouts-"+map[bool]string{true: "keyed", false: "plain"}[keyed]), p, e.kafkaOpts(), testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-done })

			w := e.watch()
			n := notification("timeout-1", recipient(1), "s1", "every call hangs [sim:timeout]")
			e.publish(n)
			got := w.waitTerminal(t, []string{n.ID}, 60*time.Second)[n.ID]
			l := e.sim.Ledger()
			if l.Accepted != 1 || l.DuplicateSends != 0 {
				t.Fatalf("ledger accepted %d, duplicates %d: want the message sent exactly once", l.Accepted, l.DuplicateSends)
			}
			if keyed {
				if got != contract.StatusDeadLettered || l.IdempotentReplays != maxAttempts-1 {
					t.Fatalf("status %s, replays %d: want dead_lettered after %d attempts answered from the first",
						got, l.IdempotentReplays, maxAttempts)
				}
			} else if got != contract.StatusOutcomeUnknown || l.IdempotentReplays != 0 {
				t.Fatalf("status %s, replays %d: want outcome_unknown after one attempt", got, l.IdempotentReplays)
			}
		})
	}
}

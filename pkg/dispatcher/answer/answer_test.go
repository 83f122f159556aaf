package answer_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/wanotify/wanotify/pkg/dispatcher/answer"
	"github.com/wanotify/wanotify/pkg/dispatcher/dedupe"
	"github.com/wanotify/wanotify/pkg/provider"
)

var delays = []time.Duration{5 * time.Second, 15 * time.Second, 45 * time.Second}

func perr(class provider.Class, code string, retryAfter time.Duration) error {
	return &provider.Error{Class: class, Code: code, Message: "m", RetryAfter: retryAfter}
}

func TestJudge(t *testing.T) {
	at := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	plain := answer.Policy{Delays: delays}
	keyed := answer.Policy{Delays: delays, Keyed: true}
	deferring := answer.Policy{Delays: delays, DeferDelay: 24 * time.Hour, DeferMax: 2}
	cases := []struct {
		name    string
		p       answer.Policy
		c       answer.Call
		action  answer.Action
		state   dedupe.State
		due     time.Duration // after at; 0: none
		errCode string
	}{
		{"accepted", plain, answer.Call{Attempt: 1, ID: "wamid.1"}, answer.Settle, dedupe.StateAccepted, 0, ""},
		{"breaker refused: nothing sent", plain, answer.Call{Attempt: 1, Err: gobreaker.ErrOpenState}, answer.Park, dedupe.StateNone, 0, ""},
		{"half-open full", plain, answer.Call{Attempt: 2, Err: gobreaker.ErrTooManyRequests}, answer.Park, dedupe.StateNone, 0, ""},
		{"timeout, provider not keyed: outcome unknown", plain, answer.Call{Attempt: 1, Err: perr(provider.Retryable, "timeout", 0)}, answer.Settle, dedupe.StateOutcomeUnknown, 0, "timeout"},
		{"timeout, keyed provider: retried", keyed, answer.Call{Attempt: 1, Err: perr(provider.Retryable, "timeout", 0)}, answer.Settle, dedupe.StateRetrying, 5 * time.Second, "timeout"},
		{"timeout, resend policy: retried", answer.Policy{Delays: delays, Resend: true}, answer.Call{Attempt: 2, Err: perr(provider.Retryable, "timeout", 0)}, answer.Settle, dedupe.StateRetrying, 15 * time.Second, "timeout"},
		{"permanent", plain, answer.Call{Attempt: 1, Err: perr(provider.Permanent, "131026", 0)}, answer.Settle, dedupe.StateFailed, 0, "131026"},
		{"without long deferral, deferred goes to the last tier", plain, answer.Call{Attempt: 1, Err: perr(provider.Deferred, "131049", 0)}, answer.Settle, dedupe.StateRetrying, 45 * time.Second, "131049"},
		{"without long deferral, deferred on the last attempt", plain, answer.Call{Attempt: 4, Err: perr(provider.Deferred, "131049", 0)}, answer.Settle, dedupe.StateDeadLettered, 0, "131049"},
		{"deferred for a day, attempt not counted", deferring, answer.Call{Attempt: 4, Err: perr(provider.Deferred, "131049", 0)}, answer.Settle, dedupe.StateRetrying, 24 * time.Hour, "131049"},
		{"deferred again", deferring, answer.Call{Attempt: 2, Deferrals: 1, Err: perr(provider.Deferred, "131049", 0)}, answer.Settle, dedupe.StateRetrying, 24 * time.Hour, "131049"},
		{"deferred as often as allowed: dead-lettered", deferring, answer.Call{Attempt: 3, Deferrals: 2, Err: perr(provider.Deferred, "131049", 0)}, answer.Settle, dedupe.StateDeadLettered, 0, "131049"},
		{"expires before the deferral is over", deferring, answer.Call{Attempt: 1, Err: perr(provider.Deferred, "131049", 0), Expires: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}, answer.Settle, dedupe.StateExpired, 0, "131049"},
		{"deferrals do not spend the retries", deferring, answer.Call{Attempt: 3, Deferrals: 2, Err: perr(provider.Retryable, "http_503", 0)}, answer.Settle, dedupe.StateRetrying, 5 * time.Second, "http_503"},
		{"account fault halts the sender", plain, answer.Call{Attempt: 1, Err: perr(provider.AccountFault, "190", 0)}, answer.Halt, dedupe.StateNone, 0, "190"},
		{"account fault while the breaker is open still halts", plain, answer.Call{Attempt: 2, Err: perr(provider.AccountFault, "368", 0), Breaker: gobreaker.StateOpen}, answer.Halt, dedupe.StateNone, 0, "368"},
		{"failure while the breaker is open parks", plain, answer.Call{Attempt: 3, Err: perr(provider.Retryable, "http_503", 0), Breaker: gobreaker.StateOpen}, answer.Park, dedupe.StateNone, 0, "http_503"},
		{"retryable: tier of the attempt", plain, answer.Call{Attempt: 2, Err: perr(provider.Retryable, "http_503", 0)}, answer.Settle, dedupe.StateRetrying, 15 * time.Second, "http_503"},
		{"throttled waits its Retry-After", plain, answer.Call{Attempt: 1, Err: perr(provider.Throttled, "130429", 30*time.Second)}, answer.Settle, dedupe.StateRetrying, 30 * time.Second, "130429"},
		{"exhausted", plain, answer.Call{Attempt: 4, Err: perr(provider.Retryable, "http_503", 0)}, answer.Settle, dedupe.StateDeadLettered, 0, "http_503"},
		{"an error that is no provider.Error is retryable", plain, answer.Call{Attempt: 1, Err: errors.New("boom")}, answer.Settle, dedupe.StateRetrying, 5 * time.Second, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.At = at
			d := tc.p.Judge(tc.c)
			if tc.state == dedupe.StateRetrying && d.Deferred != (tc.due == 24*time.Hour) {
				t.Fatalf("deferred %v for a due after %s", d.Deferred, tc.due)
			}
			if d.Action != tc.action {
				t.Fatalf("action %v, want %v", d.Action, tc.action)
			}
			if tc.action != answer.Settle {
				return
			}
			if d.State != tc.state {
				t.Fatalf("state %v, want %v", d.State, tc.state)
			}
			var want time.Time
			if tc.due > 0 {
				want = at.Add(tc.due)
			}
			if !d.Due.Equal(want) {
				t.Fatalf("due %v, want %v", d.Due, want)
			}
			if tc.errCode != "" && (d.Err == nil || d.Err.Code != tc.errCode) {
				t.Fatalf("error %+v, want code %s", d.Err, tc.errCode)
			}
			if tc.state == dedupe.StateAccepted && d.Err != nil {
				t.Fatalf("accepted with error %+v", d.Err)
			}
		})
	}
}

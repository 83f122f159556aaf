package providertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/simulator"
)

// APIKey is the credential the suite's simulators require.
const APIKey = "providertest-key"

// Target is what a Factory must point its client at.
type Target struct {
	URL     string        // the simulator's base URL
	APIKey  string        // the credential to send
	Timeout time.Duration // the client's per-call timeout
}

// Factory builds the Provider under test for target. It should register
// any cleanup (closing idle connections) with t.
type Factory func(t *testing.T, target Target) provider.Provider

// Suite describes the implementation under test.
type Suite struct {
	New Factory
	// SendsIdempotencyKey: the client transmits Message.IdempotencyKey
	// (the simulator's ledger must record it).
	SendsIdempotencyKey bool
}

// Sender and Recipient are used by every message of the suite.
const (
	Sender    = "106540352242922"
	Recipient = "+447700900123"
)

// TextMessage returns a text message for notification n.
func TextMessage(n int, body string) provider.Message {
	return provider.Message{
		NotificationID: fmt.Sprintf("00000000-0000-4000-8000-%012d", n),
		IdempotencyKey: fmt.Sprintf("user-%d:otp:2025-03-01T12:00:00Z", n),
		Sender:         Sender,
		Recipient:      Recipient,
		Text:           &contract.Text{Body: body},
	}
}

// Run runs the conformance suite: every Provider must pass it.
func Run(t *testing.T, s Suite) {
	newSim := func(t *testing.T, mutate func(*simulator.Config)) (*simulator.Simulator, string) {
		cfg := simulator.Config{APIKey: APIKey, Seed: 1}
		if mutate != nil {
			mutate(&cfg)
		}
		return StartSimulator(t, cfg)
	}
	client := func(t *testing.T, url string, timeout time.Duration) provider.Provider {
		if timeout == 0 {
			timeout = 5 * time.Second
		}
		return s.New(t, Target{URL: url, APIKey: APIKey, Timeout: timeout})
	}

	t.Run("SendTextRecordedByProvider", func(t *testing.T) {
		sim, url := newSim(t, nil)
		p := client(t, url, 0)
		if p.Name() == "" {
			t.Fatal("Name() is empty")
		}
		m := TextMessage(1, "Your code is 123456")
		id, err := p.Send(context.Background(), m)
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		led := sim.Ledger()
		if led.Accepted != 1 || len(led.Entries) != 1 {
			t.Fatalf("ledger accepted %d, want 1", led.Accepted)
		}
		e := led.Entries[0]
		if id == "" || e.MessageID != id {
			t.Fatalf("returned id %q, ledger recorded %q", id, e.MessageID)
		}
		if e.NotificationID != m.NotificationID || e.Sender != Sender || e.Recipient != Recipient ||
			e.Type != "text" || e.Text != m.Text.Body {
			t.Fatalf("ledger entry %+v does not match the message %+v", e, m)
		}
		if s.SendsIdempotencyKey && e.IdempotencyKey != m.IdempotencyKey {
			t.Fatalf("ledger idempotency key %q, want %q", e.IdempotencyKey, m.IdempotencyKey)
		}
	})

	t.Run("SendTemplate", func(t *testing.T) {
		sim, url := newSim(t, nil)
		p := client(t, url, 0)
		m := TextMessage(2, "")
		m.Text = nil
		m.Template = &contract.Template{Name: "invoice_reminder", Language: "en_GB", Parameters: []string{"Ada", "€42.00"}}
		id, err := p.Send(context.Background(), m)
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		e := sim.Ledger().Entries[0]
		if e.MessageID != id || e.Type != "template" || e.TemplateName != "invoice_reminder" ||
			e.TemplateLanguage != "en_GB" || strings.Join(e.TemplateParams, "|") != "Ada|€42.00" {
			t.Fatalf("ledger entry %+v does not carry the template", e)
		}
	})

	t.Run("ConcurrentSendsAllRecorded", func(t *testing.T) {
		sim, url := newSim(t, nil)
		p := client(t, url, 0)
		const workers, per = 16, 8
		ids := make(chan string, workers*per)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range per {
					id, err := p.Send(context.Background(), TextMessage(100+w*per+i, "hi"))
					if err != nil {
						t.Errorf("Send: %v", err)
						return
					}
					ids <- id
				}
			})
		}
		wg.Wait()
		close(ids)
		seen := map[string]bool{}
		for id := range ids {
			if seen[id] {
				t.Fatalf("message id %s returned twice", id)
			}
			seen[id] = true
		}
		led := sim.Ledger()
		if len(seen) != workers*per || led.Accepted != workers*per || led.DistinctNotifications != workers*per || led.DuplicateSends != 0 {
			t.Fatalf("ids %d, ledger %+v; want %d of each and no duplicates", len(seen), led.Accepted, workers*per)
		}
	})

	t.Run("StatusWebhooksEchoNotificationID", func(t *testing.T) {
		rec := NewWebhookRecorder(t, "whsec")
		_, url := newSim(t, func(c *simulator.Config) {
			c.Webhook.URL, c.Webhook.Secret = rec.URL, "whsec"
			c.Behavior.Webhooks, c.Behavior.ReadRate = true, 1
			// Spaced out so they arrive in order: the simulator delivers
			// concurrently, and equal due times may overtake each other.
			c.Behavior.DeliveredDelay = simulator.Fixed(50 * time.Millisecond)
			c.Behavior.ReadDelay = simulator.Fixed(50 * time.Millisecond)
		})
		p := client(t, url, 0)
		m := TextMessage(3, "hello")
		id, err := p.Send(context.Background(), m)
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		var got []string
		for _, wh := range rec.WaitFor(t, 3, 5*time.Second) {
			if !wh.Valid {
				t.Fatal("webhook signature does not verify")
			}
			for _, st := range wh.Statuses() {
				if st.ID != id || st.BizOpaqueCallbackData != m.NotificationID || st.RecipientID != strings.TrimPrefix(Recipient, "+") {
					t.Fatalf("status %+v: want id %s, callback data %s", st, id, m.NotificationID)
				}
				got = append(got, st.Status)
			}
		}
		if strings.Join(got, ",") != "sent,delivered,read" {
			t.Fatalf("statuses %v, want sent,delivered,read", got)
		}
	})

	t.Run("Retryable5xx", func(t *testing.T) {
		sim, url := newSim(t, func(c *simulator.Config) { c.Behavior.RetryableRate = 1 })
		p := client(t, url, 0)
		_, err := p.Send(context.Background(), TextMessage(4, "x"))
		wantError(t, err, provider.Retryable, "http_503", 503)
		if led := sim.Ledger(); led.Accepted != 0 || led.Failures["http_503"] != 1 {
			t.Fatalf("ledger %+v: want nothing accepted, one 503", led)
		}
	})

	t.Run("ThrottledByRateLimitWithRetryAfter", func(t *testing.T) {
		sim, url := newSim(t, func(c *simulator.Config) { c.Behavior.RateLimit, c.Behavior.Burst = 1, 1 })
		p := client(t, url, 0)
		if _, err := p.Send(context.Background(), TextMessage(5, "first")); err != nil {
			t.Fatalf("first Send: %v", err)
		}
		_, err := p.Send(context.Background(), TextMessage(6, "second"))
		pe := wantError(t, err, provider.Throttled, "meta_130429", 429)
		if pe.RetryAfter != time.Second {
			t.Fatalf("RetryAfter = %s, want the simulator's 1s", pe.RetryAfter)
		}
		if led := sim.Ledger(); led.Accepted != 1 || led.Throttled != 1 || led.ThrottledBySender[Sender] != 1 {
			t.Fatalf("ledger accepted %d throttled %d, want 1 and 1", led.Accepted, led.Throttled)
		}
	})

	t.Run("RetryAfterHeaderHonoured", func(t *testing.T) {
		_, url := newSim(t, nil)
		p := client(t, url, 0)
		cases := []struct {
			directive, code string
			status          int
			after           time.Duration
		}{
			{"[sim:meta_130429:7]", "meta_130429", 429, 7 * time.Second},
			{"[sim:http_429:3]", "http_429", 429, 3 * time.Second},
			{"[sim:http_429]", "http_429", 429, time.Second},
		}
		for i, c := range cases {
			_, err := p.Send(context.Background(), TextMessage(10+i, "otp "+c.directive))
			pe := wantError(t, err, provider.Throttled, c.code, c.status)
			if pe.RetryAfter != c.after {
				t.Fatalf("%s: RetryAfter = %s, want %s", c.directive, pe.RetryAfter, c.after)
			}
		}
	})

	t.Run("ProviderCodesClassified", func(t *testing.T) {
		sim, url := newSim(t, nil)
		p := client(t, url, 0)
		cases := []struct {
			code  int
			class provider.Class
		}{
			{provider.MetaUndeliverable, provider.Permanent},
			{provider.MetaReengagement, provider.Permanent},
			{provider.MetaTemplateParams, provider.Permanent},
			{provider.MetaTemplateMissing, provider.Permanent},
			{provider.MetaInvalidParameter, provider.Permanent},
			{provider.MetaPolicyBlock, provider.AccountFault},
			{provider.MetaPayment, provider.AccountFault},
			{provider.MetaEcosystem, provider.Deferred},
			{provider.MetaUserStoppedMkt, provider.Permanent},
			{provider.MetaPairRate, provider.Throttled},
			{999999, provider.Retryable},
		}
		for i, c := range cases {
			m := TextMessage(20+i, "")
			m.Text = nil
			// The directive travels in a template parameter here, to show
			// template sends reach the provider's error path too.
			m.Template = &contract.Template{Name: "otp", Language: "en", Parameters: []string{fmt.Sprintf("[sim:meta_%d]", c.code)}}
			_, err := p.Send(context.Background(), m)
			status := 400
			if c.code == provider.MetaPairRate {
				status = 429 // Meta answers the pair rate with 429
			}
			pe := wantError(t, err, c.class, fmt.Sprintf("meta_%d", c.code), status)
			if c.code == provider.MetaPairRate && pe.RetryAfter != provider.PairRateRetryAfter {
				t.Fatalf("pair rate RetryAfter = %s, want %s", pe.RetryAfter, provider.PairRateRetryAfter)
			}
		}
		if led := sim.Ledger(); led.Accepted != 0 {
			t.Fatalf("failed sends were recorded as accepted: %d", led.Accepted)
		}
	})

	t.Run("InjectedPermanentFailure", func(t *testing.T) {
		_, url := newSim(t, func(c *simulator.Config) {
			c.Behavior.PermanentRate, c.Behavior.PermanentCodes = 1, []int{provider.MetaReengagement}
		})
		p := client(t, url, 0)
		_, err := p.Send(context.Background(), TextMessage(30, "outside the window"))
		wantError(t, err, provider.Permanent, "meta_131047", 400)
	})

	t.Run("UnauthorizedIsAccountFault", func(t *testing.T) {
		_, url := newSim(t, nil)
		p := s.New(t, Target{URL: url, APIKey: "wrong-key", Timeout: 5 * time.Second})
		_, err := p.Send(context.Background(), TextMessage(31, "x"))
		pe := provider.AsError(err)
		if pe == nil || pe.Class != provider.AccountFault || pe.HTTPStatus != 401 {
			t.Fatalf("err = %v, want an account fault with HTTP 401", err)
		}
	})

	t.Run("InvalidMessageNotSent", func(t *testing.T) {
		sim, url := newSim(t, nil)
		p := client(t, url, 0)
		m := TextMessage(32, "")
		m.Text = nil
		_, err := p.Send(context.Background(), m)
		pe := provider.AsError(err)
		if pe == nil || pe.Class != provider.Permanent {
			t.Fatalf("err = %v, want permanent", err)
		}
		if led := sim.Ledger(); led.Accepted != 0 || len(led.Rejections) != 0 {
			t.Fatalf("an invalid message reached the provider: %+v", led)
		}
	})

	t.Run("TimeoutIsRetryable", func(t *testing.T) {
		sim, url := newSim(t, nil)
		p := client(t, url, 300*time.Millisecond)
		start := time.Now()
		_, err := p.Send(context.Background(), TextMessage(33, "[sim:timeout]"))
		elapsed := time.Since(start)
		wantError(t, err, provider.Retryable, "timeout", 0)
		if elapsed < 300*time.Millisecond || elapsed > 3*time.Second {
			t.Fatalf("Send returned after %s, want about the 300ms timeout", elapsed)
		}
		if led := sim.Ledger(); led.Accepted != 0 || led.Failures["timeout"] != 1 {
			t.Fatalf("ledger %+v: want one timeout, nothing accepted", led)
		}
	})

	t.Run("TimeoutAfterProviderAccepted", func(t *testing.T) {
		// The provider took the message but the answer never came: the
		// client reports a retryable timeout, and only the ledger knows it
		// was sent. This is the window idempotency keys exist for.
		sim, url := newSim(t, func(c *simulator.Config) { c.Behavior.TimeoutRate, c.Behavior.TimeoutAccepts = 1, true })
		p := client(t, url, 200*time.Millisecond)
		_, err := p.Send(context.Background(), TextMessage(34, "x"))
		wantError(t, err, provider.Retryable, "timeout", 0)
		if led := sim.Ledger(); led.Accepted != 1 {
			t.Fatalf("ledger accepted %d, want 1", led.Accepted)
		}
	})

	t.Run("ContextCanceledMidCall", func(t *testing.T) {
		_, url := newSim(t, nil)
		p := client(t, url, 0)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		_, err := p.Send(ctx, TextMessage(35, "[sim:timeout]"))
		pe := wantError(t, err, provider.Retryable, "canceled", 0)
		if !errors.Is(pe, context.Canceled) {
			t.Fatalf("errors.Is(err, context.Canceled) is false for %v", err)
		}
		if time.Since(start) > 3*time.Second {
			t.Fatal("Send did not return promptly after cancellation")
		}
	})

	t.Run("ContextDeadline", func(t *testing.T) {
		_, url := newSim(t, nil)
		p := client(t, url, 0)
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		_, err := p.Send(ctx, TextMessage(36, "[sim:timeout]"))
		wantError(t, err, provider.Retryable, "timeout", 0)
	})

	t.Run("ContextAlreadyCanceled", func(t *testing.T) {
		sim, url := newSim(t, nil)
		p := client(t, url, 0)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := p.Send(ctx, TextMessage(37, "x"))
		wantError(t, err, provider.Retryable, "canceled", 0)
		if led := sim.Ledger(); led.Accepted != 0 || len(led.Rejections) != 0 {
			t.Fatalf("a canceled send reached the provider: %+v", led)
		}
	})

	t.Run("OutageThenRecovery", func(t *testing.T) {
		sim, url := newSim(t, nil)
		p := client(t, url, 0)
		sim.SetOutage(true)
		_, err := p.Send(context.Background(), TextMessage(38, "x"))
		wantError(t, err, provider.Retryable, "http_503", 503)

		b := sim.Behavior()
		b.OutageMode = simulator.OutageReset
		if err := sim.SetBehavior(b); err != nil {
			t.Fatal(err)
		}
		_, err = p.Send(context.Background(), TextMessage(39, "x"))
		wantError(t, err, provider.Retryable, "network", 0)

		sim.SetOutage(false)
		if _, err := p.Send(context.Background(), TextMessage(40, "x")); err != nil {
			t.Fatalf("Send after the outage: %v", err)
		}
		if led := sim.Ledger(); led.Accepted != 1 || led.Failures["outage"] != 2 {
			t.Fatalf("ledger %+v: want 2 outage failures then 1 accepted", led)
		}
	})

	t.Run("ProviderUnreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		p := client(t, "http://"+addr, 0)
		_, err = p.Send(context.Background(), TextMessage(41, "x"))
		wantError(t, err, provider.Retryable, "network", 0)
	})
}

// wantError checks that err is a classified provider error as described;
// status 0 means no HTTP response.
func wantError(t *testing.T, err error, class provider.Class, code string, status int) *provider.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("Send succeeded, want %s error %s", class, code)
	}
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *provider.Error", err, err)
	}
	if pe.Class != class || pe.Code != code || pe.HTTPStatus != status {
		t.Fatalf("error = {class %s, code %s, http %d} (%v), want {%s, %s, %d}",
			pe.Class, pe.Code, pe.HTTPStatus, err, class, code, status)
	}
	if pe.Retryable() != (class != provider.Permanent) {
		t.Fatalf("Retryable() = %v for class %s", pe.Retryable(), class)
	}
	return pe
}

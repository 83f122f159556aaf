package simulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wanotify/wanotify/pkg/metawebhook"
	"github.com/wanotify/wanotify/pkg/provider/providertest"
	"github.com/wanotify/wanotify/pkg/simulator"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const key = "sim-key"

func newSim(t *testing.T, mutate func(*simulator.Config)) (*simulator.Simulator, string) {
	t.Helper()
	cfg := simulator.Config{APIKey: key, Seed: 7}
	if mutate != nil {
		mutate(&cfg)
	}
	return providertest.StartSimulator(t, cfg)
}

func httpClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

// errorCode digs the Meta code out of either API's error shape.
func (a answer) errorCode() int {
	var x struct {
		Data struct {
			Error struct {
				Code int `json:"code"`
			} `json:"error"`
		} `json:"data"`
		Error struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(a.raw, &x)
	return max(x.Data.Error.Code, x.Error.Code)
}

// do sends one request; a transport failure fails the test and yields a
// zero answer.
func do(t *testing.T, c *http.Client, method, url string, header map[string]string, body any) answer {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Error(err)
		return answer{}
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		// Errorf, not Fatalf: do runs on load-generating goroutines too.
		t.Errorf("%s %s: %v", method, url, err)
		return answer{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

func xbBody(nid, sender, text string) map[string]any {
	return map[string]any{
		"phone_number_id": sender, "to": "+447700900123", "type": "text",
		"text":                     map[string]any{"body": text},
		"biz_opaque_callback_data": nid, "idempotency_key": "idem-" + nid,
	}
}

func sendXB(t *testing.T, c *http.Client, url, nid, sender, text string) answer {
	t.Helper()
	return do(t, c, http.MethodPost, url+simulator.DefaultSendPath, map[string]string{"X-API-Key": key}, xbBody(nid, sender, text))
}

func TestRateLimiterRejectsBurstAboveLimit(t *testing.T) {
	sim, url := newSim(t, func(c *simulator.Config) { c.Behavior.RateLimit = 50 }) // burst: automatic, 10
	c := httpClient(t)
	const n = 200
	var ok, throttled atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			a := sendXB(t, c, url, fmt.Sprintf("n%d", i), "sender-a", "hi")
			switch a.status {
			case http.StatusOK:
				ok.Add(1)
			case http.StatusTooManyRequests:
				ra, err := strconv.Atoi(a.header.Get("Retry-After"))
				if code := a.errorCode(); code != 130429 || err != nil || ra < 1 {
					t.Errorf("429 with code %d, Retry-After %q", code, a.header.Get("Retry-After"))
				}
				throttled.Add(1)
			default:
				t.Errorf("unexpected status %d: %s", a.status, a.raw)
			}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(began)

	// Accepted: the burst, plus what refilled while the requests arrived.
	maxOK := int64(10 + 50*elapsed.Seconds() + 1)
	if ok.Load() < 10 || ok.Load() > maxOK {
		t.Fatalf("accepted %d of %d in %s, want between the burst (10) and %d", ok.Load(), n, elapsed, maxOK)
	}
	if ok.Load()+throttled.Load() != n {
		t.Fatalf("%d accepted + %d throttled != %d", ok.Load(), throttled.Load(), n)
	}
	led := sim.Ledger()
	if int64(led.Accepted) != ok.Load() || int64(led.Throttled) != throttled.Load() || int64(led.ThrottledBySender["sender-a"]) != throttled.Load() {
		t.Fatalf("ledger accepted %d throttled %d, clients saw %d and %d", led.Accepted, led.Throttled, ok.Load(), throttled.Load())
	}
	if led.MaxPerSecond["sender-a"] > 60 {
		t.Fatalf("max per second %d exceeds limit+burst", led.MaxPerSecond["sender-a"])
	}
	// The bucket is per sender account: another sender is unaffected.
	if a := sendXB(t, c, url, "other", "sender-b", "hi"); a.status != http.StatusOK {
		t.Fatalf("another sender got %d", a.status)
	}
}

func TestRateLimiterAcceptsPacedBelowLimit(t *testing.T) {
	sim, url := newSim(t, func(c *simulator.Config) { c.Behavior.RateLimit = 50 })
	c := httpClient(t)
	tick := time.NewTicker(time.Second / 40)
	defer tick.Stop()
	var wg sync.WaitGroup
	var throttled atomic.Int64
	for i := range 60 { // 1.5 s at 40/s
		<-tick.C
		wg.Go(func() {
			if a := sendXB(t, c, url, fmt.Sprintf("p%d", i), "sender-a", "hi"); a.status != http.StatusOK {
				throttled.Add(1)
				t.Errorf("paced send %d got %d", i, a.status)
			}
		})
	}
	wg.Wait()
	if led := sim.Ledger(); throttled.Load() != 0 || led.Throttled != 0 || led.Accepted != 60 {
		t.Fatalf("paced at 40/s against 50/s: %d throttled, ledger %d accepted %d throttled", throttled.Load(), led.Accepted, led.Throttled)
	}
}

func TestLedgerExactUnderConcurrentLoad(t *testing.T) {
	sim, url := newSim(t, nil) // unlimited
	c := httpClient(t)
	const goroutines, per = 64, 20
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for m := range per {
				// Every notification id is sent twice; every idempotency
				// key four times.
				body := xbBody(fmt.Sprintf("n-%d-%d", g, m%10), fmt.Sprintf("s%d", g%4), "hi")
				body["idempotency_key"] = fmt.Sprintf("k-%d-%d", g, m%5)
				if a := do(t, c, http.MethodPost, url+simulator.DefaultSendPath, map[string]string{"X-API-Key": key}, body); a.status != 200 {
					t.Errorf("status %d", a.status)
				}
			}
		})
	}
	wg.Wait()
	led := sim.Ledger()
	if led.Accepted != goroutines*per || len(led.Entries) != goroutines*per {
		t.Fatalf("accepted %d, want %d", led.Accepted, goroutines*per)
	}
	if led.DistinctNotifications != goroutines*10 || led.DuplicateSends != goroutines*10 || len(led.Duplicates) != goroutines*10 {
		t.Fatalf("distinct %d duplicates %d (%d ids), want %d each", led.DistinctNotifications, led.DuplicateSends, len(led.Duplicates), goroutines*10)
	}
	for id, n := range led.Duplicates {
		if n != 2 {
			t.Fatalf("notification %s counted %d times, want 2", id, n)
		}
	}
	if led.DuplicateIdempotencySends != goroutines*(per-5) || len(led.DuplicateKeys) != goroutines*5 {
		t.Fatalf("duplicate key sends %d over %d keys, want %d over %d", led.DuplicateIdempotencySends, len(led.DuplicateKeys), goroutines*(per-5), goroutines*5)
	}
	ids := map[string]bool{}
	for _, e := range led.Entries {
		ids[e.MessageID] = true
	}
	if len(ids) != goroutines*per {
		t.Fatalf("%d distinct message ids for %d sends", len(ids), goroutines*per)
	}

	// Throttle counting is exact too: a bucket of 100 that never refills.
	sim2, url2 := newSim(t, func(c *simulator.Config) { c.Behavior.RateLimit, c.Behavior.Burst = 1e-9, 100 })
	for g := range goroutines {
		wg.Go(func() {
			for m := range 10 {
				sendXB(t, c, url2, fmt.Sprintf("t-%d-%d", g, m), "one-sender", "hi")
			}
		})
	}
	wg.Wait()
	if led := sim2.Ledger(); led.Accepted != 100 || led.Throttled != goroutines*10-100 || led.Failures["meta_130429"] != led.Throttled {
		t.Fatalf("accepted %d throttled %d, want exactly 100 and %d", led.Accepted, led.Throttled, goroutines*10-100)
	}
}

// webhookSim runs a simulator whose webhooks go to a recorder.
func webhookSim(t *testing.T, secret string, mutate func(*simulator.Behavior)) (*simulator.Simulator, string, *providertest.WebhookRecorder) {
	rec := providertest.NewWebhookRecorder(t, secret)
	sim, url := newSim(t, func(c *simulator.Config) {
		c.WABAID = "waba-1"
		c.Webhook.URL, c.Webhook.Secret = rec.URL, "shared-secret"
		c.Webhook.Backoff = 10 * time.Millisecond
		c.Behavior.Webhooks = true
		c.Behavior.DeliveredDelay = simulator.Fixed(60 * time.Millisecond)
		c.Behavior.ReadDelay = simulator.Fixed(60 * time.Millisecond)
		if mutate != nil {
			mutate(&c.Behavior)
		}
	})
	return sim, url, rec
}

func statusesOf(whs []providertest.Webhook) []metawebhook.Status {
	var out []metawebhook.Status
	for _, w := range whs {
		out = append(out, w.Statuses()...)
	}
	return out
}

func names(sts []metawebhook.Status) string {
	var s []string
	for _, st := range sts {
		s = append(s, st.Status)
	}
	return strings.Join(s, ",")
}

// settle waits until the simulator has nothing left to deliver.
func settle(t *testing.T, sim *simulator.Simulator) simulator.Snapshot {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		led := sim.Ledger()
		w := led.Webhooks
		if sim.PendingWebhooks() == 0 && w.Delivered+w.GaveUp+w.Dropped >= w.Scheduled {
			return led
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("webhooks did not settle")
	return simulator.Snapshot{}
}

func TestWebhooksSignedInMetaShape(t *testing.T) {
	sim, url, rec := webhookSim(t, "shared-secret", func(b *simulator.Behavior) { b.ReadRate = 1 })
	a := sendXB(t, httpClient(t), url, "nid-1", "pn-1", "hello")
	if a.status != 200 {
		t.Fatalf("send: %d %s", a.status, a.raw)
	}
	msgID := a.body["data"].(map[string]any)["message_id"].(string)
	whs := rec.WaitFor(t, 3, 5*time.Second)
	sts := statusesOf(whs)
	if names(sts) != "sent,delivered,read" {
		t.Fatalf("statuses %s, want sent,delivered,read", names(sts))
	}
	prev := int64(0)
	for _, w := range whs {
		if !w.Valid || !metawebhook.Verify([]byte("shared-secret"), w.Body, w.Signature) {
			t.Fatal("signature does not verify with the shared secret")
		}
		if metawebhook.Verify([]byte("wrong-secret"), w.Body, w.Signature) {
			t.Fatal("signature verifies with a wrong secret")
		}
		p := w.Payload
		if p.Object != "whatsapp_business_account" || len(p.Entry) != 1 || p.Entry[0].ID != "waba-1" ||
			p.Entry[0].Changes[0].Field != "messages" || p.Entry[0].Changes[0].Value.Metadata.PhoneNumberID != "pn-1" ||
			p.Entry[0].Changes[0].Value.MessagingProduct != "whatsapp" {
			t.Fatalf("payload shape: %s", w.Body)
		}
		st := w.Statuses()[0]
		ts, err := strconv.ParseInt(st.Timestamp, 10, 64)
		if err != nil || ts < prev || st.ID != msgID || st.BizOpaqueCallbackData != "nid-1" || st.RecipientID != "447700900123" {
			t.Fatalf("status %+v", st)
		}
		prev = ts
	}
	if led := settle(t, sim); led.Webhooks.Scheduled != 3 || led.Webhooks.Delivered != 3 || led.Webhooks.Retries != 0 {
		t.Fatalf("webhook stats %+v", led.Webhooks)
	}
}

func TestWebhookWrongSecretFailsAndRetriesAreBounded(t *testing.T) {
	sim, url, rec := webhookSim(t, "receiver-has-another-secret", func(b *simulator.Behavior) {
		b.SkipDeliveredRate, b.ReadRate = 1, 0 // one status: sent
	})
	sendXB(t, httpClient(t), url, "nid-1", "pn-1", "hello")
	led := settle(t, sim)
	got := rec.Received()
	if len(got) != simulator.DefaultWebhookMaxAttempts {
		t.Fatalf("%d deliveries, want MaxAttempts (%d)", len(got), simulator.DefaultWebhookMaxAttempts)
	}
	for _, w := range got {
		if w.Valid {
			t.Fatal("a webhook verified with the wrong secret")
		}
	}
	if led.Webhooks.GaveUp != 1 || led.Webhooks.Retries != simulator.DefaultWebhookMaxAttempts-1 || led.Webhooks.Delivered != 0 {
		t.Fatalf("webhook stats %+v", led.Webhooks)
	}
}

func TestWebhookRetriedWithBackoffUntilAccepted(t *testing.T) {
	sim, url, rec := webhookSim(t, "shared-secret", func(b *simulator.Behavior) { b.SkipDeliveredRate, b.ReadRate = 1, 0 })
	rec.Respond(func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	sendXB(t, httpClient(t), url, "nid-1", "pn-1", "hello")
	led := settle(t, sim)
	got := rec.Received()
	if len(got) != 3 || led.Webhooks.Delivered != 1 || led.Webhooks.Retries != 2 {
		t.Fatalf("%d deliveries, stats %+v; want 3 deliveries, 2 retries", len(got), led.Webhooks)
	}
	if !bytes.Equal(got[0].Body, got[2].Body) {
		t.Fatal("a retry changed the body")
	}
	// Backoff doubles: 10 ms, then 20 ms.
	if gap := got[2].At.Sub(got[1].At); gap < 20*time.Millisecond {
		t.Fatalf("second retry after %s, want >= 20ms", gap)
	}
}

func TestWebhooksOutOfOrder(t *testing.T) {
	sim, url, rec := webhookSim(t, "shared-secret", func(b *simulator.Behavior) { b.ReadRate, b.OutOfOrderRate = 1, 1 })
	c := httpClient(t)
	for i := range 4 {
		sendXB(t, c, url, fmt.Sprintf("nid-%d", i), "pn-1", "hello")
	}
	settle(t, sim)
	byNID := map[string][]metawebhook.Status{}
	for _, st := range statusesOf(rec.Received()) {
		byNID[st.BizOpaqueCallbackData] = append(byNID[st.BizOpaqueCallbackData], st)
	}
	if len(byNID) != 4 {
		t.Fatalf("statuses for %d messages, want 4", len(byNID))
	}
	for nid, sts := range byNID {
		got := names(sts)
		if got == "sent,delivered,read" || len(sts) != 3 {
			t.Fatalf("%s: arrival order %s, want all three statuses out of order", nid, got)
		}
		// Arrival is shuffled; the timestamps still tell the true order.
		ts := map[string]string{}
		for _, st := range sts {
			ts[st.Status] = st.Timestamp
		}
		if !(ts["sent"] <= ts["delivered"] && ts["delivered"] <= ts["read"]) {
			t.Fatalf("%s: timestamps %v are not in progress order", nid, ts)
		}
	}
}

func TestWebhooksDuplicated(t *testing.T) {
	sim, url, rec := webhookSim(t, "shared-secret", func(b *simulator.Behavior) { b.ReadRate, b.DuplicateRate = 1, 1 })
	sendXB(t, httpClient(t), url, "nid-1", "pn-1", "hello")
	led := settle(t, sim)
	count := map[string]int{}
	for _, st := range statusesOf(rec.Received()) {
		count[st.Status]++
	}
	if count["sent"] != 2 || count["delivered"] != 2 || count["read"] != 2 || led.Webhooks.Delivered != 6 {
		t.Fatalf("status counts %v, stats %+v; want each status twice", count, led.Webhooks)
	}
}

func TestWebhooksSkipDeliveredAndAsyncFailure(t *testing.T) {
	sim, url, rec := webhookSim(t, "shared-secret", func(b *simulator.Behavior) { b.ReadRate, b.SkipDeliveredRate = 1, 1 })
	c := httpClient(t)
	sendXB(t, c, url, "nid-1", "pn-1", "hello")
	settle(t, sim)
	if got := names(statusesOf(rec.Received())); got != "sent,read" {
		t.Fatalf("statuses %s, want sent,read", got)
	}

	sim2, url2, rec2 := webhookSim(t, "shared-secret", func(b *simulator.Behavior) {
		b.AsyncFailRate, b.AsyncFailCodes = 1, []int{131026}
	})
	sendXB(t, c, url2, "nid-2", "pn-1", "hello")
	settle(t, sim2)
	sts := statusesOf(rec2.Received())
	if names(sts) != "sent,failed" || len(sts[1].Errors) != 1 || sts[1].Errors[0].Code != 131026 {
		t.Fatalf("statuses %+v, want sent then failed with 131026", sts)
	}
}

func TestWebhooksDisabledThenEnabledAtRuntime(t *testing.T) {
	sim, url, rec := webhookSim(t, "shared-secret", func(b *simulator.Behavior) { b.Webhooks = false })
	c := httpClient(t)
	sendXB(t, c, url, "nid-1", "pn-1", "hello")
	time.Sleep(200 * time.Millisecond)
	if n := len(rec.Received()); n != 0 || sim.Ledger().Webhooks.Scheduled != 0 {
		t.Fatalf("%d webhooks while disabled", n)
	}
	if a := do(t, c, http.MethodPost, url+"/admin/config", nil, `{"webhooks":true}`); a.status != 200 {
		t.Fatalf("enable webhooks: %d %s", a.status, a.raw)
	}
	sendXB(t, c, url, "nid-2", "pn-1", "hello")
	for _, st := range statusesOf(rec.WaitFor(t, 1, 5*time.Second)) {
		if st.BizOpaqueCallbackData != "nid-2" {
			t.Fatalf("webhook for %s", st.BizOpaqueCallbackData)
		}
	}
}

func TestWebhookQueueIsBoundedAndNeverBlocksSends(t *testing.T) {
	rec := providertest.NewWebhookRecorder(t, "s")
	sim, url := newSim(t, func(c *simulator.Config) {
		c.Webhook.URL, c.Webhook.Secret, c.Webhook.QueueSize = rec.URL, "s", 2
		c.Behavior.Webhooks, c.Behavior.SkipDeliveredRate = true, 1
		c.Behavior.SentDelay = simulator.Fixed(time.Hour)
	})
	c := httpClient(t)
	start := time.Now()
	for i := range 5 {
		if a := sendXB(t, c, url, fmt.Sprintf("n%d", i), "pn", "x"); a.status != 200 {
			t.Fatalf("send %d: %d", i, a.status)
		}
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("sends were slowed by the full webhook queue")
	}
	if w := sim.Ledger().Webhooks; w.Scheduled != 2 || w.Dropped != 3 || sim.PendingWebhooks() != 2 {
		t.Fatalf("stats %+v pending %d, want 2 queued and 3 dropped", w, sim.PendingWebhooks())
	}
}

func TestOutageThroughAdminEndpoint(t *testing.T) {
	sim, url := newSim(t, nil)
	c := httpClient(t)
	if a := do(t, c, http.MethodPost, url+"/admin/outage", nil, `{"on":true}`); a.status != 200 || a.body["on"] != true {
		t.Fatalf("outage on: %d %s", a.status, a.raw)
	}
	if a := sendXB(t, c, url, "n1", "pn", "x"); a.status != 503 || a.body["success"] != false {
		t.Fatalf("during outage: %d %s", a.status, a.raw)
	}
	if a := do(t, c, http.MethodGet, url+"/admin/outage", nil, nil); a.body["on"] != true || a.body["mode"] != "503" {
		t.Fatalf("outage state %s", a.raw)
	}
	if a := do(t, c, http.MethodPost, url+"/admin/outage", nil, `{"on":true,"mode":"reset"}`); a.status != 200 {
		t.Fatalf("outage reset mode: %d %s", a.status, a.raw)
	}
	req, _ := http.NewRequest(http.MethodPost, url+simulator.DefaultSendPath, strings.NewReader(`{"phone_number_id":"pn","to":"+447700900123","type":"text","text":{"body":"x"}}`))
	req.Header.Set("X-API-Key", key)
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("connection-level outage answered %d", resp.StatusCode)
	}
	if a := do(t, c, http.MethodPost, url+"/admin/outage", nil, `{"on":true,"mode":"flaky"}`); a.status != 400 {
		t.Fatalf("bad mode accepted: %d", a.status)
	}
	if a := do(t, c, http.MethodPost, url+"/admin/outage", nil, `{"on":false}`); a.status != 200 || a.body["on"] != false {
		t.Fatalf("outage off: %d %s", a.status, a.raw)
	}
	if a := sendXB(t, c, url, "n2", "pn", "x"); a.status != 200 {
		t.Fatalf("after outage: %d %s", a.status, a.raw)
	}
	if led := sim.Ledger(); led.Accepted != 1 || led.Failures["outage"] != 2 {
		t.Fatalf("ledger %+v", led)
	}
}

func TestAdminConfig(t *testing.T) {
	_, url := newSim(t, func(c *simulator.Config) { c.Behavior.RateLimit = 50 })
	c := httpClient(t)
	if a := do(t, c, http.MethodPost, url+"/admin/config", nil, `{"retryable_rate":1,"latency":"uniform:1ms,2ms"}`); a.status != 200 {
		t.Fatalf("set config: %d %s", a.status, a.raw)
	}
	a := do(t, c, http.MethodGet, url+"/admin/config", nil, nil)
	if a.body["retryable_rate"] != 1.0 || a.body["rate_limit"] != 50.0 || a.body["latency"] != "uniform:1ms,2ms" {
		t.Fatalf("config after a partial update: %s", a.raw)
	}
	if a := sendXB(t, c, url, "n1", "pn", "x"); a.status != 503 {
		t.Fatalf("retryable_rate 1 answered %d", a.status)
	}
	for _, bad := range []string{`{"retryable_rate":2}`, `{"bogus":1}`, `{"latency":"soon"}`, `{"retryable_rate":0.6,"permanent_rate":0.6}`, `not json`} {
		if a := do(t, c, http.MethodPost, url+"/admin/config", nil, bad); a.status != 400 {
			t.Fatalf("%s accepted: %d", bad, a.status)
		}
	}
	if a := do(t, c, http.MethodGet, url+"/admin/config", nil, nil); a.body["retryable_rate"] != 1.0 {
		t.Fatal("a rejected update changed the config")
	}
	if a := do(t, c, http.MethodPost, url+"/admin/config", nil, `{"retryable_rate":2}`); !strings.Contains(string(a.raw), simulator.EnvRetryableRate) {
		t.Fatalf("error %s does not name the field's variable", a.raw)
	}
}

func TestAuth(t *testing.T) {
	_, url := newSim(t, nil)
	c := httpClient(t)
	body := xbBody("n", "pn", "x")
	cloudBody := map[string]any{"messaging_product": "whatsapp", "to": "447700900123", "type": "text", "text": map[string]any{"body": "x"}}
	cases := []struct {
		name   string
		header map[string]string
		status int
	}{
		{"none", nil, 401},
		{"wrong key", map[string]string{"X-API-Key": "nope"}, 401},
		{"prefix of key", map[string]string{"X-API-Key": key[:3]}, 401},
		{"wrong bearer", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"x-api-key", map[string]string{"X-API-Key": key}, 200},
		{"bearer", map[string]string{"Authorization": "Bearer " + key}, 200},
	}
	for _, tc := range cases {
		if a := do(t, c, http.MethodPost, url+simulator.DefaultSendPath, tc.header, body); a.status != tc.status {
			t.Fatalf("xpressbot %s: %d, want %d", tc.name, a.status, tc.status)
		}
		a := do(t, c, http.MethodPost, url+"/v21.0/pn/messages", tc.header, cloudBody)
		if a.status != tc.status || (tc.status == 401 && a.errorCode() != 190) {
			t.Fatalf("cloudapi %s: %d code %d, want %d", tc.name, a.status, a.errorCode(), tc.status)
		}
	}
}

func TestBadRequests(t *testing.T) {
	sim, url := newSim(t, func(c *simulator.Config) { c.MaxBodyBytes = 512 })
	c := httpClient(t)
	h := map[string]string{"X-API-Key": key}
	xb := url + simulator.DefaultSendPath
	cases := []struct {
		name   string
		url    string
		body   any
		status int
		code   int
	}{
		{"not json", xb, `{"to":`, 400, 100},
		{"no recipient", xb, map[string]any{"phone_number_id": "pn", "type": "text", "text": map[string]any{"body": "x"}}, 400, 100},
		{"bad recipient", xb, map[string]any{"phone_number_id": "pn", "to": "+44abc", "type": "text", "text": map[string]any{"body": "x"}}, 400, 100},
		{"no sender", xb, map[string]any{"to": "+447700900123", "type": "text", "text": map[string]any{"body": "x"}}, 400, 100},
		{"empty text", xb, map[string]any{"phone_number_id": "pn", "to": "+447700900123", "type": "text"}, 400, 100},
		{"bad type", xb, map[string]any{"phone_number_id": "pn", "to": "+447700900123", "type": "audio"}, 400, 100},
		{"too large", xb, `{"text":"` + strings.Repeat("x", 1024) + `"}`, 413, 0},
		{"cloud product", url + "/v21.0/pn/messages", map[string]any{"messaging_product": "sms", "to": "447700900123", "type": "text", "text": map[string]any{"body": "x"}}, 400, 100},
		{"cloud template no language", url + "/v21.0/pn/messages", map[string]any{"messaging_product": "whatsapp", "to": "447700900123", "type": "template", "template": map[string]any{"name": "t"}}, 400, 100},
	}
	for _, tc := range cases {
		a := do(t, c, http.MethodPost, tc.url, h, tc.body)
		if a.status != tc.status || a.errorCode() != tc.code {
			t.Fatalf("%s: %d code %d, want %d code %d (%s)", tc.name, a.status, a.errorCode(), tc.status, tc.code, a.raw)
		}
	}
	if led := sim.Ledger(); led.Accepted != 0 {
		t.Fatalf("bad requests were accepted: %d", led.Accepted)
	}
}

func TestCloudEndpoint(t *testing.T) {
	sim, url := newSim(t, nil)
	c := httpClient(t)
	a := do(t, c, http.MethodPost, url+"/v22.0/pn-9/messages", map[string]string{"Authorization": "Bearer " + key}, map[string]any{
		"messaging_product": "whatsapp", "recipient_type": "individual", "to": "447700900123", "type": "template",
		"template": map[string]any{"name": "otp", "language": map[string]any{"code": "en"},
			"components": []any{map[string]any{"type": "body", "parameters": []any{map[string]any{"type": "text", "text": "123"}}}}},
		"biz_opaque_callback_data": "nid-c",
	})
	if a.status != 200 {
		t.Fatalf("status %d %s", a.status, a.raw)
	}
	msgs, _ := a.body["messages"].([]any)
	if len(msgs) != 1 || a.body["messaging_product"] != "whatsapp" {
		t.Fatalf("response %s", a.raw)
	}
	id := msgs[0].(map[string]any)["id"]
	e := sim.Ledger().Entries[0]
	if e.API != simulator.APICloud || e.MessageID != id || e.Sender != "pn-9" || e.Recipient != "+447700900123" ||
		e.NotificationID != "nid-c" || e.TemplateName != "otp" || slices.Compare(e.TemplateParams, []string{"123"}) != 0 {
		t.Fatalf("ledger entry %+v", e)
	}
}

func TestSeededFailuresAreReproducible(t *testing.T) {
	run := func(seed uint64) []int {
		_, url := newSim(t, func(c *simulator.Config) {
			c.Seed = seed
			c.Behavior.RetryableRate, c.Behavior.PermanentRate = 0.3, 0.3
		})
		c := httpClient(t)
		var out []int
		for i := range 40 {
			a := sendXB(t, c, url, fmt.Sprintf("n%d", i), "pn", "x")
			out = append(out, a.status*1000000+a.errorCode())
		}
		return out
	}
	a, b, other := run(42), run(42), run(43)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different outcomes:\n%v\n%v", a, b)
	}
	if slices.Equal(a, other) {
		t.Fatal("different seeds gave identical outcomes")
	}
	seen := map[int]bool{}
	for _, o := range a {
		seen[o/1000000] = true
	}
	if !seen[200] || !seen[503] || !seen[400] {
		t.Fatalf("outcomes %v lack a success, a 503 or a permanent error", seen)
	}
}

func TestForcedOutcomes(t *testing.T) {
	sim, url := newSim(t, func(c *simulator.Config) { c.Behavior.RetryableRate = 1 })
	c := httpClient(t)
	// [sim:ok] beats the configured failure rate.
	if a := sendXB(t, c, url, "n1", "pn", "code [sim:ok]"); a.status != 200 {
		t.Fatalf("[sim:ok] answered %d", a.status)
	}
	if a := sendXB(t, c, url, "n2", "pn", "[sim:meta_132000]"); a.status != 400 || a.errorCode() != 132000 {
		t.Fatalf("[sim:meta_132000] answered %d code %d", a.status, a.errorCode())
	}
	if a := sendXB(t, c, url, "n3", "pn", "[sim:meta_130429:9]"); a.status != 429 || a.header.Get("Retry-After") != "9" || a.errorCode() != 130429 {
		t.Fatalf("[sim:meta_130429:9] answered %d Retry-After %q", a.status, a.header.Get("Retry-After"))
	}
	if a := sendXB(t, c, url, "n4", "pn", "[sim:http_500]"); a.status != 500 || a.errorCode() != 0 {
		t.Fatalf("[sim:http_500] answered %d code %d", a.status, a.errorCode())
	}
	if a := sendXB(t, c, url, "n5", "pn", "[sim:bogus]"); a.status != 503 {
		t.Fatalf("an unknown directive must be ignored, got %d", a.status)
	}
	led := sim.Ledger()
	if led.Accepted != 1 || led.Failures["meta_132000"] != 1 || led.Failures["http_500"] != 1 || led.Failures["http_503"] != 1 || led.Throttled != 1 {
		t.Fatalf("ledger failures %v accepted %d", led.Failures, led.Accepted)
	}
}

func TestLatency(t *testing.T) {
	_, url := newSim(t, func(c *simulator.Config) { c.Behavior.Latency = simulator.Fixed(120 * time.Millisecond) })
	c := httpClient(t)
	start := time.Now()
	if a := sendXB(t, c, url, "n1", "pn", "x"); a.status != 200 {
		t.Fatalf("status %d", a.status)
	}
	if d := time.Since(start); d < 120*time.Millisecond {
		t.Fatalf("answered after %s, want >= 120ms", d)
	}
}

func TestLedgerAndResetOverHTTP(t *testing.T) {
	sim, url := newSim(t, func(c *simulator.Config) { c.Behavior.RateLimit, c.Behavior.Burst = 1e-9, 1 })
	c := httpClient(t)
	sendXB(t, c, url, "n1", "pn", "x")
	if a := sendXB(t, c, url, "n2", "pn", "x"); a.status != 429 {
		t.Fatalf("second send %d, want 429", a.status)
	}
	a := do(t, c, http.MethodGet, url+"/admin/ledger", nil, nil)
	if a.body["accepted"] != 1.0 || a.body["throttled"] != 1.0 || a.body["entries"] != nil {
		t.Fatalf("ledger %s", a.raw)
	}
	a = do(t, c, http.MethodGet, url+"/admin/ledger?entries=1", nil, nil)
	if entries, _ := a.body["entries"].([]any); len(entries) != 1 || entries[0].(map[string]any)["notification_id"] != "n1" {
		t.Fatalf("ledger with entries %s", a.raw)
	}
	if a := do(t, c, http.MethodPost, url+"/admin/reset", nil, nil); a.status != 200 {
		t.Fatalf("reset %d", a.status)
	}
	if led := sim.Ledger(); led.Accepted != 0 || led.Throttled != 0 || len(led.Entries) != 0 {
		t.Fatalf("ledger after reset %+v", led)
	}
	// The buckets were refilled too.
	if a := sendXB(t, c, url, "n3", "pn", "x"); a.status != 200 {
		t.Fatalf("send after reset %d", a.status)
	}
}

func TestShutdownReleasesHungRequestsAndFlipsHealth(t *testing.T) {
	sim, err := simulator.New(simulator.Config{HangFor: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	c := httpClient(t)
	if a := do(t, c, http.MethodGet, srv.URL+"/healthz", nil, nil); a.status != 200 {
		t.Fatalf("healthz %d", a.status)
	}
	done := make(chan answer)
	go func() { done <- sendXB(t, c, srv.URL, "n1", "pn", "[sim:timeout]") }()
	time.Sleep(100 * time.Millisecond)
	if err := sim.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-done:
		if a.status != http.StatusGatewayTimeout {
			t.Fatalf("hung request ended with %d", a.status)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Shutdown did not release the hung request")
	}
	if a := do(t, c, http.MethodGet, srv.URL+"/healthz", nil, nil); a.status != 503 {
		t.Fatalf("healthz after shutdown %d", a.status)
	}
}

func TestStartListensOnAddr(t *testing.T) {
	sim, err := simulator.New(simulator.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := httpClient(t)
	if a := do(t, c, http.MethodGet, "http://"+sim.Addr()+"/healthz", nil, nil); a.status != 200 {
		t.Fatalf("healthz %d", a.status)
	}
	c.CloseIdleConnections()
	if err := sim.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if resp, err := c.Get("http://" + sim.Addr() + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("still serving after Shutdown")
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		simulator.EnvAddr: "127.0.0.1:9999", simulator.EnvAPIKey: "k", simulator.EnvSeed: "5",
		simulator.EnvRateLimit: "80", simulator.EnvBurst: "4", simulator.EnvLatency: "normal:20ms,5ms",
		simulator.EnvRetryableRate: "0.1", simulator.EnvPermanentRate: "0.05", simulator.EnvPermanentCodes: "131026, 132001",
		simulator.EnvTimeoutRate: "0.01", simulator.EnvTimeoutAccepts: "true", simulator.EnvOutage: "1", simulator.EnvOutageMode: "RESET",
		simulator.EnvWebhookURL: "http://127.0.0.1:8081/webhook", simulator.EnvWebhookSecret: "s",
		simulator.EnvWebhooks: "false", simulator.EnvReadDelay: "uniform:1s,2s", simulator.EnvDuplicateRate: "0.5",
		simulator.EnvWebhookMaxAttempts: "9", simulator.EnvHangFor: "3s",
	}
	cfg, err := simulator.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Behavior
	if cfg.Addr != "127.0.0.1:9999" || cfg.APIKey != "k" || cfg.Seed != 5 || cfg.HangFor != 3*time.Second ||
		b.RateLimit != 80 || b.Burst != 4 || b.Latency != simulator.Normal(20*time.Millisecond, 5*time.Millisecond) ||
		b.RetryableRate != 0.1 || b.PermanentRate != 0.05 || !slices.Equal(b.PermanentCodes, []int{131026, 132001}) ||
		b.TimeoutRate != 0.01 || !b.TimeoutAccepts || !b.Outage || b.OutageMode != simulator.OutageReset ||
		cfg.Webhook.URL != env[simulator.EnvWebhookURL] || cfg.Webhook.MaxAttempts != 9 || b.Webhooks ||
		b.ReadDelay != simulator.Uniform(time.Second, 2*time.Second) || b.DuplicateRate != 0.5 {
		t.Fatalf("ConfigFromEnv = %+v", cfg)
	}
	// Unset variables keep the defaults.
	def, err := simulator.ConfigFromEnv(func(string) string { return "" })
	if err != nil || def.Addr != simulator.DefaultAddr || def.Behavior.RateLimit != simulator.DefaultRateLimit || !def.Behavior.Webhooks {
		t.Fatalf("defaults: %+v, %v", def, err)
	}
	for k, v := range map[string]string{
		simulator.EnvRateLimit:     "fast",
		simulator.EnvRetryableRate: "1.5",
		simulator.EnvLatency:       "uniform:2s,1s",
		simulator.EnvWebhookURL:    "not a url",
		simulator.EnvOutageMode:    "sometimes",
	} {
		_, err := simulator.ConfigFromEnv(func(name string) string {
			if name == k {
				return v
			}
			if name == simulator.EnvWebhookSecret {
				return "s"
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Fatalf("%s=%q: error %v does not name the variable", k, v, err)
		}
	}
	if _, err := simulator.New(simulator.Config{Webhook: simulator.WebhookConfig{URL: "http://127.0.0.1:1/x"}}); err == nil ||
		!strings.Contains(err.Error(), simulator.EnvWebhookSecret) {
		t.Fatalf("webhook URL without secret: %v", err)
	}
}

func TestLedgerLookupByNotificationID(t *testing.T) {
	_, url := newSim(t, func(c *simulator.Config) { c.Behavior.RateLimit, c.Behavior.Burst = 1e-9, 1 })
	c := httpClient(t)
	sendXB(t, c, url, "n1", "pn", "x")
	if a := sendXB(t, c, url, "n1", "pn", "x"); a.status != 429 {
		t.Fatalf("second send %d, want 429", a.status)
	}
	sendXB(t, c, url, "n2", "pn", "[sim:http_503]")
	a := do(t, c, http.MethodGet, url+"/admin/ledger?notification_id=n1", nil, nil)
	sends, _ := a.body["sends"].([]any)
	rej, _ := a.body["rejections"].([]any)
	if a.status != 200 || a.body["notification_id"] != "n1" || len(sends) != 1 || len(rej) != 1 ||
		sends[0].(map[string]any)["notification_id"] != "n1" || rej[0].(map[string]any)["code"] != "meta_130429" {
		t.Fatalf("lookup of n1: %d %s", a.status, a.raw)
	}
	a = do(t, c, http.MethodGet, url+"/admin/ledger?notification_id=unknown", nil, nil)
	if sends, _ := a.body["sends"].([]any); a.status != 200 || sends == nil || len(sends) != 0 {
		t.Fatalf("lookup of an unknown id: %d %s", a.status, a.raw)
	}
}

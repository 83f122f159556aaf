package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
)

func accepted(t *testing.T, r reply) Accepted {
	t.Helper()
	if r.code != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	var a Accepted
	if err := json.Unmarshal(r.body, &a); err != nil || a.ID == "" {
		t.Fatalf("accepted body %s: %v", r.body, err)
	}
	if loc := r.header.Get("Location"); loc != "/v1/notifications/"+a.ID {
		t.Fatalf("Location %q", loc)
	}
	return a
}

func TestAcceptedNotificationIsOnTheTopicStampedWithTheKeysTenant(t *testing.T) {
	h := newHarness(t, nil)
	a := accepted(t, h.post(keyAcme, otpBody))
	wantKey := "u-1001:otp:2026-11-28T10:00:00Z"
	if a.IdempotencyKey != wantKey || a.ID != contract.NotificationID("acme", wantKey) {
		t.Fatalf("answer %+v is not the deterministic id of the default key", a)
	}
	rec := consume(t, h.brokers, 1)[0]
	n, err := contract.DecodeNotification(rec.Value)
	if err != nil {
		t.Fatal(err)
	}
	if n.ID != a.ID || n.Tenant != "acme" || n.Recipient != "+447100900123" || n.Sender != "acme-main" || n.SourceService != "api" {
		t.Fatalf("record %+v", n)
	}
	if n.ExpiresAt == nil || n.ExpiresAt.Sub(n.CreatedAt) != 300*time.Second {
		t.Fatalf("ttl not applied: created %v expires %v", n.CreatedAt, n.ExpiresAt)
	}
	if envelope.Get(rec.Headers, envelope.HeaderTenant) != "acme" || envelope.Get(rec.Headers, envelope.HeaderEventType) != "otp" {
		t.Fatalf("headers %v", rec.Headers)
	}
}

func TestAuthentication(t *testing.T) {
	h := newHarness(t, nil)
	for _, c := range []struct {
		name string
		hdr  []string
	}{
		{"no key", []string{"Authorization", ""}},
		{"wrong key", []string{"Authorization", "Bearer nope"}},
		{"empty bearer", []string{"Authorization", "Bearer "}},
		{"basic scheme", []string{"Authorization", "Basic " + keyAcme}},
		{"hash instead of key", []string{"Authorization", "Bearer " + HashKey(keyAcme)}},
		{"wrong x-api-key", []string{"X-API-Key", "nope"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, path := range []string{"/v1/notifications", "/v1/notifications/batch"} {
				r := h.do(http.MethodPost, path, "", []byte(otpBody), c.hdr...)
				if r.code != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
					t.Fatalf("%s: status %d %v", path, r.code, r.header)
				}
				r.problem(t)
			}
			if r := h.do(http.MethodGet, "/v1/notifications/x", "", nil, c.hdr...); r.code != http.StatusUnauthorized {
				t.Fatalf("GET: status %d", r.code)
			}
		})
	}
	if n := endOffset(t, h.brokers); n != 0 {
		t.Fatalf("%d records written without a valid key", n)
	}
	// Both header forms and every key of a tenant work (rotation).
	accepted(t, h.post("", otpBody, "X-API-Key", keyAcme2))
	accepted(t, h.post("", otpBody, "Authorization", "bearer "+keyGlobex))
	tenants := map[string]bool{}
	for _, rec := range consume(t, h.brokers, 2) {
		tenants[envelope.Get(rec.Headers, envelope.HeaderTenant)] = true
	}
	if !tenants["acme"] || !tenants["globex"] {
		t.Fatalf("tenants %v", tenants)
	}
}

func TestTheBodyCannotSpoofTheTenant(t *testing.T) {
	h := newHarness(t, nil)
	body := strings.Replace(otpBody, `{"event_type"`, `{"tenant":"globex","event_type"`, 1)
	r := h.post(keyAcme, body)
	if r.code != http.StatusBadRequest {
		t.Fatalf("status %d", r.code)
	}
	r.hasField(t, "/tenant")
	if n := endOffset(t, h.brokers); n != 0 {
		t.Fatalf("%d records written", n)
	}
}

func TestValidationNamesEachField(t *testing.T) {
	h := newHarness(t, nil)
	cases := []struct {
		name, body, field string
	}{
		{"not json", `{"event_type":`, ""},
		{"not an object", `[1,2]`, ""},
		{"trailing data", `{"event_type":"otp"} {}`, ""},
		{"unknown field", `{"event_typo":"otp"}`, "/event_typo"},
		{"unknown template field", `{"event_type":"otp","recipient":"+447100900123","template":{"name":"a","language":"en","footer":"x"}}`, "/template/footer"},
		{"unknown text field", `{"event_type":"otp","recipient":"+447100900123","text":{"body":"a","bold":true}}`, "/text/bold"},
		{"template not object", `{"event_type":"otp","recipient":"+447100900123","template":"otp_code"}`, "/template"},
		{"wrong type", `{"event_type":7}`, "/event_type"},
		{"param type", `{"event_type":"otp","recipient":"+447100900123","template":{"name":"a","language":"en","parameters":[1]}}`, "/template/parameters"},
		{"metadata type", `{"event_type":"otp","recipient":"+447100900123","text":{"body":"a"},"metadata":{"a":1}}`, "/metadata"},
		{"no recipient", `{"event_type":"otp","text":{"body":"hi"}}`, "/recipient"},
		{"recipient not E.164", `{"event_type":"otp","recipient":"07700900123","text":{"body":"hi"}}`, "/recipient"},
		{"impossible recipient", `{"event_type":"otp","recipient":"+4412","text":{"body":"hi"}}`, "/recipient"},
		{"no event type", `{"recipient":"+447100900123","text":{"body":"hi"}}`, "/event_type"},
		{"bad event type", `{"event_type":"O T P","recipient":"+447100900123","text":{"body":"hi"}}`, "/event_type"},
		{"no body", `{"event_type":"otp","recipient":"+447100900123"}`, ""},
		{"both bodies", `{"event_type":"otp","recipient":"+447100900123","text":{"body":"hi"},"template":{"name":"a","language":"en"}}`, "/text"},
		{"empty text", `{"event_type":"otp","recipient":"+447100900123","text":{"body":""}}`, "/text/body"},
		{"text too long", `{"event_type":"otp","recipient":"+447100900123","text":{"body":"` + strings.Repeat("x", 4097) + `"}}`, "/text/body"},
		{"template name", `{"event_type":"otp","recipient":"+447100900123","template":{"name":"Bad Name","language":"en"}}`, "/template/name"},
		{"template language", `{"event_type":"otp","recipient":"+447100900123","template":{"name":"a","language":"English"}}`, "/template/language"},
		{"too many params", `{"event_type":"otp","recipient":"+447100900123","template":{"name":"a","language":"en","parameters":[` + strings.Repeat(`"p",`, 20) + `"p"]}}`, "/template/parameters"},
		{"bad event time", `{"event_type":"otp","recipient":"+447100900123","text":{"body":"hi"},"event_time":"yesterday"}`, "/event_time"},
		{"bad expiry", `{"event_type":"otp","recipient":"+447100900123","text":{"body":"hi"},"expires_at":"2026-13-01T00:00:00Z"}`, "/expires_at"},
		{"expiry in the past", `{"event_type":"otp","recipient":"+447100900123","text":{"body":"hi"},"expires_at":"2020-01-01T00:00:00Z"}`, "/expires_at"},
		{"ttl and expiry", `{"event_type":"otp","recipient":"+447100900123","text":{"body":"hi"},"ttl":60,"expires_at":"2099-01-01T00:00:00Z"}`, "/ttl"},
		{"ttl zero", `{"event_type":"otp","recipient":"+447100900123","text":{"body":"hi"},"ttl":0}`, "/ttl"},
		{"ttl fraction", `{"event_type":"otp","recipient":"+447100900123","text":{"body":"hi"},"ttl":1.5}`, "/ttl"},
		{"ttl huge", `{"event_type":"otp","recipient":"+447100900123","text":{"body":"hi"},"ttl":99999999999}`, "/ttl"},
		{"metadata too many", `{"event_type":"otp","recipient":"+447100900123","text":{"body":"hi"},"metadata":{` + manyMeta(33) + `}}`, "/metadata"},
		{"metadata value", `{"event_type":"otp","recipient":"+447100900123","text":{"body":"hi"},"metadata":{"k":"` + strings.Repeat("v", 513) + `"}}`, "/metadata/k"},
		{"sender too long", `{"event_type":"otp","recipient":"+447100900123","text":{"body":"hi"},"sender":"` + strings.Repeat("s", 65) + `"}`, "/sender"},
		{"key too long", `{"event_type":"otp","recipient":"+447100900123","text":{"body":"hi"},"idempotency_key":"` + strings.Repeat("k", 257) + `"}`, "/idempotency_key"},
		{"user too long", `{"event_type":"otp","recipient":"+447100900123","text":{"body":"hi"},"user_id":"` + strings.Repeat("u", 129) + `"}`, "/user_id"},
		{"source too long", `{"event_type":"otp","recipient":"+447100900123","text":{"body":"hi"},"source_service":"` + strings.Repeat("s", 129) + `"}`, "/source_service"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.post(keyAcme, c.body)
			if r.code != http.StatusBadRequest {
				t.Fatalf("status %d: %s", r.code, r.body)
			}
			p := r.problem(t)
			if p.Type != TypeInvalid || p.Detail == "" || len(p.Errors) == 0 {
				t.Fatalf("problem %+v", p)
			}
			r.hasField(t, c.field)
		})
	}
	if n := endOffset(t, h.brokers); n != 0 {
		t.Fatalf("%d records written for invalid requests", n)
	}
}

func manyMeta(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"k%d":"v"`, i)
	}
	return strings.Join(parts, ",")
}

func TestEveryFieldErrorIsReportedAtOnce(t *testing.T) {
	h := newHarness(t, nil)
	r := h.post(keyAcme, `{"event_type":"X","recipient":"0","ttl":-1,"event_time":"soon","text":{"body":""}}`)
	p := r.problem(t)
	got := map[string]bool{}
	for _, f := range p.Errors {
		got[f.Field] = true
	}
	for _, f := range []string{"/event_type", "/recipient", "/ttl", "/event_time", "/text/body"} {
		if !got[f] {
			t.Errorf("missing %s in %s", f, r.body)
		}
	}
}

func TestBodySizeIsLimited(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxBody = 4096; c.MaxBatchBody = 8192 })
	big := `{"event_type":"otp","recipient":"+447100900123","text":{"body":"` + strings.Repeat("x", 5000) + `"}}`
	if r := h.post(keyAcme, big); r.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", r.code)
	} else if r.problem(t).Type != TypeTooLarge {
		t.Fatal("wrong problem type")
	}
	// Without a Content-Length (chunked), the limit holds while reading.
	req := httptest.NewRequest(http.MethodPost, "/v1/notifications", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+keyAcme)
	w := httptest.NewRecorder()
	h.router.ServeHTTP(w, req)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked: status %d", w.Code)
	}
	noteAnswer(t, h.router, req, w.Code)
	items := strings.Repeat(`{"event_type":"otp","recipient":"+447100900123","text":{"body":"`+strings.Repeat("x", 3000)+`"}},`, 3)
	if r := h.do(http.MethodPost, "/v1/notifications/batch", keyAcme, []byte(`{"notifications":[`+strings.TrimSuffix(items, ",")+`]}`)); r.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("batch: status %d", r.code)
	}
	if n := endOffset(t, h.brokers); n != 0 {
		t.Fatalf("%d records written", n)
	}
}

func TestOnlyJSONIsAccepted(t *testing.T) {
	h := newHarness(t, nil)
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/jsonx", "not a/type;;"} {
		for _, path := range []string{"/v1/notifications", "/v1/notifications/batch"} {
			r := h.do(http.MethodPost, path, keyAcme, []byte(otpBody), "Content-Type", ct)
			if r.code != http.StatusUnsupportedMediaType {
				t.Fatalf("%s with %q: status %d", path, ct, r.code)
			}
			r.problem(t)
		}
	}
	for _, ct := range []string{"application/json; charset=utf-8", "application/problem+json", "Application/JSON"} {
		accepted(t, h.post(keyAcme, otpBody, "Content-Type", ct))
	}
}

func TestIdempotentReplayGetsTheSameID(t *testing.T) {
	h := newHarness(t, nil)
	body := `{"event_type":"invoice.reminder","recipient":"+14155550123","template":{"name":"invoice_due","language":"en"}}`
	first := accepted(t, h.post(keyAcme, body, "Idempotency-Key", "inv-2026-11-42"))
	second := accepted(t, h.post(keyAcme, body, "Idempotency-Key", "inv-2026-11-42"))
	inBody := accepted(t, h.post(keyAcme, strings.Replace(body, `{"event_type"`, `{"idempotency_key":"inv-2026-11-42","event_type"`, 1)))
	if first.ID != second.ID || first.ID != inBody.ID || first.ID != contract.NotificationID("acme", "inv-2026-11-42") {
		t.Fatalf("ids %s %s %s", first.ID, second.ID, inBody.ID)
	}
	other := accepted(t, h.post(keyGlobex, body, "Idempotency-Key", "inv-2026-11-42"))
	if other.ID == first.ID {
		t.Fatal("another tenant's key collides")
	}
	// A retried default-keyed request (same user, event type and time) too.
	a := accepted(t, h.post(keyAcme, otpBody))
	b := accepted(t, h.post(keyAcme, otpBody))
	if a.ID != b.ID {
		t.Fatalf("default-keyed retry got a new id: %s %s", a.ID, b.ID)
	}
	// Every publish is written (the dispatcher's dedupe suppresses the
	// repeats), each carrying the one id.
	ids := map[string]int{}
	for _, rec := range consume(t, h.brokers, 6) {
		ids[envelope.Get(rec.Headers, envelope.HeaderNotificationID)]++
	}
	if ids[first.ID] != 3 || ids[a.ID] != 2 || ids[other.ID] != 1 {
		t.Fatalf("records per id %v", ids)
	}
	// The header and the body disagreeing is an error, not a guess.
	r := h.post(keyAcme, strings.Replace(body, `{"event_type"`, `{"idempotency_key":"a","event_type"`, 1), "Idempotency-Key", "b")
	if r.code != http.StatusBadRequest {
		t.Fatalf("status %d", r.code)
	}
	r.hasField(t, "/idempotency_key")
}

func TestKafkaDownAnswers503WithRetryAfterAndNever202(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, laneTopics...))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessOn(t, cluster.ListenAddrs(), func(c *Config) { c.ProduceTimeout = 400 * time.Millisecond }, nil)
	accepted(t, h.post(keyAcme, otpBody))
	cluster.Close()

	for i := 0; i < 3; i++ {
		start := time.Now()
		r := h.post(keyAcme, otpBody, "Idempotency-Key", fmt.Sprintf("down-%d", i))
		if r.code != http.StatusServiceUnavailable {
			t.Fatalf("broker down: status %d: %s", r.code, r.body)
		}
		if r.header.Get("Retry-After") != "2" {
			t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
		}
		if p := r.problem(t); p.Type != TypeUnavailable {
			t.Fatalf("problem %+v", p)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("answered after %v with a 400ms produce timeout", d)
		}
	}
	r := h.do(http.MethodPost, "/v1/notifications/batch", keyAcme, []byte(`{"notifications":[`+otpBody+`,{"event_type":"x"}]}`))
	if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("batch with broker down: status %d", r.code)
	}
	var br BatchResponse
	if err := json.Unmarshal(r.body, &br); err != nil {
		t.Fatal(err)
	}
	if br.Accepted != 0 || br.Results[0].Status != 503 || br.Results[1].Status != 400 {
		t.Fatalf("batch %+v", br)
	}
}

func TestNoBrokerAtAllAnswers503(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	h := newHarnessOn(t, []string{dead}, func(c *Config) { c.ProduceTimeout = 300 * time.Millisecond }, nil)
	r := h.post(keyAcme, otpBody)
	if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("status %d", r.code)
	}
}

func TestBatchKeepsValidItemsAndReportsEachInvalidOne(t *testing.T) {
	h := newHarness(t, nil)
	body := `{"notifications":[
	  {"event_type":"otp","recipient":"+447100900123","text":{"body":"one"},"idempotency_key":"b-1"},
	  {"event_type":"otp","recipient":"not a number","text":{"body":"two"}},
	  {"event_type":"otp","recipient":"+14155550123","text":{"body":"three"},"colour":"red"},
	  {"event_type":"otp","recipient":"+14155550123","template":{"name":"otp_code","language":"en"},"idempotency_key":"b-4"}
	]}`
	r := h.do(http.MethodPost, "/v1/notifications/batch", keyAcme, []byte(body))
	if r.code != http.StatusOK {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	var br BatchResponse
	if err := json.Unmarshal(r.body, &br); err != nil {
		t.Fatal(err)
	}
	if br.Accepted != 2 || br.Rejected != 2 || len(br.Results) != 4 {
		t.Fatalf("%+v", br)
	}
	want := []struct {
		status int
		id     string
		field  string
	}{
		{202, contract.NotificationID("acme", "b-1"), ""},
		{400, "", "/recipient"},
		{400, "", "/colour"},
		{202, contract.NotificationID("acme", "b-4"), ""},
	}
	for i, w := range want {
		got := br.Results[i]
		if got.Index != i || got.Status != w.status || got.ID != w.id {
			t.Fatalf("item %d: %+v", i, got)
		}
		if w.field != "" && (got.Error == nil || len(got.Error.Errors) == 0 || got.Error.Errors[0].Field != w.field) {
			t.Fatalf("item %d error %+v", i, got.Error)
		}
	}
	keys := map[string]string{}
	for _, rec := range consume(t, h.brokers, 2) {
		keys[envelope.Get(rec.Headers, envelope.HeaderNotificationID)] = string(rec.Key)
	}
	if keys[want[0].id] != "+447100900123" || keys[want[3].id] != "+14155550123" {
		t.Fatalf("records %v", keys)
	}
}

func TestBatchEnvelopeErrors(t *testing.T) {
	h := newHarness(t, nil)
	item := `{"event_type":"otp","recipient":"+447100900123","text":{"body":"x"}}`
	for name, c := range map[string]struct {
		body  string
		hdr   []string
		field string
	}{
		"empty":         {`{"notifications":[]}`, nil, "/notifications"},
		"missing":       {`{}`, nil, "/notifications"},
		"too many":      {`{"notifications":[` + strings.TrimSuffix(strings.Repeat(item+",", MaxBatchItems+1), ",") + `]}`, nil, "/notifications"},
		"not an array":  {`{"notifications":{}}`, nil, "/notifications"},
		"unknown field": {`{"notifications":[` + item + `],"tenant":"globex"}`, nil, "/tenant"},
		"bad json":      {`{"notifications":[`, nil, ""},
		"key header":    {`{"notifications":[` + item + `]}`, []string{"Idempotency-Key", "k"}, ""},
	} {
		r := h.do(http.MethodPost, "/v1/notifications/batch", keyAcme, []byte(c.body), c.hdr...)
		if r.code != http.StatusBadRequest {
			t.Fatalf("%s: status %d", name, r.code)
		}
		if c.field != "" {
			r.hasField(t, c.field)
		} else {
			r.problem(t)
		}
	}
	if n := endOffset(t, h.brokers); n != 0 {
		t.Fatalf("%d records written", n)
	}
	// A full batch of 1,000 is fine.
	items := make([]string, MaxBatchItems)
	for i := range items {
		items[i] = fmt.Sprintf(`{"event_type":"otp","recipient":"+4471009%05d","text":{"body":"x"},"idempotency_key":"k%d"}`, i, i)
	}
	r := h.do(http.MethodPost, "/v1/notifications/batch", keyAcme, []byte(`{"notifications":[`+strings.Join(items, ",")+`]}`))
	var br BatchResponse
	if err := json.Unmarshal(r.body, &br); err != nil || r.code != 200 || br.Accepted != MaxBatchItems {
		t.Fatalf("full batch: %d %+v %v", r.code, br.Accepted, err)
	}
	if n := endOffset(t, h.brokers); n != MaxBatchItems {
		t.Fatalf("%d records for %d accepted", n, MaxBatchItems)
	}
}

func TestUnknownRoutesAndMethodsAreProblems(t *testing.T) {
	h := newHarness(t, nil)
	r := h.do(http.MethodGet, "/v2/nothing", keyAcme, nil)
	if r.code != http.StatusNotFound {
		t.Fatalf("status %d", r.code)
	}
	r.problem(t)
	r = h.do(http.MethodDelete, "/v1/notifications", keyAcme, nil)
	if r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != http.MethodPost {
		t.Fatalf("status %d allow %v", r.code, r.header.Values("Allow"))
	}
	r.problem(t)
}

func TestPanicsBecome500Problems(t *testing.T) {
	h := newHarnessOn(t, testinfraBrokers(t), nil, StatusReaderFunc(func(context.Context, string, string) (*View, error) {
		panic("reader bug")
	}))
	h.srv.now = func() time.Time { panic("clock bug") }
	for _, r := range []reply{
		h.post(keyAcme, otpBody),
		h.do(http.MethodPost, "/v1/notifications/batch", keyAcme, []byte(`{"notifications":[`+otpBody+`]}`)),
		h.do(http.MethodGet, "/v1/notifications/abc", keyAcme, nil),
	} {
		if r.code != http.StatusInternalServerError {
			t.Fatalf("status %d: %s", r.code, r.body)
		}
		r.problem(t)
	}
}

func TestStatusRoute(t *testing.T) {
	created := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	views := map[string]*View{
		"n-1": {NotificationID: "n-1", Tenant: "acme", EventType: "otp", Recipient: "+447100900123", Status: "delivered",
			Attempts: 1, CreatedAt: created, UpdatedAt: created.Add(3 * time.Second),
			Timeline: []TimelineEvent{{Status: "accepted", OccurredAt: created.Add(time.Second), Emitter: "dispatcher", Attempt: 1},
				{Status: "delivered", OccurredAt: created.Add(3 * time.Second), Emitter: "webhook"}}},
	}
	var asked []string
	reader := StatusReaderFunc(func(_ context.Context, tenant, id string) (*View, error) {
		asked = append(asked, tenant+"/"+id)
		if id == "broken" {
			return nil, errors.New("clickhouse: connection refused")
		}
		if v, ok := views[id]; ok && v.Tenant == tenant {
			return v, nil
		}
		return nil, fmt.Errorf("lookup: %w", ErrNotFound)
	})
	h := newHarnessOn(t, testinfraBrokers(t), nil, reader)

	r := h.do(http.MethodGet, "/v1/notifications/n-1", keyAcme, nil)
	if r.code != http.StatusOK {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	var v View
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatal(err)
	}
	if v.Status != "delivered" || len(v.Timeline) != 2 || v.Timeline[1].Emitter != "webhook" {
		t.Fatalf("view %+v", v)
	}
	if v.Recipient == "+447100900123" || strings.Contains(string(r.body), "900123") {
		t.Fatalf("the phone number is shown unmasked: %s", r.body)
	}
	if views["n-1"].Recipient != "+447100900123" {
		t.Fatal("the reader's view was modified")
	}
	// Another tenant sees nothing, exactly as for an unknown id.
	for _, c := range []struct{ key, id string }{{keyGlobex, "n-1"}, {keyAcme, "n-404"}, {keyAcme, strings.Repeat("x", 65)}, {keyAcme, "a%20b"}} {
		if r := h.do(http.MethodGet, "/v1/notifications/"+c.id, c.key, nil); r.code != http.StatusNotFound {
			t.Fatalf("%s: status %d", c.id, r.code)
		} else {
			r.problem(t)
		}
	}
	r = h.do(http.MethodGet, "/v1/notifications/broken", keyAcme, nil)
	if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("store down: status %d", r.code)
	}
	if strings.Contains(string(r.body), "connection refused") {
		t.Fatal("internal error leaked to the caller")
	}
	for _, a := range asked {
		if strings.HasPrefix(a, "globex/") && a != "globex/n-1" {
			t.Fatalf("unexpected lookup %s", a)
		}
	}

	// A reader that ignores the tenant still cannot leak another's view.
	leaky := newHarnessOn(t, h.brokers, nil, StatusReaderFunc(func(context.Context, string, string) (*View, error) {
		return views["n-1"], nil
	}))
	if r := leaky.do(http.MethodGet, "/v1/notifications/n-1", keyGlobex, nil); r.code != http.StatusNotFound {
		t.Fatalf("cross-tenant view served: %d", r.code)
	}
}

func TestStatusRouteWithoutAReaderIs501(t *testing.T) {
	h := newHarnessOn(t, testinfraBrokers(t), nil, nil)
	r := h.do(http.MethodGet, "/v1/notifications/n-1", keyAcme, nil)
	if r.code != http.StatusNotImplemented {
		t.Fatalf("status %d", r.code)
	}
	if r.problem(t).Type != TypeNotImplemented {
		t.Fatal("wrong type")
	}
}

func TestMetricsCountRequestsByRouteAndCode(t *testing.T) {
	h := newHarness(t, nil)
	accepted(t, h.post(keyAcme, otpBody))
	h.post(keyAcme, `{}`)
	h.post("", otpBody)
	r := h.adminGet("/metrics")
	if r.code != 200 {
		t.Fatalf("/metrics: %d", r.code)
	}
	text := string(r.body)
	for _, want := range []string{
		`wanotify_ingest_requests_total{code="202",route="POST /v1/notifications"}`,
		`wanotify_ingest_requests_total{code="400",route="POST /v1/notifications"}`,
		`wanotify_ingest_requests_total{code="401",route="POST /v1/notifications"}`,
		`wanotify_ingest_accepted_total`,
		`wanotify_ingest_rejected_total{reason="invalid"}`,
		`wanotify_ingest_rejected_total{reason="unauthorized"}`,
		`wanotify_ingest_produce_duration_seconds_bucket`,
		`http_server_request_duration_seconds_bucket{http_request_method="POST",http_response_status_code="202",http_route="/v1/notifications",network_protocol_name="http",network_protocol_version="1.1",server_address="wanotify-ingest",server_port="8080",url_scheme="http",`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(text, "900123") {
		t.Error("a phone number appears in the metrics")
	}
	if r := h.adminGet("/healthz"); r.code != 200 {
		t.Fatalf("/healthz %d", r.code)
	}
	if r := h.adminGet("/readyz"); r.code != 503 {
		t.Fatalf("/readyz before readiness: %d", r.code)
	}
	h.rt.SetReady(true)
	if r := h.adminGet("/readyz"); r.code != 200 {
		t.Fatalf("/readyz when ready: %d", r.code)
	}
}

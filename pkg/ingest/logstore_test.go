package ingest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/chconf"
	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/logstore"
	"github.com/wanotify/wanotify/pkg/sink"
	"github.com/wanotify/wanotify/pkg/testinfra"
)

// TestStatusFromTheCommunicationLogs follows a notification through the
// real pieces: POST to ingest, the sink (in process) from Kafka into
// ClickHouse, then GET through ingest's logstore reader.
func TestStatusFromTheCommunicationLogs(t *testing.T) {
	db := testinfra.ClickHouseDatabase(t)
	brokers := testinfra.KafkaWithTopics(t, 3)

	s, err := sink.New(sink.Config{Group: "ingest-test-sink", BatchInterval: 50 * time.Millisecond}, db.Options(),
		[]kgo.Opt{kgo.SeedBrokers(brokers...)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sinkDone := make(chan error, 1)
	go func() { sinkDone <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-sinkDone; err != nil {
			t.Errorf("sink: %v", err)
		}
	})

	reader, closeConn, err := OpenLogstoreReader(chconf.Config{Addrs: []string{db.Server.Addr}, Database: db.Name,
		Username: "default", DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeConn() })
	h := newHarnessOn(t, brokers, nil, reader)

	a := accepted(t, h.post(keyAcme, otpBody, "Idempotency-Key", "status-read-1"))
	var v View
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := h.do(http.MethodGet, "/v1/notifications/"+a.ID, keyAcme, nil)
		if r.code == http.StatusOK {
			if err := json.Unmarshal(r.body, &v); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(r.body), "900123") {
				t.Fatalf("unmasked number in the answer: %s", r.body)
			}
			break
		}
		if r.code != http.StatusNotFound && r.code != http.StatusServiceUnavailable {
			t.Fatalf("status %d: %s", r.code, r.body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the notification never appeared (last answer %d: %s)", r.code, r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v.NotificationID != a.ID || v.Tenant != "acme" || v.EventType != "otp" || v.Template != "otp_code" ||
		v.IdempotencyKey != "status-read-1" || v.ExpiresAt == nil || len(v.Timeline) == 0 || v.Timeline[0].Status != "requested" {
		t.Fatalf("view %+v", v)
	}
	// Another tenant, and an id no one has, get 404.
	if r := h.do(http.MethodGet, "/v1/notifications/"+a.ID, keyGlobex, nil); r.code != http.StatusNotFound {
		t.Fatalf("other tenant: %d %s", r.code, r.body)
	}
	if r := h.do(http.MethodGet, "/v1/notifications/"+contract.NotificationID("acme", "never"), keyAcme, nil); r.code != http.StatusNotFound {
		t.Fatalf("unknown id: %d", r.code)
	}
}

// TestLogstoreViewsAreMappedField by field without the stored payload.
func TestLogstoreViewsAreMappedFieldByField(t *testing.T) {
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	in := &logstore.View{NotificationID: "n-1", Tenant: "acme", SourceService: "auth", EventType: "otp", Template: "otp_code",
		TemplateLanguage: "en", Recipient: "+447100900123", Sender: "s", Provider: "xpressbot", ProviderMessageID: "pm",
		IdempotencyKey: "k", Status: "delivered", Error: &contract.ErrorInfo{Code: "x"}, Payload: json.RawMessage(`{"recipient":"+447100900123"}`),
		Attempts: 2, Retries: 1, Duplicates: 3, CreatedAt: at, UpdatedAt: at, AcceptedAt: &at, DeliveredAt: &at,
		Timeline: []logstore.Event{{EventID: "e", Status: "accepted", OccurredAt: at, Emitter: "dispatcher", Attempt: 2,
			RetryTier: "retry-5s", ProviderMessageID: "pm", Source: logstore.Source{Topic: "t", Offset: 9}}}}
	v := viewFromLogstore(in)
	if v.NotificationID != "n-1" || v.Provider != "xpressbot" || v.Duplicates != 3 || v.Retries != 1 || v.AcceptedAt == nil ||
		v.DeliveredAt == nil || v.TemplateLanguage != "en" || len(v.Timeline) != 1 || v.Timeline[0].RetryTier != "retry-5s" {
		t.Fatalf("%+v", v)
	}
	b, _ := json.Marshal(v)
	if strings.Contains(string(b), "payload") || strings.Contains(string(b), `"offset"`) {
		t.Fatalf("payload or DLQ coordinates leaked: %s", b)
	}
	if _, err := (LogstoreReader{}).Notification(context.Background(), "", "n-1"); err == nil {
		t.Fatal("an empty tenant reads every tenant in logstore; the API must refuse it")
	}
}

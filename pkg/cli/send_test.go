package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/cli"
	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/sdk"
	"github.com/wanotify/wanotify/pkg/topics"
)

type sendOut struct {
	NotificationID string `json:"notification_id"`
	IdempotencyKey string `json:"idempotency_key"`
	Tenant         string `json:"tenant"`
	Recipient      string `json:"recipient_masked"`
	Partition      int32  `json:"partition"`
	Offset         int64  `json:"offset"`
}

func TestSendFromFlagsIsWhatIngestWouldProduce(t *testing.T) {
	brokers := cluster(t)
	var out sendOut
	runJSON(t, cli.ExitOK, &out, "send", "--tenant", "acme", "--recipient", "+44 7100 900123", "--template", "otp_code",
		"--param", "482913", "--param", "a,b", "--idempotency-key", "smoke-1", "--ttl", "5m", "--metadata", "k=v")
	if want := contract.NotificationID("acme", "smoke-1"); out.NotificationID != want {
		t.Fatalf("id %s, want the deterministic %s", out.NotificationID, want)
	}
	if strings.Contains(out.Recipient, "900123") {
		t.Errorf("recipient not masked: %q", out.Recipient)
	}
	recs := readLanes(t, brokers)
	if len(recs) != 1 {
		t.Fatalf("%d records on %s, want 1", len(recs), topics.Requested)
	}
	r := recs[0]
	n, err := contract.DecodeNotification(r.Value)
	if err != nil {
		t.Fatalf("value is not a valid notification: %v", err)
	}
	// The record is the one the SDK (and so ingest) builds for the request.
	want, _, err := sdk.BuildRecord("acme", &sdk.Request{IdempotencyKey: "smoke-1", EventType: "smoke_test", Recipient: "+447100900123",
		Template: &contract.Template{Name: "otp_code", Language: "en_US", Parameters: []string{"482913", "a,b"}},
		TTL:      5 * time.Minute, Metadata: map[string]string{"k": "v"}}, sdk.BuildOptions{SourceService: "notifyctl", Sender: "default"}, n.CreatedAt, "")
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Key) != "+447100900123" || r.Partition != out.Partition || r.Offset != out.Offset {
		t.Errorf("record key %q at %d/%d; send said %d/%d", r.Key, r.Partition, r.Offset, out.Partition, out.Offset)
	}
	wn, _ := contract.DecodeNotification(want.Value)
	if n.ID != wn.ID || n.Recipient != wn.Recipient || n.Sender != "default" || n.SourceService != "notifyctl" ||
		n.Template.Parameters[1] != "a,b" || n.ExpiresAt == nil || n.Metadata["k"] != "v" {
		t.Errorf("notification %+v differs from the SDK's %+v", n, wn)
	}
	for _, h := range want.Headers {
		if v, _ := header(r, h.Key); v != string(h.Value) {
			t.Errorf("header %s = %q, want %q", h.Key, v, h.Value)
		}
	}

	// Sending the same idempotency key again yields the same id.
	var again sendOut
	runJSON(t, cli.ExitOK, &again, "send", "--tenant", "acme", "--recipient", "+447100900123", "--template", "otp_code", "--idempotency-key", "smoke-1")
	if again.NotificationID != out.NotificationID {
		t.Errorf("same key, different ids: %s and %s", again.NotificationID, out.NotificationID)
	}
}

func TestSendFromFileAndStdin(t *testing.T) {
	brokers := cluster(t)
	file := filepath.Join(t.TempDir(), "request.json")
	body := `{"event_type":"invoice.reminder","recipient":"+447100900124","user_id":"u-7","event_time":"2026-11-28T10:00:00Z",
	  "text":{"body":"Your invoice is ready"},"metadata":{"invoice":"INV-1"}}`
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out sendOut
	runJSON(t, cli.ExitOK, &out, "send", "--file", file, "--tenant", "acme")
	key := contract.DefaultIdempotencyKey("u-7", "invoice.reminder", time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC))
	if out.NotificationID != contract.NotificationID("acme", key) || out.IdempotencyKey != key {
		t.Fatalf("file: %+v, want key %s", out, key)
	}
	// A flag next to --file overrides the file's field.
	var over sendOut
	runJSON(t, cli.ExitOK, &over, "send", "--file", file, "--recipient", "+447100900125")
	recs := readLanes(t, brokers)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	var keys []string
	for _, r := range recs {
		keys = append(keys, string(r.Key))
		if tn, _ := header(r, envelope.HeaderTenant); r.Partition == over.Partition && r.Offset == over.Offset && tn != "demo" {
			t.Errorf("default tenant: %q", tn)
		}
	}
	if !strings.Contains(strings.Join(keys, " "), "+447100900125") {
		t.Errorf("--recipient did not override the file: keys %v", keys)
	}

	r := run(t, `{"event_type":"otp","recipient":"+447100900126","template":{"name":"otp_code","language":"en_US"}}`, "send", "--file", "-")
	if r.code != 0 || !strings.Contains(r.stdout, "published") {
		t.Fatalf("stdin: %s", r)
	}

	// Bad input names the field and publishes nothing.
	for _, c := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"send", "--recipient", "12", "--template", "otp_code"}, "/recipient"},
		{"", []string{"send", "--recipient", "+447100900127"}, "template or text"},
		{`{"tenant":"evil","event_type":"otp"}`, []string{"send", "--file", "-"}, "/tenant"},
		{"", []string{"send", "--file", filepath.Join(t.TempDir(), "missing.json")}, "--file"},
		{"", []string{"send", "--tenant", "Not A Tenant", "--recipient", "+447100900127", "--text", "x"}, "--tenant"},
		{"", []string{"send", "--recipient", "+447100900127", "--text", "x", "--expires-at", "soon"}, "--expires-at"},
	} {
		r := run(t, c.stdin, c.args...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: want exit 2 naming %q, got %s", c.args, c.want, r)
		}
	}
	if n := len(readLanes(t, brokers)); n != 3 {
		t.Fatalf("invalid sends published: %d records, want 3", n)
	}
}

type loadOut struct {
	RunID     string  `json:"run_id"`
	Requested int     `json:"requested"`
	Sent      int64   `json:"sent"`
	Failed    int64   `json:"failed"`
	Elapsed   float64 `json:"elapsed_seconds"`
	Rate      float64 `json:"achieved_per_second"`
}

func TestLoadPublishesNAtTheRate(t *testing.T) {
	brokers := cluster(t)
	var out loadOut
	runJSON(t, cli.ExitOK, &out, "load", "-n", "300", "--rate", "1000", "--recipients", "7", "--tenant", "acme", "--run-id", "r1")
	if out.Sent != 300 || out.Failed != 0 || out.RunID != "r1" {
		t.Fatalf("load: %+v", out)
	}
	// 300 at 1000/s cannot take less than about 0.3 s.
	if out.Elapsed < 0.25 || out.Rate > 1300 {
		t.Errorf("load ran faster than its rate: %+v", out)
	}
	recs := readLanes(t, brokers)
	if len(recs) != 300 {
		t.Fatalf("%d records, want 300", len(recs))
	}
	ids := map[string]bool{}
	recips := map[string]bool{}
	for _, r := range recs {
		n, err := contract.DecodeNotification(r.Value)
		if err != nil {
			t.Fatalf("invalid record: %v", err)
		}
		if n.Tenant != "acme" || n.Metadata["load_run"] != "r1" || string(r.Key) != n.Recipient {
			t.Fatalf("record %+v", n)
		}
		ids[n.ID] = true
		recips[n.Recipient] = true
	}
	if len(ids) != 300 || len(recips) != 7 {
		t.Errorf("%d distinct ids (want 300), %d recipients (want 7)", len(ids), len(recips))
	}

	// Not a terminal: no progress bar, only the summary.
	r := run(t, "", "load", "-n", "5", "--rate", "500")
	if r.code != 0 || strings.Contains(r.stderr, "publishing") || !strings.Contains(r.stdout, "sent") || !strings.Contains(r.stdout, "5 of 5") {
		t.Fatalf("table summary: %s", r)
	}
	for _, args := range [][]string{{"load", "-n", "0"}, {"load", "--rate", "0"}, {"load", "--recipients", "0"}, {"load", "--template", "Bad Name"}} {
		if r := run(t, "", args...); r.code != cli.ExitUsage {
			t.Errorf("%v: %s", args, r)
		}
	}
}

func TestLoadReportsFailuresWhenKafkaIsDown(t *testing.T) {
	// A port nothing listens on: every produce fails once --timeout ends.
	t.Setenv("WANOTIFY_KAFKA_BROKERS", "127.0.0.1:1")
	var out loadOut
	r := runJSON(t, cli.ExitFailure, &out, "load", "-n", "3", "--rate", "100", "--timeout", "2s")
	if out.Sent != 0 || !strings.Contains(r.stderr, "not published") {
		t.Fatalf("load against no broker: %+v %s", out, r)
	}
}

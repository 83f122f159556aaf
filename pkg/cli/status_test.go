package cli_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/cli"
	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/sink"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

// startSink runs the real sink from the test's kfake cluster into a fresh
// ClickHouse database, and points notifyctl at that database.
func startSink(t *testing.T, brokers []string) {
	t.Helper()
	db := testinfra.ClickHouseDatabase(t)
	t.Setenv("WANOTIFY_CLICKHOUSE_ADDR", db.Server.Addr)
	t.Setenv("WANOTIFY_CLICKHOUSE_DATABASE", db.Name)
	ready := make(chan struct{})
	var once sync.Once
	onReady := func(ok bool) {
		if ok {
			once.Do(func() { close(ready) })
		}
	}
	s, err := sink.New(sink.Config{Group: "cli-test-sink", BatchInterval: 100 * time.Millisecond, OnReady: onReady}, db.Options(),
		[]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(100 * time.Millisecond)}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("sink: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("sink did not stop")
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("sink stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("sink not ready after 60s")
	}
}

type statusOut struct {
	NotificationID  string `json:"notification_id"`
	Status          string `json:"status"`
	Recipient       string `json:"recipient"`
	AfterDeadLetter string `json:"after_dead_letter"`
	Attempts        int    `json:"attempts"`
	Timeline        []struct {
		Status string `json:"status"`
		Error  *struct {
			Code string `json:"code"`
		} `json:"error"`
	} `json:"timeline"`
	DeadLetters []struct {
		Reason string `json:"reason"`
	} `json:"dead_letters"`
}

func (s statusOut) statuses() string {
	var out []string
	for _, e := range s.Timeline {
		out = append(out, e.Status)
	}
	return strings.Join(out, " ")
}

// status polls notifyctl status until cond holds.
func status(t *testing.T, id string, what string, cond func(statusOut) bool) statusOut {
	t.Helper()
	var out statusOut
	eventually(t, 30*time.Second, what, func() bool {
		r := run(t, "", "status", id, "-o", "json")
		if r.code == cli.ExitNotFound {
			return false
		}
		if r.code != 0 {
			t.Fatalf("status %s: %s", id, r)
		}
		out = statusOut{}
		if err := jsonUnmarshal(r.stdout, &out); err != nil {
			t.Fatal(err)
		}
		return cond(out)
	})
	return out
}

// webhook writes the status events the webhook receiver would for a
// provider message.
func webhook(t *testing.T, brokers []string, n statusOut, recipient, pmid string, sts ...contract.Status) {
	t.Helper()
	cl := testinfra.Client(t, brokers)
	for i, st := range sts {
		ev := contract.StatusEvent{EventID: contract.WebhookEventID(pmid, st), NotificationID: n.NotificationID, ProviderMessageID: pmid,
			Provider: "xpressbot", Recipient: recipient, Status: st, OccurredAt: time.Now().Add(time.Duration(i) * time.Millisecond).UTC(),
			Emitter: contract.EmitterWebhook}
		v, err := ev.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topics.Status, Key: []byte(recipient), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOperatorWalkThrough is docs/operator.md as a test: a notification
// fails, lands in the DLQ, the operator finds it, inspects it, fixes the
// cause, replays it and sees it delivered with status; stats shows the
// funnel, the errors and the latencies.
func TestOperatorWalkThrough(t *testing.T) {
	p := startPipeline(t, simulator.Behavior{RetryableRate: 1})
	startSink(t, p.brokers)

	var sent sendOut
	runJSON(t, cli.ExitOK, &sent, "send", "--tenant", "acme", "--recipient", "+447100900901", "--template", "invoice_ready", "--param", "INV-7")
	id := sent.NotificationID
	if r := run(t, "", "status", "00000000-0000-5000-8000-000000000000"); r.code != cli.ExitNotFound {
		t.Fatalf("status of an unknown id: %s", r)
	}

	// It fails: every attempt gets 503 until the retries run out.
	// The sink writes the status event and the DLQ record from two topics
	// in separate batches: wait for both, not for the status alone.
	dead := status(t, id, "dead_lettered in ClickHouse with its dead letter", func(s statusOut) bool {
		return s.Status == "dead_lettered" && len(s.DeadLetters) > 0
	})
	if !strings.Contains(dead.statuses(), "retry_scheduled") || len(dead.DeadLetters) != 1 || dead.DeadLetters[0].Reason != "exhausted" ||
		strings.Contains(dead.Recipient, "900901") {
		t.Fatalf("dead-lettered view: %+v", dead)
	}
	var l listOut
	runJSON(t, cli.ExitOK, &l, "dlq", "list", "--tenant", "acme", "--since", "10m")
	if l.Total != 1 || l.Records[0].NotificationID != id || l.Records[0].ErrorCode != "http_503" {
		t.Fatalf("dlq list: %+v", l)
	}
	if r := run(t, "", "dlq", "show", id); r.code != 0 || !strings.Contains(r.stdout, "http_503") {
		t.Fatalf("dlq show: %s", r)
	}

	// The cause is fixed; a permanent failure follows for the stats.
	b := p.sim.Behavior()
	b.RetryableRate = 0
	if err := p.sim.SetBehavior(b); err != nil {
		t.Fatal(err)
	}
	var bad sendOut
	runJSON(t, cli.ExitOK, &bad, "send", "--tenant", "acme", "--recipient", "+447100900902", "--template", "invoice_ready", "--param", "[sim:meta_132001]")

	var rep replayOut
	runJSON(t, cli.ExitOK, &rep, "dlq", "replay", id)
	if rep.Counts["replayed"] != 1 {
		t.Fatalf("replay: %+v", rep)
	}
	var pmid string
	eventually(t, 20*time.Second, "the provider accepting the replay", func() bool {
		for _, e := range p.sim.Ledger().Entries {
			if e.NotificationID == id {
				pmid = e.MessageID
			}
		}
		return pmid != ""
	})
	webhook(t, p.brokers, dead, "+447100900901", pmid, contract.StatusSent, contract.StatusDelivered)

	done := status(t, id, "delivered after the replay", func(s statusOut) bool { return s.AfterDeadLetter == "delivered" })
	if !strings.Contains(done.statuses(), "dead_lettered") || !strings.Contains(done.statuses(), "accepted") {
		t.Fatalf("timeline after replay: %s", done.statuses())
	}
	r := run(t, "", "status", id)
	for _, s := range []string{"Timeline:", "dead_lettered", "delivered", "http_503", "Since the last dead letter"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("status table lacks %q:\n%s", s, r)
		}
	}
	status(t, bad.NotificationID, "the permanent failure", func(s statusOut) bool { return s.Status == "failed" })

	var st struct {
		Funnel struct {
			Requested, Accepted, Delivered, Failed, DeadLettered uint64
		} `json:"funnel"`
		Failures []struct {
			Status    string `json:"status"`
			ErrorCode string `json:"error_code"`
		} `json:"failures"`
		Latency []struct {
			Step    string  `json:"step"`
			Samples uint64  `json:"samples"`
			P50     float64 `json:"p50_seconds"`
		} `json:"latency"`
		DeadLetters []struct {
			Reason    string `json:"reason"`
			ErrorCode string `json:"error_code"`
			Records   uint64 `json:"records"`
		} `json:"dead_letters"`
	}
	eventually(t, 20*time.Second, "stats", func() bool {
		runJSON(t, cli.ExitOK, &st, "stats", "--since", "1h", "--tenant", "acme")
		return st.Funnel.Requested == 2 && st.Funnel.Failed == 1
	})
	codes := map[string]bool{}
	for _, f := range st.Failures {
		codes[f.Status+"/"+f.ErrorCode] = true
	}
	if !codes["failed/meta_132001"] {
		t.Errorf("stats failures: %+v", st.Failures)
	}
	if len(st.DeadLetters) != 1 || st.DeadLetters[0].ErrorCode != "http_503" || st.DeadLetters[0].Records != 1 {
		t.Errorf("stats dead letters: %+v", st.DeadLetters)
	}
	if len(st.Latency) == 0 || st.Latency[0].Step != "requested_to_accepted" || st.Latency[0].Samples == 0 {
		t.Errorf("stats latency: %+v", st.Latency)
	}
	var other struct {
		Funnel struct{ Requested uint64 } `json:"funnel"`
	}
	runJSON(t, cli.ExitOK, &other, "stats", "--tenant", "globex")
	if other.Funnel.Requested != 0 {
		t.Errorf("another tenant's stats count acme: %+v", other)
	}
	r = run(t, "", "stats", "--since", "1h", "--hourly")
	for _, s := range []string{"Delivery funnel:", "requested", "Errors:", "meta_132001", "Latency (seconds):", "P99", "By hour:"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stats table lacks %q:\n%s", s, r)
		}
	}
	if r := run(t, "", "stats", "--since", "1h", "--until", "2h"); r.code != cli.ExitUsage {
		t.Errorf("empty window: %s", r)
	}
}

func TestStatusWithoutClickHouseFails(t *testing.T) {
	cluster(t)
	t.Setenv("WANOTIFY_CLICKHOUSE_ADDR", "127.0.0.1:1")
	t.Setenv("WANOTIFY_CLICKHOUSE_DIAL_TIMEOUT", "500ms")
	if r := run(t, "", "status", "x", "--timeout", "3s"); r.code != cli.ExitFailure || !strings.Contains(r.stderr, "clickhouse") {
		t.Fatalf("status without ClickHouse: %s", r)
	}
	t.Setenv("WANOTIFY_CLICKHOUSE_ADDR", "not-an-address")
	if r := run(t, "", "stats"); r.code != cli.ExitUsage || !strings.Contains(r.stderr, "WANOTIFY_CLICKHOUSE_ADDR") {
		t.Fatalf("bad address: %s", r)
	}
}

package cli_test

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/cli"
	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/dispatcher"
	"github.com/wanotify/wanotify/pkg/provider/providertest"
	"github.com/wanotify/wanotify/pkg/provider/xpressbot"
	"github.com/wanotify/wanotify/pkg/senders"
	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/topics"
)

// pipeline is a dispatcher and the provider simulator around a kfake
// cluster: what dlq replay hands its records to.
type pipeline struct {
	brokers []string
	sim     *simulator.Simulator
}

func startPipeline(t *testing.T, b simulator.Behavior) *pipeline {
	t.Helper()
	brokers := cluster(t)
	sim, url := providertest.StartSimulator(t, simulator.Config{APIKey: "k", Behavior: b, Seed: 3})
	prov, err := xpressbot.New(xpressbot.Options{BaseURL: url, APIKey: "k", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prov.Close)
	cfg := dispatcher.DefaultConfig()
	cfg.TransactionalID = "cli-test-" + t.Name()
	cfg.FlushInterval = 50 * time.Millisecond
	cfg.FetchMaxWait = 100 * time.Millisecond
	cfg.SessionTimeout = 3 * time.Second
	cfg.RebalanceTimeout = 10 * time.Second
	cfg.TransactionTimeout = 10 * time.Second
	cfg.RetryDelays = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
	cfg.Limits.Rate, cfg.Limits.Burst = 1000, 20
	// notifyctl's default sender, owned by every tenant these tests use.
	reg, err := senders.New(senders.File{
		Senders: []senders.Sender{{Name: "default", Tenants: []string{"acme", "globex", "demo"}, NumberID: "100000000000001"}},
		Tenants: []senders.Tenant{{Name: "acme", DefaultSender: "default", FreeText: true},
			{Name: "globex", DefaultSender: "default", FreeText: true}, {Name: "demo", DefaultSender: "default", FreeText: true}},
	}, "test")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Senders = reg
	cfg.DrainTimeout = 10 * time.Second
	// Here the provider fails every send on purpose, so that attempts run
	// out and records reach the DLQ; an open breaker would park them
	// instead (that path is the dispatcher's own tests' subject).
	cfg.Breaker.ConsecutiveFailures, cfg.Breaker.MinRequests = 1000, 1000
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("WANOTIFY_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	d, err := dispatcher.New(cfg, prov, []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(250 * time.Millisecond)}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("dispatcher: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("dispatcher did not stop")
		}
	})
	return &pipeline{brokers: brokers, sim: sim}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// accepted counts the simulator's accepted sends per notification id.
func (p *pipeline) accepted() map[string]int {
	out := map[string]int{}
	for _, e := range p.sim.Ledger().Entries {
		out[e.NotificationID]++
	}
	return out
}

// statuses returns the status events of notification id on
// notifications.status.
func (p *pipeline) statuses(t *testing.T, id string) []contract.Status {
	var out []contract.Status
	for _, r := range readAll(t, p.brokers, topics.Status) {
		ev, err := contract.DecodeStatusEvent(r.Value)
		if err == nil && ev.NotificationID == id {
			out = append(out, ev.Status)
		}
	}
	return out
}

func has(ss []contract.Status, s contract.Status) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}

// TestDLQReplayThroughTheDispatcherSendsExactlyOnce is the operator's
// walk-through against the real dispatcher: the provider fails, the
// notifications are dead-lettered, the provider recovers, a filtered
// replay delivers exactly the selected ones, and replaying them again —
// even bypassing notifyctl's own guard with --again — sends nothing more.
func TestDLQReplayThroughTheDispatcherSendsExactlyOnce(t *testing.T) {
	p := startPipeline(t, simulator.Behavior{RetryableRate: 1})
	var ids = map[string]string{}
	for _, c := range []struct{ tenant, recipient string }{{"acme", "+447100900801"}, {"acme", "+447100900802"}, {"globex", "+447100900803"}} {
		var out sendOut
		runJSON(t, cli.ExitOK, &out, "send", "--tenant", c.tenant, "--recipient", c.recipient, "--template", "otp_code", "--param", "1234")
		ids[out.NotificationID] = c.tenant
	}

	// Every attempt fails with 503: after the last retry tier all three
	// are on the DLQ, with the dispatcher's failure headers.
	var l listOut
	eventually(t, 30*time.Second, "three dead letters", func() bool {
		runJSON(t, cli.ExitOK, &l, "dlq", "list")
		return l.Total == 3
	})
	for _, r := range l.Records {
		if r.Reason != "exhausted" || r.ErrorCode != "http_503" || r.Replayable != "yes" || ids[r.NotificationID] == "" {
			t.Fatalf("dead letter %+v", r)
		}
	}
	if n := len(p.accepted()); n != 0 {
		t.Fatalf("the failing provider accepted %d sends", n)
	}

	// The cause is fixed: the provider is healthy again.
	p.sim.SetOutage(false)
	b := p.sim.Behavior()
	b.RetryableRate = 0
	if err := p.sim.SetBehavior(b); err != nil {
		t.Fatal(err)
	}

	var out replayOut
	runJSON(t, cli.ExitOK, &out, "dlq", "replay", "--tenant", "acme", "--rate", "100")
	if out.Counts["replayed"] != 2 {
		t.Fatalf("replay: %+v", out)
	}
	eventually(t, 20*time.Second, "the two acme notifications accepted", func() bool { return len(p.accepted()) == 2 })
	for id, tenant := range ids {
		n := p.accepted()[id]
		if (tenant == "acme" && n != 1) || (tenant == "globex" && n != 0) {
			t.Fatalf("notification %s of %s sent %d times", id, tenant, n)
		}
	}

	// Replaying again is skipped by notifyctl...
	runJSON(t, cli.ExitOK, &out, "dlq", "replay", "--tenant", "acme")
	if out.Counts["already_replayed"] != 2 {
		t.Fatalf("second replay: %+v", out)
	}
	// ...and, forced with --again, refused by the dispatcher as duplicates.
	runJSON(t, cli.ExitOK, &out, "dlq", "replay", "--tenant", "acme", "--again")
	if out.Counts["replayed"] != 2 {
		t.Fatalf("--again: %+v", out)
	}
	for id, tenant := range ids {
		if tenant != "acme" {
			continue
		}
		eventually(t, 20*time.Second, "duplicate status of "+id, func() bool {
			return has(p.statuses(t, id), contract.StatusDuplicate) == 1
		})
	}
	// The error history of a dead letter as the dispatcher wrote it: three
	// retries, then the DLQ, then (for acme) the replays.
	for id, tenant := range ids {
		var show struct {
			History []struct {
				Kind      string `json:"kind"`
				Attempt   int    `json:"attempt"`
				ErrorCode string `json:"error_code"`
			} `json:"history"`
		}
		runJSON(t, cli.ExitOK, &show, "dlq", "show", id)
		var got []string
		for _, h := range show.History {
			got = append(got, h.Kind+"/"+strconv.Itoa(h.Attempt)+"/"+h.ErrorCode)
		}
		want := []string{"retry_scheduled/1/http_503", "retry_scheduled/2/http_503", "retry_scheduled/3/http_503", "dead_lettered/4/http_503"}
		if tenant == "acme" {
			want = append(want, "replayed/0/", "replayed/0/")
		}
		if !equal(got, want) {
			t.Errorf("history of %s (%s): got %v, want %v", id, tenant, got, want)
		}
	}

	checkPurgeCountsRecords(t, 3)

	snap := p.sim.Ledger()
	if snap.Accepted != 2 || snap.DuplicateSends != 0 {
		t.Fatalf("after replaying twice the provider has %d sends, %d duplicates; want 2 and 0", snap.Accepted, snap.DuplicateSends)
	}
	for id, tenant := range ids {
		st := p.statuses(t, id)
		if tenant == "acme" && (has(st, contract.StatusDeadLettered) != 1 || has(st, contract.StatusAccepted) != 1) {
			t.Errorf("acme %s statuses %v", id, st)
		}
		if tenant == "globex" && (has(st, contract.StatusAccepted) != 0 || !strings.Contains(strings.Join(statusStrings(st), " "), "dead_lettered")) {
			t.Errorf("globex %s statuses %v", id, st)
		}
	}
}

// The dispatcher writes the DLQ in transactions: its commit markers take
// offsets too, and a purge counts records, not offsets.
func checkPurgeCountsRecords(t *testing.T, want int64) {
	t.Helper()
	var plan struct {
		Plan struct {
			Records    int64 `json:"records"`
			Partitions []struct {
				FromO int64 `json:"from_offset"`
				ToO   int64 `json:"to_offset"`
			} `json:"partitions"`
		} `json:"plan"`
	}
	runJSON(t, cli.ExitOK, &plan, "dlq", "purge", "--dry-run")
	var offsets int64
	for _, p := range plan.Plan.Partitions {
		offsets += p.ToO - p.FromO
	}
	if plan.Plan.Records != want || offsets <= want {
		t.Fatalf("purge plan counts %d records over %d offsets; want %d records and more offsets (markers)", plan.Plan.Records, offsets, want)
	}
}

func statusStrings(ss []contract.Status) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

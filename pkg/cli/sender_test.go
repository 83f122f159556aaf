package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/cli"
	"github.com/wanotify/wanotify/pkg/dispatcher/halt"
	"github.com/wanotify/wanotify/pkg/senders"
	"github.com/wanotify/wanotify/pkg/topics"
)

// senderRow is one sender of sender list -o json.
type senderRow struct {
	Name       string     `json:"name"`
	Registered bool       `json:"registered"`
	Rate       *float64   `json:"rate"`
	State      string     `json:"state"`
	Halted     bool       `json:"halted"`
	Code       string     `json:"code"`
	Message    string     `json:"message"`
	Since      *time.Time `json:"since"`
	By         string     `json:"by"`
	ProbeAfter *time.Time `json:"probe_after"`
	Breaker    string     `json:"breaker"`
	Queued     int        `json:"queued"`
	Held       *int       `json:"held"`
	Instances  []struct {
		Instance string  `json:"instance"`
		Share    float64 `json:"share"`
		Queued   int     `json:"queued"`
	} `json:"instances"`
}

// notifyctl sender list shows every registered sender with the halts and
// the dispatchers' live reports; sender resume releases a halted sender
// on the dispatchers and refuses a sender the registry does not know.
func TestSenderListAndResume(t *testing.T) {
	brokers := cluster(t)
	t.Setenv("WANOTIFY_SENDERS", senders.Inline(senders.File{
		Senders: []senders.Sender{
			{Name: "acme-main", Tenants: []string{"acme"}, NumberID: "100000000000001", Rate: 40},
			{Name: "acme-bulk", Tenants: []string{"acme"}, NumberID: "100000000000002"},
		},
		Tenants: []senders.Tenant{{Name: "acme", DefaultSender: "acme-main"}},
	}))
	// Two dispatcher instances as the dispatcher runs them: one halts
	// acme-main on an account fault, both report their figures.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	disp := map[string]*halt.Store{}
	for _, inst := range []string{"dispatcher-0", "dispatcher-1"} {
		s, err := halt.New(halt.Config{Opts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, Instance: inst})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		disp[inst] = s
		queued := map[string]int{"dispatcher-0": 120, "dispatcher-1": 30}[inst]
		rep := s.NewReporter(time.Hour, func() []halt.Figures {
			return []halt.Figures{{Sender: "acme-main", Rate: 40, Share: 20, Breaker: "closed", Queued: queued}}
		})
		rctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); rep.Run(rctx) }()
		defer func() { stop(); <-done }()
	}
	// The provider's message reaches the terminal escaped.
	why := halt.Reason{Code: "meta_190", Message: "token expired \x1b[2J"}
	if err := disp["dispatcher-0"].Halt(ctx, "acme-main", why); err != nil {
		t.Fatal(err)
	}
	parkHeld(ctx, t, brokers)

	var rows []senderRow
	deadline := time.Now().Add(20 * time.Second)
	for {
		runJSON(t, cli.ExitOK, &rows, "sender", "list")
		if len(rows) == 2 && rows[1].Queued == 150 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sender list never showed both reports: %+v", rows)
		}
		time.Sleep(50 * time.Millisecond)
	}
	bulk, main := rows[0], rows[1]
	if bulk.Held == nil || *bulk.Held != 1 || main.Held == nil || *main.Held != 3 {
		t.Errorf("held: acme-bulk %v, acme-main %v; want 1 and 3", bulk.Held, main.Held)
	}
	if bulk.Name != "acme-bulk" || bulk.Halted || bulk.State != "running" || bulk.Rate != nil || bulk.Queued != 0 || bulk.Breaker != "unknown" || !bulk.Registered {
		t.Errorf("acme-bulk: %+v", bulk)
	}
	if main.Name != "acme-main" || !main.Halted || main.State != "halted" || main.Code != "meta_190" || main.Message != why.Message ||
		main.By != "dispatcher-0" || main.Since == nil || main.ProbeAfter == nil || main.Rate == nil || *main.Rate != 40 ||
		main.Breaker != "closed" || len(main.Instances) != 2 {
		t.Errorf("acme-main: %+v", main)
	}
	r := run(t, "", "sender", "list")
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "acme-main") || !strings.Contains(r.stdout, "halted") ||
		!strings.Contains(r.stdout, `meta_190: token expired \x1b[2J`) || strings.Contains(r.stdout, "\x1b") || !strings.Contains(r.stdout, "150") {
		t.Fatalf("sender list table: %s", r)
	}

	t.Log("\n" + r.stdout)
	// Unknown sender: refused, named, nothing written.
	r = run(t, "", "sender", "resume", "globex-main")
	if r.code != cli.ExitNotFound || !strings.Contains(r.stderr, `"globex-main"`) || !strings.Contains(r.stderr, "sender registry") {
		t.Fatalf("resume of an unknown sender: %s", r)
	}
	if _, _, ok := disp["dispatcher-1"].Halted("acme-main"); !ok {
		t.Fatal("dispatcher-1 never saw the halt")
	}

	var res struct {
		Sender    string `json:"sender"`
		WasHalted bool   `json:"was_halted"`
		Code      string `json:"code"`
	}
	runJSON(t, cli.ExitOK, &res, "sender", "resume", "acme-main")
	if res.Sender != "acme-main" || !res.WasHalted || res.Code != "meta_190" {
		t.Fatalf("resume: %+v", res)
	}
	for inst, s := range disp {
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, _, ok := s.Halted("acme-main"); !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still halted after notifyctl sender resume", inst)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	runJSON(t, cli.ExitOK, &rows, "sender", "list")
	if rows[1].Halted || rows[1].State != "running" || rows[1].By != "notifyctl" {
		t.Fatalf("after resume: %+v", rows[1])
	}
	r = run(t, "", "sender", "resume", "acme-bulk")
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "was not halted") {
		t.Fatalf("resume of a running sender: %s", r)
	}
}

// parkHeld writes records to notifications.held as the dispatchers would
// leave them: on partition 0 two of acme-main, the first already committed
// by the dispatchers' group; on partition 1 a committed transaction with
// two of acme-main and an aborted one with two of acme-main and one of
// acme-bulk; on partition 2 one of acme-bulk. Waiting: acme-main 3,
// acme-bulk 1.
func parkHeld(ctx context.Context, t *testing.T, brokers []string) {
	t.Helper()
	rec := func(p int32, sender string) *kgo.Record {
		return &kgo.Record{Topic: topics.Held, Partition: p, Value: []byte(`{"sender":"` + sender + `"}`)}
	}
	plain, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.ProduceSync(ctx, rec(0, "acme-main"), rec(0, "acme-main"), rec(2, "acme-bulk")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	txn, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionalID("cli-test-held"))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	for _, commit := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort} {
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		rs := []*kgo.Record{rec(1, "acme-main"), rec(1, "acme-main")}
		if !commit {
			rs = append(rs, rec(1, "acme-bulk"))
		}
		if err := txn.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := txn.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: topics.Held, Partition: 0, At: 1, LeaderEpoch: -1})
	if err := kadm.NewClient(plain).CommitAllOffsets(ctx, "wanotify-dispatcher", offs); err != nil {
		t.Fatal(err)
	}
}

package cli_test

import (
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/cli"
	"github.com/wanotify/wanotify/pkg/erasure/erasuretest"
	"github.com/wanotify/wanotify/pkg/testinfra"
)

// TestEraseCommand fills every table through the real sink with two
// people's traffic, then runs notifyctl erase: a refused confirmation and
// a bad number erase nothing; a confirmed erasure leaves no row in any
// table or view mentioning the number, the other person's rows intact,
// and notifyctl erasures finds the audit row.
func TestEraseCommand(t *testing.T) {
	brokers := cluster(t)
	db := testinfra.ClickHouseDatabase(t)
	t.Setenv("WANOTIFY_CLICKHOUSE_ADDR", db.Server.Addr)
	t.Setenv("WANOTIFY_CLICKHOUSE_DATABASE", db.Name)
	t.Setenv("WANOTIFY_PRIVACY_HASH_KEY", "cli-test-key")
	person := erasuretest.Person{Recipient: "+447700900777", Tenant: "acme", Tag: "p"}
	other := erasuretest.Person{Recipient: "+447700900888", Tenant: "acme", Tag: "o"}
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	erasuretest.Fill(t, brokers, db, append(erasuretest.Records(t, person, at), erasuretest.Records(t, other, at)...))
	before := erasuretest.Mentions(t, db, person.Recipient)
	otherBefore := erasuretest.Mentions(t, db, other.Recipient)
	if before["notification_events"] == 0 || before["communication_logs"] == 0 {
		t.Fatalf("fixture wrote no rows of the person: %v", before)
	}

	if r := run(t, "no\n", "erase", "--recipient", person.Recipient); r.code != cli.ExitFailure {
		t.Errorf("unconfirmed erase: %s", r)
	}
	if r := run(t, "", "erase", "--recipient", "07700900777", "--yes"); r.code != cli.ExitUsage {
		t.Errorf("erase of a national number: %s", r)
	}
	if r := run(t, "", "erase", "--yes"); r.code != cli.ExitUsage {
		t.Errorf("erase without --recipient: %s", r)
	}
	if got := erasuretest.Mentions(t, db, person.Recipient); got["notification_events"] != before["notification_events"] {
		t.Fatalf("a refused erase removed rows: %v", got)
	}
	var plan struct {
		DryRun        bool              `json:"dry_run"`
		Notifications int               `json:"notifications"`
		RowsDeleted   map[string]uint64 `json:"rows_deleted"`
	}
	runJSON(t, cli.ExitOK, &plan, "erase", "--recipient", person.Recipient, "--dry-run")
	if !plan.DryRun || plan.Notifications != 2 || plan.RowsDeleted["notification_events"] == 0 {
		t.Errorf("dry run: %+v", plan)
	}
	if got := erasuretest.Mentions(t, db, person.Recipient); got["notification_events"] != before["notification_events"] {
		t.Fatalf("a dry run removed rows: %v", got)
	}
	if r := run(t, "", "erasures", "--recipient", person.Recipient); r.code != cli.ExitNotFound {
		t.Errorf("erasures before any: %s", r)
	}

	var res struct {
		ErasureID     string            `json:"erasure_id"`
		RecipientHash string            `json:"recipient_hash"`
		Notifications int               `json:"notifications"`
		RowsDeleted   map[string]uint64 `json:"rows_deleted"`
	}
	r := runJSON(t, cli.ExitOK, &res, "erase", "--recipient", person.Recipient, "--reason", "DSR-77", "--actor", "alice", "--yes")
	if res.ErasureID == "" || res.Notifications != 2 || res.RowsDeleted["notification_events"] == 0 || res.RecipientHash == "" {
		t.Errorf("erase result %+v", res)
	}
	if contains(r.stdout+r.stderr, person.Recipient) {
		t.Errorf("notifyctl printed the number in clear:\n%s", r)
	}
	for table, n := range erasuretest.Mentions(t, db, person.Recipient) {
		if n != 0 {
			t.Errorf("%s still has %d rows mentioning the erased number", table, n)
		}
	}
	for table, n := range erasuretest.Mentions(t, db, other.Recipient) {
		if n != otherBefore[table] {
			t.Errorf("%s: the other person's rows went from %d to %d", table, otherBefore[table], n)
		}
	}

	var audits []struct {
		Actor, Via, Reason string
	}
	runJSON(t, cli.ExitOK, &audits, "erasures", "--recipient", person.Recipient)
	if len(audits) != 1 || audits[0].Actor != "alice" || audits[0].Via != "notifyctl" || audits[0].Reason != "DSR-77" {
		t.Errorf("erasures %+v", audits)
	}
	if r := run(t, "", "erase", "--recipient", person.Recipient, "--yes"); r.code != cli.ExitOK || !contains(r.stdout, "0 notifications") {
		t.Errorf("table output of an erasure that finds nothing: %s", r)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

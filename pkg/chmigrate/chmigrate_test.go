package chmigrate

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/goleak"

	"github.com/wanotify/wanotify/pkg/testinfra"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSplit(t *testing.T) {
	sql := `-- header comment; with a semicolon
CREATE TABLE a (s String DEFAULT 'x;y', t String DEFAULT 'it''s; fine') ENGINE = Memory;

/* block; comment */
CREATE VIEW b AS SELECT ';' AS "semi;colon", ` + "`odd;name`" + ` FROM a -- trailing; comment
;
-- only a comment at the end;
`
	got, err := Split(sql)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d statements: %q", len(got), got)
	}
	if !strings.Contains(got[0], "'x;y'") || !strings.Contains(got[0], "'it''s; fine'") || !strings.HasSuffix(got[0], "ENGINE = Memory") {
		t.Errorf("first statement %q", got[0])
	}
	if !strings.Contains(got[1], `"semi;colon"`) || !strings.Contains(got[1], "`odd;name`") || !strings.HasPrefix(got[1], "/* block; comment */") {
		t.Errorf("second statement %q", got[1])
	}
	for _, bad := range []string{"SELECT 'open", "SELECT 1 /* open"} {
		if _, err := Split(bad); err == nil {
			t.Errorf("Split(%q) accepted an unterminated quote or comment", bad)
		}
	}
}

func TestLoad(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0002_second.sql": {Data: []byte("SELECT 2; SELECT 3;")},
		"m/0001_first.sql":  {Data: []byte("SELECT 1")},
		"m/README.md":       {Data: []byte("ignored")},
	}
	ms, err := Load(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Name != "0001_first.sql" || ms[1].Version != 2 || len(ms[1].Statements) != 2 || len(ms[0].Checksum) != 64 {
		t.Fatalf("loaded %+v", ms)
	}
	cases := map[string]fstest.MapFS{
		"NNNN_name.sql": {"m/1_x.sql": {Data: []byte("SELECT 1")}},
		"same version":  {"m/0001_a.sql": {Data: []byte("SELECT 1")}, "m/0001_b.sql": {Data: []byte("SELECT 1")}},
		"no statements": {"m/0001_a.sql": {Data: []byte("-- nothing\n")}},
		"unterminated":  {"m/0001_a.sql": {Data: []byte("SELECT 'x")}},
		"positive":      {"m/0000_a.sql": {Data: []byte("SELECT 1")}},
	}
	for want, f := range cases {
		if _, err := Load(f, "m"); err == nil || !strings.Contains(err.Error(), want) && !strings.Contains(err.Error(), "unterminated") {
			t.Errorf("Load: %v, want an error about %q", err, want)
		}
	}
}

func TestApply(t *testing.T) {
	db := testinfra.ClickHouseDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	v1 := fstest.MapFS{
		"0001_items.sql": {Data: []byte("CREATE TABLE IF NOT EXISTS items (id UInt64, name String) ENGINE = MergeTree ORDER BY id;\nINSERT INTO items SELECT 1, 'one' WHERE NOT EXISTS (SELECT 1 FROM items);")},
		"0002_view.sql":  {Data: []byte("CREATE OR REPLACE VIEW item_names AS SELECT name FROM items")},
	}
	ms, err := Load(v1, ".")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Apply(ctx, db.Conn, ms, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Applied, []string{"0001_items.sql", "0002_view.sql"}) || len(res.Skipped) != 0 {
		t.Fatalf("first apply: %+v", res)
	}
	var name string
	if err := db.Conn.QueryRow(ctx, "SELECT name FROM item_names").Scan(&name); err != nil || name != "one" {
		t.Fatalf("view after migration: %q %v", name, err)
	}

	res, err = Apply(ctx, db.Conn, ms, nil)
	if err != nil || len(res.Applied) != 0 || len(res.Skipped) != 2 {
		t.Fatalf("second apply: %+v %v", res, err)
	}

	// A later migration that fails half way is not recorded; once fixed it
	// runs again from the start, its first statement being idempotent.
	broken := fstest.MapFS{
		"0001_items.sql": v1["0001_items.sql"], "0002_view.sql": v1["0002_view.sql"],
		"0003_more.sql": {Data: []byte("ALTER TABLE items ADD COLUMN IF NOT EXISTS price UInt32;\nSELECT no_such_function()")},
	}
	ms, _ = Load(broken, ".")
	if _, err := Apply(ctx, db.Conn, ms, nil); err == nil || !strings.Contains(err.Error(), "0003_more.sql statement 2") {
		t.Fatalf("broken migration: %v, want an error naming 0003_more.sql statement 2", err)
	}
	fixed := fstest.MapFS{
		"0001_items.sql": v1["0001_items.sql"], "0002_view.sql": v1["0002_view.sql"],
		"0003_more.sql": {Data: []byte("ALTER TABLE items ADD COLUMN IF NOT EXISTS price UInt32;\nALTER TABLE items ADD COLUMN IF NOT EXISTS currency String")},
	}
	ms, _ = Load(fixed, ".")
	res, err = Apply(ctx, db.Conn, ms, nil)
	if err != nil || !reflect.DeepEqual(res.Applied, []string{"0003_more.sql"}) {
		t.Fatalf("fixed migration: %+v %v", res, err)
	}

	// Editing an applied migration is refused, naming the file.
	edited := fstest.MapFS{
		"0001_items.sql": {Data: []byte("CREATE TABLE IF NOT EXISTS items (id UInt64) ENGINE = MergeTree ORDER BY id")},
		"0002_view.sql":  v1["0002_view.sql"], "0003_more.sql": fixed["0003_more.sql"],
	}
	ms, _ = Load(edited, ".")
	_, err = Apply(ctx, db.Conn, ms, nil)
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "0001_items.sql") {
		t.Fatalf("edited migration: %v, want ErrChecksum naming 0001_items.sql", err)
	}

	// A database migrated by a newer binary: older files still apply, the
	// unknown version is reported.
	ms, _ = Load(v1, ".")
	res, err = Apply(ctx, db.Conn, ms, nil)
	if err != nil || !reflect.DeepEqual(res.Unknown, []string{"0003_more.sql"}) {
		t.Fatalf("older binary: %+v %v", res, err)
	}
}

func TestApplyConcurrently(t *testing.T) {
	db := testinfra.ClickHouseDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ms, err := Load(fstest.MapFS{
		"0001_a.sql": {Data: []byte("CREATE TABLE IF NOT EXISTS a (id UInt64) ENGINE = MergeTree ORDER BY id")},
		"0002_b.sql": {Data: []byte("CREATE TABLE IF NOT EXISTS b (id UInt64) ENGINE = MergeTree ORDER BY id")},
	}, ".")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := Apply(ctx, db.Conn, ms, nil)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent apply: %v", err)
		}
	}
	res, err := Apply(ctx, db.Conn, ms, nil)
	if err != nil || len(res.Skipped) != 2 || len(res.Applied) != 0 {
		t.Fatalf("after concurrent applies: %+v %v", res, err)
	}
}

func TestEnsureDatabase(t *testing.T) {
	srv := testinfra.ClickHouse(t)
	admin := srv.Open(t, "")
	name := "test_chmigrate_ensure_" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Cleanup(func() { _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" SYNC") })
	for range 2 {
		if err := EnsureDatabase(ctx, srv.Options(name)); err != nil {
			t.Fatal(err)
		}
	}
	var n uint64
	if err := admin.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", name).Scan(&n); err != nil || n != 1 {
		t.Fatalf("database %s: count %d, %v", name, n, err)
	}
	if err := EnsureDatabase(ctx, srv.Options("")); err == nil {
		t.Error("EnsureDatabase without a name succeeded")
	}
}

func TestQuoteIdent(t *testing.T) {
	if got := QuoteIdent("we`ird\\db"); got != "`we\\`ird\\\\db`" {
		t.Errorf("QuoteIdent = %s", got)
	}
}

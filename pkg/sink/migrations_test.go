package sink

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/chmigrate"
	"github.com/wanotify/wanotify/pkg/sink/migrations"
	"github.com/wanotify/wanotify/pkg/testinfra"
)

// TestMigrationsApplyOnceAndRetentionFollowsConfig runs the sink's start
// sequence five times on one database: the migrations apply once and are
// then skipped, and the retention settings set a finite TTL by default on
// every table the sink writes, change it, and remove it; and no table that
// can hold personal data is left without one.
func TestMigrationsApplyOnceAndRetentionFollowsConfig(t *testing.T) {
	srv := testinfra.ClickHouse(t)
	db := srv.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	files, err := chmigrate.Load(migrations.FS, migrations.Dir)
	if err != nil {
		t.Fatal(err)
	}

	// The sink creates its database when it is missing.
	opts := srv.Options(db.Name + "_sink")
	t.Cleanup(func() { _ = db.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+opts.Auth.Database+" SYNC") })
	ttls := func() map[string]string {
		rows, err := db.Conn.Query(ctx, "SELECT name, engine_full FROM system.tables WHERE database = ? AND engine LIKE '%MergeTree'", opts.Auth.Database)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]string{}
		for rows.Next() {
			var name, engine string
			if err := rows.Scan(&name, &engine); err != nil {
				t.Fatal(err)
			}
			if i := strings.Index(engine, " TTL "); i >= 0 {
				out[name] = engine[i+5:]
			}
		}
		return out
	}
	for _, step := range []struct {
		name              string
		cfg               Config
		wantTTL, wantErrs string
	}{
		{"defaults", Config{}, "toIntervalDay(90)", "toIntervalDay(30)"},
		{"changed", Config{RetentionDays: 400, ErrorRetentionDays: 7}, "toIntervalDay(400)", "toIntervalDay(7)"},
		{"forever", Config{RetentionDays: KeepForever, ErrorRetentionDays: KeepForever}, "", ""},
		{"errors only", Config{RetentionDays: KeepForever, ErrorRetentionDays: 14}, "", "toIntervalDay(14)"},
	} {
		s, err := New(step.cfg, opts, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := s.prepare(ctx)
		if err != nil {
			t.Fatalf("%s: prepare: %v", step.name, err)
		}
		_ = conn.Close()
		got := ttls()
		for _, rc := range retentionColumns {
			want := step.wantTTL
			if rc.errors {
				want = step.wantErrs
			}
			ttl, ok := got[rc.table]
			switch {
			case want == "" && ok:
				t.Errorf("%s: %s still has TTL %s", step.name, rc.table, ttl)
			case want != "" && (!ok || !strings.Contains(ttl, want) || !strings.Contains(ttl, rc.column)):
				t.Errorf("%s: %s TTL %q, want one on %s with %s", step.name, rc.table, ttl, rc.column, want)
			}
		}
	}
	// Every table that can hold personal data has a retention: a table a
	// later migration adds with a recipient, id or raw value column must
	// join retentionColumns (or be explicitly exempt, like the audit).
	if _, err := func() (any, error) {
		s, err := New(Config{}, opts, nil, nil)
		if err != nil {
			return nil, err
		}
		conn, err := s.prepare(ctx)
		if err == nil {
			_ = conn.Close()
		}
		return nil, err
	}(); err != nil {
		t.Fatal(err)
	}
	withTTL := ttls()
	rows, err := db.Conn.Query(ctx, `SELECT DISTINCT c.table FROM system.columns AS c
		INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table
		WHERE c.database = ? AND t.engine LIKE '%MergeTree'
		  AND c.name IN ('recipient', 'notification_id', 'provider_message_id', 'key', 'value', 'payload')`, opts.Auth.Database)
	if err != nil {
		t.Fatal(err)
	}
	personal := 0
	for rows.Next() {
		var table string
		if err := rows.Scan(&table); err != nil {
			t.Fatal(err)
		}
		personal++
		if _, ok := withTTL[table]; !ok && table != "erasures" {
			t.Errorf("table %s holds personal data but has no retention (add it to retentionColumns)", table)
		}
	}
	rows.Close()
	if personal < len(retentionColumns) {
		t.Errorf("found %d tables with personal data, want at least %d", personal, len(retentionColumns))
	}

	var applied uint64
	if err := db.Conn.QueryRow(ctx, "SELECT count() FROM "+opts.Auth.Database+".schema_migrations").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != uint64(len(files)) {
		t.Errorf("schema_migrations has %d rows after five starts, want %d (one per migration)", applied, len(files))
	}
}

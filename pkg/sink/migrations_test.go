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
// sequence four times on one database: the migrations apply once and are
// then skipped, and the retention settings set a finite TTL by default on
// every table the sink writes, change it, and remove it.
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
	var applied uint64
	if err := db.Conn.QueryRow(ctx, "SELECT count() FROM "+opts.Auth.Database+".schema_migrations").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != uint64(len(files)) {
		t.Errorf("schema_migrations has %d rows after four starts, want %d (one per migration)", applied, len(files))
	}
}

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
// sequence three times on one database: the migrations apply once and are
// then skipped, and the retention setting adds, changes and removes the
// TTL of every table the sink writes.
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
		days    int
		wantTTL string
	}{{30, "toIntervalDay(30)"}, {90, "toIntervalDay(90)"}, {0, ""}} {
		s, err := New(Config{RetentionDays: step.days}, opts, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := s.prepare(ctx)
		if err != nil {
			t.Fatalf("prepare with retention %d: %v", step.days, err)
		}
		_ = conn.Close()
		got := ttls()
		for _, rc := range retentionColumns {
			ttl, ok := got[rc.table]
			switch {
			case step.wantTTL == "" && ok:
				t.Errorf("retention 0: %s still has TTL %s", rc.table, ttl)
			case step.wantTTL != "" && (!ok || !strings.Contains(ttl, step.wantTTL) || !strings.Contains(ttl, rc.column)):
				t.Errorf("retention %d: %s TTL %q, want one on %s with %s", step.days, rc.table, ttl, rc.column, step.wantTTL)
			}
		}
	}
	var applied uint64
	if err := db.Conn.QueryRow(ctx, "SELECT count() FROM "+opts.Auth.Database+".schema_migrations").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != uint64(len(files)) {
		t.Errorf("schema_migrations has %d rows after three starts, want %d (one per migration)", applied, len(files))
	}
}

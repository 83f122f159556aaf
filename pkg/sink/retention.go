package sink

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/wanotify/wanotify/pkg/chmigrate"
)

// retentionColumns is, per table holding personal data, the time a row's
// age is measured from, and whether it follows the error retention
// (dead letters, undecodable records) rather than the events'. The
// erasures audit (0015) is not here: it holds no number in clear and is
// the proof that erasures happened.
var retentionColumns = []struct {
	table, column string
	errors        bool
}{
	{TableEvents, "occurred_at", false},
	{"notification_state", "last_event_at", false},
	{"provider_message_state", "last_event_at", false},
	{"provider_message_map", "seen_at", false},
	{"lane_state", "last_event_at", false},
	{TableErrors, "record_time", true},
	{TableDeadLetters, "record_time", true},
}

// applyRetention sets the TTL of every table the sink writes: days for
// the event and state tables, errorDays for dead letters and ingest
// errors; KeepForever removes it. It lives outside the migrations because
// it is configuration, applied at every start, so changing the setting
// takes effect at the next start without changing an applied migration.
// The TTL is only a metadata change here (materialize_ttl_after_modify =
// 0): old parts expire as merges reach them instead of being rewritten at
// start (ClickHouse merges parts with expired rows on its own schedule,
// merge_with_ttl_timeout, 4 hours by default).
func applyRetention(ctx context.Context, conn driver.Conn, database string, days, errorDays int) error {
	db := chmigrate.QuoteIdent(database)
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"materialize_ttl_after_modify": 0}))
	withTTL, err := tablesWithTTL(ctx, conn, database)
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	for _, t := range retentionColumns {
		d := days
		if t.errors {
			d = errorDays
		}
		var q string
		switch {
		case d > 0:
			q = fmt.Sprintf("ALTER TABLE %s.%s MODIFY TTL toDateTime(%s) + toIntervalDay(%d)", db, chmigrate.QuoteIdent(t.table), t.column, d)
		case withTTL[t.table]:
			q = fmt.Sprintf("ALTER TABLE %s.%s REMOVE TTL", db, chmigrate.QuoteIdent(t.table))
		default:
			continue
		}
		if err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("retention of %s: %w", t.table, err)
		}
	}
	return nil
}

func tablesWithTTL(ctx context.Context, conn driver.Conn, database string) (map[string]bool, error) {
	rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ? AND position(engine_full, ' TTL ') > 0", database)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		out[name] = true
	}
	return out, rows.Err()
}

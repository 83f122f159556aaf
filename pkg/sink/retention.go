package sink

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/wanotify/wanotify/pkg/chmigrate"
)

// retentionColumns is, per table, the time a row's age is measured from.
var retentionColumns = []struct{ table, column string }{
	{TableEvents, "occurred_at"},
	{TableErrors, "record_time"},
	{TableDeadLetters, "record_time"},
	{"notification_state", "last_event_at"},
	{"provider_message_state", "last_event_at"},
	{"provider_message_map", "seen_at"},
}

// applyRetention sets (days > 0) or removes (days = 0) the TTL of every
// table the sink writes. It lives outside the migrations because it is
// configuration: changing it must not change an applied migration. The
// TTL is only a metadata change here (materialize_ttl_after_modify = 0):
// old parts expire as merges reach them instead of being rewritten at
// start.
func applyRetention(ctx context.Context, conn driver.Conn, database string, days int) error {
	db := chmigrate.QuoteIdent(database)
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"materialize_ttl_after_modify": 0}))
	if days > 0 {
		for _, t := range retentionColumns {
			q := fmt.Sprintf("ALTER TABLE %s.%s MODIFY TTL toDateTime(%s) + toIntervalDay(%d)", db, chmigrate.QuoteIdent(t.table), t.column, days)
			if err := conn.Exec(ctx, q); err != nil {
				return fmt.Errorf("retention of %s: %w", t.table, err)
			}
		}
		return nil
	}
	rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ? AND position(engine_full, ' TTL ') > 0", database)
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	var withTTL []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return fmt.Errorf("retention: %w", err)
		}
		withTTL = append(withTTL, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	ours := map[string]bool{}
	for _, t := range retentionColumns {
		ours[t.table] = true
	}
	for _, name := range withTTL {
		if !ours[name] {
			continue
		}
		if err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s REMOVE TTL", db, chmigrate.QuoteIdent(name))); err != nil {
			return fmt.Errorf("retention of %s: %w", name, err)
		}
	}
	return nil
}

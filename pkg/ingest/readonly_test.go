package ingest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/chconf"
	"github.com/wanotify/wanotify/pkg/testinfra"
)

// TestStatusReadsCannotWrite: the connection ingest reads the
// communication logs through refuses INSERT, DDL and DROP on the real
// ClickHouse, even when its user could write, while SELECT works.
func TestStatusReadsCannotWrite(t *testing.T) {
	db := testinfra.ClickHouseDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.Conn.Exec(ctx, "CREATE TABLE probe (x UInt8) ENGINE = MergeTree ORDER BY x"); err != nil {
		t.Fatal(err)
	}
	// The same user the test database's own connection writes as.
	conn, err := openReadOnly(chconf.Config{Addrs: []string{db.Server.Addr}, Database: db.Name, Username: "default", DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db.Name+".probe").Scan(&n); err != nil {
		t.Fatalf("SELECT through the status connection: %v", err)
	}
	for _, q := range []string{
		"INSERT INTO " + db.Name + ".probe VALUES (1)",
		"CREATE TABLE " + db.Name + ".other (x UInt8) ENGINE = MergeTree ORDER BY x",
		"ALTER TABLE " + db.Name + ".probe DELETE WHERE 1",
		"DROP TABLE " + db.Name + ".probe",
	} {
		err := conn.Exec(ctx, q)
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "readonly") {
			t.Errorf("%s through the status connection: %v, want a readonly refusal", strings.Fields(q)[0], err)
		}
	}
	if err := db.Conn.QueryRow(ctx, "SELECT count() FROM probe").Scan(&n); err != nil || n != 0 {
		t.Fatalf("probe holds %d rows (%v) after the refused writes", n, err)
	}
}

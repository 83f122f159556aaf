package testinfra

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestClickHouseVersionAndReplacingMergeTree(t *testing.T) {
	db := ClickHouseDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var version, current string
	if err := db.Conn.QueryRow(ctx, "SELECT version(), currentDatabase()").Scan(&version, &current); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(version, "26.7") {
		t.Fatalf("version() = %q, want 26.7.x", version)
	}
	if current != db.Name {
		t.Errorf("currentDatabase() = %q, want the test's database %q", current, db.Name)
	}

	err := db.Conn.Exec(ctx, `
		CREATE TABLE notification_status (
			id         String,
			status     LowCardinality(String),
			version    UInt64,
			updated_at DateTime64(3, 'UTC'),
			attrs      Map(String, String)
		) ENGINE = ReplacingMergeTree(version)
		ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}

	const ids = 500
	statuses := []string{"queued", "sent", "delivered"}
	base := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	// Two batches, so that the versions of one id live in different parts and
	// only FINAL (or a merge) collapses them. The second batch sends the
	// newest version first to show that the version column, not insertion
	// order, decides.
	insert := func(versions ...uint64) {
		t.Helper()
		batch, err := db.Conn.PrepareBatch(ctx, "INSERT INTO notification_status")
		if err != nil {
			t.Fatal(err)
		}
		for i := range ids {
			for _, v := range versions {
				id := fmt.Sprintf("n-%04d", i)
				err := batch.Append(id, statuses[v-1], v, base.Add(time.Duration(v)*time.Second),
					map[string]string{"v": fmt.Sprint(v)})
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := batch.Send(); err != nil {
			t.Fatal(err)
		}
	}
	insert(1)
	insert(3, 2)

	var raw uint64
	if err := db.Conn.QueryRow(ctx, "SELECT count() FROM notification_status").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if raw < ids {
		t.Fatalf("count() = %d, want at least %d", raw, ids)
	}

	rows, err := db.Conn.Query(ctx, "SELECT id, status, version, updated_at, attrs FROM notification_status FINAL ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			id, status string
			version    uint64
			updatedAt  time.Time
			attrs      map[string]string
		)
		if err := rows.Scan(&id, &status, &version, &updatedAt, &attrs); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("n-%04d", n); id != want {
			t.Fatalf("row %d: id = %q, want %q", n, id, want)
		}
		if status != "delivered" || version != 3 || attrs["v"] != "3" {
			t.Fatalf("row %s: status=%q version=%d attrs=%v, want the version 3 row", id, status, version, attrs)
		}
		if want := base.Add(3 * time.Second); !updatedAt.Equal(want) {
			t.Fatalf("row %s: updated_at = %s, want %s", id, updatedAt, want)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != ids {
		t.Fatalf("FINAL returned %d rows, want %d", n, ids)
	}
}

func TestClickHouseDatabaseIsDroppedAtCleanup(t *testing.T) {
	srv := ClickHouse(t)
	var name string
	t.Run("inner", func(t *testing.T) {
		name = srv.NewDatabase(t).Name
	})
	if ok, _ := regexp.MatchString(`^test_[a-z0-9_]+_[0-9a-f]{12}$`, name); !ok {
		t.Errorf("database name %q is not test_<name>_<hex>", name)
	}
	if !strings.Contains(name, "testclickhousedatabaseisdroppedatcleanup_inner") {
		t.Errorf("database name %q does not name its test", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n uint64
	if err := srv.Open(t, "").QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestClickHouseHTTPInterface(t *testing.T) {
	srv := ClickHouse(t)
	if srv.HTTPAddr == "" {
		t.Skip(ClickHouseHTTPEnv + " is not set")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + srv.HTTPAddr + "/?query=" + url.QueryEscape("SELECT version()"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v := strings.TrimSpace(string(body)); resp.StatusCode != http.StatusOK || !strings.HasPrefix(v, "26.7.") {
		t.Fatalf("GET version(): %s %q, want 200 and 26.7.x", resp.Status, v)
	}
}

func TestClickHouseDatabaseName(t *testing.T) {
	a := clickHouseDatabaseName("TestFoo/sub-test #1 (ünïcode)")
	b := clickHouseDatabaseName("TestFoo/sub-test #1 (ünïcode)")
	if a == b {
		t.Errorf("two names for one test are equal: %q", a)
	}
	if ok, _ := regexp.MatchString(`^test_testfoo_sub_test_1_n_code_[0-9a-f]{12}$`, a); !ok {
		t.Errorf("name = %q", a)
	}
	long := clickHouseDatabaseName(strings.Repeat("x", 500))
	if len(long) > 110 {
		t.Errorf("name is %d bytes long: %q", len(long), long)
	}
}

// clickHouseRecordTB captures Skip and Fatal calls of ClickHouse.
type clickHouseRecordTB struct {
	testing.TB
	skipped, failed string
}

func (r *clickHouseRecordTB) Helper() {}

func (r *clickHouseRecordTB) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *clickHouseRecordTB) Fatal(args ...any) {
	r.failed = fmt.Sprint(args...)
	runtime.Goexit()
}

func TestClickHouseWithoutServer(t *testing.T) {
	t.Setenv(ClickHouseAddrEnv, "")
	call := func() *clickHouseRecordTB {
		r := &clickHouseRecordTB{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			ClickHouse(r)
		}()
		<-done
		return r
	}

	t.Setenv("CI", "")
	if r := call(); r.skipped != "set WANOTIFY_TEST_CLICKHOUSE_ADDR or run via make test" || r.failed != "" {
		t.Errorf("outside CI: skipped=%q failed=%q", r.skipped, r.failed)
	}
	t.Setenv("CI", "true")
	if r := call(); r.failed == "" || !strings.Contains(r.failed, ClickHouseAddrEnv) || r.skipped != "" {
		t.Errorf("in CI: skipped=%q failed=%q, want a failure naming %s", r.skipped, r.failed, ClickHouseAddrEnv)
	}
}

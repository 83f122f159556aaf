package testinfra

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Environment variables through which scripts/with-clickhouse.sh (used by
// `make test`) hands the tests its ClickHouse server.
const (
	// ClickHouseAddrEnv holds the native protocol address, host:port.
	ClickHouseAddrEnv = "WANOTIFY_TEST_CLICKHOUSE_ADDR"
	// ClickHouseHTTPEnv holds the HTTP interface address, host:port.
	ClickHouseHTTPEnv = "WANOTIFY_TEST_CLICKHOUSE_HTTP"
)

// clickHouseSkipMessage is the reason given when no server is configured.
const clickHouseSkipMessage = "set " + ClickHouseAddrEnv + " or run via make test"

// ClickHouseServer is the ClickHouse server the tests run against.
type ClickHouseServer struct {
	// Addr is the native protocol address (host:port).
	Addr string
	// HTTPAddr is the HTTP interface address (host:port); empty if not set.
	HTTPAddr string
}

// ClickHouse returns the server named by WANOTIFY_TEST_CLICKHOUSE_ADDR.
// When it is unset the test is skipped, except in CI (CI=true), where a
// missing server fails the test.
func ClickHouse(t testing.TB) ClickHouseServer {
	t.Helper()
	addr := os.Getenv(ClickHouseAddrEnv)
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(ClickHouseAddrEnv + " is not set: in CI the tests must run through `make test` " +
				"(scripts/with-clickhouse.sh starts ClickHouse and sets it)")
		}
		t.Skip(clickHouseSkipMessage)
	}
	return ClickHouseServer{Addr: addr, HTTPAddr: os.Getenv(ClickHouseHTTPEnv)}
}

// Options returns clickhouse-go options for database on the server ("" is
// the server's default database).
func (s ClickHouseServer) Options(database string) *clickhouse.Options {
	return &clickhouse.Options{
		Addr:        []string{s.Addr},
		Auth:        clickhouse.Auth{Database: database, Username: "default"},
		DialTimeout: 5 * time.Second,
	}
}

// Open opens a native-protocol connection to database, closed at cleanup.
func (s ClickHouseServer) Open(t testing.TB, database string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(s.Options(database))
	if err != nil {
		t.Fatalf("clickhouse: open %s: %v", s.Addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("clickhouse: ping %s: %v", s.Addr, err)
	}
	return conn
}

// ClickHouseDB is a database created for one test.
type ClickHouseDB struct {
	Server ClickHouseServer
	// Name is the database's unique name.
	Name string
	// Conn is a native-protocol connection whose default database is Name.
	Conn driver.Conn
}

// Options returns clickhouse-go options for the test's database, for code
// under test that opens its own connections.
func (d *ClickHouseDB) Options() *clickhouse.Options {
	return d.Server.Options(d.Name)
}

// NewDatabase creates a uniquely named database for the test and returns a
// connection to it. The connection is closed and the database dropped when
// the test ends.
func (s ClickHouseServer) NewDatabase(t testing.TB) *ClickHouseDB {
	t.Helper()
	admin := s.Open(t, "")
	name := clickHouseDatabaseName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("clickhouse: create database %s: %v", name, err)
	}
	// Cleanups run last-registered first: close the test's connection, then
	// drop the database, then close the admin connection (registered by Open).
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" SYNC"); err != nil {
			t.Errorf("clickhouse: drop database %s: %v", name, err)
		}
	})
	return &ClickHouseDB{Server: s, Name: name, Conn: s.Open(t, name)}
}

// ClickHouseDatabase is ClickHouse(t).NewDatabase(t): a fresh database on the
// test server, or a skip (a failure in CI) when there is none.
func ClickHouseDatabase(t testing.TB) *ClickHouseDB {
	t.Helper()
	return ClickHouse(t).NewDatabase(t)
}

// clickHouseDatabaseName turns a test name into a unique, valid, unquoted
// ClickHouse identifier: test_<sanitized name>_<random hex>.
func clickHouseDatabaseName(testName string) string {
	var b strings.Builder
	b.WriteString("test_")
	lastUnderscore := true
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 90 {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			lastUnderscore = false
		} else if !lastUnderscore {
			b.WriteByte('_')
			lastUnderscore = true
		}
	}
	if !lastUnderscore {
		b.WriteByte('_')
	}
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		panic(fmt.Sprintf("testinfra: random database suffix: %v", err))
	}
	b.WriteString(hex.EncodeToString(suffix[:]))
	return b.String()
}

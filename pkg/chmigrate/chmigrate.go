// Package chmigrate applies versioned ClickHouse schema migrations: .sql
// files named NNNN_description.sql, read from an fs.FS (usually embedded
// with go:embed), applied in version order and recorded in a
// schema_migrations table with their checksum.
//
// ClickHouse has no transactional DDL, so a migration that fails half way
// leaves the statements before the failure applied and is not recorded.
// Applying it again must therefore be harmless: every statement in a
// migration file is written to be idempotent (CREATE ... IF NOT EXISTS,
// CREATE OR REPLACE VIEW, ADD COLUMN IF NOT EXISTS). With that rule, Apply
// may be run any number of times, from several processes at once.
//
// A migration that was applied and whose file has since changed is an
// error naming the file: history is never rewritten; write a new
// migration instead.
package chmigrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Table records the applied migrations, in the connection's database.
const Table = "schema_migrations"

// Migration is one .sql file.
type Migration struct {
	Version    int
	Name       string // file name, e.g. "0003_state.sql"
	Checksum   string // hex sha256 of the file's bytes
	Statements []string
}

// ErrChecksum is matched (errors.Is) by the error Apply returns when an
// applied migration's file no longer matches what was applied.
var ErrChecksum = errors.New("applied migration changed")

var fileName = regexp.MustCompile(`^([0-9]{4,})_([a-z0-9_]+)\.sql$`)

// Load reads every migration in dir of fsys. Files that do not end in .sql
// are ignored; a .sql file whose name is not NNNN_name.sql, two files with
// one version, or a file without statements is an error naming the file.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("chmigrate: read %s: %w", dir, err)
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("chmigrate: %s: file name must be NNNN_name.sql (lower case, digits, underscores)", e.Name())
		}
		v, err := strconv.Atoi(m[1])
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("chmigrate: %s: version must be a positive number", e.Name())
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("chmigrate: %s and %s have the same version %d", other, e.Name(), v)
		}
		seen[v] = e.Name()
		raw, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("chmigrate: read %s: %w", e.Name(), err)
		}
		stmts, err := Split(string(raw))
		if err != nil {
			return nil, fmt.Errorf("chmigrate: %s: %w", e.Name(), err)
		}
		if len(stmts) == 0 {
			return nil, fmt.Errorf("chmigrate: %s: no statements", e.Name())
		}
		sum := sha256.Sum256(raw)
		out = append(out, Migration{Version: v, Name: e.Name(), Checksum: hex.EncodeToString(sum[:]), Statements: stmts})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Result says what Apply did.
type Result struct {
	Applied []string // migrations applied by this call, in order
	Skipped []string // migrations that were already applied
	Unknown []string // versions recorded in the table that no file describes (a newer binary ran)
}

// Apply creates the migrations table if needed, then applies every
// migration not yet recorded, in order, each statement on conn (whose
// database is the one migrated), recording each migration once all its
// statements succeeded. log may be nil.
func Apply(ctx context.Context, conn driver.Conn, migrations []Migration, log *slog.Logger) (*Result, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+Table+` (
		version    UInt32,
		name       String,
		checksum   String,
		applied_at DateTime64(3, 'UTC')
	) ENGINE = ReplacingMergeTree(applied_at) ORDER BY version`); err != nil {
		return nil, fmt.Errorf("chmigrate: create %s: %w", Table, err)
	}
	applied, err := appliedMigrations(ctx, conn)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	known := map[int]bool{}
	for _, m := range migrations {
		known[m.Version] = true
	}
	for v, r := range applied {
		if !known[v] {
			res.Unknown = append(res.Unknown, r.name)
		}
	}
	sort.Strings(res.Unknown)
	if len(res.Unknown) > 0 {
		log.Warn("database has migrations this binary does not know; a newer version ran against it", "unknown", res.Unknown)
	}
	for _, m := range migrations {
		if r, ok := applied[m.Version]; ok {
			if r.checksum != m.Checksum {
				return res, fmt.Errorf("chmigrate: %s was applied as %s with checksum %s but the file now has %s: %w; add a new migration instead of editing an applied one",
					m.Name, r.name, short(r.checksum), short(m.Checksum), ErrChecksum)
			}
			res.Skipped = append(res.Skipped, m.Name)
			continue
		}
		begin := time.Now()
		for i, stmt := range m.Statements {
			if err := conn.Exec(ctx, stmt); err != nil {
				return res, fmt.Errorf("chmigrate: %s statement %d (%s): %w", m.Name, i+1, firstLine(stmt), err)
			}
		}
		if err := conn.Exec(ctx, `INSERT INTO `+Table+` (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)`,
			uint32(m.Version), m.Name, m.Checksum, time.Now().UTC()); err != nil {
			return res, fmt.Errorf("chmigrate: record %s: %w", m.Name, err)
		}
		log.Info("migration applied", "migration", m.Name, "statements", len(m.Statements), "elapsed", time.Since(begin).String())
		res.Applied = append(res.Applied, m.Name)
	}
	return res, nil
}

type appliedRow struct{ name, checksum string }

func appliedMigrations(ctx context.Context, conn driver.Conn) (map[int]appliedRow, error) {
	// Two processes migrating at once can each record a version; the
	// earliest record is the one that counts.
	rows, err := conn.Query(ctx, `SELECT version, argMin(name, applied_at), argMin(checksum, applied_at) FROM `+Table+` GROUP BY version`)
	if err != nil {
		return nil, fmt.Errorf("chmigrate: read %s: %w", Table, err)
	}
	defer rows.Close()
	out := map[int]appliedRow{}
	for rows.Next() {
		var (
			v          uint32
			name, csum string
		)
		if err := rows.Scan(&v, &name, &csum); err != nil {
			return nil, fmt.Errorf("chmigrate: read %s: %w", Table, err)
		}
		out[int(v)] = appliedRow{name: name, checksum: csum}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chmigrate: read %s: %w", Table, err)
	}
	return out, nil
}

// EnsureDatabase creates opts' database if it does not exist, over a
// short-lived connection to the user's default database (a connection
// naming a missing database is refused at the handshake).
func EnsureDatabase(ctx context.Context, opts *clickhouse.Options) error {
	db := opts.Auth.Database
	if db == "" {
		return errors.New("chmigrate: no database named in the ClickHouse options")
	}
	o := *opts
	o.Auth.Database = ""
	conn, err := clickhouse.Open(&o)
	if err != nil {
		return fmt.Errorf("chmigrate: connect: %w", err)
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+QuoteIdent(db)); err != nil {
		return fmt.Errorf("chmigrate: create database %s: %w", db, err)
	}
	return nil
}

// QuoteIdent quotes a ClickHouse identifier with backticks.
func QuoteIdent(s string) string {
	return "`" + strings.NewReplacer("\\", "\\\\", "`", "\\`").Replace(s) + "`"
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

func firstLine(stmt string) string {
	for _, l := range strings.Split(stmt, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "--") {
			if len(l) > 80 {
				l = l[:80] + "…"
			}
			return l
		}
	}
	return ""
}

// Package erasure removes a person's data from the ClickHouse database the
// sink writes, and records that it did: the right to erasure for
// notification recipients.
//
// An erasure is keyed by the recipient's number (E.164) and optionally
// scoped to one tenant. It finds the person's notifications (their ids and
// provider message ids) and then deletes, from every MergeTree table of
// the database, the rows that name the number or one of those ids:
//
//   - a recipient column equal to the number, or a key column (the Kafka
//     record key of ingest_errors);
//   - a notification_id or provider_message_id column naming one of the
//     person's notifications (status events without a recipient, the
//     provider id map);
//   - spans (a SpanAttributes map, the OpenTelemetry exporter's schema)
//     whose wanotify.notification_id or wanotify.provider_message_id
//     attribute names one of those notifications;
//   - a value or payload column whose text contains the number, with or
//     without its "+" and not inside a longer number (raw records kept
//     for inspection).
//
// The tables are found in system.tables and system.columns, not listed
// here, so a table added by a later migration is covered as long as it
// carries one of those columns. Views (communication_logs and the
// analytics views) read these tables and so no longer show the person.
// Deletes are mutations (ALTER TABLE ... DELETE) run with mutations_sync =
// 2: when Erase returns the rows are gone from every active part. Old
// parts linger on disk for ClickHouse's old_parts_lifetime (8 minutes by
// default) and in backups until those rotate.
//
// The erasure is recorded in the erasures table (migration 0015) with a
// salted, keyed hash of the number, who asked, why and how many rows each
// table lost: never the number in clear.
//
// What erasure cannot reach: Kafka. The topics keep records until their
// retention ends (topics.yaml; docs/security.md), and a record consumed
// again after an erasure (a DLQ replay, a new sink group) writes its rows
// again: erase again once the longest retention has passed.
package erasure

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/wanotify/wanotify/pkg/phone"
)

// Table is the audit table.
const Table = "erasures"

// ErrInvalid is matched by errors about the request (a number that is not
// E.164, a bad tenant).
var ErrInvalid = errors.New("erasure: invalid request")

// skipped are tables that hold no personal data by construction.
var skipped = map[string]bool{Table: true, "schema_migrations": true}

var (
	e164       = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	tenantName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
)

// Request is one erasure.
type Request struct {
	// Recipient is the person's number in E.164.
	Recipient string
	// Tenant limits the erasure to one tenant's rows; empty erases the
	// number across every tenant (an operator's erasure).
	Tenant string
	// Actor is who asked; Via how (notifyctl, api); Reason why (a ticket).
	Actor, Via, Reason string
	// DryRun counts what would be deleted and deletes and records
	// nothing.
	DryRun bool
}

// Result is what an erasure did (or, for a dry run, would do: RowsDeleted
// are the rows it would delete).
type Result struct {
	ErasureID     string            `json:"erasure_id,omitempty"`
	RecipientHash string            `json:"recipient_hash,omitempty"`
	DryRun        bool              `json:"dry_run,omitempty"`
	Tenant        string            `json:"tenant,omitempty"`
	Notifications int               `json:"notifications"`
	RowsDeleted   map[string]uint64 `json:"rows_deleted"`
	RequestedAt   time.Time         `json:"requested_at"`
	FinishedAt    time.Time         `json:"finished_at"`
}

// Eraser erases from one database.
type Eraser struct {
	conn driver.Conn
	db   string
	key  []byte
}

// New erases from database over conn; key is WANOTIFY_PRIVACY_HASH_KEY
// (may be empty), used for the audit's hash of the number.
func New(conn driver.Conn, database string, key []byte) *Eraser {
	return &Eraser{conn: conn, db: database, key: append([]byte(nil), key...)}
}

// FieldError is a bad field of a Request; it matches ErrInvalid.
type FieldError struct {
	Field  string // recipient, tenant, reason or actor
	Reason string
}

func (e *FieldError) Error() string { return "erasure: invalid request: " + e.Field + ": " + e.Reason }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Validate checks r and returns the number in E.164. The error joins a
// *FieldError per bad field.
func (r Request) Validate() (string, error) {
	var errs []error
	num := strings.TrimSpace(r.Recipient)
	if n, err := phone.Normalize(num); err == nil {
		num = n
	}
	if !e164.MatchString(num) {
		errs = append(errs, &FieldError{"recipient", phone.Mask(r.Recipient) + " is not an E.164 number (+ and 7 to 15 digits)"})
	}
	if r.Tenant != "" && !tenantName.MatchString(r.Tenant) {
		errs = append(errs, &FieldError{"tenant", fmt.Sprintf("%q is not a tenant name", r.Tenant)})
	}
	if len(r.Reason) > 1024 {
		errs = append(errs, &FieldError{"reason", "longer than 1024 bytes"})
	}
	if len(r.Actor) > 256 {
		errs = append(errs, &FieldError{"actor", "longer than 256 bytes"})
	}
	return num, errors.Join(errs...)
}

// HashRecipient is the audit's hash of num: hex HMAC-SHA256(key, salt ||
// num). Anyone holding the key (and the row's salt) can check whether a
// given number was erased; without it the number cannot be read back.
func HashRecipient(key, salt []byte, num string) string {
	m := hmac.New(sha256.New, key)
	m.Write(salt)
	m.Write([]byte(num))
	return hex.EncodeToString(m.Sum(nil))
}

// table is a table of the database and the columns an erasure looks at.
type table struct {
	name string
	cols map[string]bool
}

func (t table) has(c string) bool { return t.cols[c] }

// tables lists the MergeTree tables of the database with their String
// columns (the only ones that can hold a number or an id).
func (e *Eraser) tables(ctx context.Context) ([]table, error) {
	rows, err := e.conn.Query(ctx, `SELECT c.table, c.name FROM system.columns AS c
		INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table
		WHERE c.database = ? AND t.engine LIKE '%MergeTree' AND t.is_temporary = 0
		  AND (c.type LIKE '%String%')
		ORDER BY c.table, c.name`, e.db)
	if err != nil {
		return nil, fmt.Errorf("erasure: list tables: %w", err)
	}
	defer rows.Close()
	byName := map[string]*table{}
	var out []table
	for rows.Next() {
		var tn, cn string
		if err := rows.Scan(&tn, &cn); err != nil {
			return nil, fmt.Errorf("erasure: list tables: %w", err)
		}
		if skipped[tn] {
			continue
		}
		t, ok := byName[tn]
		if !ok {
			t = &table{name: tn, cols: map[string]bool{}}
			byName[tn] = t
		}
		t.cols[cn] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("erasure: list tables: %w", err)
	}
	for _, t := range byName {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func (e *Eraser) quote(name string) string {
	q := func(s string) string { return "`" + strings.NewReplacer("\\", "\\\\", "`", "\\`").Replace(s) + "`" }
	return q(e.db) + "." + q(name)
}

// idChunk bounds the ids one statement names (ClickHouse's max_query_size
// is 256 KiB; an id is at most 64 bytes).
const idChunk = 1000

// ids collects the person's notification ids and provider message ids
// from every table that has a recipient column.
func (e *Eraser) ids(ctx context.Context, ts []table, num, tenant string) (nids, pmids []string, err error) {
	nset, pset := map[string]bool{}, map[string]bool{}
	collect := func(q string, args []any, into map[string]bool) error {
		rows, err := e.conn.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return err
			}
			if s != "" {
				into[s] = true
			}
		}
		return rows.Err()
	}
	for _, t := range ts {
		if !t.has("recipient") {
			continue
		}
		where, args := "recipient = ?", []any{num}
		if tenant != "" && t.has("tenant") {
			where, args = where+" AND tenant = ?", append(args, tenant)
		}
		for _, c := range []struct {
			col  string
			into map[string]bool
		}{{"notification_id", nset}, {"provider_message_id", pset}} {
			if !t.has(c.col) {
				continue
			}
			q := fmt.Sprintf("SELECT DISTINCT toString(%s) FROM %s WHERE %s", c.col, e.quote(t.name), where)
			if err := collect(q, args, c.into); err != nil {
				return nil, nil, fmt.Errorf("erasure: find notifications in %s: %w", t.name, err)
			}
		}
	}
	// Provider ids mapped to the person's notifications, for webhook
	// events that named only the provider's id and no recipient.
	nlist := sortedKeys(nset)
	for _, t := range ts {
		if !t.has("notification_id") || !t.has("provider_message_id") || t.has("recipient") {
			continue
		}
		for lo := 0; lo < len(nlist); lo += idChunk {
			chunk := nlist[lo:min(lo+idChunk, len(nlist))]
			q := fmt.Sprintf("SELECT DISTINCT toString(provider_message_id) FROM %s WHERE has(?, notification_id)", e.quote(t.name))
			if err := collect(q, []any{chunk}, pset); err != nil {
				return nil, nil, fmt.Errorf("erasure: find provider ids in %s: %w", t.name, err)
			}
		}
	}
	return nlist, sortedKeys(pset), nil
}

// predicates returns the WHERE clauses (each with its arguments) that
// select the person's rows of t; several when the ids need chunks.
func predicates(t table, num, tenant string, nids, pmids []string) []clause {
	var byNumber []string
	var args []any
	if t.has("recipient") {
		byNumber, args = append(byNumber, "recipient = ?"), append(args, num)
	}
	if t.has("key") {
		byNumber, args = append(byNumber, "key = ?"), append(args, num)
	}
	for _, c := range []string{"value", "payload"} {
		if t.has(c) {
			byNumber = append(byNumber, fmt.Sprintf("match(%s, ?)", c))
			args = append(args, NumberPattern(num))
		}
	}
	numClause := clause{}
	if len(byNumber) > 0 {
		numClause = clause{where: "(" + strings.Join(byNumber, " OR ") + ")", args: args}
		if tenant != "" {
			switch {
			case t.has("tenant"):
				numClause.where += " AND tenant = ?"
				numClause.args = append(numClause.args, tenant)
			case t.has("value"):
				numClause.where += " AND JSONExtractString(value, 'tenant') = ?"
				numClause.args = append(numClause.args, tenant)
			default:
				// Rows of no known tenant are not a tenant's to erase.
				numClause = clause{}
			}
		}
	}
	var out []clause
	if numClause.where != "" {
		out = append(out, numClause)
	}
	if t.has("SpanAttributes") {
		// Spans in the OpenTelemetry exporter's schema (the local trace
		// store writes otel_traces into this database): numbers in them
		// are masked, but the ids name the person's notifications.
		for _, c := range []struct {
			attr string
			ids  []string
		}{{"wanotify.notification_id", nids}, {"wanotify.provider_message_id", pmids}} {
			for lo := 0; lo < len(c.ids); lo += idChunk {
				out = append(out, clause{where: fmt.Sprintf("has(?, SpanAttributes['%s'])", c.attr), args: []any{c.ids[lo:min(lo+idChunk, len(c.ids))]}})
			}
		}
	}
	for _, c := range []struct {
		col string
		ids []string
	}{{"notification_id", nids}, {"provider_message_id", pmids}} {
		if !t.has(c.col) {
			continue
		}
		for lo := 0; lo < len(c.ids); lo += idChunk {
			out = append(out, clause{where: fmt.Sprintf("has(?, toString(%s))", c.col), args: []any{c.ids[lo:min(lo+idChunk, len(c.ids))]}})
		}
	}
	return out
}

type clause struct {
	where string
	args  []any
}

// Erase removes the person's rows from every table and records the
// erasure. It returns what it removed; an error means the erasure is
// incomplete (nothing is recorded) and may be run again.
func (e *Eraser) Erase(ctx context.Context, r Request) (*Result, error) {
	num, err := r.Validate()
	if err != nil {
		return nil, err
	}
	res := &Result{Tenant: r.Tenant, RowsDeleted: map[string]uint64{}, RequestedAt: time.Now().UTC()}
	ts, err := e.tables(ctx)
	if err != nil {
		return nil, err
	}
	nids, pmids, err := e.ids(ctx, ts, num, r.Tenant)
	if err != nil {
		return nil, err
	}
	res.Notifications = len(nids)
	mctx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		// Wait until the mutation is done on every replica: when Erase
		// returns, the rows are gone.
		"mutations_sync": 2,
	}))
	for _, t := range ts {
		for _, c := range predicates(t, num, r.Tenant, nids, pmids) {
			var n uint64
			q := fmt.Sprintf("SELECT count() FROM %s WHERE %s", e.quote(t.name), c.where)
			if err := e.conn.QueryRow(ctx, q, c.args...).Scan(&n); err != nil {
				return nil, fmt.Errorf("erasure: count in %s: %w", t.name, err)
			}
			if n == 0 {
				continue
			}
			res.RowsDeleted[t.name] += n
			if r.DryRun {
				continue
			}
			if err := e.conn.Exec(mctx, fmt.Sprintf("ALTER TABLE %s DELETE WHERE %s", e.quote(t.name), c.where), c.args...); err != nil {
				return nil, fmt.Errorf("erasure: delete from %s: %w", t.name, err)
			}
		}
	}
	if r.DryRun {
		res.DryRun = true
		res.FinishedAt = time.Now().UTC()
		return res, nil
	}
	res.ErasureID = uuid.NewString()
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("erasure: salt: %w", err)
	}
	res.RecipientHash = HashRecipient(e.key, salt, num)
	res.FinishedAt = time.Now().UTC()
	b, err := e.conn.PrepareBatch(ctx, "INSERT INTO "+e.quote(Table)+
		" (erasure_id, requested_at, finished_at, actor, via, tenant, reason, recipient_hash, hash_salt, hash_keyed, notifications, rows_deleted)")
	if err != nil {
		return nil, fmt.Errorf("erasure: record: %w", err)
	}
	defer b.Close()
	if err := b.Append(res.ErasureID, res.RequestedAt, res.FinishedAt, r.Actor, r.Via, r.Tenant, r.Reason, res.RecipientHash,
		hex.EncodeToString(salt), len(e.key) > 0, uint64(res.Notifications), res.RowsDeleted); err != nil {
		return nil, fmt.Errorf("erasure: record: %w", err)
	}
	if err := b.Send(); err != nil {
		return nil, fmt.Errorf("erasure: record: %w", err)
	}
	return res, nil
}

// Audit is one row of the erasures table.
type Audit struct {
	ErasureID     string            `json:"erasure_id"`
	RequestedAt   time.Time         `json:"requested_at"`
	FinishedAt    time.Time         `json:"finished_at"`
	Actor         string            `json:"actor"`
	Via           string            `json:"via"`
	Tenant        string            `json:"tenant,omitempty"`
	Reason        string            `json:"reason,omitempty"`
	Notifications uint64            `json:"notifications"`
	RowsDeleted   map[string]uint64 `json:"rows_deleted"`
}

// Find returns the audit rows of erasures of num (newest first): the
// answer to "was this person's data erased, when, by whom".
func (e *Eraser) Find(ctx context.Context, recipient string) ([]Audit, error) {
	num, err := Request{Recipient: recipient}.Validate()
	if err != nil {
		return nil, err
	}
	rows, err := e.conn.Query(ctx, "SELECT erasure_id, requested_at, finished_at, actor, toString(via), toString(tenant), reason, notifications, rows_deleted, recipient_hash, hash_salt FROM "+
		e.quote(Table)+" ORDER BY requested_at DESC")
	if err != nil {
		return nil, fmt.Errorf("erasure: read audit: %w", err)
	}
	defer rows.Close()
	var out []Audit
	for rows.Next() {
		var a Audit
		var hash, salt string
		if err := rows.Scan(&a.ErasureID, &a.RequestedAt, &a.FinishedAt, &a.Actor, &a.Via, &a.Tenant, &a.Reason, &a.Notifications, &a.RowsDeleted, &hash, &salt); err != nil {
			return nil, fmt.Errorf("erasure: read audit: %w", err)
		}
		s, err := hex.DecodeString(salt)
		if err != nil {
			continue
		}
		if hmac.Equal([]byte(HashRecipient(e.key, s, num)), []byte(hash)) {
			out = append(out, a)
		}
	}
	return out, rows.Err()
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// NumberPattern is the RE2 pattern that finds num in free text: with or
// without its "+", and not as part of a longer run of digits (so erasing
// +447700900123 leaves +4477009001234 alone). num is E.164: only digits
// after the "+", nothing to escape.
func NumberPattern(num string) string {
	return `(^|[^0-9])\+?` + strings.TrimPrefix(num, "+") + `([^0-9]|$)`
}

package erasure_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wanotify/wanotify/pkg/erasure"
	"github.com/wanotify/wanotify/pkg/erasure/erasuretest"
	"github.com/wanotify/wanotify/pkg/testinfra"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("go.opentelemetry.io/otel/sdk/metric.(*PeriodicReader).run"))
}

var (
	target      = erasuretest.Person{Recipient: "+447700900123", Tenant: "acme", Tag: "t"}
	targetOther = erasuretest.Person{Recipient: "+447700900123", Tenant: "globex", Tag: "g"}
	// The bystander's number starts with the target's: an erasure must
	// not take it for the target's.
	bystander = erasuretest.Person{Recipient: "+4477009001234", Tenant: "acme", Tag: "b"}
)

// personalTables are the tables that hold rows naming a recipient's
// number once the sink wrote a person's traffic.
var personalTables = []string{"notification_events", "notification_state", "provider_message_state", "dead_letters", "ingest_errors"}

func fill(t *testing.T) *testinfra.ClickHouseDB {
	t.Helper()
	db := testinfra.ClickHouseDatabase(t)
	brokers := testinfra.KafkaWithTopics(t, 3)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	var recs = erasuretest.Records(t, target, at)
	recs = append(recs, erasuretest.Records(t, targetOther, at)...)
	recs = append(recs, erasuretest.Records(t, bystander, at)...)
	erasuretest.Fill(t, brokers, db, recs)
	return db
}

func nonZero(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range m {
		if v > 0 {
			out[k] = v
		}
	}
	return out
}

// TestEraseRemovesThePersonFromEveryTableAndView fills every table
// through the real sink with three people's traffic (the target in two
// tenants and a bystander), erases the target in one tenant, then across
// tenants, and checks every table and view of the database (listed from
// system.tables, so a table added later cannot be forgotten): no row
// mentions the number afterwards, the bystander's rows are untouched,
// and the audit records both erasures without the number.
func TestEraseRemovesThePersonFromEveryTableAndView(t *testing.T) {
	db := fill(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	before := erasuretest.Mentions(t, db, target.Recipient)
	for _, table := range append(personalTables, "communication_logs") {
		if before[table] == 0 {
			t.Fatalf("before erasure %s has no row of the target: the fixture does not cover it (mentions %v)", table, nonZero(before))
		}
	}
	t.Logf("before: %v", nonZero(before))
	bystanderBefore := erasuretest.Mentions(t, db, bystander.Recipient)
	var mapped uint64
	if err := db.Conn.QueryRow(ctx, `SELECT count() FROM provider_message_map WHERE notification_id IN
		(SELECT notification_id FROM notification_events WHERE recipient = ?)`, target.Recipient).Scan(&mapped); err != nil || mapped == 0 {
		t.Fatalf("provider_message_map has %d rows of the target (%v)", mapped, err)
	}
	targetIDs := ids(t, db, target.Recipient)
	bystanderIDs := ids(t, db, bystander.Recipient)
	// Spans as the local trace store writes them into the same database
	// (the OpenTelemetry exporter's schema): they name notifications.
	if err := db.Conn.Exec(ctx, `CREATE TABLE otel_traces (Timestamp DateTime64(9), TraceId String,
		SpanAttributes Map(LowCardinality(String), String)) ENGINE = MergeTree ORDER BY Timestamp`); err != nil {
		t.Fatal(err)
	}
	for _, id := range append(append([]string{}, targetIDs...), bystanderIDs...) {
		if err := db.Conn.Exec(ctx, "INSERT INTO otel_traces VALUES (now64(9), ?, map('wanotify.notification_id', ?, 'wanotify.recipient', '+447*******23'))", "trace-"+id, id); err != nil {
			t.Fatal(err)
		}
	}

	e := erasure.New(db.Conn, db.Name, []byte("audit-key"))

	// A tenant's erasure leaves the same number's rows of other tenants.
	res, err := e.Erase(ctx, erasure.Request{Recipient: target.Recipient, Tenant: "globex", Actor: "dpo", Via: "test", Reason: "DSR-1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Notifications != 2 {
		t.Errorf("globex erasure found %d notifications, want 2", res.Notifications)
	}
	if n := count(t, db, "SELECT count() FROM notification_events WHERE tenant = 'globex'"); n != 0 {
		t.Errorf("globex still has %d events", n)
	}
	if n := count(t, db, "SELECT count() FROM notification_events WHERE tenant = 'acme' AND recipient = ?", target.Recipient); n == 0 {
		t.Error("a globex erasure removed acme's rows of the same number")
	}

	// The operator's erasure removes the number everywhere.
	res, err = e.Erase(ctx, erasure.Request{Recipient: " " + target.Recipient, Actor: "operator", Via: "test", Reason: "DSR-2"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("erasure %s: %d notifications, rows %v, %s", res.ErasureID, res.Notifications, res.RowsDeleted, res.FinishedAt.Sub(res.RequestedAt))
	for _, table := range append(personalTables, "provider_message_map", "otel_traces") {
		if res.RowsDeleted[table] == 0 {
			t.Errorf("erasure reports no rows deleted from %s", table)
		}
	}
	after := erasuretest.Mentions(t, db, target.Recipient)
	if left := nonZero(after); len(left) > 0 {
		t.Errorf("rows still mention the erased number: %v", left)
	}
	if n := count(t, db, "SELECT count() FROM provider_message_map WHERE has(?, notification_id)", targetIDs); n != 0 {
		t.Errorf("provider_message_map keeps %d rows of the erased notifications", n)
	}
	for _, table := range []string{"notification_events", "notification_state", "dead_letters"} {
		if n := count(t, db, "SELECT count() FROM "+table+" WHERE has(?, notification_id)", targetIDs); n != 0 {
			t.Errorf("%s keeps %d rows of the erased notifications", table, n)
		}
	}
	if n := count(t, db, "SELECT count() FROM otel_traces WHERE has(?, SpanAttributes['wanotify.notification_id'])", targetIDs); n != 0 {
		t.Errorf("otel_traces keeps %d spans of the erased notifications", n)
	}
	if n := count(t, db, "SELECT count() FROM otel_traces WHERE has(?, SpanAttributes['wanotify.notification_id'])", bystanderIDs); n != uint64(len(bystanderIDs)) {
		t.Errorf("otel_traces keeps %d of the bystander's %d spans", n, len(bystanderIDs))
	}
	if got := nonZero(erasuretest.Mentions(t, db, bystander.Recipient)); fmt.Sprint(got) != fmt.Sprint(nonZero(bystanderBefore)) {
		t.Errorf("the bystander's rows changed:\n before %v\n after  %v", bystanderBefore, got)
	}

	// The audit: two rows, found by the number, holding no number.
	audits, err := e.Find(ctx, target.Recipient)
	if err != nil {
		t.Fatal(err)
	}
	if len(audits) != 2 || audits[0].Reason != "DSR-2" || audits[0].Actor != "operator" || audits[0].Tenant != "" ||
		audits[1].Tenant != "globex" || audits[0].RowsDeleted["notification_events"] == 0 {
		t.Errorf("audit rows %+v", audits)
	}
	if other, err := e.Find(ctx, bystander.Recipient); err != nil || len(other) != 0 {
		t.Errorf("audit of a number never erased: %v, %v", other, err)
	}
	if wrongKey, _ := erasure.New(db.Conn, db.Name, []byte("other-key")).Find(ctx, target.Recipient); len(wrongKey) != 0 {
		t.Error("the audit hash matches without the key")
	}
	if n := count(t, db, "SELECT count() FROM erasures WHERE recipient_hash != '' AND hash_keyed"); n != 2 {
		t.Errorf("erasures has %d keyed rows, want 2", n)
	}

	// Erasing again finds nothing and still records it.
	again, err := e.Erase(ctx, erasure.Request{Recipient: target.Recipient, Actor: "operator", Via: "test"})
	if err != nil || again.Notifications != 0 || len(again.RowsDeleted) != 0 {
		t.Errorf("second erasure: %+v, %v", again, err)
	}
}

func ids(t *testing.T, db *testinfra.ClickHouseDB, num string) []string {
	t.Helper()
	rows, err := db.Conn.Query(context.Background(), "SELECT DISTINCT notification_id FROM notification_events WHERE recipient = ? AND notification_id != ''", num)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		t.Fatal("no notifications of the number")
	}
	return out
}

func count(t *testing.T, db *testinfra.ClickHouseDB, q string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := db.Conn.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestEraseAPI drives the operator's HTTP API against the real database:
// no token 401, a bad number 400 naming /recipient (and nothing erased),
// a good request 200 with what was erased, lookup finds the audit.
func TestEraseAPI(t *testing.T) {
	db := fill(t)
	token := "s3cret-token"
	sum := sha256.Sum256([]byte(token))
	tokens, err := erasure.ParseTokens([]string{fmt.Sprintf("dpo-team:%x", sum)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(erasure.Handler(erasure.New(db.Conn, db.Name, nil), tokens, nil))
	defer srv.Close()
	post := func(path, tok, body string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		_ = json.Unmarshal(buf.Bytes(), &out)
		return resp.StatusCode, out
	}
	body := `{"recipient":"` + target.Recipient + `","reason":"DSR-9"}`
	if code, _ := post("/v1/erasures", "", body); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, _ := post("/v1/erasures", "wrong", body); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", code)
	}
	code, p := post("/v1/erasures", token, `{"recipient":"0770 0900123"}`)
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(p["errors"]), "/recipient") {
		t.Errorf("bad number: %d %v, want 400 naming /recipient", code, p)
	}
	if code, p := post("/v1/erasures", token, `{"recipient":"`+target.Recipient+`","tenant":"Not A Tenant"}`); code != http.StatusBadRequest ||
		!strings.Contains(fmt.Sprint(p["errors"]), "/tenant") {
		t.Errorf("bad tenant: %d %v, want 400 naming /tenant", code, p)
	}
	if code, p := post("/v1/erasures", token, `{"recipient":"12","tenant":"Bad"}`); code != http.StatusBadRequest ||
		!strings.Contains(fmt.Sprint(p["errors"]), "/tenant") || !strings.Contains(fmt.Sprint(p["errors"]), "/recipient") {
		t.Errorf("two bad fields: %d %v, want 400 naming both", code, p)
	}
	if code, _ := post("/v1/erasures", token, `{"recipient":"`+target.Recipient+`","extra":1}`); code != http.StatusBadRequest {
		t.Errorf("unknown field: %d, want 400", code)
	}
	if n := erasuretest.Mentions(t, db, target.Recipient)["notification_events"]; n == 0 {
		t.Fatal("a refused request erased rows")
	}
	code, res := post("/v1/erasures", token, body)
	if code != http.StatusOK || res["erasure_id"] == "" || res["notifications"] != float64(4) {
		t.Fatalf("erase: %d %v", code, res)
	}
	if left := nonZero(erasuretest.Mentions(t, db, target.Recipient)); len(left) > 0 {
		t.Errorf("rows still mention the number after the API's erasure: %v", left)
	}
	code, found := post("/v1/erasures/lookup", token, `{"recipient":"`+target.Recipient+`"}`)
	list, _ := found["erasures"].([]any)
	if code != http.StatusOK || len(list) != 1 || list[0].(map[string]any)["actor"] != "dpo-team" || list[0].(map[string]any)["via"] != "api" {
		t.Errorf("lookup: %d %v", code, found)
	}
	if _, err := erasure.ParseTokens([]string{"nohash", "x:abc"}); err == nil {
		t.Error("malformed tokens accepted")
	}
}

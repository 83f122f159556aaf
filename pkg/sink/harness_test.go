package sink

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/wanotify/wanotify/pkg/topics"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// OpenTelemetry's global instruments and clickhouse-go's shared
		// compression buffers live for the process.
		goleak.IgnoreAnyFunction("go.opentelemetry.io/otel/sdk/metric.(*PeriodicReader).run"),
	)
}

var sinkTopics = []string{topics.Requested, topics.Status, topics.DLQ}

// consumedTopics are every topic the sink reads: sinkTopics and the
// critical and bulk lanes.
var consumedTopics = append([]string{topics.Critical, topics.Bulk}, sinkTopics...)

// testWriter puts the logs of the code under test into the test's output,
// until stop.
type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() { w.mu.Lock(); w.done = true; w.mu.Unlock() }

// running is a sink started by startSink.
type running struct {
	*Sink
	stop func()
}

// startSink runs a sink until the test ends (or stop is called).
func startSink(t testing.TB, cfg Config, ch *clickhouse.Options, brokers []string) *running {
	t.Helper()
	s, lw := newTestSink(t, cfg, ch, brokers)
	_, stop := runUntilStopped(t, "sink Run", s.Run, lw.stop)
	return &running{Sink: s, stop: stop}
}

// newTestSink is New with the tests' Kafka options (quick metadata and
// heartbeats) and warnings logged into the test's log through the
// returned writer.
//
// The tests' traffic is dated on fixed days, most of them older than the
// default retention, so unless a test sets retention itself its rows are
// kept forever: a background TTL merge must not remove what a test is
// about to count (retention has its own tests, retention_test.go).
func newTestSink(t testing.TB, cfg Config, ch *clickhouse.Options, brokers []string) (*Sink, *testWriter) {
	t.Helper()
	if cfg.RetentionDays == 0 {
		cfg.RetentionDays = KeepForever
	}
	if cfg.ErrorRetentionDays == 0 {
		cfg.ErrorRetentionDays = KeepForever
	}
	lw := &testWriter{t: t}
	s, err := New(cfg, ch, []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.HeartbeatInterval(200 * time.Millisecond)},
		slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	return s, lw
}

// runUntilStopped runs run on a goroutine of its own until stop (also a
// cleanup of the test) or cancel ends its context. stop waits up to 60 s
// for run to return, reports its error, then calls after.
func runUntilStopped(t testing.TB, what string, run func(context.Context) error, after func()) (cancel context.CancelFunc, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s: %v", what, err)
				}
			case <-time.After(60 * time.Second):
				t.Errorf("%s did not return within 60s", what)
			}
			after()
		})
	}
	t.Cleanup(stop)
	return cancel, stop
}

// produce writes records in order and waits for every ack.
func produce(t testing.TB, cl *kgo.Client, rs []*kgo.Record) {
	t.Helper()
	if err := produceErr(cl, rs); err != nil {
		t.Fatal(err)
	}
}

func produceErr(cl *kgo.Client, rs []*kgo.Record) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for lo := 0; lo < len(rs); lo += 10000 {
		hi := min(lo+10000, len(rs))
		if err := cl.ProduceSync(ctx, rs[lo:hi]...).FirstErr(); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
	}
	return nil
}

// committedTotal is the sum of group's committed offsets on the sink's topics.
func committedTotal(ctx context.Context, adm *kadm.Client, group string) (int64, error) {
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, err
	}
	var n int64
	committed.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.At > 0 {
			n += o.At
		}
	})
	return n, nil
}

// committedLag is how many records of the sink's topics group has not
// committed yet.
func committedLag(ctx context.Context, adm *kadm.Client, group string) (int64, error) {
	ends, err := adm.ListEndOffsets(ctx, consumedTopics...)
	if err != nil {
		return 0, err
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, err
	}
	var lag int64
	var perr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			perr = o.Err
			return
		}
		c, ok := committed.Lookup(o.Topic, o.Partition)
		pos := int64(0)
		if ok {
			pos = c.At
		}
		lag += max(o.Offset-pos, 0)
	})
	return lag, perr
}

// waitConsumed waits until group has committed everything in the topics.
func waitConsumed(t testing.TB, adm *kadm.Client, group string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lag int64
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		lag, err = committedLag(ctx, adm, group)
		cancel()
		if err == nil && lag == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("group %s did not catch up within %s: lag %d, err %v", group, timeout, lag, err)
}

// logRow is a row of communication_logs as the tests compare it.
type logRow struct {
	Status, ErrorCode, ErrorMessage                           string
	CreatedAt, UpdatedAt                                      time.Time
	AcceptedAt, SentAt, DeliveredAt, ReadAt                   *time.Time
	FailedAt, DeadLetteredAt, ExpiredAt                       *time.Time
	Attempts, Retries, Duplicates, Events                     uint64
	ProviderMessageID, Tenant, EventType, Template, Recipient string
	Payload                                                   string
	Requested, Reattempted                                    bool
}

func queryLogs(t testing.TB, conn driver.Conn) map[string]logRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := conn.Query(ctx, `SELECT notification_id, status, error_code, error_message, created_at, updated_at,
		accepted_at, sent_at, delivered_at, read_at, failed_at, dead_lettered_at, expired_at,
		toUInt64(attempts), toUInt64(retries), toUInt64(duplicates), toUInt64(events),
		provider_message_id, tenant, event_type, template, toString(recipient), payload, requested, reattempted
		FROM communication_logs`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]logRow{}
	for rows.Next() {
		var id string
		var r logRow
		if err := rows.Scan(&id, &r.Status, &r.ErrorCode, &r.ErrorMessage, &r.CreatedAt, &r.UpdatedAt,
			&r.AcceptedAt, &r.SentAt, &r.DeliveredAt, &r.ReadAt, &r.FailedAt, &r.DeadLetteredAt, &r.ExpiredAt,
			&r.Attempts, &r.Retries, &r.Duplicates, &r.Events,
			&r.ProviderMessageID, &r.Tenant, &r.EventType, &r.Template, &r.Recipient, &r.Payload, &r.Requested, &r.Reattempted); err != nil {
			t.Fatal(err)
		}
		if _, dup := out[id]; dup {
			t.Errorf("communication_logs has notification %s twice", id)
		}
		out[id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (s modelState) row() logRow {
	return logRow{
		Status: s.status, ErrorCode: s.errorCode, ErrorMessage: s.errorMessage, CreatedAt: s.createdAt, UpdatedAt: s.updatedAt,
		AcceptedAt: s.acceptedAt, SentAt: s.sentAt, DeliveredAt: s.deliveredAt, ReadAt: s.readAt,
		FailedAt: s.failedAt, DeadLetteredAt: s.deadLetteredAt, ExpiredAt: s.expiredAt,
		Attempts: uint64(s.attempts), Retries: uint64(s.retries), Duplicates: uint64(s.duplicates), Events: uint64(s.events),
		ProviderMessageID: s.pmid, Tenant: s.tenant, EventType: s.eventType, Template: s.template, Recipient: s.recipient,
		Payload: s.payload, Requested: s.requested, Reattempted: s.reattempted,
	}
}

// compareLogs checks communication_logs against the model, notification
// by notification, and reports the first differences.
func compareLogs(t testing.TB, d *dataset, got map[string]logRow) {
	t.Helper()
	var problems []string
	for _, id := range sortedKeys(d.notifications) {
		want := d.notifications[id].final().row()
		g, ok := got[id]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: missing (want status %s)", id, want.Status))
			continue
		}
		if diff := diffRows(g, want); diff != "" {
			problems = append(problems, id+": "+diff)
		}
	}
	for id := range got {
		if _, ok := d.notifications[id]; !ok {
			problems = append(problems, id+": not a simulated notification")
		}
	}
	if len(problems) > 0 {
		n := min(len(problems), 15)
		t.Fatalf("communication_logs differs from the model for %d of %d notifications; first %d:\n%s",
			len(problems), len(d.notifications), n, strings.Join(problems[:n], "\n"))
	}
}

func diffRows(got, want logRow) string {
	var out []string
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := 0; i < gv.NumField(); i++ {
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		if !equalValue(g, w) {
			out = append(out, fmt.Sprintf("%s=%v want %v", gv.Type().Field(i).Name, show(g), show(w)))
		}
	}
	return strings.Join(out, ", ")
}

func equalValue(a, b any) bool {
	switch x := a.(type) {
	case time.Time:
		return x.Equal(b.(time.Time))
	case *time.Time:
		y := b.(*time.Time)
		return (x == nil) == (y == nil) && (x == nil || x.Equal(*y))
	}
	return reflect.DeepEqual(a, b)
}

func show(v any) any {
	switch x := v.(type) {
	case *time.Time:
		if x == nil {
			return "NULL"
		}
		return x.UTC().Format(time.RFC3339Nano)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case string:
		if len(x) > 60 {
			return fmt.Sprintf("%q…", x[:60])
		}
		return fmt.Sprintf("%q", x)
	}
	return v
}

// snapshotViews renders every analytics view in a stable order, so two
// snapshots are equal exactly when the numbers are.
func snapshotViews(t testing.TB, conn driver.Conn) map[string]string {
	t.Helper()
	views := map[string]string{
		"delivery_funnel_hourly": "hour, tenant, event_type, template",
		"failures_by_code":       "hour, tenant, event_type, template, status, error_code, error_retryable",
		"retry_errors_by_code":   "hour, tenant, event_type, error_code",
		"step_latency":           "hour, tenant, event_type, step",
		"retry_dlq_rates":        "hour, tenant, event_type, template",
		"dead_letters_hourly":    "hour, tenant, event_type, template, reason, error_class, error_code",
		"unmatched_webhooks":     "provider_message_id",
	}
	out := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for v, order := range views {
		rows, err := conn.Query(ctx, fmt.Sprintf("SELECT * FROM %s ORDER BY %s", v, order))
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		var sb strings.Builder
		n := 0
		for rows.Next() {
			vals := scanAny(t, rows)
			fmt.Fprintln(&sb, vals...)
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		rows.Close()
		if n == 0 && v != "unmatched_webhooks" {
			t.Errorf("view %s is empty", v)
		}
		out[v] = sb.String()
	}
	return out
}

func scanAny(t testing.TB, rows driver.Rows) []any {
	t.Helper()
	types := rows.ColumnTypes()
	ptrs := make([]any, len(types))
	for i, ct := range types {
		ptrs[i] = reflect.New(ct.ScanType()).Interface()
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	out := make([]any, len(ptrs))
	for i, p := range ptrs {
		v := reflect.ValueOf(p).Elem()
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				break
			}
			v = v.Elem()
		}
		if v.Kind() == reflect.Pointer {
			out[i] = "NULL"
			continue
		}
		out[i] = v.Interface()
	}
	return out
}

func queryUint(t testing.TB, conn driver.Conn, q string, args ...any) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var n uint64
	if err := conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func diffSnapshots(a, b map[string]string) string {
	var out []string
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if a[k] != b[k] {
			al, bl := strings.Split(a[k], "\n"), strings.Split(b[k], "\n")
			for i := 0; i < max(len(al), len(bl)); i++ {
				var x, y string
				if i < len(al) {
					x = al[i]
				}
				if i < len(bl) {
					y = bl[i]
				}
				if x != y {
					out = append(out, fmt.Sprintf("%s line %d:\n  before %s\n  after  %s", k, i+1, x, y))
					break
				}
			}
		}
	}
	return strings.Join(out, "\n")
}

package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/wanotify/wanotify/pkg/cli"
	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/sdk"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// result is one notifyctl run.
type result struct {
	code   int
	stdout string
	stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs notifyctl in-process with stdin.
func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.MainIO(args, strings.NewReader(stdin), &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// runJSON runs notifyctl with -o json, expects exit code want and decodes
// stdout into v.
func runJSON(t *testing.T, want int, v any, args ...string) result {
	t.Helper()
	r := run(t, "", append(args, "-o", "json")...)
	if r.code != want {
		t.Fatalf("notifyctl %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	if v != nil {
		// Decoding into a reused value would merge maps across runs.
		rv := reflect.ValueOf(v).Elem()
		rv.Set(reflect.Zero(rv.Type()))
		if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
			t.Fatalf("notifyctl %s: decode JSON: %v\n%s", strings.Join(args, " "), err, r)
		}
	}
	return r
}

// cluster starts kfake with every topic at 4 partitions and points
// notifyctl at it.
func cluster(t *testing.T) []string {
	t.Helper()
	brokers := testinfra.KafkaWithTopics(t, 4)
	t.Setenv("WANOTIFY_KAFKA_BROKERS", strings.Join(brokers, ","))
	return brokers
}

// note builds a valid notification the way ingest would.
func note(t *testing.T, tenant, eventType, recipient, key string) *contract.Notification {
	t.Helper()
	n, err := sdk.Build(tenant, &sdk.Request{IdempotencyKey: key, EventType: eventType, Recipient: recipient,
		Template: &contract.Template{Name: "otp_code", Language: "en_US", Parameters: []string{"123456"}}},
		sdk.BuildOptions{SourceService: "test", Sender: "acme-main"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// dead describes a DLQ record to write.
type dead struct {
	n         *contract.Notification // nil: poison
	raw       []byte                 // poison value
	key       string                 // poison key
	reason    string
	code      string
	retryable bool
	replays   int
	replayed  int64 // DLQ offset the previous replay came from; with replays > 0
	extra     []kgo.RecordHeader
}

// writeDLQ produces records to notifications.dlq as the dispatcher does:
// original value and key, failure context in headers. It returns them
// with their partitions and offsets.
func writeDLQ(t *testing.T, cl *kgo.Client, ds ...dead) []*kgo.Record {
	t.Helper()
	var recs []*kgo.Record
	for _, d := range ds {
		f := envelope.Failure{
			Attempt:       4,
			Origin:        envelope.Origin{Topic: topics.Requested, Partition: 0, Offset: 7},
			Error:         contract.ErrorInfo{Code: d.code, Message: "failure " + d.code, Retryable: d.retryable},
			Class:         envelope.ClassRetryable,
			FailedAt:      time.Now().UTC(),
			FirstFailedAt: time.Now().Add(-70 * time.Second).UTC(),
			DLQReason:     d.reason,
			ReplayCount:   d.replays,
			ReplayedFrom:  d.replayed,
		}
		if !d.retryable {
			f.Class = envelope.ClassPermanent
		}
		if d.replays == 0 {
			f.ReplayedFrom = -1
		}
		value, key := d.raw, []byte(d.key)
		if d.n != nil {
			b, err := d.n.Encode()
			if err != nil {
				t.Fatal(err)
			}
			value, key = b, d.n.Key()
			f.NotificationID, f.Tenant, f.EventType = d.n.ID, d.n.Tenant, d.n.EventType
		} else {
			f.Class = envelope.ClassPoison
		}
		hs, err := f.Headers()
		if err != nil {
			t.Fatal(err)
		}
		hs = append([]kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}}, hs...)
		hs = append(hs, d.extra...)
		recs = append(recs, &kgo.Record{Topic: topics.DLQ, Key: key, Value: value, Headers: hs})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return recs
}

// readAll returns every committed record of topic present now. Topics
// written in transactions hold markers too, so it reads until each
// partition's position reaches the end rather than counting records.
// readLanes reads every record of the lanes' topics (critical,
// requested, bulk), where sends, loads and replays go.
func readLanes(t *testing.T, brokers []string) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	for _, topic := range []string{topics.Critical, topics.Requested, topics.Bulk} {
		out = append(out, readAll(t, brokers, topic)...)
	}
	return out
}

func readAll(t *testing.T, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(testinfra.Client(t, brokers))
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	pending := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if s, _ := starts.Lookup(topic, o.Partition); o.Offset > s.Offset {
			pending[o.Partition] = o.Offset
		}
	})
	if len(pending) == 0 {
		return nil
	}
	cl := testinfra.Client(t, brokers, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	var out []*kgo.Record
	for len(pending) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %d partitions unfinished", topic, len(pending))
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := pending[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if r.Offset >= end-1 {
				delete(pending, r.Partition)
			}
		})
	}
	return out
}

func ref(r *kgo.Record) string { return fmt.Sprintf("%d/%d", r.Partition, r.Offset) }

func header(r *kgo.Record, key string) (string, bool) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return string(r.Headers[i].Value), true
		}
	}
	return "", false
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

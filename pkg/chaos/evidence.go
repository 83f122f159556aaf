package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/simulator"
	"github.com/wanotify/wanotify/pkg/topics"
)

// logRow is one notification of communication_logs.
type logRow struct {
	status            string
	providerMessageID string
	accepted, sent    bool // accepted_at / sent_at set
	outcomeUnknown    bool // outcome_unknown_at set
	errorCode         string
	duplicates        uint64
	requested         bool
}

// dlqRecord is one record of notifications.dlq, or one row of the
// dead_letters table.
type dlqRecord struct {
	reason         string
	notificationID string
	origin         origin
	err            error // failure headers that do not parse
}

// evidence is everything the checks look at.
type evidence struct {
	// accepted: what Kafka acknowledged, by notification id.
	accepted map[string]item
	// poison: the injected records and the notification id each carries
	// (empty for those without one).
	poison map[origin]string

	ledger simulator.Snapshot

	// requestedIDs counts the copies of each notification id on the
	// lanes' topics; requestedRecords is every record there.
	requestedIDs     map[string]int
	requestedRecords int
	dlq              []dlqRecord

	logs        map[string]logRow
	outcomes    map[string][]string // the dispatcher's terminal statuses per notification
	deadLetters []dlqRecord         // the dead_letters table

	// faulted is the sender whose account faulted ("" if none did); held
	// counts, per notification, the dispatcher's retry_scheduled events
	// onto notifications.held, and endedOnFault the terminal events
	// (failed, dead_lettered) that name an account fault.
	faulted      string
	held         map[string]int
	endedOnFault map[string]string
}

// fetchLedger reads the simulator's ledger, with every entry when
// entries is set.
func fetchLedger(ctx context.Context, simAddr string, entries bool) (simulator.Snapshot, error) {
	var s simulator.Snapshot
	url := "http://" + simAddr + "/admin/ledger"
	if entries {
		url += "?entries=1"
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return s, err
	}
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return s, fmt.Errorf("simulator ledger: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return s, fmt.Errorf("simulator ledger: %s %s", resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return s, fmt.Errorf("simulator ledger: %w", err)
	}
	return s, nil
}

// readTopic reads topic from the start to its last stable offset with
// read_committed, as every consumer of the pipeline does, calling each
// for every record. Control records (transaction markers) are fetched too,
// only to know exactly when the end is reached.
func readTopic(ctx context.Context, brokers string, topic string, each func(*kgo.Record)) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds(brokers)...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("start offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(o.Topic, o.Partition); !ok || s.Offset < o.Offset {
			want[o.Partition] = o.Offset
		}
	})
	seen := map[int32]int64{}
	done := func() bool {
		for p, end := range want {
			if seen[p] < end {
				return false
			}
		}
		return true
	}
	lastProgress := time.Now()
	for !done() {
		if time.Since(lastProgress) > time.Minute {
			return fmt.Errorf("reading %s: no progress for a minute (read %v of %v)", topic, seen, want)
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fs.EachRecord(func(r *kgo.Record) {
			lastProgress = time.Now()
			if r.Offset+1 > seen[r.Partition] {
				seen[r.Partition] = r.Offset + 1
			}
			if r.Attrs.IsControl() || r.Offset >= want[r.Partition] {
				return
			}
			each(r)
		})
	}
	return nil
}

// readKafka reads the lanes' topics (notifications.critical,
// notifications.requested, notifications.bulk: ingest writes each
// notification to its lane's) and notifications.dlq into ev.
func readKafka(ctx context.Context, brokers string, ev *evidence) error {
	ev.requestedIDs = map[string]int{}
	for _, topic := range []string{topics.Critical, topics.Requested, topics.Bulk} {
		err := readTopic(ctx, brokers, topic, func(r *kgo.Record) {
			ev.requestedRecords++
			if id := envelope.Get(r.Headers, envelope.HeaderNotificationID); id != "" {
				ev.requestedIDs[id]++
			}
		})
		if err != nil {
			return err
		}
	}
	return readTopic(ctx, brokers, topics.DLQ, func(r *kgo.Record) {
		f, err := envelope.Parse(r.Headers)
		if err != nil {
			ev.dlq = append(ev.dlq, dlqRecord{err: err, origin: origin{r.Topic, r.Partition, r.Offset}})
			return
		}
		ev.dlq = append(ev.dlq, dlqRecord{reason: f.DLQReason, notificationID: f.NotificationID,
			origin: origin{f.Origin.Topic, f.Origin.Partition, f.Origin.Offset}})
	})
}

func openClickHouse(addr string) (driver.Conn, error) {
	return clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: database, Username: "default"},
		DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Minute})
}

// terminalStatuses are the communication_logs statuses that end a
// notification's story (sent, delivered and read follow accepted).
var terminalStatuses = []string{"accepted", "sent", "delivered", "read", "failed", "dead_lettered", "duplicate", "outcome_unknown", "expired"}

// dispatcherOutcomes are the statuses by which the dispatcher settles a
// notification; each notification must get exactly one of them.
var dispatcherOutcomes = []string{"accepted", "failed", "dead_lettered", "expired", "outcome_unknown"}

// clickHouseProgress is the settle loop's view of ClickHouse.
type clickHouseProgress struct {
	rows, terminal, events uint64
}

func readProgress(ctx context.Context, conn driver.Conn) (clickHouseProgress, error) {
	var p clickHouseProgress
	err := conn.QueryRow(ctx, `SELECT count(), countIf(status IN ('accepted','sent','delivered','read','failed','dead_lettered','duplicate','outcome_unknown','expired')), sum(events) FROM communication_logs`).
		Scan(&p.rows, &p.terminal, &p.events)
	return p, err
}

// readClickHouse reads communication_logs, the dispatcher's outcomes per
// notification and dead_letters into ev.
func readClickHouse(ctx context.Context, conn driver.Conn, ev *evidence) error {
	ev.logs = map[string]logRow{}
	rows, err := conn.Query(ctx, `SELECT notification_id, status, provider_message_id,
		toUInt8(accepted_at IS NOT NULL), toUInt8(sent_at IS NOT NULL), toUInt8(outcome_unknown_at IS NOT NULL),
		toString(error_code), toUInt64(duplicates), toUInt8(requested) FROM communication_logs`)
	if err != nil {
		return fmt.Errorf("read communication_logs: %w", err)
	}
	for rows.Next() {
		var id string
		var r logRow
		var acc, sent, unk, req uint8
		if err := rows.Scan(&id, &r.status, &r.providerMessageID, &acc, &sent, &unk, &r.errorCode, &r.duplicates, &req); err != nil {
			rows.Close()
			return fmt.Errorf("read communication_logs: %w", err)
		}
		r.accepted, r.sent, r.outcomeUnknown, r.requested = acc == 1, sent == 1, unk == 1, req == 1
		ev.logs[id] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read communication_logs: %w", err)
	}

	ev.outcomes = map[string][]string{}
	rows, err = conn.Query(ctx, `SELECT notification_id, arraySort(groupUniqArray(toString(status))) FROM notification_events
		WHERE emitter = 'dispatcher' AND status IN ('accepted','failed','dead_lettered','expired','outcome_unknown')
		GROUP BY notification_id`)
	if err != nil {
		return fmt.Errorf("read notification_events: %w", err)
	}
	for rows.Next() {
		var id string
		var ss []string
		if err := rows.Scan(&id, &ss); err != nil {
			rows.Close()
			return fmt.Errorf("read notification_events: %w", err)
		}
		ev.outcomes[id] = ss
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read notification_events: %w", err)
	}

	ev.held, ev.endedOnFault = map[string]int{}, map[string]string{}
	rows, err = conn.Query(ctx, `SELECT notification_id,
		toUInt64(uniqExactIf(event_id, status = 'retry_scheduled' AND retry_tier = {held:String})),
		anyIf(toString(error_code), status IN ('failed','dead_lettered') AND error_code IN {codes:Array(String)})
		FROM notification_events WHERE emitter = 'dispatcher'
		GROUP BY notification_id
		HAVING uniqExactIf(event_id, status = 'retry_scheduled' AND retry_tier = {held:String}) > 0
		    OR countIf(status IN ('failed','dead_lettered') AND error_code IN {codes:Array(String)}) > 0`,
		clickhouse.Named("held", topics.Held), clickhouse.Named("codes", accountFaultCodes()))
	if err != nil {
		return fmt.Errorf("read notification_events: %w", err)
	}
	for rows.Next() {
		var id, code string
		var n uint64
		if err := rows.Scan(&id, &n, &code); err != nil {
			rows.Close()
			return fmt.Errorf("read notification_events: %w", err)
		}
		if n > 0 {
			ev.held[id] = int(n)
		}
		if code != "" {
			ev.endedOnFault[id] = code
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read notification_events: %w", err)
	}

	rows, err = conn.Query(ctx, `SELECT DISTINCT toString(reason), notification_id, toString(origin_topic), origin_partition, origin_offset FROM dead_letters`)
	if err != nil {
		return fmt.Errorf("read dead_letters: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d dlqRecord
		if err := rows.Scan(&d.reason, &d.notificationID, &d.origin.topic, &d.origin.partition, &d.origin.offset); err != nil {
			return fmt.Errorf("read dead_letters: %w", err)
		}
		ev.deadLetters = append(ev.deadLetters, d)
	}
	return rows.Err()
}

// accountFaultCodes are the error codes (as status events carry them,
// "meta_<code>") of every account fault in the provider's error table.
func accountFaultCodes() []string {
	var cs []string
	for _, r := range provider.Table() {
		if r.Class == provider.AccountFault {
			cs = append(cs, fmt.Sprintf("meta_%d", r.Code))
		}
	}
	return cs
}

package sink

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
)

// EventRow is one row of notification_events (see
// migrations/0001_notification_events.sql for the meaning of each column).
type EventRow struct {
	EventID           string
	NotificationID    string
	ProviderMessageID string
	Status            string
	StatusRank        uint8
	Tenant            string
	SourceService     string
	EventType         string
	Template          string
	TemplateLanguage  string
	Sender            string
	Lane              string // requested rows only (migration 0017)
	Recipient         string
	Provider          string
	Emitter           string
	Attempt           uint16
	RetryTier         string
	Route             string // primary or failover (migration 0016); empty: no send, or before routes
	DueAt             *time.Time
	ErrorCode         string
	ErrorMessage      string
	ErrorRetryable    bool
	IdempotencyKey    string
	ExpiresAt         *time.Time
	Payload           string
	OccurredAt        time.Time
	Source
}

// Source is where a row's record was read.
type Source struct {
	Topic     string
	Partition int32
	Offset    int64
}

// ErrorRow is one row of ingest_errors: a record the sink could not use.
type ErrorRow struct {
	Source
	RecordTime time.Time
	Key        string
	Reason     string
	Value      string
	ValueSize  uint32
}

// DeadLetterRow is one row of dead_letters: a record of the DLQ topic with
// its failure context.
type DeadLetterRow struct {
	Source
	RecordTime         time.Time
	NotificationID     string
	Tenant             string
	EventType          string
	Template           string
	Recipient          string
	Reason             string
	ErrorClass         string
	ErrorCode          string
	ErrorMessage       string
	ErrorRetryable     bool
	Attempt            uint16
	OriginTopic        string
	OriginPartition    int32
	OriginOffset       int64
	FailedAt           time.Time
	FirstFailedAt      *time.Time
	ReplayCount        uint32
	ReplayedFromOffset *int64
	Value              string
	ValueSize          uint32
	ValueValid         bool
	ValueError         string
}

// Batch is what one insert round writes: every record consumed since the
// last flush became exactly one row in one of the three tables.
type Batch struct {
	Events      []EventRow
	Errors      []ErrorRow
	DeadLetters []DeadLetterRow
	// Token identifies the batch's content (a hash of every record's
	// topic, partition, offset and value). Writing the same batch again
	// carries the same token, which ClickHouse uses to drop the repeat
	// (insert_deduplication_token).
	Token string

	records int
	last    map[topicPartition]*kgo.Record
	hash    hash.Hash
	scratch []byte // what track hashes besides the value
	// links connect the flush span to the traces of the records it
	// writes (bounded: a span keeps at most 128 links by default).
	links []trace.Link
}

const maxFlushLinks = 128

type topicPartition struct {
	topic     string
	partition int32
}

func newBatch() *Batch {
	return &Batch{last: map[topicPartition]*kgo.Record{}, hash: sha256.New()}
}

// Records is how many Kafka records the batch holds.
func (b *Batch) Records() int { return b.records }

// track records r for the commit and the token.
func (b *Batch) track(r *kgo.Record) {
	b.records++
	b.last[topicPartition{r.Topic, r.Partition}] = r
	if len(b.links) < maxFlushLinks && r.Context != nil {
		if sc := trace.SpanContextFromContext(r.Context); sc.IsValid() {
			b.links = append(b.links, trace.Link{SpanContext: sc})
		}
	}
	// The topic, then partition, offset and value length (20 bytes), then
	// the value.
	p := append(b.scratch[:0], r.Topic...)
	p = binary.BigEndian.AppendUint32(p, uint32(r.Partition))
	p = binary.BigEndian.AppendUint64(p, uint64(r.Offset))
	p = binary.BigEndian.AppendUint64(p, uint64(len(r.Value)))
	b.hash.Write(p)
	b.hash.Write(r.Value)
	b.scratch = p
}

// seal fixes the token once the batch is complete.
func (b *Batch) seal() {
	b.Token = hex.EncodeToString(b.hash.Sum(nil))
}

// lastRecords is the highest record per partition: what is committed.
func (b *Batch) lastRecords() []*kgo.Record {
	out := make([]*kgo.Record, 0, len(b.last))
	for _, r := range b.last {
		out = append(out, r)
	}
	return out
}

package pairrate

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// valueVersion is the first byte of every changelog value; a reader
// refuses versions it does not know rather than misread them.
const valueVersion = 1

// RecordKey is the changelog key of a pair: sender "|" recipient, so
// compaction keeps one record per pair. A recipient (E.164) holds no "|".
func RecordKey(p Pair) []byte { return []byte(p.Sender + "|" + p.Recipient) }

// EncodeValue is the changelog value of a next free time: the version
// byte and the time in Unix nanoseconds, big-endian.
func EncodeValue(next time.Time) []byte {
	b := make([]byte, 9)
	b[0] = valueVersion
	binary.BigEndian.PutUint64(b[1:], uint64(next.UnixNano()))
	return b
}

// Decode reads one changelog record.
func Decode(key, value []byte) (Pair, time.Time, error) {
	i := strings.LastIndexByte(string(key), '|')
	if i <= 0 || i == len(key)-1 {
		return Pair{}, time.Time{}, fmt.Errorf("pacing key %q: want sender|recipient", key)
	}
	p := Pair{Sender: string(key[:i]), Recipient: string(key[i+1:])}
	if len(value) != 9 || value[0] != valueVersion {
		return p, time.Time{}, fmt.Errorf("pacing value of %d bytes, version %v: want 9 bytes of version %d", len(value), firstByte(value), valueVersion)
	}
	return p, time.Unix(0, int64(binary.BigEndian.Uint64(value[1:]))), nil
}

func firstByte(b []byte) any {
	if len(b) == 0 {
		return "none"
	}
	return b[0]
}

// Changelog is the Journal on Kafka: each Note is produced without
// waiting (acks=all, idempotent) to the pacing topic, in the partition of
// the pair's notifications.requested record. Flush waits for what was
// produced, so a partition is given up only after its pacing is durable.
type Changelog struct {
	cl     *kgo.Client
	topic  string
	log    *slog.Logger
	failed atomic.Int64
	warned atomic.Bool
}

var _ Journal = (*Changelog)(nil)

// NewChangelog connects with opts (seed brokers, TLS, SASL; producer
// options are added) and writes to topic.
func NewChangelog(opts []kgo.Opt, topic string, log *slog.Logger) (*Changelog, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(recipientPartitioner{}),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond),
	)...)
	if err != nil {
		return nil, fmt.Errorf("pacing changelog client: %w", err)
	}
	return &Changelog{cl: cl, topic: topic, log: log}, nil
}

// Note produces the pair's next free time without blocking. A record
// that cannot be buffered or written is counted and dropped: pacing then
// rests on this instance's memory and, after a rebalance, on the
// provider's 131056 answers, which the gate learns from.
func (c *Changelog) Note(pair Pair, partition int32, next time.Time) {
	r := &kgo.Record{Topic: c.topic, Partition: partition, Key: RecordKey(pair), Value: EncodeValue(next)}
	c.cl.TryProduce(context.Background(), r, func(_ *kgo.Record, err error) {
		if err == nil {
			return
		}
		c.failed.Add(1)
		if c.warned.CompareAndSwap(false, true) {
			c.log.Warn("pacing changelog write failed (counted; later failures are not logged one by one)", "topic", c.topic, "err", err)
		}
	})
}

// Failed counts the notes that were not written.
func (c *Changelog) Failed() int64 { return c.failed.Load() }

// Flush waits until every note produced so far is written or failed.
func (c *Changelog) Flush(ctx context.Context) error {
	if err := c.cl.Flush(ctx); err != nil {
		return fmt.Errorf("pacing changelog flush: %w", err)
	}
	return nil
}

// Close flushes what is buffered (bounded by ctx) and closes the client.
func (c *Changelog) Close(ctx context.Context) {
	_ = c.cl.Flush(ctx)
	c.cl.Close()
}

// recipientPartitioner writes a record to the partition it names, or,
// given -1, to the partition its recipient's notifications.requested
// records have (Kafka's murmur2 of the recipient, as every producer of
// that topic keys it), so the pacing of a pair always lives in the
// partition number of its recipient's traffic.
type recipientPartitioner struct{}

func (recipientPartitioner) ForTopic(t string) kgo.TopicPartitioner {
	return topicPartitioner{byKey: kgo.StickyKeyPartitioner(nil).ForTopic(t)}
}

type topicPartitioner struct{ byKey kgo.TopicPartitioner }

func (topicPartitioner) RequiresConsistency(*kgo.Record) bool { return true }

func (tp topicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Partition >= 0 {
		return int(r.Partition)
	}
	k := r.Key
	if i := strings.LastIndexByte(string(k), '|'); i >= 0 {
		k = k[i+1:]
	}
	return tp.byKey.Partition(&kgo.Record{Key: k}, n)
}

// RestoreConfig says what to read.
type RestoreConfig struct {
	// Opts connect to the cluster; consumer options are added.
	Opts []kgo.Opt
	// Topic is the pacing changelog.
	Topic string
	// Now is the restore time (time.Now when zero): pairs already free
	// at Now are skipped.
	Now time.Time
}

// RestoreStats describes one restore.
type RestoreStats struct {
	Records int // records read
	Pairs   int // pairs not yet free, given to the gate
	Bad     int // records that could not be read (skipped)
}

// Restore reads the given partitions of the pacing changelog from their
// start to the end they had when it began, and gives the gate every
// pair not yet free. Call it for newly assigned partitions before their
// records are fetched; the previous owner flushed its notes before it
// gave them up (as with the dedupe changelog, whose Restore this
// mirrors).
func Restore(ctx context.Context, cfg RestoreConfig, partitions []int32, g *Gate) (RestoreStats, error) {
	var stats RestoreStats
	if len(partitions) == 0 || !g.cfg.Enabled() {
		return stats, nil
	}
	now := cfg.Now
	if now.IsZero() {
		now = time.Now()
	}
	adm, err := kgo.NewClient(cfg.Opts...)
	if err != nil {
		return stats, fmt.Errorf("pacing restore client: %w", err)
	}
	bounds, err := offsetBounds(ctx, adm, cfg.Topic)
	adm.Close()
	if err != nil {
		return stats, err
	}
	want := map[int32]int64{} // partition -> last offset to read
	consume := map[int32]kgo.Offset{}
	for _, p := range partitions {
		b, ok := bounds[p]
		if !ok {
			return stats, fmt.Errorf("pacing restore: %s partition %d does not exist", cfg.Topic, p)
		}
		// start == end: empty, or everything past retention.
		if b.end > b.start {
			want[p] = b.end - 1
			consume[p] = kgo.NewOffset().At(b.start)
		}
	}
	if len(want) == 0 {
		return stats, nil
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, cfg.Opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: consume}),
		kgo.FetchMaxWait(200*time.Millisecond))...)
	if err != nil {
		return stats, fmt.Errorf("pacing restore client: %w", err)
	}
	defer cl.Close()
	paced := map[Pair]struct{}{}
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return stats, fmt.Errorf("pacing restore of %s: %w", cfg.Topic, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("pacing restore: fetch %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return stats, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			last, reading := want[r.Partition]
			if !reading {
				return
			}
			// Compaction may have removed offsets, never the last one;
			// >= keeps a gap from stalling the read all the same.
			if r.Offset >= last {
				delete(want, r.Partition)
			}
			if r.Offset > last {
				return
			}
			stats.Records++
			pair, next, err := Decode(r.Key, r.Value)
			if err != nil {
				stats.Bad++
				return
			}
			if next.After(now) {
				g.Restore(pair, next)
				paced[pair] = struct{}{}
			}
		})
	}
	stats.Pairs = len(paced)
	return stats, nil
}

type bound struct{ start, end int64 }

func offsetBounds(ctx context.Context, cl *kgo.Client, topic string) (map[int32]bound, error) {
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("pacing restore: list start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("pacing restore: list end offsets of %s: %w", topic, err)
	}
	out := map[int32]bound{}
	ends.Each(func(o kadm.ListedOffset) {
		out[o.Partition] = bound{end: o.Offset}
	})
	starts.Each(func(o kadm.ListedOffset) {
		if b, ok := out[o.Partition]; ok {
			b.start = o.Offset
			out[o.Partition] = b
		}
	})
	return out, nil
}

package dlq

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/topics"
)

// Store reaches the DLQ and the topics around it. Create it with New and
// Close it when done.
type Store struct {
	conn []kgo.Opt
	cl   *kgo.Client // admin requests and replay produces
	adm  *kadm.Client

	// DLQ, Requested and Retry name the topics; New sets the defaults
	// from package topics.
	DLQ       string
	Requested string
	Retry     []string
	// Critical and Bulk are the other lanes' topics: a replay goes to
	// the topic of its notification's lane (Requested is the
	// transactional lane's, and takes what has no readable lane).
	Critical, Bulk string
}

// New connects with conn, the connection options (seed brokers, TLS,
// SASL; see kafkaconf.Config.Opts). Consumers are created per scan from
// the same options, so scans never join a group or commit offsets.
func New(conn []kgo.Opt) (*Store, error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), conn...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return &Store{conn: conn, cl: cl, adm: kadm.NewClient(cl),
		DLQ: topics.DLQ, Requested: topics.Requested, Retry: append([]string(nil), topics.RetryTiers...),
		Critical: topics.Critical, Bulk: topics.Bulk}, nil
}

// Close releases the connection.
func (s *Store) Close() { s.cl.Close() }

// span is a half-open offset range [start, end) of one partition.
type span struct{ start, end int64 }

// bounds returns, for every partition of topic, the range of offsets
// between the first record at or after from (the log start when zero) and
// the last stable offset, or the first record at or after to when set.
// The end is fixed when bounds is called: records appended later are not
// part of the snapshot.
func (s *Store) bounds(ctx context.Context, topic string, from, to time.Time) (map[int32]span, error) {
	starts, err := s.adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	if err := topicErr(starts, topic); err != nil {
		return nil, err
	}
	ends, err := s.adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	out := map[int32]span{}
	starts.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Partition >= 0 {
			out[o.Partition] = span{start: o.Offset}
		}
	})
	ends.Each(func(o kadm.ListedOffset) {
		if sp, ok := out[o.Partition]; ok && o.Err == nil {
			sp.end = o.Offset
			out[o.Partition] = sp
		}
	})
	if !from.IsZero() {
		after, err := s.adm.ListOffsetsAfterMilli(ctx, from.UnixMilli(), topic)
		if err != nil {
			return nil, fmt.Errorf("list offsets of %s after %s: %w", topic, from.Format(time.RFC3339), err)
		}
		after.Each(func(o kadm.ListedOffset) {
			if sp, ok := out[o.Partition]; ok && o.Err == nil && o.Offset > sp.start {
				sp.start = o.Offset
				out[o.Partition] = sp
			}
		})
	}
	if !to.IsZero() {
		before, err := s.adm.ListOffsetsAfterMilli(ctx, to.UnixMilli(), topic)
		if err != nil {
			return nil, fmt.Errorf("list offsets of %s after %s: %w", topic, to.Format(time.RFC3339), err)
		}
		before.Each(func(o kadm.ListedOffset) {
			if sp, ok := out[o.Partition]; ok && o.Err == nil && o.Offset >= 0 && o.Offset < sp.end {
				sp.end = o.Offset
				out[o.Partition] = sp
			}
		})
	}
	return out, nil
}

func topicErr(l kadm.ListedOffsets, topic string) error {
	ps, ok := l[topic]
	if !ok {
		return fmt.Errorf("topic %s: %w", topic, kerr.UnknownTopicOrPartition)
	}
	for _, o := range ps {
		if o.Err != nil && o.Partition < 0 {
			return fmt.Errorf("topic %s: %w", topic, o.Err)
		}
	}
	return nil
}

// scan reads every record of topic within spans and calls fn for each, in
// offset order per partition. It reads committed records only and never
// joins a group. It returns once every span was read to its end.
func (s *Store) scan(ctx context.Context, topic string, spans map[int32]span, fn func(*kgo.Record) error) error {
	pending := map[int32]span{}
	offsets := map[int32]kgo.Offset{}
	for p, sp := range spans {
		if sp.start < sp.end {
			pending[p] = sp
			offsets[p] = kgo.NewOffset().At(sp.start)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), s.conn...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers occupy offsets too: without them a span
		// ending in a commit marker would never look finished.
		kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		return fmt.Errorf("kafka consumer: %w", err)
	}
	defer cl.Close()
	for len(pending) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading %s: %w (%d partitions unfinished)", topic, err, len(pending))
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !kerr.IsRetriable(err) && !errors.Is(err, context.Canceled) && ferr == nil {
				ferr = fmt.Errorf("reading %s partition %d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		var cbErr error
		fs.EachRecord(func(r *kgo.Record) {
			if cbErr != nil {
				return
			}
			sp, ok := pending[r.Partition]
			if !ok {
				return
			}
			if r.Offset < sp.end && !r.Attrs.IsControl() {
				cbErr = fn(r)
			}
			if r.Offset >= sp.end-1 {
				delete(pending, r.Partition)
			}
		})
		if cbErr != nil {
			return cbErr
		}
	}
	return nil
}

// Filter selects DLQ records. Empty fields select everything; list fields
// match any of their values.
type Filter struct {
	// Since and Until bound the time the record landed on the DLQ:
	// [Since, Until).
	Since, Until    time.Time
	Tenants         []string
	EventTypes      []string
	ErrorCodes      []string
	Reasons         []string
	NotificationIDs []string
	Partitions      []int32
	// IDs selects records by notification id or partition/offset (see
	// ParseRef); a record matches when any of them names it.
	IDs []string
}

// Empty reports whether f selects every record.
func (f Filter) Empty() bool {
	return f.Since.IsZero() && f.Until.IsZero() && len(f.Tenants) == 0 && len(f.EventTypes) == 0 &&
		len(f.ErrorCodes) == 0 && len(f.Reasons) == 0 && len(f.NotificationIDs) == 0 &&
		len(f.Partitions) == 0 && len(f.IDs) == 0
}

// Validate reports ids that name another topic or impossible numbers.
func (f Filter) Validate() error {
	var errs []error
	for _, id := range f.IDs {
		if _, _, err := ParseRef(id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// refs splits IDs into partition/offset refs and notification ids.
func (f Filter) refs() (refs []Ref, ids []string) {
	for _, id := range f.IDs {
		if ref, ok, err := ParseRef(id); ok && err == nil {
			refs = append(refs, ref)
		} else if !ok {
			ids = append(ids, id)
		}
	}
	return refs, ids
}

// MatchesID reports whether id (a notification id or partition/offset)
// names r.
func (r *Record) MatchesID(id string) bool {
	if ref, ok, err := ParseRef(id); ok {
		return err == nil && ref == r.Ref
	}
	return id != "" && r.NotificationID() == id
}

// Match reports whether r passes f.
func (f Filter) Match(r *Record) bool {
	if !f.Since.IsZero() && r.Timestamp.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !r.Timestamp.Before(f.Until) {
		return false
	}
	if len(f.Partitions) > 0 && !contains(f.Partitions, r.Partition) {
		return false
	}
	if len(f.IDs) > 0 {
		hit := false
		for _, id := range f.IDs {
			if r.MatchesID(id) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	if len(f.Reasons) > 0 && !contains(f.Reasons, r.Reason()) {
		return false
	}
	if len(f.ErrorCodes) > 0 && !contains(f.ErrorCodes, r.ErrorCode()) {
		return false
	}
	if len(f.Tenants) > 0 && !contains(f.Tenants, r.Tenant()) {
		return false
	}
	if len(f.EventTypes) > 0 && !contains(f.EventTypes, r.EventType()) {
		return false
	}
	if len(f.NotificationIDs) > 0 && !contains(f.NotificationIDs, r.NotificationID()) {
		return false
	}
	return true
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// List reads the DLQ as it is now and returns the records f selects,
// oldest first (by the time they landed, then partition and offset).
func (s *Store) List(ctx context.Context, f Filter) ([]*Record, error) {
	spans, err := s.bounds(ctx, s.DLQ, f.Since, f.Until)
	if err != nil {
		return nil, err
	}
	narrow(spans, f)
	var out []*Record
	err = s.scan(ctx, s.DLQ, spans, func(kr *kgo.Record) error {
		r := NewRecord(kr)
		if f.Match(r) {
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortRecords(out)
	return out, nil
}

// narrow drops partitions and offsets the filter cannot select, so a
// lookup by partition/offset reads one record rather than the whole topic.
func narrow(spans map[int32]span, f Filter) {
	if len(f.Partitions) > 0 {
		for p := range spans {
			if !contains(f.Partitions, p) {
				delete(spans, p)
			}
		}
	}
	refs, ids := f.refs()
	if len(refs) > 0 && len(ids) == 0 {
		want := map[int32]span{}
		for _, r := range refs {
			w, ok := want[r.Partition]
			if !ok {
				w = span{start: r.Offset, end: r.Offset + 1}
			}
			w.start = min(w.start, r.Offset)
			w.end = max(w.end, r.Offset+1)
			want[r.Partition] = w
		}
		for p, sp := range spans {
			w, ok := want[p]
			if !ok {
				delete(spans, p)
				continue
			}
			spans[p] = span{start: max(sp.start, w.start), end: min(sp.end, w.end)}
		}
	}
}

func sortRecords(rs []*Record) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if !a.Timestamp.Equal(b.Timestamp) {
			return a.Timestamp.Before(b.Timestamp)
		}
		if a.Partition != b.Partition {
			return a.Partition < b.Partition
		}
		return a.Offset < b.Offset
	})
}

// Find returns the DLQ records id names: the one record at a
// partition/offset, or every record of a notification id, oldest first
// (a notification that was replayed and failed again has several). It
// returns an error wrapping ErrNotFound when there is none.
func (s *Store) Find(ctx context.Context, id string) ([]*Record, error) {
	f := Filter{IDs: []string{id}}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	recs, err := s.List(ctx, f)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: %s on %s", ErrNotFound, id, s.DLQ)
	}
	return recs, nil
}

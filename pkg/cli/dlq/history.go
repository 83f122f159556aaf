package dlq

import (
	"context"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/envelope"
)

// Mark is an earlier replay of a DLQ record, found on a lane's topic
// (notifications.requested, .critical or .bulk) by its
// wanotify-replayed-from-offset header.
type Mark struct {
	// Topic, Partition and Offset of the replayed record.
	Topic       string    `json:"topic"`
	Partition   int32     `json:"partition"`
	Offset      int64     `json:"offset"`
	Time        time.Time `json:"time"`
	ReplayCount int       `json:"replay_count"`
}

// replaySlack covers clocks that differ between the machine that wrote the
// DLQ record and the one that replayed it.
const replaySlack = 5 * time.Minute

// Replays finds the earlier replays of recs. Replays go to the DLQ
// record's partition number of its lane's topic, so only those partitions
// of the lanes' topics are read, each from the time the oldest of its
// records landed on the DLQ. Sorted by time per record.
func (s *Store) Replays(ctx context.Context, recs []*Record) (map[Ref][]Mark, error) {
	out := map[Ref][]Mark{}
	if len(recs) == 0 {
		return out, nil
	}
	oldest := map[int32]time.Time{}
	wanted := map[Ref]bool{}
	for _, r := range recs {
		wanted[r.Ref] = true
		if t, ok := oldest[r.Partition]; !ok || r.Timestamp.Before(t) {
			oldest[r.Partition] = r.Timestamp
		}
	}
	var from time.Time
	for _, t := range oldest {
		if from.IsZero() || t.Before(from) {
			from = t
		}
	}
	for _, topic := range s.laneTopics() {
		if err := s.replaysOn(ctx, topic, oldest, from, wanted, out); err != nil {
			return nil, err
		}
	}
	for _, ms := range out {
		sort.SliceStable(ms, func(i, j int) bool { return ms[i].Time.Before(ms[j].Time) })
	}
	return out, nil
}

// replaysOn adds to out the replays of wanted records found on topic.
func (s *Store) replaysOn(ctx context.Context, topic string, oldest map[int32]time.Time, from time.Time, wanted map[Ref]bool, out map[Ref][]Mark) error {
	spans, err := s.bounds(ctx, topic, time.Time{}, time.Time{})
	if err != nil {
		return err
	}
	// One offsets-by-time lookup serves every partition; it is refined per
	// partition below.
	for p := range spans {
		if _, ok := oldest[p]; !ok {
			delete(spans, p)
		}
	}
	if err := s.advanceTo(ctx, topic, spans, oldest, from); err != nil {
		return err
	}
	return s.scan(ctx, topic, spans, func(kr *kgo.Record) error {
		v := envelope.Get(kr.Headers, envelope.HeaderReplayedFromOffset)
		if v == "" {
			return nil
		}
		off, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil
		}
		ref := Ref{Partition: kr.Partition, Offset: off}
		if !wanted[ref] {
			return nil
		}
		n, _ := strconv.Atoi(envelope.Get(kr.Headers, envelope.HeaderReplayCount))
		out[ref] = append(out[ref], Mark{Topic: topic, Partition: kr.Partition, Offset: kr.Offset, Time: kr.Timestamp, ReplayCount: n})
		return nil
	})
}

// laneTopics are the topics replays go to, without repeats or blanks.
func (s *Store) laneTopics() []string {
	var out []string
	for _, t := range []string{s.Critical, s.Requested, s.Bulk} {
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// advanceTo moves each span's start to the first record at or after its
// partition's time in at (minus replaySlack).
func (s *Store) advanceTo(ctx context.Context, topic string, spans map[int32]span, at map[int32]time.Time, earliest time.Time) error {
	if len(spans) == 0 {
		return nil
	}
	// Offsets by time are listed per distinct time; DLQ scans usually
	// involve few distinct partitions, and the earliest time bounds the
	// cost when they are many.
	times := map[int64][]int32{}
	for p := range spans {
		t := at[p]
		if len(spans) > 4 {
			t = earliest
		}
		ms := t.Add(-replaySlack).UnixMilli()
		times[ms] = append(times[ms], p)
	}
	for ms, parts := range times {
		after, err := s.adm.ListOffsetsAfterMilli(ctx, ms, topic)
		if err != nil {
			return err
		}
		for _, p := range parts {
			if o, ok := after.Lookup(topic, p); ok && o.Err == nil {
				sp := spans[p]
				if o.Offset > sp.start {
					sp.start = o.Offset
					spans[p] = sp
				}
			}
		}
	}
	return nil
}

// Event is one step of a notification's failure history.
type Event struct {
	Time time.Time `json:"time"`
	// Kind is retry_scheduled (a record on a retry topic), dead_lettered
	// (a DLQ record) or replayed (a replay on notifications.requested).
	Kind         string `json:"kind"`
	Topic        string `json:"topic"`
	Partition    int32  `json:"partition"`
	Offset       int64  `json:"offset"`
	Attempt      int    `json:"attempt,omitempty"`
	ErrorCode    string `json:"error_code,omitempty"`
	ErrorMessage string `json:"error_message,omitempty"`
	Retryable    *bool  `json:"retryable,omitempty"`
	Class        string `json:"class,omitempty"`
	Reason       string `json:"reason,omitempty"`
	ReplayCount  int    `json:"replay_count,omitempty"`
}

// Event kinds.
const (
	KindRetryScheduled = "retry_scheduled"
	KindDeadLettered   = "dead_lettered"
	KindReplayed       = "replayed"
)

// History is the error history of the notification recs belong to (the
// records Find returned): every attempt that failed into a retry topic,
// every time it landed on the DLQ, and every replay, oldest first. Retry
// topics keep records for a day; older attempts are only in ClickHouse
// (notifyctl status).
func (s *Store) History(ctx context.Context, recs []*Record) ([]Event, error) {
	var evs []Event
	for _, r := range recs {
		evs = append(evs, failureEvent(KindDeadLettered, s.DLQ, r.Partition, r.Offset, r.Timestamp, r.Failure))
	}
	if len(recs) == 0 {
		return evs, nil
	}
	marks, err := s.Replays(ctx, recs)
	if err != nil {
		return nil, err
	}
	for ref, ms := range marks {
		for _, m := range ms {
			evs = append(evs, Event{Time: m.Time, Kind: KindReplayed, Topic: m.Topic, Partition: m.Partition,
				Offset: m.Offset, ReplayCount: m.ReplayCount, Reason: "replay of " + s.DLQ + " " + ref.String()})
		}
	}
	id := recs[len(recs)-1].NotificationID()
	if id != "" {
		// A notification's retries are keyed like its DLQ records, so they
		// sit in the same partition numbers.
		from := time.Time{}
		parts := map[int32]time.Time{}
		for _, r := range recs {
			t := r.Timestamp.Add(-time.Hour)
			if r.Failure != nil && !r.Failure.FirstFailedAt.IsZero() && r.Failure.FirstFailedAt.Before(t) {
				t = r.Failure.FirstFailedAt
			}
			if old, ok := parts[r.Partition]; !ok || t.Before(old) {
				parts[r.Partition] = t
			}
			if from.IsZero() || t.Before(from) {
				from = t
			}
		}
		for _, topic := range s.Retry {
			spans, err := s.bounds(ctx, topic, time.Time{}, time.Time{})
			if err != nil {
				return nil, err
			}
			for p := range spans {
				if _, ok := parts[p]; !ok {
					delete(spans, p)
				}
			}
			if err := s.advanceTo(ctx, topic, spans, parts, from); err != nil {
				return nil, err
			}
			err = s.scan(ctx, topic, spans, func(kr *kgo.Record) error {
				if envelope.Get(kr.Headers, envelope.HeaderNotificationID) != id {
					return nil
				}
				f, _ := envelope.Parse(kr.Headers)
				evs = append(evs, failureEvent(KindRetryScheduled, topic, kr.Partition, kr.Offset, kr.Timestamp, f))
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	return evs, nil
}

func failureEvent(kind, topic string, p int32, off int64, ts time.Time, f *envelope.Failure) Event {
	ev := Event{Time: ts, Kind: kind, Topic: topic, Partition: p, Offset: off}
	if f == nil {
		return ev
	}
	if !f.FailedAt.IsZero() {
		ev.Time = f.FailedAt
	}
	retryable := f.Error.Retryable
	ev.Attempt, ev.ErrorCode, ev.ErrorMessage, ev.Retryable = f.Attempt, f.Error.Code, f.Error.Message, &retryable
	ev.Class, ev.Reason, ev.ReplayCount = f.Class, f.DLQReason, f.ReplayCount
	return ev
}

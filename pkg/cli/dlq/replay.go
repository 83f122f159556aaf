package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/time/rate"

	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/lanes"
)

// Decision is what a replay does with one selected record.
type Decision string

// Decisions.
const (
	// Replay: the record is (or, in a dry run, would be) replayed.
	Replay Decision = "replay"
	// SkipReplayed: an earlier replay of this DLQ offset is on its lane's
	// topic; ReplayOptions.Again replays it anyway.
	SkipReplayed Decision = "already_replayed"
	// SkipSuperseded: a newer DLQ record of the same notification is in
	// the selection and is replayed instead.
	SkipSuperseded Decision = "superseded"
	// RefusePermanent: the last error was permanent; needs Force.
	RefusePermanent Decision = "refused_permanent"
	// RefusePoison: the value is not a valid notification, or the failure
	// headers are missing; needs Force.
	RefusePoison Decision = "refused_poison"
	// RefuseNoPartition: the lane's topic has no partition with this
	// record's number, so co-partitioning cannot be kept.
	RefuseNoPartition Decision = "refused_no_partition"
)

// Refused reports whether d is a refusal (as opposed to a skip or a
// replay).
func (d Decision) Refused() bool {
	return d == RefusePermanent || d == RefusePoison || d == RefuseNoPartition
}

// ReplayOptions change what a replay refuses and skips.
type ReplayOptions struct {
	// Force replays records whose last error was permanent, and poison
	// records.
	Force bool
	// Again replays records an earlier replay already covered.
	Again bool
}

// Item is one selected record and what happens to it.
type Item struct {
	Record   *Record
	Decision Decision
	// Why explains a skip or refusal in words an operator can act on.
	Why string
	// ReplayCount is the wanotify-replay-count the replay carries.
	ReplayCount int
	// Earlier lists previous replays of this DLQ offset.
	Earlier []Mark
	// Replayed is where the replay landed (after Replay).
	Replayed *Mark
	// Err is why producing the replay failed (after Replay).
	Err error
}

// Plan is a decided replay: every selected record with its decision.
type Plan struct {
	Items []*Item
	opts  ReplayOptions
}

// Count returns how many items have decision d.
func (p *Plan) Count(d Decision) int {
	n := 0
	for _, it := range p.Items {
		if it.Decision == d {
			n++
		}
	}
	return n
}

// PlanReplay decides, for each of recs (oldest first, as List returns
// them), whether it is replayed, skipped or refused. Nothing is written.
func (s *Store) PlanReplay(ctx context.Context, recs []*Record, o ReplayOptions) (*Plan, error) {
	marks, err := s.Replays(ctx, recs)
	if err != nil {
		return nil, err
	}
	parts := map[string]int32{}
	for _, topic := range s.laneTopics() {
		n, err := s.partitions(ctx, topic)
		if err != nil {
			return nil, err
		}
		parts[topic] = n
	}
	newest := map[string]*Record{}
	for _, r := range recs {
		id := r.NotificationID()
		if id == "" {
			continue
		}
		if cur, ok := newest[id]; !ok || r.Timestamp.After(cur.Timestamp) ||
			(r.Timestamp.Equal(cur.Timestamp) && r.Offset > cur.Offset) {
			newest[id] = r
		}
	}
	plan := &Plan{opts: o}
	for _, r := range recs {
		it := &Item{Record: r, Decision: Replay, Earlier: marks[r.Ref]}
		prev := r.ReplayCount()
		for _, m := range it.Earlier {
			prev = max(prev, m.ReplayCount)
		}
		it.ReplayCount = prev + 1
		id := r.NotificationID()
		switch {
		case id != "" && newest[id] != r:
			it.Decision, it.Why = SkipSuperseded, "a newer DLQ record of this notification ("+newest[id].Ref.String()+") is selected"
		case len(it.Earlier) > 0 && !o.Again:
			last := it.Earlier[len(it.Earlier)-1]
			it.Decision = SkipReplayed
			it.Why = fmt.Sprintf("already replayed to %s %d/%d at %s; --again replays it once more",
				last.Topic, last.Partition, last.Offset, last.Time.UTC().Format("2006-01-02T15:04:05Z"))
		case r.Partition >= parts[s.ReplayTopic(r)]:
			it.Decision = RefuseNoPartition
			it.Why = fmt.Sprintf("%s has %d partitions; partition %d does not exist there", s.ReplayTopic(r), parts[s.ReplayTopic(r)], r.Partition)
		case r.Failure == nil && !o.Force:
			it.Decision = RefusePoison
			it.Why = fmt.Sprintf("failure headers unreadable (%v); --force replays it anyway", r.FailureErr)
		case r.Poison() && !o.Force:
			it.Decision = RefusePoison
			_, derr := r.Notification()
			it.Why = fmt.Sprintf("poison record: the value is not a valid notification (%s), so the dispatcher would dead-letter it again; --force replays it anyway", short(derr))
		case r.Permanent() && !o.Force:
			it.Decision = RefusePermanent
			it.Why = fmt.Sprintf("last error %s was permanent (%s); fix its cause, then replay with --force", r.ErrorCode(), short(errors.New(r.Failure.Error.Message)))
		}
		plan.Items = append(plan.Items, it)
	}
	return plan, nil
}

func short(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

func (s *Store) partitions(ctx context.Context, topic string) (int32, error) {
	td, err := s.adm.ListTopics(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("describe %s: %w", topic, err)
	}
	d, ok := td[topic]
	if !ok || d.Err != nil {
		return 0, fmt.Errorf("describe %s: %w", topic, d.Err)
	}
	return int32(len(d.Partitions)), nil
}

// ReplayTopic is where a replay of r goes: the topic of its
// notification's lane (its lane field, else the lane its event type
// derives, as ingest and the SDK route), so a replayed OTP is served in
// the critical lane again and a replayed campaign cannot queue in front of
// one. A value that is no notification goes to Requested, the
// transactional lane's topic, as before lanes.
func (s *Store) ReplayTopic(r *Record) string {
	n, err := r.Notification()
	if err != nil {
		return s.Requested
	}
	l := lanes.Lane(n.Lane)
	if n.Lane == "" {
		l = lanes.Derive(n.EventType)
	}
	switch {
	case l == lanes.Critical && s.Critical != "":
		return s.Critical
	case l == lanes.Bulk && s.Bulk != "":
		return s.Bulk
	}
	return s.Requested
}

// ReplayRecord renders the record a replay of r produces (see the package
// documentation for the contract).
func ReplayRecord(r *Record, topic string, replayCount int) *kgo.Record {
	hs := envelope.Strip(r.Headers)
	hs = append(hs,
		kgo.RecordHeader{Key: envelope.HeaderReplayCount, Value: []byte(strconv.Itoa(replayCount))},
		kgo.RecordHeader{Key: envelope.HeaderReplayedFromOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
	)
	if id := r.NotificationID(); id != "" {
		hs = append(hs, kgo.RecordHeader{Key: envelope.HeaderNotificationID, Value: []byte(id)})
	}
	if t := r.Tenant(); t != "" {
		hs = append(hs, kgo.RecordHeader{Key: envelope.HeaderTenant, Value: []byte(t)})
	}
	return &kgo.Record{Topic: topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: hs}
}

// Replay produces every item of plan whose decision is Replay, paced by
// limiter (nil: unpaced), and waits until each is acknowledged by every
// in-sync replica. progress, when set, is called after each produce
// completes. It returns the number that failed; each failed item's Err
// says why. A cancelled ctx stops the replay between records.
func (s *Store) Replay(ctx context.Context, plan *Plan, limiter *rate.Limiter, progress func(*Item)) (failed int, err error) {
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	done := func(it *Item) {
		mu.Lock()
		defer mu.Unlock()
		if it.Err != nil {
			failed++
		}
		if progress != nil {
			progress(it)
		}
	}
	for _, it := range plan.Items {
		if it.Decision != Replay {
			continue
		}
		if limiter != nil {
			if err = limiter.Wait(ctx); err != nil {
				break
			}
		} else if err = ctx.Err(); err != nil {
			break
		}
		rec := ReplayRecord(it.Record, s.ReplayTopic(it.Record), it.ReplayCount)
		wg.Add(1)
		s.cl.Produce(ctx, rec, func(r *kgo.Record, perr error) {
			defer wg.Done()
			if perr != nil {
				it.Err = fmt.Errorf("produce replay of %s: %w", it.Record.Ref, perr)
			} else {
				it.Replayed = &Mark{Partition: r.Partition, Offset: r.Offset, Time: r.Timestamp, ReplayCount: it.ReplayCount}
			}
			done(it)
		})
	}
	wg.Wait()
	if err != nil {
		// Items never produced keep Decision Replay without a Replayed
		// mark; callers report them as not done.
		return failed, fmt.Errorf("replay interrupted: %w", err)
	}
	return failed, nil
}

package dlq

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// PurgeOptions choose what a purge deletes.
type PurgeOptions struct {
	// Before deletes, per partition, the records before the first record
	// that landed at or after this time. Zero: every record present when
	// the plan is made.
	Before time.Time
	// Partitions limits the purge to these partitions (all when empty).
	Partitions []int32
}

// PurgePartition is what a purge does to one partition: the offsets in
// [From, To) are deleted. Records counts the records among them; the rest
// are transaction markers, which occupy offsets too.
type PurgePartition struct {
	Partition int32 `json:"partition"`
	From      int64 `json:"from_offset"`
	To        int64 `json:"to_offset"`
	Records   int64 `json:"records"`
}

// PurgePlan is a decided purge. Its offsets are fixed when it is made, so
// records that land on the DLQ between planning and purging survive.
type PurgePlan struct {
	Topic      string           `json:"topic"`
	Before     *time.Time       `json:"before,omitempty"`
	Partitions []PurgePartition `json:"partitions"`
	Records    int64            `json:"records"`
}

// PlanPurge works out which records a purge would delete. Nothing is
// deleted.
func (s *Store) PlanPurge(ctx context.Context, o PurgeOptions) (*PurgePlan, error) {
	spans, err := s.bounds(ctx, s.DLQ, time.Time{}, o.Before)
	if err != nil {
		return nil, err
	}
	// bounds ends at the last stable offset; a purge of everything goes to
	// the high watermark so it does not leave committed-but-unstable gaps.
	if o.Before.IsZero() {
		ends, err := s.adm.ListEndOffsets(ctx, s.DLQ)
		if err != nil {
			return nil, fmt.Errorf("list end offsets of %s: %w", s.DLQ, err)
		}
		ends.Each(func(lo kadm.ListedOffset) {
			if sp, ok := spans[lo.Partition]; ok && lo.Err == nil && lo.Offset > sp.end {
				sp.end = lo.Offset
				spans[lo.Partition] = sp
			}
		})
	}
	plan := &PurgePlan{Topic: s.DLQ}
	if !o.Before.IsZero() {
		b := o.Before.UTC()
		plan.Before = &b
	}
	counted := map[int32]span{}
	for p, sp := range spans {
		if len(o.Partitions) > 0 && !contains(o.Partitions, p) {
			delete(spans, p)
			continue
		}
		if sp.end <= sp.start {
			delete(spans, p)
			continue
		}
		counted[p] = sp
	}
	// Offsets are not records: count the records the purge would delete
	// (committed ones; records of a transaction still open are not
	// readable yet, and are deleted uncounted).
	lso, err := s.bounds(ctx, s.DLQ, time.Time{}, time.Time{})
	if err != nil {
		return nil, err
	}
	for p, sp := range counted {
		sp.end = min(sp.end, lso[p].end)
		counted[p] = sp
	}
	records := map[int32]int64{}
	if err := s.scan(ctx, s.DLQ, counted, func(r *kgo.Record) error { records[r.Partition]++; return nil }); err != nil {
		return nil, err
	}
	for p, sp := range spans {
		plan.Partitions = append(plan.Partitions, PurgePartition{Partition: p, From: sp.start, To: sp.end, Records: records[p]})
		plan.Records += records[p]
	}
	sort.Slice(plan.Partitions, func(i, j int) bool { return plan.Partitions[i].Partition < plan.Partitions[j].Partition })
	return plan, nil
}

// Purge deletes what plan names: every partition's log start moves to
// its To offset.
func (s *Store) Purge(ctx context.Context, plan *PurgePlan) error {
	if len(plan.Partitions) == 0 {
		return nil
	}
	offs := kadm.Offsets{}
	for _, pp := range plan.Partitions {
		offs.Add(kadm.Offset{Topic: plan.Topic, Partition: pp.Partition, At: pp.To})
	}
	resp, err := s.adm.DeleteRecords(ctx, offs)
	if err != nil {
		return fmt.Errorf("delete records of %s: %w", plan.Topic, err)
	}
	var errs []error
	resp.Each(func(r kadm.DeleteRecordsResponse) {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("partition %d: %w", r.Partition, r.Err))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete records of %s: %w", plan.Topic, err)
	}
	return nil
}

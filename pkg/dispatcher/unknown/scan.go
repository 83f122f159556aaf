package unknown

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
)

// StatusScan is the Finder over notifications.status. Status events are
// keyed by recipient like the notification, so the webhook statuses of a
// notification sit in the partition number of its own record (the
// pipeline's co-partitioning rule).
//
// It reads uncommitted and keeps control records: webhook statuses are
// written outside any transaction, and seeing every offset (markers of
// the dispatcher's transactions included) is what lets a scan know it has
// reached the end it set out to read, however the partition's last
// transaction ended.
type StatusScan struct {
	// Opts connect to the cluster (seed brokers, TLS, SASL). Consumer
	// options are added by Find.
	Opts []kgo.Opt
	// Topic is notifications.status.
	Topic string
	// Margin is read before since, for clocks that disagree (the
	// webhook receiver's record timestamps against the dispatcher's
	// marker time). Default 30 s.
	Margin time.Duration
}

var _ Finder = (*StatusScan)(nil)

// Find implements Finder.
func (s *StatusScan) Find(ctx context.Context, partition int32, since time.Time, notificationID string) (Evidence, bool, error) {
	if notificationID == "" {
		return Evidence{}, false, errors.New("status scan: empty notification id")
	}
	margin := s.Margin
	if margin == 0 {
		margin = 30 * time.Second
	}
	from := since.Add(-margin)

	adm, err := kgo.NewClient(s.Opts...)
	if err != nil {
		return Evidence{}, false, fmt.Errorf("status scan client: %w", err)
	}
	ac := kadm.NewClient(adm)
	ends, err := ac.ListEndOffsets(ctx, s.Topic)
	if err == nil {
		err = ends.Error()
	}
	var starts kadm.ListedOffsets
	if err == nil {
		starts, err = ac.ListOffsetsAfterMilli(ctx, from.UnixMilli(), s.Topic)
		if err == nil {
			err = starts.Error()
		}
	}
	adm.Close()
	if err != nil {
		return Evidence{}, false, fmt.Errorf("status scan: list offsets of %s: %w", s.Topic, err)
	}
	end, ok := ends.Lookup(s.Topic, partition)
	if !ok {
		return Evidence{}, false, fmt.Errorf("status scan: %s partition %d does not exist", s.Topic, partition)
	}
	start, ok := starts.Lookup(s.Topic, partition)
	if !ok {
		return Evidence{}, false, fmt.Errorf("status scan: no start offset for %s partition %d", s.Topic, partition)
	}
	// After-milli past the last record answers the end offset (or -1 on
	// some brokers): nothing to read.
	if start.Offset < 0 || start.Offset >= end.Offset {
		return Evidence{}, false, nil
	}
	last := end.Offset - 1

	cl, err := kgo.NewClient(append(slices.Clone(s.Opts),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.Topic: {partition: kgo.NewOffset().At(start.Offset)}}),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return Evidence{}, false, fmt.Errorf("status scan client: %w", err)
	}
	defer cl.Close()
	needle := []byte(notificationID)
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return Evidence{}, false, fmt.Errorf("status scan of %s/%d stopped at the deadline: %w", s.Topic, partition, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if ferr == nil {
				ferr = err
			}
		})
		if ferr != nil {
			return Evidence{}, false, fmt.Errorf("status scan of %s/%d: %w", s.Topic, partition, ferr)
		}
		var (
			ev    Evidence
			found bool
			done  bool
		)
		fs.EachRecord(func(r *kgo.Record) {
			if found || done {
				return
			}
			if r.Offset >= last {
				done = true
			}
			if r.Offset > last || r.Attrs.IsControl() || !bytes.Contains(r.Value, needle) {
				return
			}
			se, err := contract.DecodeStatusEvent(r.Value)
			if err != nil || se.Emitter != contract.EmitterWebhook || se.NotificationID != notificationID {
				return
			}
			ev, found = Evidence{Status: se.Status, ProviderMessageID: se.ProviderMessageID, OccurredAt: se.OccurredAt}, true
		})
		if found {
			return ev, true, nil
		}
		if done {
			return Evidence{}, false, nil
		}
	}
}

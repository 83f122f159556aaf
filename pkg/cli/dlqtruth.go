package cli

import (
	"fmt"

	"github.com/wanotify/wanotify/pkg/cli/dlq"
)

// withReplayTruth fills what a record's own headers cannot tell: whether
// it was replayed since it landed on the DLQ. A DLQ record is never
// rewritten, so its wanotify-replay-count stays what it was when it
// landed; replays are found on notifications.requested instead (the same
// scan `dlq replay` uses to skip them), and the view then shows how many
// replays the lineage has been through, where they went, and what
// `dlq replay` would do with the record now.
func withReplayTruth(v *recordView, it *dlq.Item) {
	v.Replays = it.Earlier
	for _, m := range it.Earlier {
		v.ReplayCount = max(v.ReplayCount, m.ReplayCount)
	}
	lookedUp := true
	v.ReplayLookup = &lookedUp
	switch it.Decision {
	case dlq.Replay:
		v.Replayable = "yes"
	case dlq.SkipReplayed:
		last := it.Earlier[len(it.Earlier)-1]
		v.Replayable = fmt.Sprintf("with --again (already replayed %d×, last to %d/%d)", len(it.Earlier), last.Partition, last.Offset)
	case dlq.SkipSuperseded:
		v.Replayable = "no (superseded by a newer DLQ record of this notification)"
	case dlq.RefuseNoPartition:
		v.Replayable = "no (its partition does not exist on notifications.requested)"
	}
	// Refusals for a permanent error or a poison record keep the wording
	// of replayable(): they need --force.
}

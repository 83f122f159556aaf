package webhook

import (
	"context"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/topics"
	"github.com/wanotify/wanotify/pkg/webhook/payload"
)

// maxRejectedReason bounds the reason header (the sink cuts its reasons
// shorter still).
const maxRejectedReason = 2048

// rejectedRecord keeps a status that did not become an event: its raw
// JSON on notifications.status, keyed by its recipient when it has a
// usable one (else spread by the partitioner), with the reason in the
// envelope.HeaderRejected header. Consumers of the topic see a value that
// is not a status event; the sink writes it to ingest_errors with the
// reason, like any record it cannot use, so nothing of a webhook is lost
// and nothing of it counts as a status.
func rejectedRecord(ctx context.Context, r *payload.Rejected) *kgo.Record {
	reason := r.Kind + ": " + r.Reason
	if len(reason) > maxRejectedReason {
		reason = strings.ToValidUTF8(reason[:maxRejectedReason], "")
	}
	value := []byte(r.Raw)
	if len(value) == 0 {
		value = []byte("null")
	}
	return &kgo.Record{Topic: topics.Status, Key: r.Key(), Value: value, Context: ctx,
		Headers: []kgo.RecordHeader{{Key: envelope.HeaderRejected, Value: []byte(reason)}}}
}

// malformed counts the rejected statuses that were malformed (untracked
// ones are reported as skipped).
func malformed(b *payload.Batch) int {
	n := 0
	for i := range b.Rejected {
		if b.Rejected[i].Kind == payload.RejectedMalformed {
			n++
		}
	}
	return n
}

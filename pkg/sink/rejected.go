package sink

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/envelope"
)

// rejectedByReceiver returns the reason the webhook receiver gave for a
// notifications.status record that carries a provider status it could not
// use (envelope.HeaderRejected: malformed, or a status value the pipeline
// does not track), or nil for an ordinary record. Such a record goes to
// ingest_errors with that reason and its raw value, like any record the
// sink cannot use.
func rejectedByReceiver(r *kgo.Record) error {
	for _, h := range r.Headers {
		if h.Key == envelope.HeaderRejected {
			return errors.New("webhook status rejected by the receiver: " + string(h.Value))
		}
	}
	return nil
}

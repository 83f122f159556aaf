package sdk

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/lanes"
)

// NewRecord renders n as its record: key = the recipient (so one
// recipient's traffic stays in one partition on every topic), value = the
// schema-validated JSON of n, and the headers that let consumers route and
// trace a record without decoding it. An empty topic means the topic of
// n's lane (Topic).
//
// The W3C trace context is not set here: a client with kotel hooks (see
// package kafkaconf) injects it from the context the record is produced
// with.
func NewRecord(n *contract.Notification, topic string) (*kgo.Record, error) {
	value, err := n.Encode()
	if err != nil {
		return nil, err
	}
	return record(n, value, topic), nil
}

// BuildRecord is Build, then the lane (a request that asks for none gets
// lanes.Derive(EventType), stored in the notification), then NewRecord,
// for the publish path, with the same bytes NewRecord writes. An empty
// topic means the lane's topic. It skips NewRecord's second pass over
// the schema: Build already enforces every rule of
// schemas/notification-requested.v1.json (the tests and the fuzz targets
// hold it to that), and the schema validator would otherwise cost more
// than the rest of a publish together.
func BuildRecord(tenant string, r *Request, o BuildOptions, now time.Time, topic string) (*kgo.Record, *contract.Notification, error) {
	n, err := Build(tenant, r, o, now)
	if err != nil {
		return nil, nil, err
	}
	if n.Lane == "" {
		n.Lane = string(lanes.Derive(n.EventType))
	}
	return BuiltRecord(n, topic), n, nil
}

// BuiltRecord renders a notification Build returned (and whose lane, if
// the caller set one since, is one of lanes.All) as NewRecord would,
// without validating it again: ingest resolves the lane between Build and
// the record. An empty topic means the lane's topic.
func BuiltRecord(n *contract.Notification, topic string) *kgo.Record {
	value := appendNotification(make([]byte, 0, encodedSizeHint(n)), n)
	return record(n, value, topic)
}

// Topic is the topic a notification is published to: its lane's
// (notifications.critical, notifications.requested for transactional,
// notifications.bulk), and for a notification without a lane the topic of
// the lane its event type derives (lanes.Derive), which is the lane every
// consumer gives it.
func Topic(n *contract.Notification) string {
	if n.Lane != "" {
		return lanes.Lane(n.Lane).Topic()
	}
	return lanes.Derive(n.EventType).Topic()
}

func record(n *contract.Notification, value []byte, topic string) *kgo.Record {
	if topic == "" {
		topic = Topic(n)
	}
	// Room for the trace context (traceparent, tracestate) the producer
	// adds, so adding it does not copy the headers.
	headers := make([]kgo.RecordHeader, 3, 5)
	headers[0] = kgo.RecordHeader{Key: envelope.HeaderTenant, Value: []byte(n.Tenant)}
	headers[1] = kgo.RecordHeader{Key: envelope.HeaderNotificationID, Value: []byte(n.ID)}
	headers[2] = kgo.RecordHeader{Key: envelope.HeaderEventType, Value: []byte(n.EventType)}
	return &kgo.Record{Topic: topic, Key: n.Key(), Value: value, Headers: headers}
}

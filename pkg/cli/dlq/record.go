package dlq

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/topics"
)

// ErrNotFound is returned when no DLQ record matches an id.
var ErrNotFound = errors.New("no such DLQ record")

// Ref names one DLQ record by partition and offset.
type Ref struct {
	Partition int32
	Offset    int64
}

// String renders r as "partition/offset", the form Parse reads back.
func (r Ref) String() string { return fmt.Sprintf("%d/%d", r.Partition, r.Offset) }

var refPattern = regexp.MustCompile(`^(?:(.+?)[-/])?([0-9]{1,6})[/@]([0-9]{1,19})$`)

// ParseRef reads "3/1042", "3@1042", "notifications.dlq-3@1042" or
// "notifications.dlq/3/1042". ok is false when s is not in any of these
// forms (it may then be a notification id); err is set when it is, but
// names another topic or an impossible number.
func ParseRef(s string) (ref Ref, ok bool, err error) {
	m := refPattern.FindStringSubmatch(s)
	if m == nil {
		return Ref{}, false, nil
	}
	if m[1] != "" && m[1] != topics.DLQ {
		return Ref{}, true, fmt.Errorf("%q names topic %q; only %s records can be addressed", s, m[1], topics.DLQ)
	}
	p, err := strconv.ParseInt(m[2], 10, 32)
	if err != nil {
		return Ref{}, true, fmt.Errorf("%q: partition: %w", s, err)
	}
	o, err := strconv.ParseInt(m[3], 10, 64)
	if err != nil {
		return Ref{}, true, fmt.Errorf("%q: offset: %w", s, err)
	}
	return Ref{Partition: int32(p), Offset: o}, true, nil
}

// Record is one record of notifications.dlq with its failure context read.
type Record struct {
	Ref
	// Timestamp is when the record landed on the DLQ (the record time).
	Timestamp time.Time
	Key       []byte
	Value     []byte
	Headers   []kgo.RecordHeader
	// Failure is the failure context; nil when the headers carry none or
	// are invalid, and FailureErr says why.
	Failure    *envelope.Failure
	FailureErr error

	decoded   bool
	note      *contract.Notification
	decodeErr error
}

// NewRecord reads a consumed DLQ record.
func NewRecord(r *kgo.Record) *Record {
	rec := &Record{
		Ref:       Ref{Partition: r.Partition, Offset: r.Offset},
		Timestamp: r.Timestamp,
		Key:       r.Key,
		Value:     r.Value,
		Headers:   r.Headers,
	}
	rec.Failure, rec.FailureErr = envelope.Parse(r.Headers)
	return rec
}

// Notification decodes the value, once. A poison record yields an error
// naming what is wrong with it.
func (r *Record) Notification() (*contract.Notification, error) {
	if !r.decoded {
		r.decoded = true
		r.note, r.decodeErr = contract.DecodeNotification(r.Value)
	}
	return r.note, r.decodeErr
}

// header returns the header value, or the fallback taken from the decoded
// value when the header is absent (records dead-lettered before the
// dispatcher stamped it, or written by hand).
func (r *Record) header(key string, fromValue func(*contract.Notification) string) string {
	if v := envelope.Get(r.Headers, key); v != "" {
		return v
	}
	if n, err := r.Notification(); err == nil && fromValue != nil {
		return fromValue(n)
	}
	return ""
}

// NotificationID is the notification id, "" for poison records without one.
func (r *Record) NotificationID() string {
	return r.header(envelope.HeaderNotificationID, func(n *contract.Notification) string { return n.ID })
}

// Tenant is the tenant, "" when unknown.
func (r *Record) Tenant() string {
	return r.header(envelope.HeaderTenant, func(n *contract.Notification) string { return n.Tenant })
}

// EventType is the event type, "" when unknown.
func (r *Record) EventType() string {
	return r.header(envelope.HeaderEventType, func(n *contract.Notification) string { return n.EventType })
}

// Reason is the DLQ reason (exhausted, permanent, poison), "" when the
// failure headers are missing or invalid.
func (r *Record) Reason() string {
	if r.Failure == nil {
		return ""
	}
	return r.Failure.DLQReason
}

// ErrorCode is the last error's code, "" when unknown.
func (r *Record) ErrorCode() string {
	if r.Failure == nil {
		return envelope.Get(r.Headers, envelope.HeaderErrorCode)
	}
	return r.Failure.Error.Code
}

// ReplayCount is how many replays this record's lineage has been through.
func (r *Record) ReplayCount() int {
	if r.Failure != nil {
		return r.Failure.ReplayCount
	}
	n, _ := strconv.Atoi(envelope.Get(r.Headers, envelope.HeaderReplayCount))
	return n
}

// Permanent reports whether the last error was permanent: replaying the
// record unchanged fails the same way unless its cause was fixed.
func (r *Record) Permanent() bool {
	return r.Failure != nil && (r.Failure.DLQReason == envelope.ReasonPermanent || !r.Failure.Error.Retryable) &&
		r.Failure.DLQReason != envelope.ReasonPoison
}

// Poison reports whether the record cannot be processed as it is: the
// dispatcher said so, or its value is not a valid notification.
func (r *Record) Poison() bool {
	if r.Failure != nil && r.Failure.DLQReason == envelope.ReasonPoison {
		return true
	}
	_, err := r.Notification()
	return err != nil
}

// LandedAt is when the record failed for the last time: the failed-at
// header, or the record time.
func (r *Record) LandedAt() time.Time {
	if r.Failure != nil && !r.Failure.FailedAt.IsZero() {
		return r.Failure.FailedAt
	}
	return r.Timestamp
}

// Package envelope defines the failure context that records on the retry
// and dead-letter topics carry in their Kafka headers: the header keys, the
// Failure type that reads and writes them, and its validation against
// schemas/failure-headers.v1.json. The record value is never rewritten: a
// retried or dead-lettered record keeps the bytes it arrived with, so even a
// poison record can be inspected and replayed as it was.
package envelope

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/schemas"
)

// Header keys. Every key wanotify writes starts with "wanotify-"; the W3C
// trace context travels next to them as "traceparent"/"tracestate".
const (
	HeaderAttempt            = "wanotify-attempt"
	HeaderDueAt              = "wanotify-due-at"
	HeaderOriginTopic        = "wanotify-origin-topic"
	HeaderOriginPartition    = "wanotify-origin-partition"
	HeaderOriginOffset       = "wanotify-origin-offset"
	HeaderErrorCode          = "wanotify-error-code"
	HeaderErrorMessage       = "wanotify-error-message"
	HeaderErrorRetryable     = "wanotify-error-retryable"
	HeaderErrorClass         = "wanotify-error-class"
	HeaderFailedAt           = "wanotify-failed-at"
	HeaderFirstFailedAt      = "wanotify-first-failed-at"
	HeaderDLQReason          = "wanotify-dlq-reason"
	HeaderNotificationID     = "wanotify-notification-id"
	HeaderTenant             = "wanotify-tenant"
	HeaderEventType          = "wanotify-event-type"
	HeaderReplayCount        = "wanotify-replay-count"
	HeaderReplayedFromOffset = "wanotify-replayed-from-offset"
	// HeaderDeferrals counts the long deferrals (notifications.deferred)
	// behind the record; they are not counted as attempts spent.
	HeaderDeferrals = "wanotify-deferrals"
	// HeaderRejected marks a notifications.status record whose value is a
	// provider status the webhook receiver could not turn into a status
	// event (kept raw); the header says why. The sink writes such records
	// to ingest_errors with that reason.
	HeaderRejected = "wanotify-rejected"
)

// DLQ reasons.
const (
	ReasonExhausted = "exhausted" // every retry tier failed
	ReasonPermanent = "permanent" // a permanent error, parked for inspection
	ReasonPoison    = "poison"    // undecodable or invalid record
)

// Error classes.
const (
	ClassRetryable = "retryable"
	ClassThrottled = "throttled"
	ClassPermanent = "permanent"
	ClassPoison    = "poison"
	ClassOutage    = "outage"
	// ClassOutcomeUnknown marks a record parked on a retry topic while
	// the dispatcher waits for a webhook to tell whether an interrupted
	// provider call went out (package dispatcher/unknown).
	ClassOutcomeUnknown = "outcome_unknown"
	// ClassDeferred marks a notification the recipient cannot get now
	// (131049), waiting on notifications.deferred; ClassAccountFault one
	// whose sender is halted, waiting on notifications.held.
	ClassDeferred     = "deferred"
	ClassAccountFault = "account_fault"
)

// Origin is where a record first entered the pipeline.
type Origin struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Failure is the failure context of a retry or DLQ record.
type Failure struct {
	Attempt        int
	DueAt          time.Time // zero on the DLQ
	Origin         Origin
	Error          contract.ErrorInfo
	Class          string
	FailedAt       time.Time
	FirstFailedAt  time.Time
	DLQReason      string // empty on retry topics
	NotificationID string
	Tenant         string
	EventType      string
	ReplayCount    int
	ReplayedFrom   int64 // -1 when never replayed
	// Deferrals is how many times the notification was deferred for a
	// long time (131049); Attempt minus Deferrals is the attempts spent.
	Deferrals int
}

// ErrNoEnvelope is returned by Parse for a record with no failure headers.
var ErrNoEnvelope = errors.New("record carries no failure envelope")

// Headers renders f as record headers, validated against the schema.
func (f *Failure) Headers() ([]kgo.RecordHeader, error) {
	m := f.toMap()
	if err := validate(m); err != nil {
		return nil, err
	}
	hs := make([]kgo.RecordHeader, 0, len(m))
	for _, k := range headerOrder {
		if v, ok := m[k]; ok {
			hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	}
	return hs, nil
}

var headerOrder = []string{HeaderAttempt, HeaderDueAt, HeaderOriginTopic, HeaderOriginPartition, HeaderOriginOffset,
	HeaderErrorCode, HeaderErrorMessage, HeaderErrorRetryable, HeaderErrorClass, HeaderFailedAt, HeaderFirstFailedAt,
	HeaderDLQReason, HeaderNotificationID, HeaderTenant, HeaderEventType, HeaderReplayCount, HeaderReplayedFromOffset, HeaderDeferrals}

func (f *Failure) toMap() map[string]string {
	m := map[string]string{
		HeaderAttempt:         strconv.Itoa(f.Attempt),
		HeaderOriginTopic:     f.Origin.Topic,
		HeaderOriginPartition: strconv.FormatInt(int64(f.Origin.Partition), 10),
		HeaderOriginOffset:    strconv.FormatInt(f.Origin.Offset, 10),
		HeaderErrorCode:       f.Error.Code,
		HeaderErrorRetryable:  strconv.FormatBool(f.Error.Retryable),
		HeaderFailedAt:        f.FailedAt.UTC().Format(time.RFC3339Nano),
	}
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	if !f.DueAt.IsZero() {
		m[HeaderDueAt] = f.DueAt.UTC().Format(time.RFC3339Nano)
	}
	if !f.FirstFailedAt.IsZero() {
		m[HeaderFirstFailedAt] = f.FirstFailedAt.UTC().Format(time.RFC3339Nano)
	}
	if len(f.Error.Message) > 2048 {
		m[HeaderErrorMessage] = f.Error.Message[:2048]
	} else {
		put(HeaderErrorMessage, f.Error.Message)
	}
	put(HeaderErrorClass, f.Class)
	put(HeaderDLQReason, f.DLQReason)
	put(HeaderNotificationID, f.NotificationID)
	put(HeaderTenant, f.Tenant)
	put(HeaderEventType, f.EventType)
	if f.ReplayCount > 0 {
		m[HeaderReplayCount] = strconv.Itoa(f.ReplayCount)
	}
	if f.ReplayedFrom >= 0 && f.ReplayCount > 0 {
		m[HeaderReplayedFromOffset] = strconv.FormatInt(f.ReplayedFrom, 10)
	}
	if f.Deferrals > 0 {
		m[HeaderDeferrals] = strconv.Itoa(f.Deferrals)
	}
	return m
}

func validate(m map[string]string) error {
	doc := make(map[string]any, len(m))
	for k, v := range m {
		doc[k] = v
	}
	return contract.ValidateValue(schemas.FailureHeadersV1, doc)
}

// Get returns the last value of header key, or "".
func Get(hs []kgo.RecordHeader, key string) string {
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].Key == key {
			return string(hs[i].Value)
		}
	}
	return ""
}

// Set replaces (or appends) header key.
func Set(hs []kgo.RecordHeader, key, value string) []kgo.RecordHeader {
	out := hs[:0:0]
	for _, h := range hs {
		if h.Key != key {
			out = append(out, h)
		}
	}
	return append(out, kgo.RecordHeader{Key: key, Value: []byte(value)})
}

// Strip returns hs without any wanotify failure header (trace context and
// foreign headers are kept).
func Strip(hs []kgo.RecordHeader) []kgo.RecordHeader {
	known := map[string]bool{}
	for _, k := range headerOrder {
		known[k] = true
	}
	out := make([]kgo.RecordHeader, 0, len(hs))
	for _, h := range hs {
		if !known[h.Key] {
			out = append(out, h)
		}
	}
	return out
}

// Parse reads the failure context of a record, validating the headers
// against the schema. It returns ErrNoEnvelope when the record has none and
// a *contract.ValidationError naming the bad header otherwise.
func Parse(hs []kgo.RecordHeader) (*Failure, error) {
	m := map[string]string{}
	for _, h := range hs {
		m[h.Key] = string(h.Value) // last wins, as Get
	}
	if _, ok := m[HeaderAttempt]; !ok {
		if _, ok := m[HeaderErrorCode]; !ok {
			return nil, ErrNoEnvelope
		}
	}
	if err := validate(m); err != nil {
		return nil, err
	}
	f := &Failure{ReplayedFrom: -1}
	f.Attempt, _ = strconv.Atoi(m[HeaderAttempt])
	f.Origin.Topic = m[HeaderOriginTopic]
	p, _ := strconv.ParseInt(m[HeaderOriginPartition], 10, 32)
	f.Origin.Partition = int32(p)
	f.Origin.Offset, _ = strconv.ParseInt(m[HeaderOriginOffset], 10, 64)
	f.Error = contract.ErrorInfo{Code: m[HeaderErrorCode], Message: m[HeaderErrorMessage], Retryable: m[HeaderErrorRetryable] == "true"}
	f.Class = m[HeaderErrorClass]
	f.DLQReason = m[HeaderDLQReason]
	f.NotificationID = m[HeaderNotificationID]
	f.Tenant = m[HeaderTenant]
	f.EventType = m[HeaderEventType]
	var err error
	parseTime := func(k string) time.Time {
		v, ok := m[k]
		if !ok || err != nil {
			return time.Time{}
		}
		t, perr := time.Parse(time.RFC3339Nano, v)
		if perr != nil {
			err = fmt.Errorf("header %s: %w", k, perr)
		}
		return t
	}
	f.DueAt = parseTime(HeaderDueAt)
	f.FailedAt = parseTime(HeaderFailedAt)
	f.FirstFailedAt = parseTime(HeaderFirstFailedAt)
	if err != nil {
		return nil, err
	}
	if v, ok := m[HeaderReplayCount]; ok {
		f.ReplayCount, _ = strconv.Atoi(v)
	}
	if v, ok := m[HeaderReplayedFromOffset]; ok {
		f.ReplayedFrom, _ = strconv.ParseInt(v, 10, 64)
	}
	if v, ok := m[HeaderDeferrals]; ok {
		f.Deferrals, _ = strconv.Atoi(v)
	}
	return f, nil
}

package sink

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/lanes"
	"github.com/wanotify/wanotify/pkg/privacy"
)

// Times outside this range are refused as undecodable: ClickHouse's
// DateTime64 stores 1900-2299 and the driver converts through
// nanoseconds since 1970, which end in 2262. A row ClickHouse would reject
// must never reach an insert, or the whole batch would be retried forever.
var (
	minTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
)

const maxReasonBytes = 4096

// decoder turns records into rows.
type decoder struct {
	requested, status, dlq string
	// critical and bulk are the other lanes' topics, decoded like
	// requested (empty in decoders of tests that read no lanes).
	critical, bulk string
	maxValue       int
	// red decides what of a notification's content is stored (nil: the
	// default policy, no content).
	red *privacy.Redactor
}

var defaultRedactor = privacy.New(privacy.Policy{})

func (d *decoder) redactor() *privacy.Redactor {
	if d.red == nil {
		return defaultRedactor
	}
	return d.red
}

// rowKind says which table a decoded record goes to.
type rowKind uint8

const (
	kindEvent rowKind = iota
	kindDeadLetter
	kindError
)

// decoded is one record turned into its row, as decode returns it (the
// poll loop decodes straight into its batch with decodeInto).
type decoded struct {
	kind rowKind
	ev   EventRow
	dl   DeadLetterRow
	er   ErrorRow
}

// decode turns r into exactly one row: an event, a dead letter, or an
// ingest error when the record cannot be used. It never fails: a record
// that cannot be decoded is data about the pipeline, not a reason to stop.
// It is safe for concurrent use.
func (d *decoder) decode(r *kgo.Record) decoded {
	var x decoded
	kind, dl, er := d.decodeRow(r, &x.ev)
	x.kind = kind
	switch kind {
	case kindDeadLetter:
		x.dl = *dl
	case kindError:
		x.er = *er
	}
	return x
}

// decodeRow is decode writing an event into ev (which it leaves alone for
// the other kinds) and returning the other rows by pointer, so a batch of
// events is decoded in place.
func (d *decoder) decodeRow(r *kgo.Record, ev *EventRow) (rowKind, *DeadLetterRow, *ErrorRow) {
	src := Source{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
	var err error
	switch r.Topic {
	case d.requested, d.critical, d.bulk:
		if r.Topic == "" {
			err = errors.New("record of no topic")
			break
		}
		if err = d.requestedEvent(r.Value, ev); err == nil {
			if ev.Lane == "" {
				ev.Lane = d.derivedLane(r.Topic, ev.EventType)
			}
			ev.Source = src
			return kindEvent, nil, nil
		}
	case d.status:
		if err = rejectedByReceiver(r); err != nil {
			break
		}
		if err = d.statusEvent(r.Value, ev); err == nil {
			ev.Source = src
			return kindEvent, nil, nil
		}
	case d.dlq:
		var dl DeadLetterRow
		if dl, err = d.deadLetter(r); err == nil {
			dl.Source = src
			return kindDeadLetter, &dl, nil
		}
	default:
		err = fmt.Errorf("topic %q is not consumed by the sink", r.Topic)
	}
	return kindError, nil, &ErrorRow{
		Source:     src,
		RecordTime: clampTime(r.Timestamp),
		Key:        truncate(string(r.Key), 1024),
		Reason:     truncate(err.Error(), maxReasonBytes),
		Value:      truncate(d.redactor().Value(r.Value), d.maxValue),
		ValueSize:  uint32(len(r.Value)),
	}
}

// parallelMin is the number of records below which decoding in one
// goroutine is cheaper than spreading it.
const parallelMin = 256

// other is a record's row when it is not an event (the zero other is an
// event's: its row is in the batch's Events).
type other struct {
	kind rowKind
	dl   *DeadLetterRow
	er   *ErrorRow
}

// decodeInto decodes rs into b in order, spreading the work over the CPUs
// (schema validation is most of the sink's CPU time). Events are decoded
// straight into b.Events. It returns how many records of each topic could
// not be decoded.
func (d *decoder) decodeInto(b *Batch, rs []*kgo.Record) map[string]int {
	if len(rs) == 0 {
		return nil
	}
	base := len(b.Events)
	b.Events = slices.Grow(b.Events, len(rs))[:base+len(rs)]
	evs := b.Events[base:]
	others := make([]other, len(rs))
	decodeRange := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			kind, dl, er := d.decodeRow(rs[i], &evs[i])
			if kind != kindEvent {
				others[i] = other{kind: kind, dl: dl, er: er}
			}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(rs)/parallelMin+1)
	if workers <= 1 {
		decodeRange(0, len(rs))
	} else {
		var wg sync.WaitGroup
		chunk := (len(rs) + workers - 1) / workers
		for lo := 0; lo < len(rs); lo += chunk {
			wg.Go(func() { decodeRange(lo, min(lo+chunk, len(rs))) })
		}
		wg.Wait()
	}
	// Keep the events in record order, closing the gaps the other rows
	// left (none, most of the time).
	var errs map[string]int
	n := base
	for i, r := range rs {
		b.track(r)
		switch others[i].kind {
		case kindEvent:
			if n != base+i {
				b.Events[n] = b.Events[base+i]
			}
			n++
		case kindDeadLetter:
			b.DeadLetters = append(b.DeadLetters, *others[i].dl)
		default:
			b.Errors = append(b.Errors, *others[i].er)
			if errs == nil {
				errs = map[string]int{}
			}
			errs[r.Topic]++
		}
	}
	clear(b.Events[n:])
	b.Events = b.Events[:n]
	return errs
}

// add decodes r into b.
func (d *decoder) add(b *Batch, r *kgo.Record) {
	d.decodeInto(b, []*kgo.Record{r})
}

// requestedEvent sets *ev to the row of a notifications.requested value.
func (d *decoder) requestedEvent(raw []byte, ev *EventRow) error {
	n, err := contract.DecodeNotification(raw)
	if err != nil {
		return fmt.Errorf("%s value: %w", d.requested, err)
	}
	if err := checkTimes([]namedTime{{"created_at", &n.CreatedAt}, {"expires_at", n.ExpiresAt}, {"event_time", n.EventTime}}); err != nil {
		return fmt.Errorf("%s value: %w", d.requested, err)
	}
	*ev = EventRow{
		EventID:        n.ID + "/" + StatusRequested,
		NotificationID: n.ID,
		Status:         StatusRequested,
		StatusRank:     Precedence(StatusRequested),
		Tenant:         n.Tenant,
		SourceService:  n.SourceService,
		EventType:      n.EventType,
		Sender:         n.Sender,
		Lane:           n.Lane, // empty: decodeRow derives it
		Recipient:      n.Recipient,
		IdempotencyKey: n.IdempotencyKey,
		ExpiresAt:      utcPtr(n.ExpiresAt),
		Payload:        string(d.redactor().Notification(raw, n)),
		OccurredAt:     n.CreatedAt.UTC(),
	}
	if n.Template != nil {
		ev.Template = n.Template.Name
		ev.TemplateLanguage = n.Template.Language
	}
	return nil
}

// derivedLane is the lane of a record that carries none, as the
// dispatcher serves it: the lane of the critical or bulk topic it is on,
// else (notifications.requested, where producers that know no lanes
// write) the lane its event type derives.
func (d *decoder) derivedLane(topic, eventType string) string {
	switch {
	case topic == d.critical:
		return string(lanes.Critical)
	case topic == d.bulk:
		return string(lanes.Bulk)
	}
	return string(lanes.Derive(eventType))
}

// statusEvent sets *ev to the row of a notifications.status value.
func (d *decoder) statusEvent(raw []byte, ev *EventRow) error {
	e, err := contract.DecodeStatusEvent(raw)
	if err != nil {
		return fmt.Errorf("%s value: %w", d.status, err)
	}
	if e.NotificationID == "" && e.ProviderMessageID == "" {
		return fmt.Errorf("%s value: event %s names neither notification_id nor provider_message_id", d.status, e.EventID)
	}
	if err := checkTimes([]namedTime{{"occurred_at", &e.OccurredAt}, {"due_at", e.DueAt}}); err != nil {
		return fmt.Errorf("%s value: %w", d.status, err)
	}
	*ev = EventRow{
		EventID:           e.EventID,
		NotificationID:    e.NotificationID,
		ProviderMessageID: e.ProviderMessageID,
		Status:            string(e.Status),
		StatusRank:        Precedence(string(e.Status)),
		Tenant:            e.Tenant,
		EventType:         e.EventType,
		Sender:            e.Sender,
		Recipient:         e.Recipient,
		Provider:          e.Provider,
		Emitter:           e.Emitter,
		Attempt:           uint16(e.Attempt),
		RetryTier:         e.RetryTier,
		Route:             e.Route,
		DueAt:             utcPtr(e.DueAt),
		OccurredAt:        e.OccurredAt.UTC(),
	}
	if e.Error != nil {
		ev.ErrorCode = e.Error.Code
		ev.ErrorMessage = e.Error.Message
		ev.ErrorRetryable = e.Error.Retryable
	}
	return nil
}

// deadLetter reads a DLQ record. Its failure headers must be valid (they
// are what makes it a dead letter); its value may be anything, since
// poison records are parked with the bytes they arrived with.
func (d *decoder) deadLetter(r *kgo.Record) (DeadLetterRow, error) {
	f, err := envelope.Parse(r.Headers)
	if err != nil {
		return DeadLetterRow{}, fmt.Errorf("%s failure headers: %w", d.dlq, err)
	}
	if err := checkTimes([]namedTime{{"wanotify-failed-at", &f.FailedAt}, {"wanotify-first-failed-at", &f.FirstFailedAt}}); err != nil {
		return DeadLetterRow{}, fmt.Errorf("%s failure headers: %w", d.dlq, err)
	}
	dl := DeadLetterRow{
		RecordTime:      clampTime(r.Timestamp),
		NotificationID:  f.NotificationID,
		Tenant:          f.Tenant,
		EventType:       f.EventType,
		Recipient:       truncate(string(r.Key), 64),
		Reason:          f.DLQReason,
		ErrorClass:      f.Class,
		ErrorCode:       f.Error.Code,
		ErrorMessage:    f.Error.Message,
		ErrorRetryable:  f.Error.Retryable,
		Attempt:         uint16(min(max(f.Attempt, 0), 65535)),
		OriginTopic:     f.Origin.Topic,
		OriginPartition: f.Origin.Partition,
		OriginOffset:    f.Origin.Offset,
		FailedAt:        clampTime(f.FailedAt),
		FirstFailedAt:   utcPtr(nonZero(f.FirstFailedAt)),
		ReplayCount:     uint32(max(f.ReplayCount, 0)),
		ValueSize:       uint32(len(r.Value)),
	}
	if f.FailedAt.IsZero() {
		dl.FailedAt = dl.RecordTime
	}
	if f.ReplayedFrom >= 0 {
		off := f.ReplayedFrom
		dl.ReplayedFromOffset = &off
	}
	n, verr := contract.DecodeNotification(r.Value)
	if verr == nil {
		verr = checkTimes([]namedTime{{"created_at", &n.CreatedAt}, {"expires_at", n.ExpiresAt}, {"event_time", n.EventTime}})
	}
	if verr != nil {
		dl.ValueError = truncate(verr.Error(), maxReasonBytes)
		dl.Value = truncate(d.redactor().Value(r.Value), d.maxValue)
		return dl, nil
	}
	dl.Value = truncate(string(d.redactor().Notification(r.Value, n)), d.maxValue)
	dl.ValueValid = true
	dl.NotificationID = firstNonEmpty(dl.NotificationID, n.ID)
	dl.Tenant = firstNonEmpty(dl.Tenant, n.Tenant)
	dl.EventType = firstNonEmpty(dl.EventType, n.EventType)
	dl.Recipient = n.Recipient
	if n.Template != nil {
		dl.Template = n.Template.Name
	}
	return dl, nil
}

type namedTime struct {
	name string
	t    *time.Time
}

func checkTimes(ts []namedTime) error {
	var errs []error
	for _, nt := range ts {
		name, t := nt.name, nt.t
		if t == nil || t.IsZero() {
			continue
		}
		if t.Before(minTime) || !t.Before(maxTime) {
			errs = append(errs, fmt.Errorf("%s: %s is outside %d-%d", name, t.UTC().Format(time.RFC3339), minTime.Year(), maxTime.Year()-1))
		}
	}
	return errors.Join(errs...)
}

func clampTime(t time.Time) time.Time {
	switch {
	case t.Before(minTime):
		return minTime
	case !t.Before(maxTime):
		return maxTime.Add(-time.Millisecond)
	}
	return t.UTC()
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func nonZero(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut > n-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.Clone(s[:cut])
}

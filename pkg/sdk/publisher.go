// Package sdk publishes WhatsApp notification requests straight to Kafka,
// for Go services that would rather not go through the ingest HTTP API.
//
// It applies exactly the rules ingest applies (ingest is built on this
// package): the same validation (E.164 recipient, template or text, expiry
// in the future, bounded metadata), the same record key (the recipient),
// the same headers (wanotify-tenant, wanotify-notification-id,
// wanotify-event-type, and the W3C trace context when the client carries
// kotel hooks) and the same deterministic notification id, derived from
// the tenant and the idempotency key. A notification published twice with
// the same key gets the same id and the dispatcher sends it once.
//
// Publish returns only once the record is durably written (acks=all on an
// idempotent producer). An error wrapping ErrUnavailable means Kafka did
// not confirm the write: publish the same request again (it yields the same
// id, so a record that did land is not sent twice). An error matching
// contract.ErrInvalid is a bad request and must not be retried unchanged.
package sdk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/lanes"
	"github.com/wanotify/wanotify/pkg/phone"
	"github.com/wanotify/wanotify/pkg/quota"
)

// ErrUnavailable is wrapped by every publish error that comes from Kafka
// rather than from the request: the write was not confirmed in time.
var ErrUnavailable = errors.New("notification not durably written")

// DefaultTimeout bounds a publish when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// ErrNotDurable is returned by New for a client whose settings could
// acknowledge a record before every in-sync replica has it.
var ErrNotDurable = errors.New("kafka client must produce with acks=all and idempotent writes")

// Options configure a Publisher.
type Options struct {
	// Tenant is stamped on every notification (required; lower-case
	// letters, digits, '_' and '-').
	Tenant string
	// SourceService names the publishing service (required); a request
	// may override it.
	SourceService string
	// DefaultSender is the sender account used when a request names none.
	// Without it every request must name its sender.
	DefaultSender string
	// Topic, when set, receives every record whatever its lane (a test
	// topic, say). Empty (the default): each record goes to its lane's
	// topic, notifications.critical, notifications.requested
	// (transactional) or notifications.bulk (see Request.Lane).
	Topic string
	// Timeout bounds each Publish and PublishBatch call, on top of the
	// caller's context. Zero: DefaultTimeout.
	Timeout time.Duration
	// ClockSkew overrides DefaultClockSkew.
	ClockSkew time.Duration
	// PhoneRule relaxes the recipient check from phone.Valid (the
	// default: the number must be in use in its region) to
	// phone.Possible (of a possible length), as ingest's
	// WANOTIFY_PHONE_VALIDATION=possible does.
	PhoneRule phone.Rule
	// DailyCaps caps, per lane, how many notifications this publisher
	// produces in a UTC day (the tenant's daily_caps in the sender
	// registry, which ingest applies). Past it, Publish returns a
	// *QuotaError and produces nothing. The count is this publisher's:
	// other publishers and ingest replicas count their own.
	DailyCaps map[lanes.Lane]int64
	// Now overrides time.Now (tests).
	Now func() time.Time
}

// Validate names every bad option.
func (o Options) Validate() error {
	var errs []error
	if !IsTenant(o.Tenant) {
		errs = append(errs, fmt.Errorf("sdk: Options.Tenant %q: 1 to 64 lower-case letters, digits, '_' and '-', starting with a letter or digit", o.Tenant))
	}
	if o.SourceService == "" || len(o.SourceService) > MaxSourceService {
		errs = append(errs, fmt.Errorf("sdk: Options.SourceService: required, at most %d characters", MaxSourceService))
	}
	if len(o.DefaultSender) > MaxSender {
		errs = append(errs, fmt.Errorf("sdk: Options.DefaultSender: at most %d characters", MaxSender))
	}
	if o.Timeout < 0 {
		errs = append(errs, errors.New("sdk: Options.Timeout: must not be negative"))
	}
	if o.ClockSkew < 0 {
		errs = append(errs, errors.New("sdk: Options.ClockSkew: must not be negative"))
	}
	for l, n := range o.DailyCaps {
		if _, err := lanes.Parse(string(l)); err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("sdk: Options.DailyCaps[%q]: %d: want a lane and a cap of at least 1", l, n))
		}
	}
	if o.PhoneRule != phone.Valid && o.PhoneRule != phone.Possible {
		errs = append(errs, errors.New("sdk: Options.PhoneRule: must be phone.Valid or phone.Possible"))
	}
	return errors.Join(errs...)
}

// Publisher publishes notifications of one tenant. It is safe for
// concurrent use.
type Publisher struct {
	cl    *kgo.Client
	owned bool
	o     Options
	build BuildOptions
	now   func() time.Time
	quota *quota.Counter
}

// New returns a Publisher that produces through cl, which the caller keeps
// owning (Close does not close it). cl must use acks=all and idempotent
// writes (franz-go's defaults); build it with kafkaconf.Config.Opts to get
// TLS, SASL and trace propagation.
func New(cl *kgo.Client, o Options) (*Publisher, error) {
	if cl == nil {
		return nil, errors.New("sdk: nil kafka client")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if acks, _ := cl.OptValue(kgo.RequiredAcks).(kgo.Acks); acks != kgo.AllISRAcks() {
		return nil, fmt.Errorf("sdk: %w (RequiredAcks is not AllISRAcks)", ErrNotDurable)
	}
	if off, _ := cl.OptValue(kgo.DisableIdempotentWrite).(bool); off {
		return nil, fmt.Errorf("sdk: %w (DisableIdempotentWrite is set)", ErrNotDurable)
	}
	p := &Publisher{cl: cl, o: o, now: o.Now,
		build: BuildOptions{SourceService: o.SourceService, Sender: o.DefaultSender, ClockSkew: o.ClockSkew, PhoneRule: o.PhoneRule}}
	if p.o.Timeout == 0 {
		p.o.Timeout = DefaultTimeout
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.quota = quota.New(p.now)
	return p, nil
}

// Connect creates a Kafka client from opts (seed brokers at least) with
// acks=all and idempotent writes, and a Publisher that owns it: Close
// flushes and closes the client.
func Connect(o Options, opts ...kgo.Opt) (*Publisher, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))...)
	if err != nil {
		return nil, fmt.Errorf("sdk: kafka client: %w", err)
	}
	p, err := New(cl, o)
	if err != nil {
		cl.Close()
		return nil, err
	}
	p.owned = true
	return p, nil
}

// Close flushes (for at most Options.Timeout) and closes the client if
// Connect created it.
func (p *Publisher) Close() {
	if p.owned {
		ctx, cancel := context.WithTimeout(context.Background(), p.o.Timeout)
		defer cancel()
		_ = p.cl.Flush(ctx)
		p.cl.Close()
	}
}

// Result is the outcome of one request of a batch.
type Result struct {
	// ID is the notification id; set whenever the request was valid, also
	// when Err wraps ErrUnavailable (the id a retry will get again).
	ID  string
	Err error
}

// Publish validates r, writes it to its lane's topic (Request.Lane, else
// the lane its event type derives: an OTP to notifications.critical, a
// campaign to notifications.bulk, the rest to notifications.requested) and
// waits until every in-sync replica has it. It returns the notification id.
//
// On an error wrapping ErrUnavailable the id is returned as well; a
// retried Publish of the same request yields the same id as long as the
// request carries an IdempotencyKey or an EventTime (otherwise the default
// key takes the time of publishing and a retry is a new notification).
//
// The wait is bounded by ctx and Options.Timeout. Cancelling ctx while the
// record waits may fail other records buffered for the same partition
// (franz-go fails a partition's batch by its first record's context), so
// prefer deadlines to cancelling a context other publishes share.
func (p *Publisher) Publish(ctx context.Context, r Request) (string, error) {
	rec, n, err := p.record(&r)
	if err != nil {
		return "", err
	}
	if err := p.take(n); err != nil {
		return n.ID, err
	}
	ctx, cancel := p.bound(ctx)
	defer cancel()
	if err := ProduceAll(ctx, p.cl, []*kgo.Record{rec})[0]; err != nil {
		p.give(n)
		return n.ID, err
	}
	return n.ID, nil
}

// PublishBatch publishes every valid request of rs concurrently and waits
// for all of them. Invalid requests do not hold back valid ones: results[i]
// is the outcome of rs[i].
func (p *Publisher) PublishBatch(ctx context.Context, rs []Request) []Result {
	results := make([]Result, len(rs))
	recs := make([]*kgo.Record, 0, len(rs))
	notes := make([]*contract.Notification, 0, len(rs))
	idx := make([]int, 0, len(rs))
	for i := range rs {
		rec, n, err := p.record(&rs[i])
		if err == nil {
			results[i].ID = n.ID
			err = p.take(n)
		}
		results[i].Err = err
		if err == nil {
			recs = append(recs, rec)
			notes = append(notes, n)
			idx = append(idx, i)
		}
	}
	if len(recs) == 0 {
		return results
	}
	ctx, cancel := p.bound(ctx)
	defer cancel()
	for j, err := range ProduceAll(ctx, p.cl, recs) {
		results[idx[j]].Err = err
		if err != nil {
			p.give(notes[j])
		}
	}
	return results
}

func (p *Publisher) record(r *Request) (*kgo.Record, *contract.Notification, error) {
	return BuildRecord(p.o.Tenant, r, p.build, p.now(), p.o.Topic)
}

// take uses one unit of n's lane's daily cap, or returns a *QuotaError.
func (p *Publisher) take(n *contract.Notification) error {
	l := lanes.Lane(n.Lane)
	limit := p.o.DailyCaps[l]
	if ok, wait := p.quota.Take(n.Tenant, n.Lane, limit); !ok {
		return &QuotaError{Tenant: n.Tenant, Lane: l, Limit: limit, RetryAfter: wait}
	}
	return nil
}

// give returns the unit of a notification Kafka did not take.
func (p *Publisher) give(n *contract.Notification) {
	p.quota.Give(n.Tenant, n.Lane, p.o.DailyCaps[lanes.Lane(n.Lane)], p.now())
}

func (p *Publisher) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.o.Timeout)
}

// ProduceAll writes recs through cl concurrently and waits for all of
// them, at most until ctx is done; errs[i] is the outcome of recs[i]: nil
// once every in-sync replica has it, otherwise an error wrapping
// ErrUnavailable.
//
// It does not wait on franz-go past ctx: an idempotent producer holds on to
// a record it has sent but not heard back about (failing it could break the
// partition's sequence), so during an outage a record can outlive any
// deadline. Such a record is reported as unavailable and may still be
// written later; that is why ids are deterministic, so the caller's retry
// and the late record are one notification.
func ProduceAll(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) []error {
	type outcome struct {
		i   int
		err error
	}
	errs := make([]error, len(recs))
	// Buffered for every record, so a promise never blocks the client's
	// promise goroutine, even one that fires after this returns.
	done := make(chan outcome, len(recs))
	var promise func(*kgo.Record, error)
	if len(recs) == 1 {
		promise = func(_ *kgo.Record, err error) { done <- outcome{0, err} }
	} else {
		pos := make(map[*kgo.Record]int, len(recs))
		for i, r := range recs {
			pos[r] = i
		}
		promise = func(r *kgo.Record, err error) { done <- outcome{pos[r], err} }
	}
	for _, r := range recs {
		cl.Produce(ctx, r, promise)
	}
	pending := make([]bool, len(recs))
	for i := range pending {
		pending[i] = true
	}
	for left := len(recs); left > 0; left-- {
		select {
		case o := <-done:
			pending[o.i] = false
			if o.err != nil {
				errs[o.i] = fmt.Errorf("%w: %w", ErrUnavailable, o.err)
			}
		case <-ctx.Done():
			for i, p := range pending {
				if p {
					errs[i] = fmt.Errorf("%w: no acknowledgement: %w", ErrUnavailable, ctx.Err())
				}
			}
			return errs
		}
	}
	return errs
}

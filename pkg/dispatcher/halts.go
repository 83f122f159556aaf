package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/dispatcher/dedupe"
	"github.com/wanotify/wanotify/pkg/dispatcher/halt"
	"github.com/wanotify/wanotify/pkg/dispatcher/parking"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/topics"
)

// Sender halts (package halt) on a record's way:
//
//  1. The call stage: an account fault (token, payment, policy block)
//     halts the sender on the state table every instance reads, and the
//     record goes to notifications.held with its attempt not spent.
//  2. The scheduler: the halt gate, the first of every sender's gates,
//     diverts a halted sender's records to notifications.held as well
//     (hold), with one retry_scheduled status event naming the fault for
//     each notification the halt touches; one record per probe interval
//     goes through as the probe.
//  3. The poll stage reads a notifications.held partition only as far as
//     its records' senders run (parking.Held): at a halted sender's
//     record it stops, and the partition is paused until that sender's
//     next probe or a resume. A resume (a probe that succeeded, or
//     notifyctl sender resume on any instance) wakes every held partition
//     to read it through once: records of senders that run again are
//     sent, those of senders still halted go back to the end.

// reportInterval is how often this instance reports its senders'
// figures to the state table (notifyctl sender list).
const reportInterval = 5 * time.Second

// startHalts reads the sender state table and starts tailing it and
// reporting to it. The returned stop closes both.
func (d *Dispatcher) startHalts(ctx context.Context) (func(), error) {
	st, err := halt.New(halt.Config{Opts: d.kopts, Instance: d.cfg.TransactionalID, ProbeInterval: d.cfg.HaltProbeInterval,
		OnChange: d.onHaltChange, Logger: d.log})
	if err != nil {
		return nil, fmt.Errorf("dispatcher sender states: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, d.cfg.RebalanceTimeout)
	defer cancel()
	if err := st.Start(sctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("dispatcher sender states (%s): %w", topics.Senders, err)
	}
	reg, err := st.RegisterMetrics(otel.Meter(meterName))
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("dispatcher sender states metrics: %w", err)
	}
	rctx, rcancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	rep := st.NewReporter(reportInterval, d.senderFigures)
	go func() { defer close(done); rep.Run(rctx) }()
	d.halts = st
	d.heldRule = &parking.Held{Halts: haltsView{st}}
	return func() {
		rcancel()
		<-done
		_ = reg.Unregister()
		st.Close()
	}, nil
}

// haltsView adapts the state table to the held partitions' rule.
type haltsView struct{ st *halt.Store }

func (h haltsView) Halted(sender string) bool {
	_, _, halted := h.st.Halted(sender)
	return halted
}

func (h haltsView) ProbeDue(sender string, now time.Time) (bool, time.Time) {
	return h.st.ProbeDue(sender, now), h.st.NextProbe(sender)
}

// onHaltChange hears every halt and resume, this instance's or another's.
// A resume reads every held partition through once.
func (d *Dispatcher) onHaltChange(c halt.Change) {
	d.log.Info("sender state", "sender", c.Sender, "halted", c.Halted, "code", c.Reason.Code, "by", c.By)
	if c.Halted {
		return
	}
	var woken []*part
	d.mu.Lock()
	for k, p := range d.parts {
		if k.topic == topics.Held && !p.dead.Load() {
			p.rescan = rescanPending
			woken = append(woken, p)
		}
	}
	d.mu.Unlock()
	for _, p := range woken {
		d.wakeParked(p)
	}
}

// rescanPending asks the next fetch of a held partition to set its rescan
// end to the partition's end.
const rescanPending = -2

// hold sends rc, whose sender is halted, to notifications.held with its
// attempt not spent. Its dedupe state is left as it was (the caller undid
// a pending marker), so the record taken back from there asks for the
// same attempt.
func (d *Dispatcher) hold(rc *rec, why *halt.HaltedError) {
	now := time.Now()
	o := outcome{state: dedupe.StateRetrying, attempt: rc.attempt - 1, at: now, class: envelope.ClassAccountFault,
		failedAt: now, due: now,
		err: &contract.ErrorInfo{Code: why.Reason.Code, Retryable: true,
			Message: truncate(fmt.Sprintf("sender %s halted since %s: %s", why.Sender, why.Since.UTC().Format(time.RFC3339), why.Reason.Message), 512)}}
	d.finish(rc, d.outputs(rc, o))
}

// haltedError is the halt an account fault just began (or continued).
func (d *Dispatcher) haltedError(sender string) *halt.HaltedError {
	why, since, halted := d.halts.Halted(sender)
	if !halted {
		// Resumed in between: the record still goes to held, from where
		// it is read again at once.
		since = time.Now()
	}
	return &halt.HaltedError{Sender: sender, Reason: why, Since: since}
}

// senderFigures are this instance's figures per sender for the state
// table's reports.
func (d *Dispatcher) senderFigures() []halt.Figures {
	d.mu.Lock()
	names := make([]string, 0, len(d.senders))
	queued := make(map[string]int, len(d.senders))
	for name, sq := range d.senders {
		names = append(names, name)
		queued[name] = sq.s.Len()
	}
	d.mu.Unlock()
	share := d.limits.CurrentShare()
	out := make([]halt.Figures, 0, len(names))
	for _, name := range names {
		r := d.cfg.Limits.Rate
		if v, ok := d.cfg.Limits.PerSender[name]; ok {
			r = v
		}
		state := gobreaker.StateClosed
		if b := d.brk.peek(d.prov.Name(), name); b != nil {
			state = b.cb.State()
		}
		out = append(out, halt.Figures{Sender: name, Rate: r, Share: share, Breaker: state.String(), Queued: queued[name]})
	}
	return out
}

// asHalted extracts a halt gate's reason.
func asHalted(err error) (*halt.HaltedError, bool) {
	var h *halt.HaltedError
	ok := errors.As(err, &h)
	return h, ok
}

var _ parking.Halts = haltsView{}

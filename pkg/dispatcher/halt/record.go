package halt

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
)

// Version is the version of the records this package writes. Readers
// accept any version and use the fields they know, so a newer dispatcher
// may add fields without stopping an older one from reading the table.
const Version = 1

// Sender states.
const (
	StateHalted  = "halted"
	StateRunning = "running"
)

// Key prefixes of the records that are not a sender's state. Sender names
// never contain '/' (pkg/senders), so no sender's key starts with them.
const (
	reportPrefix = "report/"
	syncPrefix   = "sync/"
)

// Reason is why a sender was halted: the account fault's code and the
// provider's message.
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
}

func (r Reason) String() string {
	if r.Message == "" {
		return r.Code
	}
	return r.Code + ": " + r.Message
}

// State is the value of a sender's record on the topic (key: the
// sender's name): the latest one is the sender's state.
type State struct {
	V      int    `json:"v"`
	Sender string `json:"sender"`
	// State is StateHalted or StateRunning.
	State string `json:"state"`
	// Code and Message: for a halt, the account fault; for a resume,
	// how it came (Message "probe succeeded", "resumed by an operator").
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// Since is when the halt began (kept while the sender stays halted,
	// even when a failed probe updates the reason), or when it resumed.
	Since time.Time `json:"since"`
	// By is who wrote the state: a dispatcher instance (its
	// transactional id) or "notifyctl".
	By string `json:"by"`
	// ProbeAfter is the earliest time a probe may be sent for a halted
	// sender; every instance honours it, so one probe goes out per
	// interval across instances.
	ProbeAfter *time.Time `json:"probe_after,omitempty"`
}

// Halted reports whether the state is a halt.
func (s State) Halted() bool { return s.State == StateHalted }

// Reason is the state's code and message.
func (s State) Reason() Reason { return Reason{Code: s.Code, Message: s.Message} }

// EncodeState renders a state record's value.
func EncodeState(s State) []byte {
	s.V = Version
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // plain fields always marshal
	}
	return b
}

// DecodeState reads a state record; key is the record's key (the
// sender). The sender named in the value must be the key's.
func DecodeState(key, value []byte) (State, error) {
	var s State
	if err := json.Unmarshal(value, &s); err != nil {
		return s, fmt.Errorf("sender state %q: %w", key, err)
	}
	switch {
	case s.V < 1:
		return s, fmt.Errorf("sender state %q: no version", key)
	case s.Sender != string(key):
		return s, fmt.Errorf("sender state %q: value names sender %q", key, s.Sender)
	case s.State != StateHalted && s.State != StateRunning:
		return s, fmt.Errorf("sender state %q: state %q is neither %s nor %s", key, s.State, StateHalted, StateRunning)
	case s.Since.IsZero():
		return s, fmt.Errorf("sender state %q: no since", key)
	}
	return s, nil
}

// Report is one dispatcher instance's figures for one sender, written
// every report interval under ReportKey(instance, sender). Readers
// ignore reports older than the store's ReportMaxAge: their instance has
// stopped (a clean stop tombstones its reports at once).
type Report struct {
	V        int       `json:"v"`
	Instance string    `json:"instance"`
	Sender   string    `json:"sender"`
	At       time.Time `json:"at"`
	Figures
}

// Figures are what an instance knows about one sender.
type Figures struct {
	// Sender is the sender's name.
	Sender string `json:"-"`
	// Rate is the sender's configured rate (messages/s across all
	// instances); Share is this instance's part of it.
	Rate  float64 `json:"rate"`
	Share float64 `json:"share"`
	// Breaker is the state of the sender's circuit breaker: closed,
	// half-open or open.
	Breaker string `json:"breaker"`
	// Queued counts the sender's records this instance holds and has not
	// started (waiting for a token, a gate, or held aside).
	Queued int `json:"queued"`
}

// ReportKey is the key of instance's report on sender.
func ReportKey(instance, sender string) string {
	return reportPrefix + instance + "/" + sender
}

// EncodeReport renders a report's value.
func EncodeReport(r Report) []byte {
	r.V = Version
	r.Figures.Sender = ""
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	return b
}

// DecodeReport reads a report; the key must be the report's.
func DecodeReport(key, value []byte) (Report, error) {
	var r Report
	if err := json.Unmarshal(value, &r); err != nil {
		return r, fmt.Errorf("sender report %q: %w", key, err)
	}
	if r.V < 1 || string(key) != ReportKey(r.Instance, r.Sender) || r.At.IsZero() {
		return r, fmt.Errorf("sender report %q: want version, instance, sender (matching the key) and time", key)
	}
	r.Figures.Sender = r.Sender
	return r, nil
}

// ErrHalted is matched (errors.Is) by every *HaltedError.
var ErrHalted = errors.New("sender halted")

// HaltedError is why a halted sender's item is not sent: the Gate's
// Divert verdict carries it, and status events say it.
type HaltedError struct {
	Sender string
	Reason Reason
	Since  time.Time
}

func (e *HaltedError) Error() string {
	return fmt.Sprintf("sender %s halted since %s by account fault %s", e.Sender, e.Since.UTC().Format(time.RFC3339), e.Reason)
}

// Is makes errors.Is(err, ErrHalted) true.
func (e *HaltedError) Is(target error) bool { return target == ErrHalted }

// Info is the error of the status event that tells a notification its
// sender is halted: the account fault's code, and retryable, since the
// notification waits and is sent once the sender resumes.
func (e *HaltedError) Info() contract.ErrorInfo {
	msg := "sender " + e.Sender + " halted since " + e.Since.UTC().Format(time.RFC3339) + " (account fault); the notification waits until it resumes"
	if e.Reason.Message != "" {
		msg += ": " + e.Reason.Message
	}
	return contract.ErrorInfo{Code: e.Reason.Code, Message: msg, Retryable: true}
}

// kind tells what a key holds.
type kind int

const (
	kindState kind = iota
	kindReport
	kindSync
	kindBad
)

func keyKind(key []byte) kind {
	k := string(key)
	switch {
	case k == "":
		return kindBad
	case strings.HasPrefix(k, syncPrefix):
		return kindSync
	case strings.HasPrefix(k, reportPrefix):
		return kindReport
	case strings.Contains(k, "/"):
		return kindBad
	}
	return kindState
}

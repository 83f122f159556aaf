// Package dedupe is the dispatcher's idempotency state: for every
// idempotency key seen within the window, which request owns it and how far
// its delivery got. It needs no store beyond Kafka: every change is written
// synchronously to a compacted changelog topic (notifications.dedupe)
// co-partitioned with notifications.requested, and a partition's state is
// rebuilt by reading its changelog partition to the end before any input
// of that partition is processed.
//
// Memory is kept small on purpose (the target is well under 100 bytes per
// key): the map key is a 128-bit hash of tenant and idempotency key (the
// changelog uses the same hash as its record key, so tombstones need
// nothing else), and the map value is a 16-byte Entry. What is only needed
// to re-emit an outcome exactly (provider message id, error text, times)
// lives in a side table, and only for records whose consumed offset is not
// yet committed: those are the only records that can be consumed again.
package dedupe

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
)

// State is how far one idempotency key's delivery got.
type State uint8

// States. Pending is written before every provider call; the others after.
const (
	StateNone State = iota
	StatePending
	StateAccepted
	StateFailed
	StateRetrying
	StateDeadLettered
	StateOutcomeUnknown
	StateExpired
)

var stateNames = [...]string{"none", "pending", "accepted", "failed", "retrying", "dead_lettered", "outcome_unknown", "expired"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

func parseState(s string) (State, error) {
	for i, n := range stateNames {
		if n == s && i > 0 {
			return State(i), nil
		}
	}
	return 0, fmt.Errorf("unknown dedupe state %q", s)
}

// Terminal reports whether no further attempt follows.
func (s State) Terminal() bool {
	switch s {
	case StateAccepted, StateFailed, StateDeadLettered, StateOutcomeUnknown, StateExpired:
		return true
	}
	return false
}

// Hash identifies tenant + idempotency key.
type Hash [16]byte

// HashKey hashes a tenant and an idempotency key. The separator cannot
// occur in a tenant (schema: [a-z0-9_-]), so distinct pairs never share an
// input.
func HashKey(tenant, idempotencyKey string) Hash {
	sum := sha256.Sum256([]byte(tenant + "\x00" + idempotencyKey))
	var h Hash
	copy(h[:], sum[:16])
	return h
}

// RecordKey is the changelog record key of h.
func (h Hash) RecordKey() []byte {
	b := make([]byte, hex.EncodedLen(len(h)))
	hex.Encode(b, h[:])
	return b
}

// ParseRecordKey is the inverse of RecordKey.
func ParseRecordKey(b []byte) (Hash, error) {
	var h Hash
	if hex.DecodedLen(len(b)) != len(h) {
		return h, fmt.Errorf("dedupe key %q: want %d hex digits", b, 2*len(h))
	}
	_, err := hex.Decode(h[:], b)
	return h, err
}

// Entry is what is kept in memory for every key: 16 bytes.
type Entry struct {
	// Origin is the offset of the notifications.requested record that
	// owns the key (its partition is the store's partition).
	Origin int64
	// Created is when the key was first seen (Unix seconds); the window
	// runs from it.
	Created uint32
	State   State
	// Attempt is the provider attempt the state belongs to (1-based).
	Attempt uint8
	// Fingerprint is the notification's contract.Fingerprint folded to
	// 16 bits (Fold), which fill what would otherwise be padding: a key
	// reused for another message goes unnoticed here once in 65,536
	// times (ingest's own check catches most before), and the entry stays
	// 16 bytes. 0: written before fingerprints were.
	Fingerprint uint16
}

// Fold folds a contract.Fingerprint to the 16 bits an Entry keeps; never
// 0.
func Fold(fp uint64) uint16 {
	v := uint16(fp ^ fp>>16 ^ fp>>32 ^ fp>>48)
	if v == 0 {
		v = 1
	}
	return v
}

// CreatedTime is Created as a time.
func (e Entry) CreatedTime() time.Time { return time.Unix(int64(e.Created), 0) }

// Detail is what re-emitting a recorded outcome needs.
type Detail struct {
	NotificationID    string
	ProviderMessageID string
	ErrorCode         string
	ErrorMessage      string
	ErrorClass        string
	FailedAt          time.Time
	DueAt             time.Time
	UpdatedAt         time.Time
	// SourceTopic and SourceOffset name the consumed record that led to
	// this state (notifications.requested or a retry topic).
	SourceTopic  string
	SourceOffset int64
}

// Record is one changelog value together with its key.
type Record struct {
	Hash Hash
	Entry
	Detail
}

type wire struct {
	V   int    `json:"v"`
	NID string `json:"nid,omitempty"`
	OO  int64  `json:"oo"`
	St  string `json:"st"`
	A   int    `json:"a"`
	CT  int64  `json:"ct"`
	UT  int64  `json:"ut,omitempty"`
	Src string `json:"src,omitempty"`
	SO  int64  `json:"so"`
	PM  string `json:"pm,omitempty"`
	EC  string `json:"ec,omitempty"`
	EM  string `json:"em,omitempty"`
	CL  string `json:"cl,omitempty"`
	FA  int64  `json:"fa,omitempty"`
	Due int64  `json:"due,omitempty"`
	FP  string `json:"fp,omitempty"` // hex; absent in values written before fingerprints
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// Encode renders r as a changelog value.
func Encode(r Record) []byte {
	b, _ := json.Marshal(wire{V: 1, NID: r.NotificationID, OO: r.Origin, St: r.State.String(), A: int(r.Attempt),
		CT: int64(r.Created), UT: ms(r.UpdatedAt), Src: r.SourceTopic, SO: r.SourceOffset, PM: r.ProviderMessageID,
		EC: r.ErrorCode, EM: r.ErrorMessage, CL: r.ErrorClass, FA: ms(r.FailedAt), Due: ms(r.DueAt), FP: fingerprintHex(r.Fingerprint)})
	return b
}

// Decode reads a changelog record. A nil value is a tombstone: ok false.
func Decode(key, value []byte) (r Record, ok bool, err error) {
	h, err := ParseRecordKey(key)
	if err != nil {
		return r, false, err
	}
	if value == nil {
		return Record{Hash: h}, false, nil
	}
	var w wire
	if err := json.Unmarshal(value, &w); err != nil {
		return r, false, fmt.Errorf("dedupe value: %w", err)
	}
	st, err := parseState(w.St)
	if err != nil {
		return r, false, err
	}
	if w.A < 0 || w.A > 255 || w.CT < 0 || w.CT > 1<<32-1 {
		return r, false, errors.New("dedupe value: attempt or created out of range")
	}
	var fp uint64
	if w.FP != "" {
		if fp, err = strconv.ParseUint(w.FP, 16, 16); err != nil {
			return r, false, fmt.Errorf("dedupe value: fingerprint: %w", err)
		}
	}
	return Record{
		Hash:  h,
		Entry: Entry{Origin: w.OO, Fingerprint: uint16(fp), Created: uint32(w.CT), State: st, Attempt: uint8(w.A)},
		Detail: Detail{NotificationID: w.NID, ProviderMessageID: w.PM, ErrorCode: w.EC, ErrorMessage: w.EM,
			ErrorClass: w.CL, FailedAt: fromMS(w.FA), DueAt: fromMS(w.Due), UpdatedAt: fromMS(w.UT),
			SourceTopic: w.Src, SourceOffset: w.SO},
	}, true, nil
}

// Partition is the state of one changelog partition. It is safe for
// concurrent use.
type Partition struct {
	mu      sync.Mutex
	entries map[Hash]Entry
	details map[Hash]*Detail
}

// NewPartition returns an empty partition store.
func NewPartition() *Partition {
	return &Partition{entries: map[Hash]Entry{}, details: map[Hash]*Detail{}}
}

// Get returns the entry of h and its detail (nil when not kept).
func (p *Partition) Get(h Hash) (Entry, *Detail, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.entries[h]
	if !ok {
		return Entry{}, nil, false
	}
	return e, p.details[h], true
}

// Put records r in memory; keepDetail decides whether its Detail is kept.
func (p *Partition) Put(r Record, keepDetail bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.entries[r.Hash] = r.Entry
	if keepDetail {
		d := r.Detail
		p.details[r.Hash] = &d
	} else {
		delete(p.details, r.Hash)
	}
}

// Delete forgets h (a tombstone).
func (p *Partition) Delete(h Hash) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.entries, h)
	delete(p.details, h)
}

// Committed drops the detail of h if it belongs to the consumed record
// topic/offset, which has just been committed and will not be consumed
// again.
func (p *Partition) Committed(h Hash, topic string, offset int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := p.details[h]; d != nil && d.SourceTopic == topic && d.SourceOffset <= offset {
		delete(p.details, h)
	}
}

// Len is the number of keys.
func (p *Partition) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}

// Details is the number of kept details.
func (p *Partition) Details() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.details)
}

// Sweep forgets terminal entries created before cutoff and returns their
// hashes, for tombstones. Entries still in progress are kept whatever
// their age: forgetting them would let a retry look like a new request.
func (p *Partition) Sweep(cutoff time.Time) []Hash {
	c := cutoff.Unix()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Hash
	for h, e := range p.entries {
		if int64(e.Created) < c && (e.State.Terminal() || e.State == StateNone) {
			delete(p.entries, h)
			delete(p.details, h)
			out = append(out, h)
		}
	}
	return out
}

func fingerprintHex(fp uint16) string {
	if fp == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(fp), 16)
}

// ErrorCodeKeyReused is the error code of the duplicate status of a
// request that reused an idempotency key for another message.
const ErrorCodeKeyReused = "idempotency_key_reused"

// Reuse tells a retry from a reuse: a request whose key e owns and whose
// contract.Fingerprint is fp. For a retry (the same fingerprint, or an entry or
// request without one) it returns nil; for a key reused for another
// message (another recipient, sender, template or text), the error its
// duplicate status carries, so the reuse is never silent: the status
// event, its ClickHouse row and the dispatcher's log and metric say the
// payload differed and this request was not sent.
func Reuse(e Entry, fp uint64) *contract.ErrorInfo {
	if e.Fingerprint == 0 || fp == 0 || e.Fingerprint == Fold(fp) {
		return nil
	}
	return &contract.ErrorInfo{Code: ErrorCodeKeyReused, Retryable: false,
		Message: "the idempotency key was used before for another message (recipient, sender, template or text differ); this request was not sent"}
}

package ingest

import (
	"container/list"
	"net/http"
	"sync"

	"github.com/wanotify/wanotify/pkg/contract"
)

// TypeIdempotencyConflict is the problem type of a request that reuses an
// idempotency key for another message.
const TypeIdempotencyConflict = problemBase + "idempotency-key-reused"

// recentKeys remembers, for the last max notifications this instance
// accepted, the fingerprint of each by id (the id is derived from tenant
// and idempotency key). A request whose id is known with another
// fingerprint reuses a key for another message: as the IETF
// Idempotency-Key draft and Stripe do, it is answered 422 instead of the
// 202 of a retry, which would silently drop its content. It is only a
// first level, per instance and bounded; what it does not remember (other
// instances, older keys) the dispatcher's dedupe store catches, recording
// a duplicate whose payload differed.
type recentKeys struct {
	mu  sync.Mutex
	max int
	ll  *list.List // of *recentKey, most recent first
	m   map[string]*list.Element
}

type recentKey struct {
	id string
	fp uint64
}

// newRecentKeys returns a memory of max entries; max 0 remembers nothing.
func newRecentKeys(max int) *recentKeys {
	return &recentKeys{max: max, ll: list.New(), m: make(map[string]*list.Element)}
}

// conflicts reports whether id is remembered with a fingerprint other
// than fp.
func (c *recentKeys) conflicts(id string, fp uint64) bool {
	if c.max == 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	return ok && e.Value.(*recentKey).fp != fp
}

// remember records an accepted notification. The first fingerprint of an
// id stays: a retry of it is the same, and what differed was refused.
func (c *recentKeys) remember(id string, fp uint64) {
	if c.max == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[id]; ok {
		c.ll.MoveToFront(e)
		return
	}
	c.m[id] = c.ll.PushFront(&recentKey{id: id, fp: fp})
	if c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.m, last.Value.(*recentKey).id)
	}
}

// keyConflict is the 422 answer to a notification whose id this instance
// accepted before for another message. It names where the key came
// from: the Idempotency-Key header, the body's idempotency_key, or the
// default key (user or recipient, event type, event time).
func keyConflict(n *contract.Notification, fromHeader, fromBody bool) *Problem {
	field, detail := "/idempotency_key", "this default idempotency key (user or recipient, event type and event time) was used before for another message; give event_time or an idempotency_key of its own"
	switch {
	case fromHeader:
		field, detail = "Idempotency-Key", "this Idempotency-Key was used before for another message (recipient, sender, template or text differ); use a new key for a new message"
	case fromBody:
		detail = "this idempotency_key was used before for another message (recipient, sender, template or text differ); use a new key for a new message"
	}
	return &Problem{Type: TypeIdempotencyConflict, Title: "The idempotency key was used for another message", Status: http.StatusUnprocessableEntity,
		Detail: detail, Errors: []contract.FieldError{{Field: field, Reason: "was used before with a different request"}}}
}

// isDefaultKey reports whether n's idempotency key is the default one
// (the caller gave none).
func isDefaultKey(n *contract.Notification) bool {
	if n.EventTime == nil {
		return false
	}
	who := n.UserID
	if who == "" {
		who = n.Recipient
	}
	return n.IdempotencyKey == contract.DefaultIdempotencyKey(who, n.EventType, *n.EventTime)
}

package ingest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/envelope"
)

// Two POSTs with one Idempotency-Key, the second to another recipient for
// another amount: the second is not a retry, and is answered 422 naming
// the header instead of a 202 that would silently drop its content. A
// true retry still gets 202 and the same id; nothing of the reuse is
// written.
func TestIdempotencyKeyReusedForAnotherMessageIs422(t *testing.T) {
	h := newHarness(t, nil)
	paid := func(recipient, amount string) string {
		return `{"event_type":"invoice.paid","recipient":"` + recipient + `","template":{"name":"invoice_paid","language":"en","parameters":["order-42","` + amount + `"]}}`
	}
	first := accepted(t, h.post(keyAcme, paid("+447100900123", "10.00"), "Idempotency-Key", "order-42-paid"))
	retry := accepted(t, h.post(keyAcme, paid("+44 7100 900123", "10.00"), "Idempotency-Key", "order-42-paid"))
	if retry.ID != first.ID {
		t.Fatalf("retry id %s, first %s", retry.ID, first.ID)
	}
	for _, body := range []string{paid("+447100900124", "99.00"), paid("+447100900123", "99.00"), paid("+447100900124", "10.00")} {
		r := h.post(keyAcme, body, "Idempotency-Key", "order-42-paid")
		if r.code != http.StatusUnprocessableEntity {
			t.Fatalf("reuse for another message: status %d %s", r.code, r.body)
		}
		p := r.problem(t)
		if p.Type != TypeIdempotencyConflict || len(p.Errors) != 1 || p.Errors[0].Field != "Idempotency-Key" {
			t.Fatalf("problem %+v, want %s naming Idempotency-Key", p, TypeIdempotencyConflict)
		}
	}
	// The same key in the body is named there; another tenant's key is
	// its own.
	inBody := strings.Replace(paid("+447100900124", "99.00"), `{"event_type"`, `{"idempotency_key":"order-42-paid","event_type"`, 1)
	r := h.post(keyAcme, inBody)
	if r.code != http.StatusUnprocessableEntity {
		t.Fatalf("reuse in the body: status %d %s", r.code, r.body)
	}
	r.hasField(t, "/idempotency_key")
	accepted(t, h.post(keyGlobex, paid("+447100900124", "99.00"), "Idempotency-Key", "order-42-paid"))
	// In a batch, the item is answered 422 and the others are taken.
	batch := `{"notifications":[` + inBody + `,` + strings.Replace(paid("+447100900125", "1.00"), `{"event_type"`, `{"idempotency_key":"order-43-paid","event_type"`, 1) + `]}`
	br := h.do(http.MethodPost, "/v1/notifications/batch", keyAcme, []byte(batch))
	if br.code != http.StatusOK || !strings.Contains(string(br.body), `"status":422`) || !strings.Contains(string(br.body), `"field":"/idempotency_key"`) {
		t.Fatalf("batch: %d %s", br.code, br.body)
	}
	ids := map[string]int{}
	for _, rec := range consume(t, h.brokers, 4) {
		ids[envelope.Get(rec.Headers, envelope.HeaderNotificationID)]++
	}
	if ids[first.ID] != 2 || len(ids) != 3 {
		t.Fatalf("records per id %v, want the first twice (the retry), the other tenant's and the batch's new one", ids)
	}
}

func TestRecentKeysStayBounded(t *testing.T) {
	c := newRecentKeys(3)
	for i, id := range []string{"a", "b", "c", "d"} {
		c.remember(id, uint64(i+1))
	}
	if c.conflicts("a", 99) {
		t.Fatal("the oldest id is still remembered")
	}
	if !c.conflicts("d", 99) || c.conflicts("d", 4) {
		t.Fatal("the newest id is not remembered with its fingerprint")
	}
	if len(c.m) != 3 || c.ll.Len() != 3 {
		t.Fatalf("%d entries", len(c.m))
	}
	if off := newRecentKeys(0); func() bool { off.remember("a", 1); return off.conflicts("a", 2) }() {
		t.Fatal("a memory of 0 remembered")
	}
}

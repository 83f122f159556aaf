package dispatcher

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/provider/route"
	"github.com/wanotify/wanotify/pkg/senders"
	"github.com/wanotify/wanotify/pkg/simulator"
)

// twoTenants: tenant-a owns a-otp (number 111) and may send only its
// otp_code template; tenant-b owns b-main (number 222) and may send free
// text.
func twoTenants(t *testing.T) *senders.Registry {
	t.Helper()
	r, err := senders.New(senders.File{
		Senders: []senders.Sender{
			{Name: "a-otp", Tenants: []string{"tenant-a"}, NumberID: "111"},
			{Name: "b-main", Tenants: []string{"tenant-b"}, NumberID: "222"},
		},
		Tenants: []senders.Tenant{
			{Name: "tenant-a", DefaultSender: "a-otp", Templates: []string{"otp_code"}},
			{Name: "tenant-b", DefaultSender: "b-main", FreeText: true},
		},
	}, "test")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func tenantNotification(tenant, key, rcp, sender string) *contract.Notification {
	n := notification(key, rcp, sender, "hello")
	n.Tenant, n.ID = tenant, contract.NotificationID(tenant, key)
	return n
}

func withTemplate(n *contract.Notification, name string) *contract.Notification {
	n.Text, n.Template = nil, &contract.Template{Name: name, Language: "en", Parameters: []string{"123456"}}
	return n
}

// routed is the dispatcher's provider as the service builds it: each
// registered sender through its route, from its number id.
func (e *env) routed(reg *senders.Registry) *route.Router {
	e.t.Helper()
	p := e.provider()
	targets := map[string]route.Target{}
	for _, s := range reg.Senders() {
		targets[s.Name] = route.Target{Provider: p, NumberID: s.NumberID}
	}
	r, err := route.New(targets)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// TestTenantSendsOnlyWhatItOwns: records published straight to Kafka (the
// SDK path, no ingest in front) naming another tenant's sender, an
// unregistered sender, a template off the tenant's list, or free text the
// tenant may not send end failed with the reason, and nothing of them is
// sent; no sender state is made for unregistered senders; the tenants'
// own records go out from their own numbers.
func TestTenantSendsOnlyWhatItOwns(t *testing.T) {
	e := newEnv(t, 2, simulator.Behavior{})
	w := e.watch()
	reg := twoTenants(t)
	cfg := testConfig("t-tenancy")
	cfg.Senders = reg
	r := e.startWith(cfg, e.routed(reg))

	okA := withTemplate(tenantNotification("tenant-a", "a-ok", recipient(1), "a-otp"), "otp_code")
	okB := tenantNotification("tenant-b", "b-ok", recipient(2), "b-main")
	refused := map[string]string{} // notification id -> error code
	var all []*contract.Notification
	add := func(n *contract.Notification, code string) {
		refused[n.ID] = code
		all = append(all, n)
	}
	// B names A's sender: sending from another tenant's business number.
	add(withTemplate(tenantNotification("tenant-b", "b-steals", recipient(3), "a-otp"), "otp_code"), senders.CodeSender)
	// A sends another tenant's (or any unlisted) template.
	add(withTemplate(tenantNotification("tenant-a", "a-bank", recipient(4), "a-otp"), "bank_alert"), senders.CodeTemplate)
	// A sends free text.
	add(tenantNotification("tenant-a", "a-text", recipient(5), "a-otp"), senders.CodeFreeText)
	// A tenant the registry does not know.
	add(tenantNotification("tenant-c", "c-any", recipient(6), "b-main"), senders.CodeUnknownTenant)
	// Unregistered sender names, each of which used to get its own pacer,
	// limiter and breaker.
	for i := range 40 {
		add(tenantNotification("tenant-b", fmt.Sprintf("b-unknown-%d", i), recipient(10+i), fmt.Sprintf("sender-%02d", i)), senders.CodeSender)
	}
	all = append(all, okA, okB)
	e.publish(all...)

	ids := make([]string, 0, len(all))
	for _, n := range all {
		ids = append(ids, n.ID)
	}
	got := w.waitTerminal(t, ids, 30*time.Second)
	st, _, _ := w.snapshot()
	for id, code := range refused {
		if got[id] != contract.StatusFailed {
			t.Errorf("%s: status %s, want failed (%s)", id, got[id], code)
			continue
		}
		ev := st[id][len(st[id])-1]
		if ev.Error == nil || ev.Error.Code != code || ev.Error.Retryable || ev.Error.Message == "" {
			t.Errorf("%s: error %+v, want %s, not retryable, with a reason", id, ev.Error, code)
		}
	}
	if got[okA.ID] != contract.StatusAccepted || got[okB.ID] != contract.StatusAccepted {
		t.Fatalf("own records: %s, %s; want accepted", got[okA.ID], got[okB.ID])
	}
	led := e.sim.Ledger()
	if len(led.Entries) != 2 {
		t.Fatalf("the provider received %d sends, want only the tenants' own 2: %+v", len(led.Entries), led.Entries)
	}
	from := map[string]string{}
	for _, en := range led.Entries {
		from[en.NotificationID] = en.Sender
	}
	if from[okA.ID] != "111" || from[okB.ID] != "222" {
		t.Fatalf("sent from %v, want tenant-a's from number 111 and tenant-b's from 222", from)
	}
	// Sender state exists only for registered senders.
	r.d.mu.Lock()
	queues := len(r.d.senders)
	for s := range r.d.senders {
		if _, ok := reg.Sender(s); !ok {
			t.Errorf("sender queue for unregistered sender %q", s)
		}
	}
	r.d.mu.Unlock()
	r.d.brk.mu.Lock()
	for name := range r.d.brk.m {
		if !strings.HasSuffix(name, "/a-otp") && !strings.HasSuffix(name, "/b-main") {
			t.Errorf("breaker for unregistered sender %q", name)
		}
	}
	r.d.brk.mu.Unlock()
	if queues > 2 {
		t.Errorf("%d sender queues, want at most the 2 registered", queues)
	}
}

// TestSameKeyTwoTenantsTwoSends: Xpressbot deduplicates by key across the
// shared account. Tenant B's OTP with the key tenant A used first must
// still be sent, with its own provider message id.
func TestSameKeyTwoTenantsTwoSends(t *testing.T) {
	e := newEnv(t, 2, simulator.Behavior{IdempotencyKeys: true})
	w := e.watch()
	reg, err := senders.New(senders.File{
		Senders: []senders.Sender{{Name: "shared", Tenants: []string{"tenant-a", "tenant-b"}, NumberID: "333"}},
		Tenants: []senders.Tenant{{Name: "tenant-a", DefaultSender: "shared"}, {Name: "tenant-b", DefaultSender: "shared"}},
	}, "test")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("t-keys")
	cfg.Senders = reg
	e.startWith(cfg, e.routed(reg))
	a := withTemplate(tenantNotification("tenant-a", "order-1001", recipient(1), "shared"), "otp_code")
	e.publish(a)
	w.waitTerminal(t, []string{a.ID}, 30*time.Second)
	b := withTemplate(tenantNotification("tenant-b", "order-1001", recipient(2), "shared"), "otp_code")
	e.publish(b)
	got := w.waitTerminal(t, []string{a.ID, b.ID}, 30*time.Second)
	if got[a.ID] != contract.StatusAccepted || got[b.ID] != contract.StatusAccepted {
		t.Fatalf("statuses %v, want both accepted", got)
	}
	led := e.sim.Ledger()
	if led.Accepted != 2 || led.IdempotentReplays != 0 || len(led.Entries) != 2 {
		t.Fatalf("ledger: %d accepted, %d replays; want two sends and no replay", led.Accepted, led.IdempotentReplays)
	}
	st, _, _ := w.snapshot()
	pid := func(id string) string {
		for _, ev := range st[id] {
			if ev.Status == contract.StatusAccepted {
				return ev.ProviderMessageID
			}
		}
		return ""
	}
	if pid(a.ID) == "" || pid(a.ID) == pid(b.ID) {
		t.Fatalf("provider message ids %q and %q: want two different ones", pid(a.ID), pid(b.ID))
	}
	for _, en := range led.Entries {
		if en.IdempotencyKey == "order-1001" {
			t.Fatalf("the tenant's own key reached the provider: %+v", en)
		}
	}
}

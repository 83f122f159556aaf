package provider_test

import (
	"testing"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/provider"
)

// Two tenants using one idempotency key get two provider keys; neither is
// the tenant's own key; a notification claiming another tenant's
// notification id still gets its own tenant's key.
func TestProviderKeyIsUniquePerTenant(t *testing.T) {
	a := &contract.Notification{ID: contract.NotificationID("tenant-a", "order-1001"), Tenant: "tenant-a", IdempotencyKey: "order-1001"}
	b := &contract.Notification{ID: contract.NotificationID("tenant-b", "order-1001"), Tenant: "tenant-b", IdempotencyKey: "order-1001"}
	ka, kb := provider.FromNotification(a).IdempotencyKey, provider.FromNotification(b).IdempotencyKey
	if ka == kb || ka == "order-1001" || kb == "order-1001" {
		t.Fatalf("keys %q and %q: want two keys, neither the tenant's own", ka, kb)
	}
	if ka != a.ID {
		t.Fatalf("key %q, want the notification id %q", ka, a.ID)
	}
	forged := *b
	forged.ID = a.ID
	if provider.FromNotification(&forged).IdempotencyKey != kb {
		t.Fatal("a record borrowing another tenant's notification id must not borrow its provider key")
	}
}

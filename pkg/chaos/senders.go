package chaos

import (
	"fmt"
	"strings"

	"github.com/wanotify/wanotify/pkg/senders"
)

// senderName is the i-th sender of the scenario.
func senderName(i int) string { return fmt.Sprintf("sender-%02d", i) }

// numberID is the WhatsApp phone number id the registry gives sender: the
// simulator's ledger records sends by number id, not by sender name.
func numberID(sender string) string { return "1000000000" + strings.TrimPrefix(sender, "sender-") }

// registry is the dispatchers' sender registry (WANOTIFY_SENDERS): the
// scenario's tenant owns its n senders and may send free text (the
// simulator directives travel in text bodies).
func registry(n int) string {
	f := senders.File{Tenants: []senders.Tenant{{Name: tenant, DefaultSender: senderName(0), FreeText: true}}}
	for i := range max(n, 1) {
		f.Senders = append(f.Senders, senders.Sender{Name: senderName(i), Tenants: []string{tenant}, NumberID: numberID(senderName(i))})
	}
	return senders.Inline(f)
}

// numberIDs lists the n senders' number ids, the simulator's only numbers
// (WANOTIFY_SIM_PHONE_NUMBER_IDS): a send from a sender name instead of its
// number is refused there and fails the run's checks.
func numberIDs(n int) string {
	ids := make([]string, 0, n)
	for i := range max(n, 1) {
		ids = append(ids, numberID(senderName(i)))
	}
	return strings.Join(ids, ",")
}

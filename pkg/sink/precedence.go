package sink

import "github.com/wanotify/wanotify/pkg/contract"

// StatusRequested is the status of the event row the sink writes for a
// notifications.requested record; every other status is a contract.Status.
const StatusRequested = "requested"

// Precedence is the status_rank stored with each event: contract.Status.Rank
// (documented in migrations/0003_notification_state.sql), plus the lowest
// non-zero rank for the sink's own "requested" row. Unknown statuses get 0.
func Precedence(status string) uint8 {
	if status == StatusRequested {
		return 1
	}
	return uint8(contract.Status(status).Rank())
}

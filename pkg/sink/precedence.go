package sink

import "github.com/wanotify/wanotify/pkg/contract"

// StatusRequested is the status of the event row the sink writes for a
// notifications.requested record; every other status is a contract.Status.
const StatusRequested = "requested"

// Precedence orders statuses in communication_logs: the status with the
// highest precedence a notification reached is its status, because
// webhooks arrive out of order and "delivered" may be skipped. It is
// stored as notification_events.status_rank and documented in
// migrations/0003_notification_state.sql.
//
// It follows contract.Status.Rank() (failure outranks delivery progress and
// is final; read outranks delivered) except for three statuses that do not
// describe this notification's progress: a suppressed duplicate publish
// never hides what happened to the first one, an expiry only shows when no
// send happened, and outcome_unknown gives way to any evidence of a send.
// Unknown statuses get 0.
func Precedence(status string) uint8 {
	switch status {
	case StatusRequested:
		return 1
	case string(contract.StatusDuplicate):
		return 5
	case string(contract.StatusRetryScheduled):
		return 10
	case string(contract.StatusOutcomeUnknown):
		return 15
	case string(contract.StatusExpired):
		return 17
	case string(contract.StatusAccepted):
		return 20
	case string(contract.StatusSent):
		return 30
	case string(contract.StatusDelivered):
		return 40
	case string(contract.StatusRead):
		return 50
	case string(contract.StatusDeadLettered):
		return 90
	case string(contract.StatusFailed):
		return 100
	}
	return 0
}

package simulator

import "slices"

// NotificationLedger is what the simulator did with one notification: every
// send it accepted (more than one is a duplicate) and every send it
// refused. GET /admin/ledger?notification_id=<id> answers with it.
type NotificationLedger struct {
	NotificationID string      `json:"notification_id"`
	Sends          []Entry     `json:"sends"`
	Rejections     []Rejection `json:"rejections"`
}

func (l *ledger) lookup(id string) NotificationLedger {
	out := NotificationLedger{NotificationID: id, Sends: []Entry{}, Rejections: []Rejection{}}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.entries {
		if e.NotificationID == id {
			out.Sends = append(out.Sends, e)
		}
	}
	for _, r := range l.rejections {
		if r.NotificationID == id {
			out.Rejections = append(out.Rejections, r)
		}
	}
	out.Sends, out.Rejections = slices.Clip(out.Sends), slices.Clip(out.Rejections)
	return out
}

// LedgerOf returns what the simulator did with notification id.
func (s *Simulator) LedgerOf(id string) NotificationLedger { return s.ledger.lookup(id) }

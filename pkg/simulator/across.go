package simulator

import "fmt"

// SendsAcross counts the accepted sends of each notification id over
// several ledgers: one simulator per route (a sender's primary and its
// failover) are two accounts, and a message both took is a duplicate
// neither ledger sees on its own. dup is the sends beyond each id's
// first, the number the failover rule promises stays 0. The snapshots
// must hold their entries (Simulator.Ledger, or GET /admin/ledger?entries=1)
// and none may have dropped any: an incomplete list cannot prove there
// was no duplicate.
func SendsAcross(snaps ...Snapshot) (sends map[string]int, dup int, err error) {
	sends = map[string]int{}
	for i, s := range snaps {
		if s.DroppedEntries > 0 {
			return nil, 0, fmt.Errorf("ledger %d dropped %d entries: raise LedgerMaxEntries to count across ledgers", i, s.DroppedEntries)
		}
		if len(s.Entries) != s.Accepted {
			return nil, 0, fmt.Errorf("ledger %d has %d entries for %d accepted sends: take it with its entries", i, len(s.Entries), s.Accepted)
		}
		for _, e := range s.Entries {
			id := e.NotificationID
			if id == "" {
				id = "key:" + e.IdempotencyKey
			}
			sends[id]++
		}
	}
	for _, n := range sends {
		dup += n - 1
	}
	return sends, dup, nil
}

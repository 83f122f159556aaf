package sched

import "container/heap"

// Lanes is how many lanes a scheduler serves; an item's Lane is its index
// (0 the most urgent).
const Lanes = 3

// Weights share a sender's calls among its lanes and tenants.
//
// Lane 0 (critical) is served first, always. The others share what is
// left by weight: with weights 4 and 1 and both backlogged, lane 1 gets
// four calls for each of lane 2's, so lane 2 is never starved. Within a
// lane, tenants share by weight (weighted fair queuing: each tenant's
// next item is stamped with a virtual start time that advances by
// 1/weight per item served, and the smallest stamp goes first), so a
// tenant's backlog delays another tenant by no more than the other's
// share.
type Weights struct {
	// Lanes are the weights of lanes 1 and 2 (index 0 is unused: lane 0
	// has priority). Zero: 1.
	Lanes [Lanes]float64
	// Tenant weights; a tenant not listed, or zero: 1.
	Tenants map[string]float64
}

func (w Weights) lane(i int) float64 {
	if w.Lanes[i] > 0 {
		return w.Lanes[i]
	}
	return 1
}

func (w Weights) tenant(t string) float64 {
	if v := w.Tenants[t]; v > 0 {
		return v
	}
	return 1
}

// fairQueue is a sender's ready items: by lane, then by tenant.
type fairQueue struct {
	w     Weights
	lanes [Lanes]laneQueue
	// pass is each lane's virtual time between lanes 1 and up; vtime the
	// last served lane's.
	pass  [Lanes]float64
	vtime float64
	n     int
}

type laneQueue struct {
	tenants map[string]*tenantQueue
	active  tenantHeap
	vtime   float64
	n       int
	seq     uint64
}

type tenantQueue struct {
	name  string
	items []Item // a ring would save copies; fronts are rare
	pass  float64
	seq   uint64
	index int // in active; -1 when idle
}

func laneOf(it Item) int {
	li, ok := it.(Laned)
	if !ok {
		return 1
	}
	l := li.Lane()
	if l < 0 || l >= Lanes {
		return 1
	}
	return l
}

// push queues it at the back of its tenant's queue, or at the front for
// an item handed back (its tenant's turn is refunded).
func (q *fairQueue) push(it Item, front bool) {
	li := laneOf(it)
	l := &q.lanes[li]
	if l.tenants == nil {
		l.tenants = map[string]*tenantQueue{}
	}
	name := it.Tenant()
	tq := l.tenants[name]
	if tq == nil {
		tq = &tenantQueue{name: name, index: -1}
		l.tenants[name] = tq
	}
	if li > 0 && l.n == 0 {
		// A lane that was empty starts at the current virtual time:
		// idling earns it no credit.
		q.pass[li] = max(q.pass[li], q.vtime)
	}
	if front {
		tq.items = append([]Item{it}, tq.items...)
		tq.pass = max(tq.pass-1/q.w.tenant(name), l.vtime)
	} else {
		tq.items = append(tq.items, it)
	}
	if tq.index < 0 {
		tq.pass = max(tq.pass, l.vtime)
		l.seq++
		tq.seq = l.seq
		heap.Push(&l.active, tq)
	} else {
		heap.Fix(&l.active, tq.index)
	}
	l.n++
	q.n++
}

// pop takes the next item: lane 0 first, then the other lanes by weight,
// and within the lane the tenant with the smallest virtual start time.
func (q *fairQueue) pop() (Item, bool) {
	if q.n == 0 {
		return nil, false
	}
	li := 0
	if q.lanes[0].n == 0 {
		li = -1
		for i := 1; i < Lanes; i++ {
			if q.lanes[i].n > 0 && (li < 0 || q.pass[i] < q.pass[li]) {
				li = i
			}
		}
		q.vtime = q.pass[li]
		q.pass[li] += 1 / q.w.lane(li)
	}
	l := &q.lanes[li]
	tq := l.active[0]
	it := tq.items[0]
	tq.items[0] = nil
	tq.items = tq.items[1:]
	l.vtime = tq.pass
	tq.pass += 1 / q.w.tenant(tq.name)
	if len(tq.items) == 0 {
		heap.Remove(&l.active, tq.index)
		tq.items = nil
	} else {
		heap.Fix(&l.active, tq.index)
	}
	l.n--
	q.n--
	return it, true
}

// filter removes and returns the items dead reports.
func (q *fairQueue) filter(dead func(Item) bool) []Item {
	var out []Item
	for li := range q.lanes {
		l := &q.lanes[li]
		for _, tq := range l.tenants {
			keep := tq.items[:0]
			for _, it := range tq.items {
				if dead(it) {
					out = append(out, it)
				} else {
					keep = append(keep, it)
				}
			}
			clear(tq.items[len(keep):])
			removed := len(tq.items) - len(keep)
			tq.items = keep
			l.n -= removed
			q.n -= removed
			if len(keep) == 0 && tq.index >= 0 {
				heap.Remove(&l.active, tq.index)
			}
		}
	}
	return out
}

// counts reports the items queued per lane and tenant.
func (q *fairQueue) counts(f func(lane int, tenant string, n int)) {
	for li := range q.lanes {
		for name, tq := range q.lanes[li].tenants {
			if len(tq.items) > 0 {
				f(li, name, len(tq.items))
			}
		}
	}
}

// tenantHeap orders active tenants by virtual start time, then by when
// they became active.
type tenantHeap []*tenantQueue

func (h tenantHeap) Len() int { return len(h) }
func (h tenantHeap) Less(i, j int) bool {
	if h[i].pass != h[j].pass {
		return h[i].pass < h[j].pass
	}
	return h[i].seq < h[j].seq
}
func (h tenantHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *tenantHeap) Push(x any) {
	tq := x.(*tenantQueue)
	tq.index = len(*h)
	*h = append(*h, tq)
}
func (h *tenantHeap) Pop() any {
	old := *h
	tq := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	tq.index = -1
	return tq
}

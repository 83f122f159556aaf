// Package order is the bookkeeping behind the dispatcher's key-ordered
// parallelism, modelled on the key-ordered mode of Confluent's Parallel
// Consumer: records of different keys in one partition are processed
// concurrently, one key's records strictly one after another, and a
// partition's offset is committed only below its lowest unfinished record.
//
// Two structures do this. A Partition tracks every record taken from one
// topic-partition in offset order until it is finished; Drain hands out the
// finished prefix together with the offset that may be committed after it.
// Keys is a FIFO per key of which only the head is active.
//
// Nothing here locks: the dispatcher serialises access with its own mutex,
// because a record's state changes touch a Partition and Keys together.
package order

// Item is one consumed record moving through the dispatcher. Value carries
// whatever the caller attaches (the dispatcher keeps its record state
// there); Outputs are what the record produced, released by Drain once the
// record and every record before it in the partition are finished.
type Item struct {
	Offset   int64
	Key      string
	Value    any
	finished bool
	outputs  any
}

// Finished reports whether Finish was called for it.
func (it *Item) Finished() bool { return it.finished }

// Partition is the in-order set of records taken from one topic-partition
// and not yet committed.
type Partition struct {
	items []*Item // offset order; items[head:] are live
	head  int
	// next is the offset expected next: records below it were seen
	// already (a re-fetch after a rewind the caller did not ask for).
	next int64
	// unfinished counts items not finished, for backpressure.
	unfinished int
}

// NewPartition returns an empty tracker that accepts any first offset.
func NewPartition() *Partition { return &Partition{next: -1} }

// Add appends it. It returns false (and ignores it) when its offset is
// not above every offset added before, which only happens when a fetch
// repeats records the tracker already holds.
func (p *Partition) Add(it *Item) bool {
	if p.next >= 0 && it.Offset < p.next {
		return false
	}
	p.items = append(p.items, it)
	p.next = it.Offset + 1
	p.unfinished++
	return true
}

// Finish marks it finished with its outputs. Finishing twice is a no-op.
func (p *Partition) Finish(it *Item, outputs any) {
	if it.finished {
		return
	}
	it.finished = true
	it.outputs = outputs
	p.unfinished--
}

// Unfinished is the number of records added and not finished.
func (p *Partition) Unfinished() int { return p.unfinished }

// Len is the number of records held (finished or not) until Drain.
func (p *Partition) Len() int { return len(p.items) - p.head }

// LowWatermark is the offset of the lowest unfinished record, or -1 when
// every held record is finished (or none is held).
func (p *Partition) LowWatermark() int64 {
	for _, it := range p.items[p.head:] {
		if !it.finished {
			return it.Offset
		}
	}
	return -1
}

// Drained is what Drain releases.
type Drained struct {
	Items   []*Item
	Outputs []any
	// Commit is the offset to commit: one past the last drained record,
	// which is at most the lowest unfinished record.
	Commit int64
}

// Drain removes the finished prefix. ok is false when the prefix is empty
// (nothing new may be committed).
func (p *Partition) Drain() (d Drained, ok bool) {
	i := p.head
	for i < len(p.items) && p.items[i].finished {
		it := p.items[i]
		d.Items = append(d.Items, it)
		d.Outputs = append(d.Outputs, it.outputs)
		d.Commit = it.Offset + 1
		p.items[i] = nil
		i++
	}
	if i == p.head {
		return Drained{}, false
	}
	p.head = i
	// Compact once the dead prefix dominates, so the slice does not grow
	// without bound under steady traffic.
	if p.head > 1024 && p.head*2 > len(p.items) {
		n := copy(p.items, p.items[p.head:])
		clear(p.items[n:])
		p.items = p.items[:n]
		p.head = 0
	}
	return d, true
}

// Items returns the held records in offset order (for shutdown and
// revocation bookkeeping). The slice must not be modified.
func (p *Partition) Items() []*Item { return p.items[p.head:] }

// Keys is a FIFO per key; only a key's head is active, so one key's
// records never overlap.
type Keys struct {
	q map[string]*keyQueue
}

type keyQueue struct {
	active *Item
	wait   []*Item
}

// NewKeys returns empty queues.
func NewKeys() *Keys { return &Keys{q: map[string]*keyQueue{}} }

// Push queues it behind its key. It returns it when it becomes active at
// once (its key was idle), nil when it has to wait.
func (k *Keys) Push(it *Item) *Item {
	q := k.q[it.Key]
	if q == nil {
		q = &keyQueue{}
		k.q[it.Key] = q
	}
	if q.active == nil && len(q.wait) == 0 {
		q.active = it
		return it
	}
	q.wait = append(q.wait, it)
	return nil
}

// Done ends the active record of its key and returns the record activated
// next, or nil. skip reports records to drop instead of activating them
// (records of a partition given up); they are removed silently.
func (k *Keys) Done(it *Item, skip func(*Item) bool) *Item {
	q := k.q[it.Key]
	if q == nil || q.active != it {
		return nil
	}
	q.active = nil
	for len(q.wait) > 0 {
		next := q.wait[0]
		q.wait[0] = nil
		q.wait = q.wait[1:]
		if skip != nil && skip(next) {
			continue
		}
		q.active = next
		return next
	}
	delete(k.q, it.Key)
	return nil
}

// Active reports whether it is its key's active record.
func (k *Keys) Active(it *Item) bool {
	q := k.q[it.Key]
	return q != nil && q.active == it
}

// Remove drops every waiting record for which drop is true. Active
// records are left alone: their owner ends them with Done, which then
// activates the next record still waiting.
func (k *Keys) Remove(drop func(*Item) bool) {
	for key, q := range k.q {
		kept := q.wait[:0]
		for _, w := range q.wait {
			if !drop(w) {
				kept = append(kept, w)
			}
		}
		clear(q.wait[len(kept):])
		q.wait = kept
		if q.active == nil && len(q.wait) == 0 {
			delete(k.q, key)
		}
	}
}

// Len is the number of keys with an active or waiting record.
func (k *Keys) Len() int { return len(k.q) }

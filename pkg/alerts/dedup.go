package alerts

import (
	"container/list"
	"sync"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// Dedup remembers the keys of rows already written, up to a fixed number,
// forgetting the least recently used first. Alertmanager re-sends every alert
// of a group on each flush and HA replicas send the same notification, so
// most rows it receives are repeats; Dedup saves writing them again.
//
// It is an optimisation, not a guarantee: a forgotten key, or the same key in
// two concurrent requests, is written twice, and the key-backed
// prometheus_alerts table then replaces the row with an identical one.
//
// All methods are safe for concurrent use.
type Dedup struct {
	mu       sync.Mutex
	capacity int
	order    *list.List // of rows.AlertKey; front = most recently used
	index    map[rows.AlertKey]*list.Element
	epoch    uint64 // counts Resets
	churn    int    // keys deleted from index since it was last rebuilt
}

// NewDedup returns an empty Dedup holding at most capacity keys (at least 1).
func NewDedup(capacity int) *Dedup {
	return &Dedup{
		capacity: max(capacity, 1),
		order:    list.New(),
		index:    make(map[rows.AlertKey]*list.Element),
	}
}

// Seen reports whether k was added and not yet evicted. A hit makes k the
// most recently used key, so an alert that keeps being re-sent stays known.
func (d *Dedup) Seen(k rows.AlertKey) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.index[k]
	if ok {
		d.order.MoveToFront(e)
	}
	return ok
}

// Add records keys as written, evicting the least recently used keys beyond
// the capacity. Call it only once the rows are durable: a key added for a
// failed write would make the sender's retry look like a repeat.
func (d *Dedup) Add(keys ...rows.AlertKey) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range keys {
		if e, ok := d.index[k]; ok {
			d.order.MoveToFront(e)
			continue
		}
		d.index[k] = d.order.PushFront(k)
	}
	d.evict()
}

// Epoch returns a value that changes with every Reset. Take it before
// writing rows and pass it to AddSince, so that keys of a write that was in
// flight during a Reset are not remembered.
func (d *Dedup) Epoch() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.epoch
}

// AddSince is Add, unless Reset was called since Epoch returned epoch.
func (d *Dedup) AddSince(epoch uint64, keys ...rows.AlertKey) {
	d.mu.Lock()
	stale := d.epoch != epoch
	d.mu.Unlock()
	if !stale {
		d.Add(keys...)
	}
}

// Reset forgets every key: the rows they stand for are no longer where they
// were written (Deephaven came back without them), so a repeat of one of
// them must be written again.
func (d *Dedup) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.epoch++
	d.order.Init()
	clear(d.index)
}

// Len returns the number of keys held.
func (d *Dedup) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.order.Len()
}

// SetCapacity changes the capacity (at least 1), keeping the most recently
// used keys that fit.
func (d *Dedup) SetCapacity(capacity int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.capacity = max(capacity, 1)
	d.evict()
}

// evict drops the least recently used keys beyond the capacity. d.mu is held.
func (d *Dedup) evict() {
	for d.order.Len() > d.capacity {
		e := d.order.Back()
		d.order.Remove(e)
		delete(d.index, e.Value.(rows.AlertKey))
		d.churn++
	}
	if d.churn > rebuildAfter*max(d.capacity, len(d.index)) {
		d.index = rebuilt(d.index)
		d.churn = 0
	}
}

// rebuildAfter is how many times its size a map's deletions may reach
// before it is copied into a fresh one. A Go map never shrinks, and under
// steady churn (every new key evicts an old one) its tables grew by a third
// over 5 million distinct alerts at a constant 100,000 keys; copying it
// now and then costs O(1) per deletion and keeps it at its live size.
const rebuildAfter = 4

// rebuilt returns a copy of m sized for what it holds. (maps.Clone would
// copy the grown tables as they are.)
func rebuilt[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

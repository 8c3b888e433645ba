package alerts

import (
	"hash/maphash"
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
// It holds keys as keyIDs in slices and maps without pointers, so that the
// garbage collector does not scan it: with 100,000 keys held as strings in a
// container/list it was most of the live heap the collector walked on every
// cycle.
//
// All methods are safe for concurrent use.
type Dedup struct {
	mu       sync.Mutex
	capacity int
	ids      keyHasher
	index    map[keyID]int32 // the node of each key
	// nodes is a doubly linked list through indices: nodes[0] links the
	// most recently used key (next) and the least (prev); free holds
	// nodes of evicted keys for reuse.
	nodes []lruNode
	free  []int32
	epoch uint64 // counts Resets
	churn int    // keys deleted from index since it was last rebuilt
}

type lruNode struct {
	id         keyID
	prev, next int32
}

// NewDedup returns an empty Dedup holding at most capacity keys (at least 1).
func NewDedup(capacity int) *Dedup {
	d := &Dedup{capacity: max(capacity, 1), ids: newKeyHasher(), index: make(map[keyID]int32)}
	d.clear()
	return d
}

// id is the key's keyID in this cache. The handler takes it once per alert
// and passes it to seenID and addSinceIDs: hashing is most of what a lookup
// costs.
func (d *Dedup) id(k rows.AlertKey) keyID { return hashKey(d.ids, k) }

// seenID reports whether id was added and not yet evicted. A hit makes it
// the most recently used key, so an alert that keeps being re-sent stays
// known.
func (d *Dedup) seenID(id keyID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	i, ok := d.index[id]
	if ok {
		d.toFront(i)
	}
	return ok
}

// addIDs records ids as written, evicting the least recently used keys
// beyond the capacity. Call it only once the rows are durable: a key added
// for a failed write would make the sender's retry look like a repeat.
func (d *Dedup) addIDs(ids []keyID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		if i, ok := d.index[id]; ok {
			d.toFront(i)
			continue
		}
		d.index[id] = d.pushFront(id)
	}
	d.evict()
}

// Epoch returns a value that changes with every Reset. Take it before
// writing rows and pass it to addSinceIDs, so that keys of a write that was in
// flight during a Reset are not remembered.
func (d *Dedup) Epoch() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.epoch
}

// addSinceIDs is addIDs, unless Reset was called since Epoch returned epoch.
func (d *Dedup) addSinceIDs(epoch uint64, ids []keyID) {
	d.mu.Lock()
	stale := d.epoch != epoch
	d.mu.Unlock()
	if !stale {
		d.addIDs(ids)
	}
}

// Reset forgets every key: the rows they stand for are no longer where they
// were written (Deephaven came back without them), so a repeat of one of
// them must be written again.
func (d *Dedup) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.epoch++
	clear(d.index)
	d.clear()
}

// Len returns the number of keys held.
func (d *Dedup) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.index)
}

// SetCapacity changes the capacity (at least 1), keeping the most recently
// used keys that fit.
func (d *Dedup) SetCapacity(capacity int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.capacity = max(capacity, 1)
	d.evict()
}

// clear empties the list. d.mu is held (or d is new).
func (d *Dedup) clear() {
	d.nodes = append(d.nodes[:0], lruNode{})
	d.free = d.free[:0]
}

// pushFront links a node for id as the most recently used and returns it.
func (d *Dedup) pushFront(id keyID) int32 {
	var i int32
	if n := len(d.free); n > 0 {
		i, d.free = d.free[n-1], d.free[:n-1]
		d.nodes[i] = lruNode{id: id}
	} else {
		i = int32(len(d.nodes))
		d.nodes = append(d.nodes, lruNode{id: id})
	}
	d.link(i)
	return i
}

// link puts node i right after the head.
func (d *Dedup) link(i int32) {
	first := d.nodes[0].next
	d.nodes[i].prev, d.nodes[i].next = 0, first
	d.nodes[first].prev = i
	d.nodes[0].next = i
}

func (d *Dedup) unlink(i int32) {
	n := d.nodes[i]
	d.nodes[n.prev].next = n.next
	d.nodes[n.next].prev = n.prev
}

func (d *Dedup) toFront(i int32) {
	if d.nodes[0].next != i {
		d.unlink(i)
		d.link(i)
	}
}

// evict drops the least recently used keys beyond the capacity. d.mu is held.
func (d *Dedup) evict() {
	for len(d.index) > d.capacity {
		i := d.nodes[0].prev
		d.unlink(i)
		delete(d.index, d.nodes[i].id)
		d.free = append(d.free, i)
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

// keyID stands for a key in the caches (Dedup, NotificationLog): 128 bits
// of a hash keyed by two random seeds, so that the caches hold no pointers.
// Two keys share an ID with a probability of about n²/2¹²⁹ for n keys held
// (10⁻²⁸ for 100,000). A collision would make a new key look known, and
// its row or notification would not be written: at that rate, far less
// likely than a memory error.
type keyID [2]uint64

// keyHasher makes keyIDs; each cache has its own seeds.
type keyHasher struct{ a, b maphash.Seed }

func newKeyHasher() keyHasher { return keyHasher{maphash.MakeSeed(), maphash.MakeSeed()} }

func hashKey[K comparable](h keyHasher, k K) keyID {
	return keyID{maphash.Comparable(h.a, k), maphash.Comparable(h.b, k)}
}

package alerts

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

func key(i int) rows.AlertKey {
	return rows.AlertKey{Fingerprint: fmt.Sprintf("%016x", i), Status: StatusFiring, PrometheusDateTime: int64(i)}
}

// seen, add and addSince take keys where the handler passes keyIDs.
func (d *Dedup) seen(k rows.AlertKey) bool { return d.seenID(d.id(k)) }
func (d *Dedup) add(keys ...rows.AlertKey) { d.addIDs(d.idsOf(keys)) }
func (d *Dedup) addSince(epoch uint64, keys ...rows.AlertKey) {
	d.addSinceIDs(epoch, d.idsOf(keys))
}

func (d *Dedup) idsOf(keys []rows.AlertKey) []keyID {
	ids := make([]keyID, len(keys))
	for i, k := range keys {
		ids[i] = d.id(k)
	}
	return ids
}

func TestDedupEvictsLeastRecentlyUsed(t *testing.T) {
	d := NewDedup(3)
	d.add(key(1), key(2), key(3))
	if !d.seen(key(1)) { // 1 becomes the most recently used
		t.Fatal("key 1 not seen")
	}
	d.add(key(4)) // evicts 2
	for i, want := range map[int]bool{1: true, 2: false, 3: true, 4: true} {
		if got := d.seen(key(i)); got != want {
			t.Errorf("seen(%d) = %v, want %v", i, got, want)
		}
	}
	if d.Len() != 3 {
		t.Errorf("Len = %d, want 3", d.Len())
	}
	d.add(key(4), key(4)) // re-adding is a no-op
	if d.Len() != 3 {
		t.Errorf("Len after re-add = %d, want 3", d.Len())
	}
}

// The list of indices behaves as a least-recently-used list: checked
// against a plain slice through random Seen, Add, Reset and SetCapacity
// calls, which reuse freed nodes and move nodes at either end.
func TestDedupMatchesAModelLRU(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	d, capacity := NewDedup(8), 8
	var model []int // most recently used first
	touch := func(k int) {
		model = slices.DeleteFunc(model, func(m int) bool { return m == k })
		model = append([]int{k}, model...)
	}
	for step := range 20000 {
		k := r.IntN(24)
		switch op := r.IntN(100); {
		case op < 45:
			want := slices.Contains(model, k)
			if got := d.seen(key(k)); got != want {
				t.Fatalf("step %d: seen(%d) = %v, want %v (model %v)", step, k, got, want, model)
			}
			if want {
				touch(k)
			}
		case op < 95:
			d.add(key(k))
			touch(k)
		case op < 97:
			d.Reset()
			model = nil
		default:
			capacity = 1 + r.IntN(12)
			d.SetCapacity(capacity)
		}
		if len(model) > capacity {
			model = model[:capacity]
		}
		if d.Len() != len(model) {
			t.Fatalf("step %d: Len = %d, want %d", step, d.Len(), len(model))
		}
	}
}

func TestDedupSetCapacity(t *testing.T) {
	d := NewDedup(10)
	for i := range 10 {
		d.add(key(i))
	}
	d.SetCapacity(2) // keeps the two most recent, 8 and 9
	if d.Len() != 2 || !d.seen(key(8)) || !d.seen(key(9)) || d.seen(key(7)) {
		t.Errorf("after shrink: len %d", d.Len())
	}
	d.SetCapacity(0) // clamps to 1 rather than refusing everything
	if d.Len() != 1 {
		t.Errorf("Len = %d, want 1", d.Len())
	}
}

func TestDedupConcurrent(t *testing.T) {
	d := NewDedup(100)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				k := key(g*1000 + i%150)
				if !d.seen(k) {
					d.add(k)
				}
			}
		})
	}
	wg.Wait()
	if d.Len() != 100 {
		t.Errorf("Len = %d, want 100", d.Len())
	}
}

// After a Reset every key is new again, and a write that began before the
// Reset does not bring its keys back.
func TestDedupResetAndEpoch(t *testing.T) {
	d := NewDedup(10)
	k1, k2 := rows.AlertKey{Fingerprint: "1"}, rows.AlertKey{Fingerprint: "2"}
	d.add(k1)
	before := d.Epoch()
	d.Reset()
	if d.seen(k1) || d.Len() != 0 {
		t.Fatalf("after Reset: seen %v, len %d", d.seen(k1), d.Len())
	}
	d.addSince(before, k2)
	if d.seen(k2) {
		t.Fatal("a write from before the Reset was remembered")
	}
	d.addSince(d.Epoch(), k2)
	if !d.seen(k2) {
		t.Fatal("a write after the Reset was not remembered")
	}
}

// Under steady churn (every new key evicts an old one) a Go map's tables
// keep growing although it never holds more than the capacity; the cache
// must stay at its live size.
func TestDedupMemoryFlatUnderChurn(t *testing.T) {
	const capacity = 100000
	d := NewDedup(capacity)
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	add := func(from, to int) {
		for i := from; i < to; i++ {
			d.add(key(i))
		}
	}
	add(0, 5*capacity)
	base := heap()
	add(5*capacity, 50*capacity)
	after := heap()
	t.Logf("heap in use after %d keys: %d KiB; after %d: %d KiB (%.2f×)", 5*capacity, base>>10, 50*capacity, after>>10, float64(after)/float64(base))
	if d.Len() != capacity {
		t.Errorf("Len() = %d, want %d", d.Len(), capacity)
	}
	if float64(after) > 1.2*float64(base) {
		t.Errorf("heap grew from %d KiB to %d KiB with %d keys held", base>>10, after>>10, capacity)
	}
}

package tables

import (
	"testing"
	"time"
)

func TestSlotSpace(t *testing.T) {
	s := newSlotSpace()
	if _, _, ok := s.take(1); ok {
		t.Fatal("slots handed out before the first usage read")
	}
	// An earlier run left rows in chunks 0 and 2.
	s.reset(map[int64]bool{0: true, 2: true})
	slots, done, ok := s.take(chunkSlots + 10)
	if !ok {
		t.Fatal("no slots after reset")
	}
	// Chunk 1 is the lowest free one, then 3.
	if slots[0] != chunkSlots || slots[chunkSlots-1] != 2*chunkSlots-1 || slots[chunkSlots] != 3*chunkSlots || len(slots) != chunkSlots+10 {
		t.Fatalf("slots %d..%d, %d, want chunk 1 then chunk 3", slots[0], slots[chunkSlots-1], slots[chunkSlots])
	}
	seen := map[int64]bool{}
	for _, v := range slots {
		if seen[v] {
			t.Fatalf("slot %d handed out twice", v)
		}
		seen[v] = true
	}
	// A usage read while the upload is in flight frees nothing but the
	// chunks it found empty that were idle long enough: 0 and 2.
	if n := s.refresh(map[int64]bool{}, time.Now()); n != 2 {
		t.Fatalf("freed %d chunks with an upload in flight, want 2 (the earlier run's)", n)
	}
	done()
	// Just ended: within the grace, chunk 1 stays busy.
	if n := s.refresh(map[int64]bool{}, time.Now()); n != 0 {
		t.Fatalf("freed %d chunks within the grace", n)
	}
	// Long after, chunk 1 is free; chunk 3 is current and stays.
	if n := s.refresh(map[int64]bool{}, time.Now().Add(2*slotGrace)); n != 1 {
		t.Fatalf("freed %d chunks after the grace, want 1", n)
	}
	// Chunk 3 fills up, then the next rows go to the lowest free chunk: 0.
	more, done2, _ := s.take(chunkSlots)
	done2()
	if last := more[len(more)-1]; last != 0*chunkSlots+9 {
		t.Fatalf("last slot %d, want 9 (chunk 0 reused)", last)
	}
	// A chunk that still holds rows is never freed.
	if n := s.refresh(map[int64]bool{3: true}, time.Now().Add(2*slotGrace)); n != 0 {
		t.Fatalf("freed %d chunks; chunk 3 holds rows and chunk 0 is current", n)
	}
	if s.busyChunks() != 2 {
		t.Fatalf("%d busy chunks, want 2 (3 and 0)", s.busyChunks())
	}
	// After the table is made anew, in-flight chunks stay busy.
	_, done3, _ := s.take(1)
	s.unknown()
	if _, _, ok := s.take(1); ok {
		t.Fatal("slots handed out while unknown")
	}
	s.reset(nil)
	if s.busyChunks() != 1 {
		t.Fatalf("%d busy chunks after reset, want the one in flight", s.busyChunks())
	}
	done3()
}

// Slots stay within the live window's chunks when rows keep leaving.
func TestSlotSpaceBounded(t *testing.T) {
	s := newSlotSpace()
	s.reset(nil)
	type placed struct {
		slot int64
		at   time.Time
	}
	var live []placed
	now := time.Unix(0, 0)
	for step := 0; step < 200; step++ {
		now = now.Add(time.Minute)
		slots, done, _ := s.take(1000)
		done()
		for _, v := range slots {
			live = append(live, placed{v, now})
		}
		// Keep ten minutes of rows; report what is left.
		cut := now.Add(-10 * time.Minute)
		kept := live[:0]
		used := map[int64]bool{}
		for _, p := range live {
			if !p.at.Before(cut) {
				kept = append(kept, p)
				used[p.slot/chunkSlots] = true
			}
		}
		live = kept
		s.mu.Lock()
		for _, u := range s.busy {
			u.lastEnd = now.Add(-time.Hour) // uploads long over
		}
		s.mu.Unlock()
		s.refresh(used, now)
	}
	// 11,000 live rows need 3 chunks; fragmentation may add a few.
	if s.high > 6 {
		t.Errorf("slot space grew to %d chunks for ~11,000 live rows", s.high)
	}
}

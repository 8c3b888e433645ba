package tables

import (
	"hash/fnv"
	"sync"
	"time"
)

// Why slots: Deephaven's key-backed input table keeps every key it ever
// saw. A deleted key stays in its index, and the deleted row's place is
// never reused, so a table keyed by what its rows are grows without bound
// even when retention deletes its old rows (measured on 42.7: about 130
// bytes per row that ever passed through). A slotted table is keyed by
// (Writer, Slot) instead: the bridge puts a new row in a slot whose row has
// left, the key recurs, and Deephaven reuses the place. The table then stays
// as big as the live window.

// chunkSlots is how many slots are handed out at a time. Retention frees
// whole chunks, so a chunk should fill in seconds at busy rates and not
// waste much at quiet ones.
const chunkSlots = 4096

// slotGrace is how long a chunk stays busy after its last upload ended: a
// call the client gave up on may still be applied by the server a little
// later.
const slotGrace = 30 * time.Second

// WriterID is the Writer column of a bridge's rows in slotted tables: a
// hash of its retention.writer name. Bridges writing into the same tables
// must have different names.
func WriterID(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64() >> 1) // non-negative
}

// slotSpace hands out the slots of one writer in one slotted table.
//
// A chunk is busy from the moment a row is placed in it until a usage read
// (refresh) that began after its last upload ended (plus slotGrace) finds
// no row of it in Deephaven. Until the first usage read after the table
// was prepared (reset), no slot is handed out: the bridge does not know
// which slots an earlier run of it filled.
//
// Its methods are safe for concurrent use.
type slotSpace struct {
	mu    sync.Mutex
	known bool
	cur   int64 // the chunk new rows go to; -1 for none
	next  int64 // the next free slot in cur
	busy  map[int64]*chunkUse
	high  int64 // chunks at or above high were never used
}

type chunkUse struct {
	uploads int       // uploads in flight with rows in the chunk
	lastEnd time.Time // when the last of them ended
}

func newSlotSpace() *slotSpace {
	return &slotSpace{cur: -1, busy: map[int64]*chunkUse{}}
}

// take hands out n slots. done must be called once the upload that carries
// them has ended, whatever its outcome.
func (s *slotSpace) take(n int) (slots []int64, done func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.known {
		return nil, nil, false
	}
	slots = make([]int64, 0, n)
	var chunks []int64
	for len(slots) < n {
		if s.cur < 0 || s.next == (s.cur+1)*chunkSlots {
			s.cur = s.pickFree()
			s.next = s.cur * chunkSlots
		}
		u := s.busy[s.cur]
		if u == nil {
			u = &chunkUse{}
			s.busy[s.cur] = u
		}
		if len(chunks) == 0 || chunks[len(chunks)-1] != s.cur {
			u.uploads++
			chunks = append(chunks, s.cur)
		}
		end := min((s.cur+1)*chunkSlots, s.next+int64(n-len(slots)))
		for ; s.next < end; s.next++ {
			slots = append(slots, s.next)
		}
	}
	return slots, func() { s.release(chunks) }, true
}

func (s *slotSpace) release(chunks []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, c := range chunks {
		if u := s.busy[c]; u != nil {
			u.uploads--
			u.lastEnd = now
		}
	}
}

// pickFree returns the lowest chunk that is not busy.
func (s *slotSpace) pickFree() int64 {
	for c := int64(0); c < s.high; c++ {
		if s.busy[c] == nil {
			return c
		}
	}
	s.high++
	return s.high - 1
}

// reset starts over on a table just prepared: used are the chunks holding
// rows of this writer in Deephaven (none for a new table). Chunks with
// uploads in flight stay busy: their rows may still land.
func (s *slotSpace) reset(used map[int64]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c, u := range s.busy {
		if u.uploads == 0 {
			delete(s.busy, c)
		}
	}
	s.cur, s.next, s.high = -1, 0, 0
	s.mark(used)
	for c := range s.busy {
		s.high = max(s.high, c+1)
	}
	s.known = true
}

// unknown stops handing out slots until the next reset.
func (s *slotSpace) unknown() {
	s.mu.Lock()
	s.known = false
	s.mu.Unlock()
}

// refresh frees the chunks that a usage read begun at readStart found
// empty, unless rows may still be on their way into them.
func (s *slotSpace) refresh(used map[int64]bool, readStart time.Time) (freed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.known {
		return 0
	}
	for c, u := range s.busy {
		if c == s.cur || used[c] || u.uploads > 0 || !u.lastEnd.Before(readStart.Add(-slotGrace)) {
			continue
		}
		delete(s.busy, c)
		freed++
	}
	s.mark(used)
	return freed
}

func (s *slotSpace) mark(used map[int64]bool) {
	for c := range used {
		if s.busy[c] == nil {
			s.busy[c] = &chunkUse{}
		}
		s.high = max(s.high, c+1)
	}
}

// busyChunks returns how many chunks are busy, for metrics and tests.
func (s *slotSpace) busyChunks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.busy)
}

package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// maxBatch bounds how many Appends one group commit takes, so that the
// first of them does not wait for an unbounded write.
const maxBatch = 1024

// pending marks a request whose records are not all assigned yet.
const pending = ^uint64(0)

// appendReq is one Append handed to the writer goroutine.
type appendReq struct {
	recs [][]byte          // private copies
	size int64             // encoded size of recs
	last uint64            // seq of its last record once assigned, else pending
	done chan appendResult // buffered (1); answered exactly once
}

type appendResult struct {
	last uint64
	err  error
}

func (r *appendReq) answer(last uint64, err error) { r.done <- appendResult{last, err} }

// writer is the state owned by the writer goroutine (and by Open before it
// starts, and Close after it ends). What other goroutines may read is
// published into Journal under Journal.mu.
type writer struct {
	f       *os.File     // the active segment
	name    string       // its file name
	size    int64        // bytes of f holding durable records
	next    uint64       // seq of the next record
	durable uint64       // seq of the last durable record (next-1 after a commit)
	now     int64        // append time of the current batch, Unix nanos
	buf     []byte       // records encoded but not yet written
	open    []*appendReq // requests with records not yet durable, unanswered
	// err is set once the active segment can no longer be trusted: after a
	// failed fsync, or a failed write that could not be cut off again.
	err error
}

// run is the writer goroutine: it group-commits Appends until Close closes
// j.in, answering every request it received.
func (j *Journal) run() {
	defer close(j.done)
	batch := make([]*appendReq, 0, maxBatch)
	for req := range j.in {
		batch = append(batch[:0], req)
	more:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-j.in:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		j.writeBatch(batch)
		clear(batch) // let answered requests be collected
	}
}

// writeBatch appends the records of all requests in batch with as few
// writes and fsyncs as possible (one each, unless a segment fills up) and
// answers every request.
func (j *Journal) writeBatch(batch []*appendReq) {
	w := &j.w
	w.now = j.opts.Now().UnixNano()
	for i, req := range batch {
		if w.err != nil {
			j.fail(batch[i:], fmt.Errorf("journal: unusable after an earlier I/O error, reopen to repair: %w", w.err))
			return
		}
		if err := j.reserve(req.size); err != nil {
			// Only this request is refused; smaller ones after it may fit.
			j.fail([]*appendReq{req}, err)
			continue
		}
		if err := j.encode(req); err != nil {
			j.fail(w.open, err)
			w.open = w.open[:0]
			j.fail(batch[i+1:], err)
			return
		}
	}
	if err := j.commit(); err != nil {
		j.fail(w.open, err)
		w.open = w.open[:0]
	}
	if cap(w.buf) > 4<<20 {
		w.buf = nil // do not keep a huge buffer for a rare huge batch
	}
	j.retain(0)
}

// fail answers reqs with err and counts them.
func (j *Journal) fail(reqs []*appendReq, err error) {
	reason := reasonIO
	if errors.Is(err, ErrFull) {
		reason = reasonFull
	}
	for _, r := range reqs {
		j.metrics.failures.WithLabelValues(reason).Inc()
		r.answer(0, err)
	}
}

// encode assigns seqs to req's records and adds them to the buffer,
// committing and rotating first whenever the active segment is full.
func (j *Journal) encode(req *appendReq) error {
	w := &j.w
	req.last = pending
	w.open = append(w.open, req)
	for _, rec := range req.recs {
		n := int64(headerSize + len(rec))
		if used := w.size + int64(len(w.buf)); used > 0 && used+n > j.opts.SegmentBytes {
			if err := j.commit(); err != nil {
				return err
			}
			if err := j.rotate(); err != nil {
				return err
			}
		}
		w.buf = appendRecord(w.buf, w.next, w.now, rec)
		w.next++
	}
	req.last = w.next - 1
	return nil
}

// commit writes and fsyncs the buffer, publishes the new records and
// answers the requests that are now complete. On error the buffered records
// are dropped and their seqs will be assigned again.
func (j *Journal) commit() error {
	w := &j.w
	if len(w.buf) == 0 {
		return nil
	}
	if _, err := w.f.WriteAt(w.buf, w.size); err != nil {
		err = fmt.Errorf("journal: write %s: %w", w.name, err)
		// Cut off whatever part reached the file, so that the segment ends
		// at a record boundary and the next write can continue there.
		if terr := w.f.Truncate(w.size); terr != nil {
			w.err = errors.Join(err, fmt.Errorf("journal: undo write: %w", terr))
		}
		w.buf = w.buf[:0]
		w.next = w.durable + 1
		return err
	}
	if j.opts.beforeSync != nil {
		j.opts.beforeSync()
	}
	start := time.Now()
	err := j.fsync(w.f)
	j.metrics.fsync.Observe(time.Since(start).Seconds())
	j.fsyncs.Add(1)
	if err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages:
		// what the file holds is unknown, so never write to it again.
		// Open will check and repair it.
		w.err = fmt.Errorf("journal: fsync %s: %w", w.name, err)
		w.buf = w.buf[:0]
		w.next = w.durable + 1
		return w.err
	}

	count := w.next - 1 - w.durable
	w.size += int64(len(w.buf))
	w.durable = w.next - 1
	j.mu.Lock()
	a := &j.segs[len(j.segs)-1]
	a.count += count
	a.size = w.size
	a.lastTime = max(a.lastTime, w.now)
	j.bytes += int64(len(w.buf))
	j.lastSeq = w.durable
	j.updateGaugesLocked()
	j.mu.Unlock()
	w.buf = w.buf[:0]
	j.metrics.appended.Add(float64(count))

	keep := w.open[:0]
	for _, r := range w.open {
		if r.last <= w.durable {
			r.answer(r.last, nil)
		} else {
			keep = append(keep, r)
		}
	}
	clear(w.open[len(keep):])
	w.open = keep
	return nil
}

// rotate starts a new active segment named after the next seq. The buffer
// must be empty (committed), so the old segment is complete and fsynced.
func (j *Journal) rotate() error {
	w := &j.w
	f, err := j.createSegment(w.next)
	if err != nil {
		return err
	}
	if err := w.f.Close(); err != nil {
		// Its records were fsynced; nothing is lost.
		j.logger.Warn("Journal closing full segment", "segment", w.name, "err", err)
	}
	w.f, w.name, w.size = f, segmentName(w.next), 0
	j.mu.Lock()
	j.segs = append(j.segs, segment{first: w.next})
	j.updateGaugesLocked()
	j.mu.Unlock()
	return nil
}

// reserve makes room for need more bytes (besides the buffer) under
// MaxBytes, deleting delivered segments if needed. It returns ErrFull when
// only undelivered records are in the way.
func (j *Journal) reserve(need int64) error {
	w := &j.w
	for {
		if j.retain(need + int64(len(w.buf))) {
			return nil
		}
		// The active segment is never deleted. When it holds only delivered
		// records, start a new one so that retention can take the old one.
		// (Buffered records are undelivered, so then it cannot help.)
		if len(w.buf) > 0 || !j.activeDelivered() {
			return ErrFull
		}
		if err := j.rotate(); err != nil {
			return err
		}
	}
}

func (j *Journal) activeDelivered() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	a := j.segs[len(j.segs)-1]
	return a.count > 0 && a.last() <= j.delivered
}

// retain deletes the oldest segments, never the active one, while each is
// fully delivered and either expired or in the way of need more bytes. It
// reports whether need more bytes now fit under MaxBytes.
func (j *Journal) retain(need int64) (fits bool) {
	j.retMu.Lock()
	defer j.retMu.Unlock()
	now := j.opts.Now()
	removed := 0
	for {
		j.mu.Lock()
		if len(j.segs) < 2 {
			j.mu.Unlock()
			break
		}
		s := j.segs[0]
		delivered := s.count == 0 || s.last() <= j.delivered
		expired := s.count == 0 || now.Sub(time.Unix(0, s.lastTime)) > j.opts.MaxAge
		over := j.bytes+need > j.opts.MaxBytes
		if !delivered || !expired && !over {
			j.mu.Unlock()
			break
		}
		// Out of the list before the file goes, so that a Replay that
		// cannot open it knows it was deleted on purpose.
		j.segs = j.segs[1:]
		j.bytes -= s.size
		j.updateGaugesLocked()
		j.mu.Unlock()

		name := segmentName(s.first)
		if err := os.Remove(filepath.Join(j.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			j.logger.Warn("Journal cannot delete segment", "segment", name, "err", err)
			j.mu.Lock()
			j.segs = slices.Insert(j.segs, 0, s)
			j.bytes += s.size
			j.updateGaugesLocked()
			j.mu.Unlock()
			break
		}
		removed++
		j.logger.Debug("Journal deleted segment", "segment", name, "records", s.count, "expired", expired)
	}
	if removed > 0 {
		// A deletion lost in a crash only brings back delivered records.
		if err := j.syncDir(); err != nil {
			j.logger.Warn("Journal syncing directory after deleting segments", "err", err)
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.bytes+need <= j.opts.MaxBytes
}

// closeActive fsyncs and closes the active segment.
func (j *Journal) closeActive() error {
	w := &j.w
	if w.f == nil {
		return nil
	}
	f := w.f
	w.f = nil
	if w.err != nil {
		// Already reported to Appends; the file is not trusted, Open repairs it.
		f.Close()
		return nil
	}
	err := j.fsync(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("journal: close %s: %w", w.name, err)
	}
	return nil
}

// Package journal is the bridge's durable history of alert rows: an
// append-only log of opaque records in numbered segment files on local disk.
//
// The bridge acknowledges an alert to Alertmanager only once it is in
// Deephaven or in the journal, so [Journal.Append] returns only after its
// records were written and fsynced. The journal is a history, not only a
// queue: it keeps every record within its retention ([Options.MaxBytes],
// [Options.MaxAge]) whether or not it was delivered, so that a Deephaven
// server that restarted with empty tables can be refilled with
// Replay(0, ...). [Journal.MarkDelivered] moves a persistent delivery
// watermark; Replay(Delivered()+1, ...) yields what still has to be sent.
// [Journal.Rewind] moves it back before the oldest retained record, durably,
// so that a resend of the whole history that is cut short by a crash
// resumes where it stopped instead of being forgotten.
// Delivery is at least once: after a crash, a lost watermark or a failed
// Append that still reached the disk, records may be sent twice.
//
// # On-disk format
//
// The directory holds segment files named "%020d.seg" after the sequence
// number of their first record, a file "delivered" with the delivery
// watermark, and a file "id" with the journal's identity (32 hex digits and
// a newline, made once when the directory is first opened). A segment is a sequence of records, each
//
//	length  uint32  payload length in bytes, at most MaxRecordSize
//	crc     uint32  CRC-32 (Castagnoli) of seq, time and payload
//	seq     uint64  sequence number: the segment's name, then +1 per record
//	time    int64   append time, Unix nanoseconds
//	payload [length]byte
//
// with all integers big-endian. Records never span segments, so whole
// segments can be deleted once delivered and expired, and a torn write can
// only damage the end of the newest segment. "delivered" holds the watermark
// (uint64) and its CRC-32C (uint32); it is replaced atomically (temporary
// file, fsync, rename, directory fsync).
//
// Sequence numbers start at 1 and are never reused, not even when records
// were lost: if the watermark is ahead of the last record found at open, the
// next record gets watermark+1 in a new segment, leaving a gap between
// segments. Gaps are therefore legal; within a segment, numbers are
// consecutive.
//
// # Crash repair
//
// Open reads every segment. At the first bad record (header cut short,
// length beyond the file or above MaxRecordSize, CRC mismatch, sequence
// number out of order) it truncates that segment there, deletes all later
// segments, logs a warning and counts it in
// prometheus_deephaven_bridge_journal_corruptions_total. A damaged or
// missing watermark counts too and reads as 0, so everything retained is
// sent again. Damaged data is never a reason for Open to fail; it fails only
// when the directory cannot be read or written.
//
// One case is not damage: a commit is one write, and a process killed
// inside it (Linux stops a large write at a page boundary on SIGKILL) leaves
// part of it at the end of the newest segment, never fsynced and so never
// acknowledged. Open cuts such an incomplete last record, logs it at info
// level and counts it in
// prometheus_deephaven_bridge_journal_torn_writes_cut_total. If the cut
// would lose delivered records, it is damage after all.
//
// Only one Journal may use a directory at a time; this is not enforced.
package journal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	// ErrFull is returned by Append when the records do not fit under
	// Options.MaxBytes without deleting undelivered records. It is
	// temporary: MarkDelivered makes room. The webhook answers 503.
	ErrFull = errors.New("journal: full of undelivered records")
	// ErrTooLarge is returned by Append when a record exceeds
	// MaxRecordSize or the records together exceed Options.MaxBytes; such a
	// request can never succeed.
	ErrTooLarge = errors.New("journal: records too large")
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("journal: closed")
)

// Options tune a Journal. Zero values select the defaults.
type Options struct {
	// MaxBytes bounds the total size of all segments (default 1 GiB).
	MaxBytes int64
	// MaxAge: segments whose newest record was appended longer ago than
	// this are deleted once all their records are delivered (default 168h).
	MaxAge time.Duration
	// SegmentBytes: a record that would make the active segment larger than
	// this starts a new segment (default 16 MiB, at most MaxBytes). A single
	// larger record gets a segment of its own.
	SegmentBytes int64
	// Now is the clock for append times and MaxAge (default time.Now).
	Now func() time.Time

	// beforeSync, if set, runs before every segment fsync. Tests use it to
	// hold the writer so that appends pile up.
	beforeSync func()
	// noSync skips all fsyncs, for tests of parsing and repair that must
	// run many times a second (fuzzing). Never set it in production.
	noSync bool
}

func (o *Options) defaults() {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 30
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 168 * time.Hour
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 16 << 20
	}
	o.SegmentBytes = min(o.SegmentBytes, o.MaxBytes)
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Stats describe the journal at one moment.
type Stats struct {
	Segments  int    // segment files, including the active one
	Bytes     int64  // total size of the segment files
	FirstSeq  uint64 // seq of the oldest retained record, 0 if none is retained
	LastSeq   uint64 // highest seq ever assigned and made durable, 0 if none
	Delivered uint64 // the delivery watermark
}

// segment describes one segment file. Only the active (last) segment grows.
type segment struct {
	first    uint64 // seq of its first record; its name
	count    uint64 // records in it
	size     int64  // bytes holding complete, fsynced records
	lastTime int64  // newest append time in it, Unix nanos; 0 if empty
}

// last is the seq of its last record, or first-1 when it is empty.
func (s segment) last() uint64 { return s.first + s.count - 1 }

// Journal is an open journal directory.
//
// All methods are safe for concurrent use.
//
// Appends are group-committed by one writer goroutine: it takes every
// Append waiting at that moment, assigns their records consecutive sequence
// numbers in arrival order, writes them with one write and one fsync, and
// then answers them all. The records of one Append get consecutive numbers;
// a higher number means a later Append.
//
// Retention runs after each group of appends and in MarkDelivered. It
// deletes the oldest segments, never the active one, while they are fully
// delivered and either expired (MaxAge) or in the way of an Append
// (MaxBytes). Undelivered records are never deleted; instead Append returns
// ErrFull. Size retention is lazy on purpose: delivered records stay
// available to Replay until their room is needed.
//
// After an fsync error, or a failed write that could not be undone, the
// journal no longer trusts its active segment: every later Append fails
// with that error until the journal is closed and opened again (Open
// repairs it). Replay, MarkDelivered and Stats keep working.
type Journal struct {
	dir     string
	opts    Options
	logger  *slog.Logger
	reg     prometheus.Registerer
	metrics *metrics

	in   chan *appendReq // to the writer goroutine
	done chan struct{}   // closed when the writer goroutine has finished

	// ops counts Appends handing over a request and MarkDelivered calls in
	// progress; Close waits for them after setting closed.
	ops       sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	markMu sync.Mutex // serializes MarkDelivered (one watermark temp file)
	retMu  sync.Mutex // serializes retention (segment deletion)

	id string // the journal's identity, from the file "id"

	mu        sync.Mutex // guards the fields below
	closed    bool
	segs      []segment // oldest first; the last one is active
	bytes     int64     // sum of segs[].size
	lastSeq   uint64    // highest durable seq
	delivered uint64

	w writer // owned by the writer goroutine after Open

	fsyncs atomic.Int64 // segment fsyncs, for tests of group commit
}

// Open opens the journal in dir, creating dir if needed. It reads all
// segments, repairs damage (see the package documentation), reads the
// delivery watermark, applies retention and starts the writer goroutine.
// Its metrics are registered on reg unless reg is nil; Close unregisters
// them. A nil logger discards logs.
func Open(dir string, opts Options, logger *slog.Logger, reg prometheus.Registerer) (_ *Journal, err error) {
	opts.defaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("journal: create directory: %w", err)
	}
	j := &Journal{
		dir:     dir,
		opts:    opts,
		logger:  logger,
		reg:     reg,
		metrics: newMetrics(),
		in:      make(chan *appendReq, 256),
		done:    make(chan struct{}),
	}
	if reg != nil {
		if err := j.metrics.register(reg); err != nil {
			return nil, fmt.Errorf("journal: register metrics: %w", err)
		}
		defer func() {
			if err != nil {
				j.metrics.unregister(reg)
			}
		}()
	}
	if j.id, err = j.loadID(); err != nil {
		return nil, err
	}
	if err := j.load(); err != nil {
		if j.w.f != nil {
			j.w.f.Close()
		}
		return nil, err
	}
	j.retain(0)
	st := j.Stats()
	logger.Info("Journal opened", "dir", dir, "segments", st.Segments, "bytes", st.Bytes,
		"first_seq", st.FirstSeq, "last_seq", st.LastSeq, "delivered", st.Delivered)
	go j.run()
	return j, nil
}

// load reads the watermark and the segments, repairs them and opens the
// active segment. It runs before any other goroutine sees j.
func (j *Journal) load() error {
	// A leftover temp file is an interrupted MarkDelivered; the old
	// watermark is still in place.
	if err := os.Remove(filepath.Join(j.dir, watermarkTmp)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("journal: remove stale watermark: %w", err)
	}
	firsts, err := j.listSegments()
	if err != nil {
		return err
	}
	delivered, writeWM, err := j.loadWatermark(len(firsts) > 0)
	if err != nil {
		return err
	}
	if writeWM {
		// Write it before any segment exists on a fresh journal, so that a
		// missing watermark next to segments always means damage.
		if err := j.writeWatermark(delivered); err != nil {
			return fmt.Errorf("journal: write watermark: %w", err)
		}
	}

	segs, err := j.scan(firsts, delivered)
	if err != nil {
		return err
	}
	var lastRec uint64
	if len(segs) > 0 {
		lastRec = segs[len(segs)-1].last()
	}
	if delivered > lastRec {
		j.logger.Warn("Journal delivery watermark is ahead of the last record; records were lost, sequence numbers continue after the watermark",
			"delivered", delivered, "last_record", lastRec)
	}
	lastSeq := max(lastRec, delivered)
	next := lastSeq + 1

	// Choose the active segment: keep appending to the last one if it
	// continues at next, else start a new one (an empty last segment with
	// the wrong name is just removed).
	var f *os.File
	switch last := len(segs) - 1; {
	case last >= 0 && segs[last].last()+1 == next:
		path := filepath.Join(j.dir, segmentName(segs[last].first))
		if f, err = os.OpenFile(path, os.O_RDWR, 0); err != nil {
			return fmt.Errorf("journal: open active segment: %w", err)
		}
	default:
		if last >= 0 && segs[last].count == 0 {
			if err := os.Remove(filepath.Join(j.dir, segmentName(segs[last].first))); err != nil {
				return fmt.Errorf("journal: remove empty segment: %w", err)
			}
			segs = segs[:last]
		}
		if f, err = j.createSegment(next); err != nil {
			return err
		}
		segs = append(segs, segment{first: next})
	}

	j.segs = segs
	j.bytes = 0
	for _, s := range segs {
		j.bytes += s.size
	}
	j.lastSeq = lastSeq
	j.delivered = delivered
	active := segs[len(segs)-1]
	j.w = writer{f: f, name: segmentName(active.first), size: active.size, next: next, durable: lastSeq}
	j.updateGaugesLocked()
	return nil
}

// listSegments returns the first seqs of all segment files, in order.
// Other files are left alone.
func (j *Journal) listSegments() ([]uint64, error) {
	entries, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, fmt.Errorf("journal: read directory: %w", err)
	}
	var firsts []uint64
	for _, e := range entries {
		if first, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			firsts = append(firsts, first)
		}
	}
	slices.Sort(firsts)
	return firsts, nil
}

// loadWatermark reads the delivery watermark. A missing or damaged one reads
// as 0 and is rewritten (rewrite=true); only a missing one on a journal
// without segments is normal.
func (j *Journal) loadWatermark(haveSegments bool) (delivered uint64, rewrite bool, err error) {
	b, err := os.ReadFile(filepath.Join(j.dir, watermarkFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if haveSegments {
			j.corruption(&CorruptionError{Segment: watermarkFile, Err: errors.New("watermark file missing; all retained records count as undelivered")})
		}
		return 0, true, nil
	case err != nil:
		return 0, false, fmt.Errorf("journal: read watermark: %w", err)
	}
	delivered, err = decodeWatermark(b)
	if err != nil {
		j.corruption(err)
		return 0, true, nil
	}
	return delivered, false, nil
}

// scan reads the segments, repairs the first damage it finds and returns
// the valid segments.
func (j *Journal) scan(firsts []uint64, delivered uint64) ([]segment, error) {
	var segs []segment
	for i, first := range firsts {
		name := segmentName(first)
		if i > 0 {
			prevLast := segs[i-1].last()
			if first <= prevLast {
				// Both cannot be right; the earlier segment was read fine.
				cerr := &CorruptionError{Segment: name, Err: fmt.Errorf("first sequence number %d overlaps the previous segment, which ends at %d", first, prevLast)}
				return segs, j.repair(cerr, -1, firsts[i+1:])
			}
			if first > prevLast+1 && first-1 > delivered {
				// Legal after lost records (see the package doc), but here
				// undelivered ones are missing. Nothing to repair.
				j.corruption(&CorruptionError{Segment: name, Err: fmt.Errorf("records %d to %d are missing", prevLast+1, first-1)})
			}
		}
		s, cerr, err := scanSegment(j.dir, first)
		if err != nil {
			return nil, err
		}
		segs = append(segs, s)
		if cerr != nil && i == len(firsts)-1 && tornWrite(cerr, s, delivered) {
			// The process died inside its last write: the kernel had taken
			// part of it, no fsync followed, so nothing in it was
			// acknowledged. Normal after a kill, not damage.
			j.metrics.tornWrites.Inc()
			j.logger.Info("Journal cut an unfinished last write (the process died before its fsync; nothing in it was acknowledged)",
				"segment", cerr.Segment, "offset", cerr.Offset)
			return segs, j.truncate(cerr.Segment, s.size)
		}
		if cerr != nil {
			return segs, j.repair(cerr, s.size, firsts[i+1:])
		}
	}
	return segs, nil
}

// scanSegment reads one segment and returns what is valid of it, and the
// corruption that ends it early, if any.
func scanSegment(dir string, first uint64) (segment, *CorruptionError, error) {
	s := segment{first: first}
	f, err := os.Open(filepath.Join(dir, segmentName(first)))
	if err != nil {
		return s, nil, fmt.Errorf("journal: open segment: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return s, nil, fmt.Errorf("journal: stat segment: %w", err)
	}
	r := newSegmentReader(f, first, fi.Size())
	for {
		_, t, _, err := r.next()
		if err == io.EOF {
			return s, nil, nil
		}
		if cerr, ok := errors.AsType[*CorruptionError](err); ok {
			return s, cerr, nil
		}
		if err != nil {
			return s, nil, err
		}
		s.count++
		s.size = r.off
		s.lastTime = max(s.lastTime, t)
	}
}

// tornWrite reports whether cerr, found in the newest segment s, is the
// end of a write the process died in: a record cut short, whose cut loses
// no delivered record (a delivered one was fsynced, so losing it is damage).
func tornWrite(cerr *CorruptionError, s segment, delivered uint64) bool {
	if !errors.Is(cerr, errIncomplete) {
		return false
	}
	if s.count == 0 {
		return s.first > delivered
	}
	return s.last() >= delivered
}

// repair truncates the damaged segment at size (size < 0: deletes it) and
// deletes all later segments (later), then syncs the directory.
func (j *Journal) repair(cerr *CorruptionError, size int64, later []uint64) error {
	j.corruption(cerr)
	if size < 0 {
		if err := os.Remove(filepath.Join(j.dir, cerr.Segment)); err != nil {
			return fmt.Errorf("journal: repair: %w", err)
		}
	} else if err := j.truncate(cerr.Segment, size); err != nil {
		return err
	}
	for _, first := range later {
		name := segmentName(first)
		// Anything after the damage may hold records whose predecessors are
		// gone; keeping them would break the ordering promise.
		j.logger.Warn("Journal removing segment after corruption", "segment", name)
		if err := os.Remove(filepath.Join(j.dir, name)); err != nil {
			return fmt.Errorf("journal: repair: %w", err)
		}
	}
	if err := j.syncDir(); err != nil {
		return fmt.Errorf("journal: repair: sync directory: %w", err)
	}
	return nil
}

// truncate cuts the segment name at size and fsyncs it.
func (j *Journal) truncate(name string, size int64) error {
	f, err := os.OpenFile(filepath.Join(j.dir, name), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("journal: repair: %w", err)
	}
	err = f.Truncate(size)
	if err == nil {
		err = j.fsync(f)
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("journal: repair: truncate %s: %w", name, err)
	}
	return nil
}

// corruption logs and counts damaged data.
func (j *Journal) corruption(err error) {
	j.metrics.corruptions.Inc()
	var cerr *CorruptionError
	if errors.As(err, &cerr) {
		j.logger.Warn("Journal corruption", "segment", cerr.Segment, "offset", cerr.Offset, "err", cerr.Err)
		return
	}
	j.logger.Warn("Journal corruption", "err", err)
}

// createSegment creates an empty segment file and makes its directory entry
// durable, so that records fsynced into it cannot vanish with it.
func (j *Journal) createSegment(first uint64) (*os.File, error) {
	path := filepath.Join(j.dir, segmentName(first))
	// O_EXCL: a name collision would be a bug; never truncate a segment.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("journal: create segment: %w", err)
	}
	if err := j.syncDir(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("journal: create segment: sync directory: %w", err)
	}
	return f, nil
}

// writeWatermark replaces the watermark file so that a crash leaves either
// the old or the new one: temp file, fsync, rename, directory fsync.
func (j *Journal) writeWatermark(seq uint64) (err error) {
	tmp := filepath.Join(j.dir, watermarkTmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(encodeWatermark(seq)); err != nil {
		return err
	}
	if err := j.fsync(f); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(j.dir, watermarkFile)); err != nil {
		return err
	}
	return j.syncDir()
}

// fsync makes f's content durable.
func (j *Journal) fsync(f *os.File) error {
	if j.opts.noSync {
		return nil
	}
	return f.Sync()
}

// syncDir makes creations, renames and removals in the directory durable.
func (j *Journal) syncDir() error {
	if j.opts.noSync {
		return nil
	}
	return syncDir(j.dir)
}

// Append writes recs as consecutive records and returns the sequence
// number of the last one once all are written and fsynced. recs are copied
// before Append returns; an empty recs returns (0, nil) at once.
//
// Concurrent Appends are group-committed (see Journal). Append returns
// ErrFull when the records do not fit without deleting undelivered ones,
// ErrTooLarge when they can never fit, ErrClosed after Close, and a
// wrapped I/O error when writing or fsyncing failed.
//
// An Append that returns an error other than ErrFull, ErrTooLarge or
// ErrClosed may still have made some or all of its records durable (for
// example when ctx ends while the writer is at work, or when a write fails
// after an earlier part of the records went into a segment that was then
// completed); they will be replayed. Callers must tolerate duplicates.
func (j *Journal) Append(ctx context.Context, recs [][]byte) (last uint64, err error) {
	if len(recs) == 0 {
		return 0, nil
	}
	var size, payload int64
	for _, r := range recs {
		if len(r) > MaxRecordSize {
			j.metrics.failures.WithLabelValues(reasonTooLarge).Inc()
			return 0, fmt.Errorf("%w: a record of %d bytes exceeds %d", ErrTooLarge, len(r), MaxRecordSize)
		}
		size += headerSize + int64(len(r))
		payload += int64(len(r))
	}
	if size > j.opts.MaxBytes {
		j.metrics.failures.WithLabelValues(reasonTooLarge).Inc()
		return 0, fmt.Errorf("%w: %d bytes exceed the journal size of %d", ErrTooLarge, size, j.opts.MaxBytes)
	}
	// One copy into private memory: the writer may still read the records
	// after a cancelled Append has returned.
	buf := make([]byte, 0, payload)
	own := make([][]byte, len(recs))
	for i, r := range recs {
		buf = append(buf, r...)
		own[i] = buf[len(buf)-len(r):]
	}
	req := &appendReq{recs: own, size: size, done: make(chan appendResult, 1)}

	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return 0, ErrClosed
	}
	j.ops.Add(1)
	j.mu.Unlock()
	select {
	case j.in <- req:
		j.ops.Done()
	case <-ctx.Done():
		j.ops.Done()
		return 0, fmt.Errorf("journal: append: %w", context.Cause(ctx))
	}
	select {
	case res := <-req.done:
		return res.last, res.err
	case <-ctx.Done():
		return 0, fmt.Errorf("journal: append (records may still be written): %w", context.Cause(ctx))
	}
}

// MarkDelivered records that all records up to and including upTo are in
// Deephaven. The watermark only moves forward: a lower upTo is a no-op. It
// is persisted atomically before MarkDelivered returns; on error it is
// unchanged in memory (on disk it may have moved, which at worst skips
// resending records that were in fact delivered). upTo beyond the last
// durable record is an error. Retention then runs, so delivered segments
// that are expired or over MaxBytes are deleted.
func (j *Journal) MarkDelivered(upTo uint64) error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return ErrClosed
	}
	j.ops.Add(1)
	j.mu.Unlock()
	defer j.ops.Done()

	j.markMu.Lock()
	defer j.markMu.Unlock()
	j.mu.Lock()
	cur, last := j.delivered, j.lastSeq
	j.mu.Unlock()
	if upTo <= cur {
		return nil
	}
	if upTo > last {
		return fmt.Errorf("journal: mark delivered up to %d: beyond the last record %d", upTo, last)
	}
	if err := j.writeWatermark(upTo); err != nil {
		return fmt.Errorf("journal: mark delivered up to %d: %w", upTo, err)
	}
	j.mu.Lock()
	j.delivered = upTo
	j.updateGaugesLocked()
	j.mu.Unlock()
	j.retain(0)
	return nil
}

// Rewind moves the delivery watermark back to just before the oldest
// retained record, so that every retained record counts as undelivered:
// Replay(Delivered()+1, ...) then yields the whole retained history, and
// retention keeps all of it until it is delivered again. It is persisted
// before Rewind returns, so a crash during the resend that follows resumes
// it. It returns the new watermark; with no retained record it changes
// nothing. On error the watermark is unchanged in memory.
func (j *Journal) Rewind() (uint64, error) {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return 0, ErrClosed
	}
	j.ops.Add(1)
	j.mu.Unlock()
	defer j.ops.Done()

	j.markMu.Lock()
	defer j.markMu.Unlock()
	// No segment may go between choosing the new watermark and setting it.
	j.retMu.Lock()
	defer j.retMu.Unlock()
	st := j.Stats()
	if st.FirstSeq == 0 || st.FirstSeq-1 >= st.Delivered {
		return st.Delivered, nil
	}
	to := st.FirstSeq - 1
	if err := j.writeWatermark(to); err != nil {
		return st.Delivered, fmt.Errorf("journal: rewind delivery watermark to %d: %w", to, err)
	}
	j.mu.Lock()
	j.delivered = to
	j.updateGaugesLocked()
	j.mu.Unlock()
	j.logger.Info("Journal delivery watermark moved back: the retained history counts as undelivered", "from", st.Delivered, "to", to)
	return to, nil
}

// Dir returns the journal's directory.
func (j *Journal) Dir() string { return j.dir }

// ID returns the journal's identity: 32 random hex digits made when the
// directory was first opened and kept in it, so a process reopening the
// directory has the same ID. Deliveries are recorded against it.
func (j *Journal) ID() string { return j.id }

// Delivered returns the delivery watermark: every record up to it was
// delivered. It is 0 when nothing was (or the watermark was lost).
func (j *Journal) Delivered() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.delivered
}

// SeqSince returns a seq to Replay from to see every record appended at or
// after t: the first of the oldest segment with such a record, or one past
// the last record when there is none. Older records may come too.
func (j *Journal) SeqSince(t time.Time) uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, s := range j.segs {
		if s.count > 0 && s.lastTime >= t.UnixNano() {
			return s.first
		}
	}
	return j.lastSeq + 1
}

// Stats returns the journal's current size and sequence numbers.
func (j *Journal) Stats() Stats {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := Stats{Segments: len(j.segs), Bytes: j.bytes, LastSeq: j.lastSeq, Delivered: j.delivered}
	for _, s := range j.segs {
		if s.count > 0 {
			st.FirstSeq = s.first
			break
		}
	}
	return st
}

// Replay calls fn for every retained record with seq >= from, in sequence
// order, up to the last record that was durable when Replay was called;
// records appended meanwhile are not included. from = 0 replays the whole
// retained history, from = Delivered()+1 what is undelivered. rec is only
// valid during the call; fn must copy what it keeps.
//
// Replay runs in the caller's goroutine, concurrently with Appends; it does
// not hold up appends, retention or Close. Segments deleted by retention
// while Replay runs are skipped. Replay stops at fn's first error and
// returns it unchanged. It returns a wrapped *CorruptionError if a segment
// was damaged after Open (reopen to repair), and ErrClosed after Close.
func (j *Journal) Replay(from uint64, fn func(seq uint64, appended time.Time, rec []byte) error) error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return ErrClosed
	}
	segs := slices.Clone(j.segs)
	j.mu.Unlock()

	for _, s := range segs {
		if s.count == 0 || s.last() < from {
			continue
		}
		if err := j.replaySegment(s, from, fn); err != nil {
			return err
		}
	}
	return nil
}

func (j *Journal) replaySegment(s segment, from uint64, fn func(uint64, time.Time, []byte) error) error {
	f, err := os.Open(filepath.Join(j.dir, segmentName(s.first)))
	if errors.Is(err, fs.ErrNotExist) {
		j.mu.Lock()
		gone := len(j.segs) == 0 || j.segs[0].first > s.first
		j.mu.Unlock()
		if gone {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("journal: replay: %w", err)
	}
	defer f.Close()
	// Once open, the file stays readable even if retention deletes it now
	// (Unix semantics). Read only what was durable when Replay started:
	// beyond it the writer may be at work.
	r := newSegmentReader(f, s.first, s.size)
	for {
		seq, t, rec, err := r.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if _, ok := errors.AsType[*CorruptionError](err); ok {
				j.corruption(err)
			}
			return fmt.Errorf("journal: replay: %w", err)
		}
		if seq < from {
			continue
		}
		if err := fn(seq, time.Unix(0, t), rec); err != nil {
			return err
		}
	}
}

// Close stops accepting Appends and MarkDelivered calls, waits for those in
// progress (including every Append already handed to the writer, which is
// completed), fsyncs and closes the active segment and unregisters the
// metrics. It does not wait for Replay, which may finish reading after
// Close. Close is idempotent; every call returns the first call's result.
func (j *Journal) Close() error {
	j.closeOnce.Do(func() {
		j.mu.Lock()
		j.closed = true
		j.mu.Unlock()
		j.ops.Wait() // no Append is about to send on j.in any more
		close(j.in)
		<-j.done
		j.closeErr = j.closeActive()
		if j.reg != nil {
			j.metrics.unregister(j.reg)
		}
	})
	return j.closeErr
}

// updateGaugesLocked publishes sizes and the undelivered count. j.mu must be held.
func (j *Journal) updateGaugesLocked() {
	j.metrics.bytes.Set(float64(j.bytes))
	j.metrics.segments.Set(float64(len(j.segs)))
	j.metrics.undelivered.Set(float64(j.lastSeq - j.delivered))
}

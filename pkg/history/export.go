package history

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// File describes one Parquet file of an export.
type File struct {
	Path    string    `json:"-"`    // final path; until Commit the file is at its pending name
	Date    string    `json:"date"` // the partition, YYYY-MM-DD
	Rows    int64     `json:"rows"`
	Bytes   int64     `json:"bytes"`
	MinTime time.Time `json:"min_time,omitzero"` // least non-null time; zero if all are null
	MaxTime time.Time `json:"max_time,omitzero"` // greatest non-null time
}

type state int

const (
	writing    state = iota // Write and Prepare allowed
	prepared                // files durable; Commit, Abort and Read allowed
	committing              // Commit failed part way; only Commit allowed
	finished                // committed or aborted
)

func (st state) String() string {
	return [...]string{"writing", "prepared", "committing", "finished"}[st]
}

// Export moves one table's rows older than a cutoff into the history; see
// the package documentation for its steps. Its methods are safe for
// concurrent use but serialize; one goroutine is expected to drive it.
//
// After a failed Write or Prepare the export is broken: later calls return
// the same error and only Abort helps. A failed Commit may be retried, and
// must be: after Commit was called, Abort refuses, because the caller has
// deleted the rows from Deephaven. Abort after a successful Commit does
// nothing, so that it can be deferred.
type Export struct {
	s         *Store
	ts        *tableState
	table     string
	stem      string
	cutoff    time.Time
	timeCol   string
	recovered bool // found by Open

	mu      sync.Mutex // guards the fields below
	state   state
	err     error         // sticky Write or Prepare error
	in      *arrow.Schema // last incoming schema, to skip the check when unchanged
	schema  *arrow.Schema // the written schema: incoming without metadata
	timeIdx int
	perDay  int64 // time column units per day
	limit   int64 // the cutoff in time column units, rounded up
	unit    time.Duration
	nullDay int64 // the cutoff's day, for rows with a null time
	writers map[int64]*dateWriter
	files   []File // from Prepare or the manifest
}

// dateWriter writes one date's pending file.
type dateWriter struct {
	path     string // pending path
	f        *os.File
	buf      *bufio.Writer
	fw       *pqarrow.FileWriter
	rows     int64
	min, max int64 // in time column units, valid if hasTime
	hasTime  bool
}

const nanosPerDay = int64(24 * time.Hour)

func newExport(s *Store, ts *tableState, table, stem, timeCol string) *Export {
	cutoff, _ := parseStem(stem)
	return &Export{
		s: s, ts: ts, table: table, stem: stem, cutoff: cutoff, timeCol: timeCol,
		nullDay: floorDiv(cutoff.UnixNano(), nanosPerDay),
		writers: make(map[int64]*dateWriter),
	}
}

// Table returns the table being exported.
func (e *Export) Table() string { return e.table }

// Cutoff returns the export's cutoff: it holds rows older than this.
func (e *Export) Cutoff() time.Time { return e.cutoff }

// Files returns the export's files once prepared (or recovered by Open),
// sorted by date. The caller may keep the slice.
func (e *Export) Files() []File {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.files)
}

// check returns why the export cannot do op in its state.
func (e *Export) check(op string, allowed ...state) error {
	if e.s.isClosed() {
		return ErrClosed
	}
	if e.err != nil {
		return e.err
	}
	if !slices.Contains(allowed, e.state) {
		return fmt.Errorf("history: %s %s: export is %s", op, e.table, e.state)
	}
	return nil
}

// fail makes err the export's sticky error.
func (e *Export) fail(op string, err error) error {
	e.s.metrics.errors.WithLabelValues(e.table, op).Inc()
	e.err = fmt.Errorf("history: %s %s: %w", op, e.table, err)
	return e.err
}

// Write appends the rows of rec to the files of their dates. All records
// of an export must have the same columns (metadata may differ), and all
// times must be before the cutoff: the cursor promises that. rec is not
// retained after Write returns.
func (e *Export) Write(ctx context.Context, rec arrow.RecordBatch) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.check(opWrite, writing); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("history: write %s: %w", e.table, err)
	}
	if err := e.write(rec); err != nil {
		return e.fail(opWrite, err)
	}
	return nil
}

func (e *Export) write(rec arrow.RecordBatch) error {
	if err := e.useSchema(rec.Schema()); err != nil {
		return err
	}
	n := int(rec.NumRows())
	if n == 0 {
		return nil
	}
	out := array.NewRecordBatch(e.schema, rec.Columns(), rec.NumRows())
	defer out.Release()
	col := rec.Column(e.timeIdx).(*array.Timestamp)
	vals := col.TimestampValues()
	for i, v := range vals {
		if int64(v) >= e.limit && col.IsValid(i) {
			return fmt.Errorf("row time %v is not before the cutoff %v", time.Unix(0, int64(v)*int64(e.unit)).UTC(), e.cutoff)
		}
	}
	day := func(i int) int64 {
		if col.IsNull(i) {
			return e.nullDay
		}
		return floorDiv(int64(vals[i]), e.perDay)
	}
	// Write each run of consecutive rows of one date to that date's file.
	// Rows come mostly in time order, so runs are long, and each is written
	// as a zero-copy slice.
	start, cur := 0, day(0)
	for i := 1; i <= n; i++ {
		var next int64
		if i < n {
			if next = day(i); next == cur {
				continue
			}
		}
		w, err := e.writer(cur)
		if err != nil {
			return err
		}
		part := out
		if start > 0 || i < n {
			part = out.NewSlice(int64(start), int64(i))
		}
		err = w.fw.WriteBuffered(part)
		if part != out {
			part.Release()
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", w.path, err)
		}
		w.rows += int64(i - start)
		for j := start; j < i; j++ {
			if col.IsValid(j) {
				w.addTime(int64(vals[j]))
			}
		}
		start, cur = i, next
	}
	return nil
}

func (w *dateWriter) addTime(v int64) {
	if !w.hasTime {
		w.min, w.max, w.hasTime = v, v, true
		return
	}
	w.min, w.max = min(w.min, v), max(w.max, v)
}

// useSchema checks an incoming schema and, on the first record, derives
// the written schema from it.
func (e *Export) useSchema(in *arrow.Schema) error {
	if in == e.in {
		return nil
	}
	out := withoutMetadata(in)
	if e.schema != nil {
		if !out.Equal(e.schema) {
			return fmt.Errorf("schema changed within the export: was %s, now %s", e.schema, out)
		}
		e.in = in
		return nil
	}
	idx := in.FieldIndices(e.timeCol)
	if len(idx) != 1 {
		return fmt.Errorf("time column %q: found %d times in %s", e.timeCol, len(idx), out)
	}
	tt, ok := in.Field(idx[0]).Type.(*arrow.TimestampType)
	if !ok {
		return fmt.Errorf("time column %q is %s, not a timestamp", e.timeCol, in.Field(idx[0]).Type)
	}
	e.in, e.schema, e.timeIdx = in, out, idx[0]
	e.unit = tt.Unit.Multiplier()
	e.perDay = nanosPerDay / int64(e.unit)
	e.limit = -floorDiv(-e.cutoff.UnixNano(), int64(e.unit))
	return nil
}

// withoutMetadata returns s without schema and field metadata: Deephaven's
// deephaven:* keys describe the live table, and pqarrow would copy schema
// metadata into every file.
func withoutMetadata(s *arrow.Schema) *arrow.Schema {
	fields := slices.Clone(s.Fields())
	for i := range fields {
		fields[i].Metadata = arrow.Metadata{}
	}
	return arrow.NewSchema(fields, nil)
}

// writer returns the writer of a date, creating its pending file.
func (e *Export) writer(day int64) (*dateWriter, error) {
	if w := e.writers[day]; w != nil {
		return w, nil
	}
	dir := filepath.Join(e.s.dir, e.table, dateDir(day))
	w := &dateWriter{path: filepath.Join(dir, pendingName(e.stem))}
	e.ts.dirMu.Lock()
	err := os.MkdirAll(dir, 0o755)
	if err == nil {
		// O_EXCL: the name is new; never overwrite history.
		w.f, err = os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	}
	e.ts.dirMu.Unlock()
	if err != nil {
		return nil, err
	}
	// The bufio.Writer also hides f's Close from pqarrow, which would close
	// f before we fsync it.
	w.buf = bufio.NewWriterSize(w.f, 1<<20)
	w.fw, err = pqarrow.NewFileWriter(e.schema, w.buf, e.s.props, pqarrow.DefaultWriterProps())
	if err != nil {
		w.f.Close()
		os.Remove(w.path)
		return nil, fmt.Errorf("start %s: %w", w.path, err)
	}
	e.writers[day] = w
	return w, nil
}

// close finishes the file and makes its content durable.
func (w *dateWriter) close() error {
	if w.f == nil {
		return nil
	}
	err := w.fw.Close()
	if err == nil {
		err = w.buf.Flush()
	}
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if err != nil {
		return fmt.Errorf("close %s: %w", w.path, err)
	}
	return nil
}

// Prepare finishes the pending files and makes them durable, together
// with the manifest that lets Open recover the export after a crash. It
// returns the files, sorted by date; an export without rows has none. Only
// after Prepare returned may the caller delete the rows from Deephaven.
func (e *Export) Prepare(ctx context.Context) ([]File, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.check(opPrepare, writing); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("history: prepare %s: %w", e.table, err)
	}
	if err := e.prepare(ctx); err != nil {
		return nil, e.fail(opPrepare, err)
	}
	e.state = prepared
	return slices.Clone(e.files), nil
}

func (e *Export) prepare(ctx context.Context) error {
	days := slices.Sorted(maps.Keys(e.writers))
	files := make([]File, 0, len(days))
	for _, day := range days {
		if err := ctx.Err(); err != nil {
			return err
		}
		w := e.writers[day]
		if err := w.close(); err != nil {
			return err
		}
		info, err := os.Stat(w.path)
		if err != nil {
			return err
		}
		dir := filepath.Dir(w.path)
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("sync %s: %w", dir, err)
		}
		f := File{
			Path:  filepath.Join(dir, committedName(e.stem)),
			Date:  dateDir(day)[len(datePrefix):],
			Rows:  w.rows,
			Bytes: info.Size(),
		}
		if w.hasTime {
			f.MinTime = time.Unix(0, w.min*int64(e.unit)).UTC()
			f.MaxTime = time.Unix(0, w.max*int64(e.unit)).UTC()
		}
		files = append(files, f)
	}
	e.files = files
	if len(files) == 0 {
		return nil // nothing to recover; Commit only advances the cursor
	}
	// Also makes the new date directories' entries durable.
	return writeManifest(e.manifestPath(), manifest{
		Table: e.table, Cutoff: e.cutoff.Format(time.RFC3339Nano), TimeColumn: e.timeCol, Files: files,
	})
}

func (e *Export) tableDir() string     { return filepath.Join(e.s.dir, e.table) }
func (e *Export) manifestPath() string { return filepath.Join(e.tableDir(), manifestName(e.stem)) }
func (e *Export) pendingPath(f File) string {
	return filepath.Join(filepath.Dir(f.Path), pendingName(e.stem))
}

// Commit makes the prepared files visible under their final names, durably,
// and advances the table's cursor to the export's cutoff. Call it only after
// the rows are deleted from Deephaven. If it fails, call it again.
func (e *Export) Commit(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.check(opCommit, prepared, committing); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("history: commit %s: %w", e.table, err)
	}
	e.state = committing
	if err := e.commit(); err != nil {
		e.s.metrics.errors.WithLabelValues(e.table, opCommit).Inc()
		return fmt.Errorf("history: commit %s: %w", e.table, err)
	}
	return nil
}

// commit renames, fsyncs, advances the cursor and removes the manifest. It
// is idempotent, so that a failed or interrupted commit can be redone.
func (e *Export) commit() error {
	var dirs []string
	for _, f := range e.files {
		if err := os.Rename(e.pendingPath(f), f.Path); err != nil {
			if done, _ := exists(f.Path); !errors.Is(err, fs.ErrNotExist) || !done {
				return err
			}
		}
		dirs = append(dirs, filepath.Dir(f.Path))
	}
	for _, dir := range dirs {
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("sync %s: %w", dir, err)
		}
	}
	// The file names carry the cutoff too; the cursor file keeps it also for
	// exports without rows and after Prune.
	cur, ok, err := readCursor(filepath.Join(e.tableDir(), cursorFile))
	if err != nil || !ok || e.cutoff.After(cur) {
		if err := writeCursor(filepath.Join(e.tableDir(), cursorFile), e.cutoff); err != nil {
			return fmt.Errorf("write cursor: %w", err)
		}
	}
	if err := removeIfExists(e.manifestPath()); err != nil {
		return err
	}
	if err := syncDir(e.tableDir()); err != nil {
		return err
	}
	e.s.advanceCursor(e.ts, e.cutoff)
	e.s.metrics.committed(e.table, e.files)
	e.finish()
	return nil
}

// Abort removes the export's files and manifest. The rows must still be in
// Deephaven. It refuses once Commit was called, and does nothing after the
// export was committed or aborted.
func (e *Export) Abort() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.state == finished:
		return nil
	case e.state == committing:
		return fmt.Errorf("history: abort %s: commit already started; call Commit again", e.table)
	case e.s.isClosed():
		return ErrClosed
	}
	if err := e.abortLocked(); err != nil {
		e.s.metrics.errors.WithLabelValues(e.table, opAbort).Inc()
		return fmt.Errorf("history: abort %s: %w", e.table, err)
	}
	return nil
}

// abortLocked removes the manifest first, durably: pending files without a
// manifest are removed by Open, should removing them here fail or be lost.
func (e *Export) abortLocked() error {
	// A Prepare that failed at its very end may have left the manifest.
	switch err := os.Remove(e.manifestPath()); {
	case err == nil:
		if err := syncDir(e.tableDir()); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	var errs []error
	var paths []string
	for _, w := range e.writers {
		if w.f != nil {
			w.fw.Close() // only to release its buffers; the file goes anyway
			w.f.Close()
			w.f = nil
		}
		paths = append(paths, w.path)
	}
	for _, f := range e.files {
		paths = append(paths, e.pendingPath(f))
	}
	for _, p := range paths {
		if err := removeIfExists(p); err != nil {
			errs = append(errs, err)
		}
	}
	// Remove the date directories written to, if now empty.
	e.ts.dirMu.Lock()
	for _, p := range paths {
		os.Remove(filepath.Dir(p))
	}
	e.ts.dirMu.Unlock()
	e.finish()
	return errors.Join(errs...)
}

// finish releases the table for the next export.
func (e *Export) finish() {
	e.state = finished
	e.s.mu.Lock()
	defer e.s.mu.Unlock()
	e.ts.exports = slices.DeleteFunc(e.ts.exports, func(x *Export) bool { return x == e })
}

// Read calls fn with the rows of the prepared export, file by file in date
// order, each file in the order written, in batches of at most 64Ki rows.
// The records are released when fn returns; fn must retain what it keeps.
// Read stops at fn's first error and returns it.
func (e *Export) Read(ctx context.Context, fn func(arrow.RecordBatch) error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.check("read", prepared); err != nil {
		return err
	}
	for _, f := range e.files {
		if err := readParquet(ctx, e.pendingPath(f), fn); err != nil {
			return fmt.Errorf("history: read %s: %w", e.table, err)
		}
	}
	return nil
}

// readParquet streams a Parquet file's rows to fn.
func readParquet(ctx context.Context, path string, fn func(arrow.RecordBatch) error) error {
	r, err := file.OpenParquetFile(path, false)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer r.Close()
	fr, err := pqarrow.NewFileReader(r, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	defer rr.Release()
	for rr.Next() {
		if err := fn(rr.RecordBatch()); err != nil {
			return err
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// floorDiv divides rounding towards negative infinity, so that times
// before 1970 get the right day.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

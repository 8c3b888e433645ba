// Package history keeps the rows that left the bridge's live Deephaven
// tables as Parquet files on local disk, so that the tables' memory stays
// bounded (retention.live) without forgetting the past.
//
// Periodically, per table, the caller freezes the rows older than a cutoff
// in Deephaven and moves them here in two phases:
//
//	e, err := store.Begin(ctx, "Metrics", cutoff, "PrometheusDateTime")
//	defer e.Abort()               // a no-op once committed
//	for each record batch of the frozen rows: e.Write(ctx, rec)
//	files, err := e.Prepare(ctx)  // durable, not yet visible to readers
//	delete the rows from Deephaven
//	err = e.Commit(ctx)           // visible
//
// Write splits the rows by the UTC date of the time column, one file per
// date touched; rows whose time is null go to the cutoff's date. It streams:
// each date has one open Parquet writer that holds at most one row group
// (Options.RowGroupRows rows) in memory.
//
// # Layout
//
//	<dir>/<table>/date=YYYY-MM-DD/<stem>.parquet          committed file
//	<dir>/<table>/date=YYYY-MM-DD/.<stem>.parquet.pending  file of an unfinished export
//	<dir>/<table>/.<stem>.prepared                         manifest of a prepared export
//	<dir>/<table>/.cursor                                  greatest committed cutoff
//
// <stem> is "<cutoff>_<id>": the export's cutoff in UTC as
// 20060102T150405.000000000Z (fixed width, so names sort by cutoff, and
// no colons) and 16 random hex digits that tell exports with the same
// cutoff apart. The tree is Hive-style (key=value) partitioned: Deephaven
// reads it with parquet.read(dir+"/"+table, file_layout=KV_PARTITIONED), and
// pyarrow, pandas and DuckDB (hive_partitioning) read it too; all get a
// "date" column from the directory names, so tables must not have a column
// of that name. They all skip hidden files, so pending files, manifests and
// the cursor are never read as data. Table names are letters, digits and
// underscores ([ValidTable]).
//
// Files are Parquet format 2.6 (needed for nanosecond timestamps) with
// version 1 data pages, zstd compression, dictionary encoding and column
// statistics. Arrow types map as pqarrow maps them: timestamp[ns, tz=UTC]
// becomes TIMESTAMP(isAdjustedToUTC=true, NANOS), which every reader above
// reads as a UTC instant (Deephaven: Instant), utf8 becomes STRING. Schema
// and field metadata are not written (Deephaven's deephaven:* keys describe
// the live table, not the file, and Deephaven's Parquet reader goes by the
// Parquet types), nor is the Arrow schema. All files of a table should have
// the same columns: Deephaven's reader takes them from one file.
//
// # Crash safety
//
// Prepare closes and fsyncs every pending file and its directory and then
// writes the export's manifest atomically. The manifest marks the point
// after which the caller may have deleted the rows from Deephaven, and Open
// acts on it after a crash:
//
//   - Pending files without a manifest belong to an export that did not get
//     through Prepare, so its rows are still in Deephaven. The files were
//     never fsynced and may be truncated: Open removes them with a warning.
//   - A manifest whose files are all pending: the caller may or may not
//     have deleted the rows. Open reports the export in [Store.Pending]; the
//     caller checks whether Deephaven still holds the rows and calls Commit
//     or Abort. A listed file that is missing, is not valid Parquet or has
//     the wrong number of rows is removed with a warning and left out.
//   - A manifest some of whose files were already renamed: Commit was under
//     way, which the caller starts only after deleting the rows, so Open
//     finishes it.
//
// Commit renames the pending files to their final names, fsyncs their
// directories, advances the cursor and removes the manifest.
//
// Only one Store may use a directory at a time; this is not enforced.
package history

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("history: closed")
	// ErrBusy is returned by Begin while the table has an unfinished
	// export: one being written, prepared but not committed, or recovered
	// by Open and not yet committed or aborted.
	ErrBusy = errors.New("history: table has an unfinished export")
)

// DefaultRowGroupRows is the default of Options.RowGroupRows.
const DefaultRowGroupRows = 128 << 10

// Options tune a Store. Zero values select the defaults.
type Options struct {
	// MaxAge (history.max_age): Prune deletes the files of dates that ended
	// longer ago than this. 0 keeps everything.
	MaxAge time.Duration
	// RowGroupRows bounds the rows of a Parquet row group (default
	// DefaultRowGroupRows). An export holds one open row group per date it
	// writes, so this bounds its memory.
	RowGroupRows int64

	// compression is the codec (default zstd); the benchmark compares.
	compression compress.Compression
}

// FileInfo describes a committed file.
type FileInfo struct {
	Path   string
	Date   string    // the partition, YYYY-MM-DD
	Cutoff time.Time // cutoff of the export that wrote it
	Bytes  int64
	Rows   int64 // from the Parquet footer
}

// tableState is what the store knows about one table directory.
type tableState struct {
	// dirMu serializes creating files in date directories against Prune
	// removing empty date directories.
	dirMu sync.Mutex

	// Guarded by Store.mu.
	exports   []*Export // unfinished: being written, prepared or recovered
	cursor    time.Time
	hasCursor bool
}

// Store is an open history directory.
//
// All methods of Store are safe for concurrent use. A table has at most one
// unfinished export at a time (Begin returns ErrBusy otherwise); exports of
// different tables are independent and may run concurrently. Prune may run
// alongside exports: it deletes committed files only.
type Store struct {
	dir     string
	opts    Options
	logger  *slog.Logger
	reg     prometheus.Registerer
	metrics *metrics
	props   *parquet.WriterProperties

	mu     sync.Mutex // guards the fields below and tableState's guarded fields
	closed bool
	tables map[string]*tableState
}

// Open opens the history in dir, creating dir if needed, and recovers what
// a crash left behind (see the package documentation): exports that need
// the caller's decision are then listed by Pending. Damaged files are never
// a reason to fail; Open fails only when the directory cannot be read or
// cleaned up. Its metrics are registered on reg unless reg is nil; Close
// unregisters them. A nil logger discards logs.
func Open(dir string, opts Options, logger *slog.Logger, reg prometheus.Registerer) (_ *Store, err error) {
	if opts.RowGroupRows <= 0 {
		opts.RowGroupRows = DefaultRowGroupRows
	}
	if opts.compression == compress.Codecs.Uncompressed {
		opts.compression = compress.Codecs.Zstd
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// Readable by all: the files are meant for other programs (Deephaven,
	// possibly in a container under another user).
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("history: create directory: %w", err)
	}
	s := &Store{
		dir:     dir,
		opts:    opts,
		logger:  logger,
		reg:     reg,
		metrics: newMetrics(),
		props: parquet.NewWriterProperties(
			parquet.WithVersion(parquet.V2_LATEST),
			parquet.WithDataPageVersion(parquet.DataPageV1),
			parquet.WithCompression(opts.compression),
			parquet.WithDictionaryDefault(true),
			parquet.WithStats(true),
			parquet.WithMaxRowGroupLength(opts.RowGroupRows),
			parquet.WithCreatedBy("prometheus-deephaven-bridge"),
		),
		tables: make(map[string]*tableState),
	}
	if reg != nil {
		if err := s.metrics.register(reg); err != nil {
			return nil, fmt.Errorf("history: register metrics: %w", err)
		}
		defer func() {
			if err != nil {
				s.metrics.unregister(reg)
			}
		}()
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	logger.Info("History opened", "dir", dir, "tables", len(s.tables), "pending_exports", len(s.Pending()))
	return s, nil
}

// table returns the state of a table, making it on first use. s.mu must be
// held, unless s is still being opened.
func (s *Store) table(name string) *tableState {
	ts := s.tables[name]
	if ts == nil {
		ts = &tableState{}
		s.tables[name] = ts
	}
	return ts
}

// Pending returns the exports that Open found prepared but neither
// committed nor aborted and that are still unresolved, sorted by table.
// For each, the caller checks whether Deephaven still holds its rows
// (Export.Files tells their time range; Export.Read reads them) and calls
// Commit if not, Abort if so. Until then Begin returns ErrBusy for the
// table.
func (s *Store) Pending() []*Export {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Export
	for _, ts := range s.tables {
		for _, e := range ts.exports {
			if e.recovered {
				out = append(out, e)
			}
		}
	}
	slices.SortFunc(out, func(a, b *Export) int {
		if c := cmp.Compare(a.table, b.table); c != 0 {
			return c
		}
		return cmp.Compare(a.stem, b.stem)
	})
	return out
}

// Begin starts an export of table's rows older than cutoff, split by the
// UTC date of the column timeColumn, which must be an Arrow timestamp.
// It returns ErrBusy while the table has an unfinished export.
func (s *Store) Begin(ctx context.Context, table string, cutoff time.Time, timeColumn string) (*Export, error) {
	if !ValidTable(table) {
		return nil, fmt.Errorf("history: begin: invalid table name %q", table)
	}
	if ns := cutoff.UnixNano(); !time.Unix(0, ns).Equal(cutoff) {
		return nil, fmt.Errorf("history: begin %s: cutoff %v out of range", table, cutoff)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("history: begin %s: %w", table, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	ts := s.table(table)
	if len(ts.exports) > 0 {
		s.mu.Unlock()
		return nil, ErrBusy
	}
	e := newExport(s, ts, table, newStem(cutoff), timeColumn)
	ts.exports = append(ts.exports, e)
	s.mu.Unlock()

	if err := s.makeTableDir(table); err != nil {
		e.finish()
		return nil, fmt.Errorf("history: begin %s: %w", table, err)
	}
	return e, nil
}

// makeTableDir creates a table's directory and makes its entry durable,
// so that files fsynced in it later cannot vanish with it.
func (s *Store) makeTableDir(table string) error {
	dir := filepath.Join(s.dir, table)
	if ok, err := exists(dir); err != nil || ok {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(s.dir)
}

// Cursor returns the greatest cutoff of a committed export of table, also
// of exports that wrote no rows or whose files were pruned; ok is false if
// there is none.
func (s *Store) Cursor(table string) (cutoff time.Time, ok bool, err error) {
	if !ValidTable(table) {
		return time.Time{}, false, fmt.Errorf("history: cursor: invalid table name %q", table)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return time.Time{}, false, ErrClosed
	}
	ts := s.tables[table]
	if ts == nil || !ts.hasCursor {
		return time.Time{}, false, nil
	}
	return ts.cursor, true, nil
}

// advanceCursor records a committed cutoff in memory.
func (s *Store) advanceCursor(ts *tableState, cutoff time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ts.hasCursor || cutoff.After(ts.cursor) {
		ts.cursor, ts.hasCursor = cutoff, true
	}
}

// Files lists table's committed files, sorted by date and then by cutoff.
// A table without files has none (no error).
func (s *Store) Files(table string) ([]FileInfo, error) {
	if !ValidTable(table) {
		return nil, fmt.Errorf("history: files: invalid table name %q", table)
	}
	if s.isClosed() {
		return nil, ErrClosed
	}
	var out []FileInfo
	err := s.walkDates(table, func(date string, dir string, _ time.Time) error {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, ent := range entries { // sorted by name, so by cutoff
			stem, pending, ok := parseFileName(ent.Name())
			if !ok || pending || !ent.Type().IsRegular() {
				continue
			}
			fi := FileInfo{Path: filepath.Join(dir, ent.Name()), Date: date}
			fi.Cutoff, _ = parseStem(stem)
			info, err := ent.Info()
			if err == nil {
				fi.Bytes = info.Size()
				fi.Rows, err = parquetRows(fi.Path)
			}
			if errors.Is(err, fs.ErrNotExist) {
				continue // pruned meanwhile
			}
			if err != nil {
				return err
			}
			out = append(out, fi)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("history: files of %s: %w", table, err)
	}
	return out, nil
}

// walkDates calls fn for each date directory of table, in date order. A
// missing table directory has none.
func (s *Store) walkDates(table string, fn func(date, dir string, day time.Time) error) error {
	tdir := filepath.Join(s.dir, table)
	entries, err := os.ReadDir(tdir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, ent := range entries {
		day, ok := parseDateDir(ent.Name())
		if !ok || !ent.IsDir() {
			continue
		}
		if err := fn(ent.Name()[len(datePrefix):], filepath.Join(tdir, ent.Name()), day); err != nil {
			return err
		}
	}
	return nil
}

// parquetRows reads the number of rows from a Parquet file's footer.
func parquetRows(path string) (int64, error) {
	r, err := file.OpenParquetFile(path, false)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	defer r.Close()
	return r.NumRows(), nil
}

// Prune deletes the committed files of dates that ended more than
// Options.MaxAge before now, and then their directories if empty. Files
// of unfinished exports are left alone. It deletes whole files only, so a
// file is kept as long as one of its rows is young enough. Deletions are
// not fsynced: a deletion lost in a crash is redone by the next Prune.
// Prune goes on after an error and returns all errors joined.
func (s *Store) Prune(ctx context.Context, now time.Time) error {
	if s.opts.MaxAge <= 0 {
		return nil
	}
	if s.isClosed() {
		return ErrClosed
	}
	tables, err := s.tableNames()
	if err != nil {
		return fmt.Errorf("history: prune: %w", err)
	}
	limit := now.Add(-s.opts.MaxAge)
	var errs []error
	for _, table := range tables {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, fmt.Errorf("history: prune: %w", err))...)
		}
		n, err := s.pruneTable(table, limit)
		if n > 0 {
			s.metrics.pruned.WithLabelValues(table).Add(float64(n))
			s.logger.Info("History files pruned", "table", table, "files", n, "older_than", limit)
		}
		if err != nil {
			s.metrics.errors.WithLabelValues(table, opPrune).Inc()
			errs = append(errs, fmt.Errorf("history: prune %s: %w", table, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Store) pruneTable(table string, limit time.Time) (deleted int, err error) {
	s.mu.Lock()
	ts := s.table(table)
	s.mu.Unlock()
	var errs []error
	err = s.walkDates(table, func(_, dir string, day time.Time) error {
		if day.AddDate(0, 0, 1).After(limit) {
			return nil
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		for _, ent := range entries {
			if _, pending, ok := parseFileName(ent.Name()); ok && !pending {
				if err := os.Remove(filepath.Join(dir, ent.Name())); err != nil {
					errs = append(errs, err)
					continue
				}
				deleted++
			}
		}
		ts.dirMu.Lock()
		defer ts.dirMu.Unlock()
		if left, err := os.ReadDir(dir); err == nil && len(left) == 0 {
			if err := os.Remove(dir); err != nil {
				errs = append(errs, err)
			}
		}
		return nil
	})
	return deleted, errors.Join(append(errs, err)...)
}

// tableNames lists the table directories.
func (s *Store) tableNames() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, ent := range entries {
		if ent.IsDir() && ValidTable(ent.Name()) {
			names = append(names, ent.Name())
		}
	}
	return names, nil
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close aborts exports that are still being written, waiting for a Write
// in progress to return, and unregisters the metrics. Prepared exports are
// left as they are, for the next Open to report or finish. Later calls of
// any method, including those of exports, return ErrClosed; Close itself
// is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var open []*Export
	for _, ts := range s.tables {
		open = append(open, ts.exports...)
	}
	s.mu.Unlock()

	var errs []error
	for _, e := range open {
		e.mu.Lock()
		if e.state == writing {
			errs = append(errs, e.abortLocked())
		}
		e.mu.Unlock()
	}
	if s.reg != nil {
		s.metrics.unregister(s.reg)
	}
	return errors.Join(errs...)
}

package history

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// sampleRows makes n rows, one a minute from start, with some nulls, NaNs
// and infinities. Keys are prefix plus the row number.
func sampleRows(prefix string, start time.Time, n int) []row {
	rows := make([]row, n)
	for i := range rows {
		ts := start.Add(time.Duration(i) * time.Minute).UnixNano()
		r := row{
			T:        ptr(ts),
			Query:    "up",
			Job:      "node",
			Instance: ptr("host-" + string(rune('a'+i%5)) + ":9100"),
			Value:    ptr(float64(i) + 0.25),
			Ingest:   ts + 1500,
			Labels:   `{instance="x",job="node"}`,
			Key:      prefix + string(rune('A'+i/26%26)) + string(rune('a'+i%26)),
		}
		switch i % 10 {
		case 3:
			r.Instance = nil
		case 4:
			r.Value = nil
		case 5:
			r.Value = ptr(math.NaN())
		case 6:
			r.Value = ptr(math.Inf(-1))
		}
		rows[i] = r
	}
	return rows
}

func TestExportSplitsByDate(t *testing.T) {
	dir := t.TempDir()
	s, reg := open(t, dir, Options{RowGroupRows: 100}, nil)
	cutoff := mustTime("2025-03-03T06:00:00Z")

	// 2025-03-01 22:00 to 2025-03-03 03:59, one row a minute: three dates,
	// batch boundaries inside dates and at none of the midnights.
	rows := sampleRows("k", mustTime("2025-03-01T22:00:00Z"), 30*60)
	// A late row of the first date among those of the second, a null time
	// (goes to the cutoff's date) and a time with nanoseconds.
	rows[200].T = ptr(mustTime("2025-03-01T23:59:59.999999999Z").UnixNano())
	rows[500].T = nil
	rows[501].T = ptr(mustTime("2025-03-02T08:20:00.123456789Z").UnixNano())

	want := map[string][]row{}
	for _, r := range rows {
		d := "2025-03-03"
		if r.T != nil {
			d = day(*r.T)
		}
		want[d] = append(want[d], r)
	}
	_, files := export(t, s, cutoff, rows[:7], rows[7:500], rows[500:1001], rows[1001:])

	// Nothing visible before Commit.
	tree := listTree(t, dir)
	if n := countMatching(tree, isCommitted); n != 0 {
		t.Fatalf("committed files before Commit: %v", tree)
	}
	if n := countMatching(tree, isPending); n != 3 {
		t.Fatalf("want 3 pending files, got %v", tree)
	}

	e := s.Pending() // fresh exports are not "pending" in the recovery sense
	if len(e) != 0 {
		t.Fatalf("Pending() = %d exports, want 0", len(e))
	}
	exp, err := s.Begin(context.Background(), table, cutoff, timeCol)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("second Begin: %v, %v; want ErrBusy", exp, err)
	}

	var dates []string
	for _, f := range files {
		dates = append(dates, f.Date)
	}
	if !slices.Equal(dates, []string{"2025-03-01", "2025-03-02", "2025-03-03"}) {
		t.Fatalf("dates %v", dates)
	}
	for _, f := range files {
		w := want[f.Date]
		if f.Rows != int64(len(w)) {
			t.Errorf("%s: %d rows, want %d", f.Date, f.Rows, len(w))
		}
		var lo, hi int64 = math.MaxInt64, math.MinInt64
		for _, r := range w {
			if r.T != nil {
				lo, hi = min(lo, *r.T), max(hi, *r.T)
			}
		}
		if f.MinTime.UnixNano() != lo || f.MaxTime.UnixNano() != hi {
			t.Errorf("%s: time range %v..%v, want %v..%v", f.Date, f.MinTime, f.MaxTime, time.Unix(0, lo).UTC(), time.Unix(0, hi).UTC())
		}
		wantPath := filepath.Join(dir, table, "date="+f.Date, "20250303T060000.000000000Z_")
		if !strings.HasPrefix(f.Path, wantPath) || !strings.HasSuffix(f.Path, ".parquet") {
			t.Errorf("path %s, want %s<id>.parquet", f.Path, wantPath)
		}
	}

	// Find the export again to commit it: Begin refused, so use the one
	// export() returned.
	commitOnly(t, s)

	for _, f := range files {
		checkRows(t, f.Date, readFile(t, f.Path), want[f.Date])
		checkParquetTypes(t, f.Path)
	}
	tree = listTree(t, dir)
	if n := countMatching(tree, func(n string) bool { return strings.HasPrefix(n, ".") && n != cursorFile }); n != 0 {
		t.Errorf("hidden files left after Commit: %v", tree)
	}

	infos, err := s.Files(table)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 {
		t.Fatalf("Files: %+v", infos)
	}
	for i, fi := range infos {
		st, _ := os.Stat(files[i].Path)
		if fi.Path != files[i].Path || fi.Date != files[i].Date || !fi.Cutoff.Equal(cutoff) || fi.Rows != files[i].Rows || fi.Bytes != st.Size() || fi.Bytes != files[i].Bytes {
			t.Errorf("Files()[%d] = %+v, want %+v", i, fi, files[i])
		}
	}
	if c, ok, err := s.Cursor(table); err != nil || !ok || !c.Equal(cutoff) {
		t.Errorf("Cursor = %v %v %v, want %v", c, ok, err, cutoff)
	}

	if got := testutil.ToFloat64(s.metrics.files.WithLabelValues(table)); got != 3 {
		t.Errorf("files_written_total = %v", got)
	}
	if got := testutil.ToFloat64(s.metrics.rows.WithLabelValues(table)); got != float64(len(rows)) {
		t.Errorf("rows_written_total = %v, want %d", got, len(rows))
	}
	var bytes int64
	for _, f := range files {
		bytes += f.Bytes
	}
	if got := testutil.ToFloat64(s.metrics.bytes.WithLabelValues(table)); got != float64(bytes) {
		t.Errorf("bytes_written_total = %v, want %d", got, bytes)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n == 0 {
		t.Errorf("gather: %d, %v", n, err)
	}
}

// commitOnly commits the single unfinished export of table.
func commitOnly(t testing.TB, s *Store) {
	t.Helper()
	s.mu.Lock()
	exps := slices.Clone(s.tables[table].exports)
	s.mu.Unlock()
	if len(exps) != 1 {
		t.Fatalf("%d unfinished exports", len(exps))
	}
	if err := exps[0].Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// checkParquetTypes checks the Parquet schema of a file: UTC nanosecond
// timestamps, strings, doubles, and no Deephaven metadata.
func checkParquetTypes(t testing.TB, path string) {
	t.Helper()
	r, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sc := r.MetaData().Schema
	for _, name := range []string{"PrometheusDateTime", "MetricIngestDateTime"} {
		lt, ok := sc.Column(sc.ColumnIndexByName(name)).LogicalType().(schema.TimestampLogicalType)
		if !ok || !lt.IsAdjustedToUTC() || lt.TimeUnit() != schema.TimeUnitNanos {
			t.Errorf("%s: logical type %v, want TIMESTAMP(isAdjustedToUTC=true, NANOS)", name, sc.Column(sc.ColumnIndexByName(name)).LogicalType())
		}
	}
	if _, ok := sc.Column(sc.ColumnIndexByName("Job")).LogicalType().(schema.StringLogicalType); !ok {
		t.Errorf("Job: logical type %v, want STRING", sc.Column(sc.ColumnIndexByName("Job")).LogicalType())
	}
	for _, kv := range r.MetaData().KeyValueMetadata().Keys() {
		if strings.HasPrefix(kv, "deephaven:") || kv == "ARROW:schema" {
			t.Errorf("file metadata has key %s", kv)
		}
	}
	fr, err := pqarrow.NewFileReader(r, pqarrow.ArrowReadProperties{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	as, err := fr.Schema()
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range as.Fields() {
		want := withoutMetadata(metricSchema).Field(i)
		// pqarrow's reader adds PARQUET:field_id; nothing else may be there.
		if !arrow.TypeEqual(f.Type, want.Type) || f.Name != want.Name || f.Metadata.Len() > 1 {
			t.Errorf("field %d: %v, want %v", i, f, want)
		}
	}
}

func TestExportErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t, t.TempDir(), Options{}, nil)
	cutoff := mustTime("2025-03-03T00:00:00Z")
	for _, name := range []string{"", "a/b", "..", "a-b", "ä", strings.Repeat("x", 129)} {
		if _, err := s.Begin(ctx, name, cutoff, timeCol); err == nil {
			t.Errorf("Begin(%q) succeeded", name)
		}
		if _, _, err := s.Cursor(name); err == nil {
			t.Errorf("Cursor(%q) succeeded", name)
		}
	}
	if _, err := s.Begin(ctx, table, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), timeCol); err == nil {
		t.Error("Begin with a cutoff beyond int64 nanoseconds succeeded")
	}

	// A row at the cutoff is not older than it.
	e, err := s.Begin(ctx, table, cutoff, timeCol)
	if err != nil {
		t.Fatal(err)
	}
	rec := record(sampleRows("k", cutoff.Add(-time.Minute), 2))
	if err := e.Write(ctx, rec); err == nil || !strings.Contains(err.Error(), "not before the cutoff") {
		t.Errorf("Write of a row at the cutoff: %v", err)
	}
	rec.Release()
	e.Abort()

	for _, col := range []string{"NoSuchColumn", "Job"} {
		e, err := s.Begin(ctx, table, cutoff, col)
		if err != nil {
			t.Fatal(err)
		}
		rec := record(sampleRows("k", cutoff, 3))
		err = e.Write(ctx, rec)
		rec.Release()
		if err == nil {
			t.Errorf("Write with time column %s succeeded", col)
		}
		if _, err2 := e.Prepare(ctx); err2 == nil || err2.Error() != err.Error() {
			t.Errorf("Prepare after a failed Write: %v, want %v", err2, err)
		}
		if err := e.Abort(); err != nil {
			t.Fatal(err)
		}
	}

	// A schema change within an export.
	e, err = s.Begin(ctx, table, cutoff, timeCol)
	if err != nil {
		t.Fatal(err)
	}
	rec = record(sampleRows("k", cutoff.Add(-time.Hour), 3))
	if err := e.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	rec = record(sampleRows("k", cutoff.Add(-time.Hour), 3))
	narrow := array.NewRecordBatch(arrow.NewSchema(metricSchema.Fields()[:7], nil), rec.Columns()[:7], rec.NumRows())
	rec.Release()
	if err := e.Write(ctx, narrow); err == nil || !strings.Contains(err.Error(), "schema changed") {
		t.Errorf("Write with another schema: %v", err)
	}
	narrow.Release()
	if err := e.Commit(ctx); err == nil {
		t.Error("Commit before Prepare succeeded")
	}
	if err := e.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := e.Abort(); err != nil {
		t.Errorf("second Abort: %v", err)
	}
	if tree := listTree(t, s.dir); len(tree) != 0 {
		t.Errorf("files left after Abort: %v", tree)
	}
	if got := testutil.ToFloat64(s.metrics.errors.WithLabelValues(table, opWrite)); got != 4 {
		t.Errorf("errors_total{op=write} = %v, want 4", got)
	}
}

func TestAbortAndEmptyExport(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, _ := open(t, dir, Options{}, nil)
	cutoff := mustTime("2025-03-03T00:00:00Z")

	e, files := export(t, s, cutoff, sampleRows("k", cutoff.Add(-25*time.Hour), 100))
	if len(files) != 2 {
		t.Fatalf("%d files", len(files))
	}
	if err := e.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := e.Commit(ctx); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	if tree := listTree(t, dir); len(tree) != 0 {
		t.Errorf("files left after Abort: %v", tree)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, table)); len(entries) != 0 {
		t.Errorf("directories left after Abort: %v", entries)
	}
	if _, ok, _ := s.Cursor(table); ok {
		t.Error("Cursor set by an aborted export")
	}

	// An export without rows commits nothing but its cutoff.
	e, files = export(t, s, cutoff)
	if len(files) != 0 {
		t.Fatalf("empty export has files %v", files)
	}
	if err := e.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Abort(); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	if c, ok, _ := s.Cursor(table); !ok || !c.Equal(cutoff) {
		t.Errorf("Cursor = %v %v, want %v", c, ok, cutoff)
	}
	if tree := listTree(t, dir); !slices.Equal(tree, []string{filepath.Join(table, cursorFile)}) {
		t.Errorf("tree after an empty export: %v", tree)
	}
}

func TestCursorAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, _ := open(t, dir, Options{MaxAge: 24 * time.Hour}, nil)
	c1 := mustTime("2025-03-03T00:00:00Z")
	c2 := mustTime("2025-03-03T01:00:00.5Z")
	for _, c := range []time.Time{c1, c2} {
		e, _ := export(t, s, c, sampleRows(c.String(), c.Add(-time.Hour), 10))
		if err := e.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// An older cutoff committed later does not move the cursor back.
	e, _ := export(t, s, c1.Add(-time.Hour), sampleRows("late", c1.Add(-2*time.Hour), 10))
	if err := e.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, _ = open(t, dir, Options{}, nil)
	if c, ok, err := s.Cursor(table); err != nil || !ok || !c.Equal(c2) {
		t.Errorf("Cursor after restart = %v %v %v, want %v", c, ok, err, c2)
	}
	if _, ok, err := s.Cursor("other"); err != nil || ok {
		t.Errorf("Cursor of an unknown table: %v %v", ok, err)
	}
	s.Close()

	// Without the cursor file, the file names tell.
	if err := os.Remove(filepath.Join(dir, table, cursorFile)); err != nil {
		t.Fatal(err)
	}
	s, _ = open(t, dir, Options{}, nil)
	if c, ok, _ := s.Cursor(table); !ok || !c.Equal(c2) {
		t.Errorf("Cursor from file names = %v %v, want %v", c, ok, c2)
	}
	// An empty export moves it on, and it survives pruning everything.
	e, _ = export(t, s, c2.Add(time.Hour))
	if err := e.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, _ = open(t, dir, Options{MaxAge: time.Hour}, nil)
	if err := s.Prune(ctx, c2.Add(30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if infos, _ := s.Files(table); len(infos) != 0 {
		t.Fatalf("files left after pruning: %v", infos)
	}
	s.Close()
	s, _ = open(t, dir, Options{}, nil)
	if c, ok, _ := s.Cursor(table); !ok || !c.Equal(c2.Add(time.Hour)) {
		t.Errorf("Cursor after empty export, prune and restart = %v %v, want %v", c, ok, c2.Add(time.Hour))
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, _ := open(t, dir, Options{MaxAge: 48 * time.Hour}, nil)
	d := mustTime("2025-03-10T00:00:00Z")
	// One export per date D-5, D-3, D-1 and D, each a few rows at noon.
	for _, ago := range []int{5, 3, 1, 0} {
		start := d.AddDate(0, 0, -ago).Add(12 * time.Hour)
		e, _ := export(t, s, start.Add(time.Hour), sampleRows("k", start, 5))
		if err := e.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// An unfinished export writing to an old date keeps its pending file.
	e, err := s.Begin(ctx, table, d, timeCol)
	if err != nil {
		t.Fatal(err)
	}
	rec := record(sampleRows("late", d.AddDate(0, 0, -5), 3))
	if err := e.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()

	// At D 12:00 with 48h, dates that ended by D-2 12:00 go: D-5 and D-3.
	now := d.Add(12 * time.Hour)
	if err := s.Prune(ctx, now); err != nil {
		t.Fatal(err)
	}
	infos, err := s.Files(table)
	if err != nil {
		t.Fatal(err)
	}
	var dates []string
	for _, fi := range infos {
		dates = append(dates, fi.Date)
	}
	if !slices.Equal(dates, []string{"2025-03-09", "2025-03-10"}) {
		t.Errorf("dates after Prune: %v", dates)
	}
	if got := testutil.ToFloat64(s.metrics.pruned.WithLabelValues(table)); got != 2 {
		t.Errorf("files_pruned_total = %v, want 2", got)
	}
	if _, err := os.Stat(filepath.Join(dir, table, "date=2025-03-07")); !os.IsNotExist(err) {
		t.Errorf("empty date directory left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, table, "date=2025-03-05")); err != nil {
		t.Errorf("date directory of an unfinished export removed: %v", err)
	}
	if _, err := e.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// Now it is committed and old: the next Prune takes it and its directory.
	if err := s.Prune(ctx, now); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, table, "date=2025-03-05")); !os.IsNotExist(err) {
		t.Errorf("date directory left: %v", err)
	}

	// MaxAge 0 keeps everything.
	s.Close()
	s, _ = open(t, dir, Options{}, nil)
	if err := s.Prune(ctx, now.AddDate(10, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if infos, _ := s.Files(table); len(infos) != 2 {
		t.Errorf("MaxAge 0 pruned: %v", infos)
	}
}

func TestClose(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	s, err := Open(dir, Options{}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	cutoff := mustTime("2025-03-03T00:00:00Z")
	e, err := s.Begin(ctx, table, cutoff, timeCol)
	if err != nil {
		t.Fatal(err)
	}
	rec := record(sampleRows("k", cutoff.Add(-time.Hour), 10))
	defer rec.Release()
	if err := e.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := e.Write(ctx, rec); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if _, err := s.Begin(ctx, table, cutoff, timeCol); !errors.Is(err, ErrClosed) {
		t.Errorf("Begin after Close: %v", err)
	}
	if tree := listTree(t, dir); len(tree) != 0 {
		t.Errorf("Close left the files of an unprepared export: %v", tree)
	}
	// Close unregistered the metrics, so the registry takes a new store's.
	s, err = Open(dir, Options{}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

func TestDays(t *testing.T) {
	for _, tc := range []struct {
		ns   int64
		want string
	}{
		{0, "date=1970-01-01"},
		{-1, "date=1969-12-31"},
		{-nanosPerDay, "date=1969-12-31"},
		{-nanosPerDay - 1, "date=1969-12-30"},
		{mustTime("2025-03-02T23:59:59.999999999Z").UnixNano(), "date=2025-03-02"},
		{mustTime("2025-03-03T00:00:00Z").UnixNano(), "date=2025-03-03"},
	} {
		if got := dateDir(floorDiv(tc.ns, nanosPerDay)); got != tc.want {
			t.Errorf("%d: %s, want %s", tc.ns, got, tc.want)
		}
	}
}

// TestConcurrentTables runs exports of several tables at once, with Prune,
// Files and Cursor alongside (run with -race).
func TestConcurrentTables(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, _ := open(t, dir, Options{MaxAge: 24 * time.Hour, RowGroupRows: 64}, nil)
	base := mustTime("2025-03-01T00:00:00Z")
	tables := []string{"a", "b", "c"}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for _, tb := range tables {
		wg.Go(func() {
			for i := range 5 {
				cutoff := base.Add(time.Duration(i+1) * 12 * time.Hour)
				e, err := s.Begin(ctx, tb, cutoff, timeCol)
				if err != nil {
					errs <- err
					return
				}
				rec := record(sampleRows(tb, cutoff.Add(-12*time.Hour), 700))
				err = e.Write(ctx, rec)
				rec.Release()
				if err == nil {
					_, err = e.Prepare(ctx)
				}
				if err == nil {
					err = e.Commit(ctx)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if err := s.Prune(ctx, base.Add(48*time.Hour)); err != nil {
				errs <- err
			}
			for _, tb := range tables {
				if _, err := s.Files(tb); err != nil {
					errs <- err
				}
				if _, _, err := s.Cursor(tb); err != nil {
					errs <- err
				}
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, tb := range tables {
		if c, ok, _ := s.Cursor(tb); !ok || !c.Equal(base.Add(60*time.Hour)) {
			t.Errorf("%s: Cursor = %v %v", tb, c, ok)
		}
	}
}

package history

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A crash is simulated by opening a second store on the directory while
// the first one is left as it was: no Close, no further calls.

// TestPreparedExportSurvivesCrash: Prepare, crash, reopen; the export is
// pending, readable, blocks Begin, and is committed or aborted.
func TestPreparedExportSurvivesCrash(t *testing.T) {
	for _, decision := range []string{"commit", "abort"} {
		t.Run(decision, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			s1, _ := open(t, dir, Options{RowGroupRows: 50}, nil)
			cutoff := mustTime("2025-03-03T06:00:00Z")
			rows := sampleRows("k", mustTime("2025-03-02T20:00:00Z"), 300) // two dates
			_, files := export(t, s1, cutoff, rows[:120], rows[120:])

			var logs logBuffer
			s2, reg := open(t, dir, Options{}, &logs)
			pend := s2.Pending()
			if len(pend) != 1 {
				t.Fatalf("Pending() = %d exports, want 1; log:\n%s", len(pend), logs.String())
			}
			e := pend[0]
			if e.Table() != table || !e.Cutoff().Equal(cutoff) {
				t.Errorf("pending export %s %v", e.Table(), e.Cutoff())
			}
			got := e.Files()
			if len(got) != len(files) {
				t.Fatalf("recovered files %+v, want %+v", got, files)
			}
			for i := range got {
				if got[i] != files[i] && !(got[i].Path == files[i].Path && got[i].Rows == files[i].Rows &&
					got[i].MinTime.Equal(files[i].MinTime) && got[i].MaxTime.Equal(files[i].MaxTime) && got[i].Bytes == files[i].Bytes) {
					t.Errorf("recovered file %+v, want %+v", got[i], files[i])
				}
			}
			if !strings.Contains(logs.String(), "prepared but not committed") {
				t.Errorf("no warning about the pending export:\n%s", logs.String())
			}
			var read []row
			err := e.Read(ctx, func(rec arrow.RecordBatch) error {
				read = append(read, rowsOf(t, rec)...)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			checkRows(t, "Read", read, rows)
			if _, err := s2.Begin(ctx, table, cutoff.Add(time.Hour), timeCol); !errors.Is(err, ErrBusy) {
				t.Errorf("Begin with a pending export: %v, want ErrBusy", err)
			}
			if infos, _ := s2.Files(table); len(infos) != 0 {
				t.Errorf("pending files listed as committed: %v", infos)
			}

			switch decision {
			case "commit":
				if err := e.Commit(ctx); err != nil {
					t.Fatal(err)
				}
				for _, f := range files {
					checkRows(t, f.Date, readFile(t, f.Path), rowsOfDate(rows, f.Date))
				}
				if c, ok, _ := s2.Cursor(table); !ok || !c.Equal(cutoff) {
					t.Errorf("Cursor = %v %v", c, ok)
				}
			case "abort":
				if err := e.Abort(); err != nil {
					t.Fatal(err)
				}
				if tree := listTree(t, dir); len(tree) != 0 {
					t.Errorf("files left after Abort: %v", tree)
				}
				if _, ok, _ := s2.Cursor(table); ok {
					t.Error("Cursor set after Abort")
				}
			}
			if len(s2.Pending()) != 0 {
				t.Error("export still pending")
			}
			if errs, _ := testutil.GatherAndCount(reg, "prometheus_deephaven_bridge_history_errors_total"); errs != 0 {
				t.Errorf("%d error series after a clean recovery", errs)
			}
			e2, err := s2.Begin(ctx, table, cutoff.Add(time.Hour), timeCol)
			if err != nil {
				t.Fatal(err)
			}
			e2.Abort()

			// Nothing is left to recover.
			s2.Close()
			s3, _ := open(t, dir, Options{}, nil)
			if len(s3.Pending()) != 0 {
				t.Error("resolved export pending again")
			}
		})
	}
}

func rowsOfDate(rows []row, date string) []row {
	var out []row
	for _, r := range rows {
		if r.T != nil && day(*r.T) == date {
			out = append(out, r)
		}
	}
	return out
}

// TestCrashBeforePrepare: files of an export that never got through
// Prepare are truncated; Open removes them with a warning and the table is
// free again.
func TestCrashBeforePrepare(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s1, _ := open(t, dir, Options{RowGroupRows: 1000}, nil)
	cutoff := mustTime("2025-03-03T06:00:00Z")
	e, err := s1.Begin(ctx, table, cutoff, timeCol)
	if err != nil {
		t.Fatal(err)
	}
	rows := sampleRows("k", mustTime("2025-03-02T00:00:00Z"), 1800)
	rec := record(rows)
	defer rec.Release()
	if err := e.Write(ctx, rec); err != nil { // several row groups, no footer
		t.Fatal(err)
	}
	pending := pendingFiles(t, dir)
	if len(pending) != 2 {
		t.Fatalf("pending files %v", pending)
	}
	for _, p := range pending {
		if _, err := parquetRows(p); err == nil {
			t.Fatalf("%s is valid Parquet before Prepare; the test simulates nothing", p)
		}
	}

	var logs logBuffer
	s2, _ := open(t, dir, Options{}, &logs)
	if len(s2.Pending()) != 0 {
		t.Errorf("unprepared export reported pending")
	}
	if left := pendingFiles(t, dir); len(left) != 0 {
		t.Errorf("pending files left: %v", left)
	}
	if n := strings.Count(logs.String(), "level=WARN msg=\"History file of an export interrupted before Prepare removed"); n != 2 {
		t.Errorf("%d warnings, want 2:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "valid_parquet=false") {
		t.Errorf("warning does not say the file was not valid Parquet:\n%s", logs.String())
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, table)); len(entries) != 0 {
		t.Errorf("left in the table directory: %v", entries)
	}
	e2, err := s2.Begin(ctx, table, cutoff, timeCol)
	if err != nil {
		t.Fatal(err)
	}
	e2.Abort()
}

func pendingFiles(t testing.TB, dir string) []string {
	var out []string
	for _, p := range listTree(t, dir) {
		if isPending(filepath.Base(p)) {
			out = append(out, filepath.Join(dir, p))
		}
	}
	return out
}

// TestDamagedPreparedFile: a listed file that is cut short after Prepare
// (damage, not a crash) is removed with a warning; the rest stays pending.
func TestDamagedPreparedFile(t *testing.T) {
	dir := t.TempDir()
	s1, _ := open(t, dir, Options{}, nil)
	cutoff := mustTime("2025-03-03T06:00:00Z")
	rows := sampleRows("k", mustTime("2025-03-02T20:00:00Z"), 300)
	e1, files := export(t, s1, cutoff, rows)
	damaged := e1.pendingPath(files[1])
	info, _ := os.Stat(damaged)
	if err := os.Truncate(damaged, info.Size()/2); err != nil {
		t.Fatal(err)
	}

	var logs logBuffer
	s2, _ := open(t, dir, Options{}, &logs)
	pend := s2.Pending()
	if len(pend) != 1 || len(pend[0].Files()) != 1 || pend[0].Files()[0].Date != files[0].Date {
		t.Fatalf("pending %v", pend)
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"History file of a prepared export is damaged; removed\"") {
		t.Errorf("no warning:\n%s", logs.String())
	}
	if _, err := os.Stat(damaged); !os.IsNotExist(err) {
		t.Errorf("damaged file not removed: %v", err)
	}
	if got := testutil.ToFloat64(s2.metrics.errors.WithLabelValues(table, opOpen)); got != 1 {
		t.Errorf("errors_total{op=open} = %v, want 1", got)
	}
	if err := pend[0].Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkRows(t, "committed", readFile(t, files[0].Path), rowsOfDate(rows, files[0].Date))
}

// TestInterruptedCommit: a crash after some files were renamed; Open
// finishes the commit, because Commit is only called once the rows are
// gone from Deephaven.
func TestInterruptedCommit(t *testing.T) {
	dir := t.TempDir()
	s1, _ := open(t, dir, Options{}, nil)
	cutoff := mustTime("2025-03-03T06:00:00Z")
	rows := sampleRows("k", mustTime("2025-03-02T20:00:00Z"), 300)
	e1, files := export(t, s1, cutoff, rows)
	if err := os.Rename(e1.pendingPath(files[0]), files[0].Path); err != nil {
		t.Fatal(err)
	}

	var logs logBuffer
	s2, _ := open(t, dir, Options{}, &logs)
	if len(s2.Pending()) != 0 {
		t.Fatalf("export with a commit under way reported pending")
	}
	if !strings.Contains(logs.String(), "interrupted commit finished") {
		t.Errorf("no log of the finished commit:\n%s", logs.String())
	}
	for _, f := range files {
		checkRows(t, f.Date, readFile(t, f.Path), rowsOfDate(rows, f.Date))
	}
	if c, ok, _ := s2.Cursor(table); !ok || !c.Equal(cutoff) {
		t.Errorf("Cursor = %v %v", c, ok)
	}
	tree := listTree(t, dir)
	if countMatching(tree, isCommitted) != 2 || countMatching(tree, func(n string) bool { return strings.HasPrefix(n, ".") }) != 1 {
		t.Errorf("tree after finished commit: %v", tree)
	}
}

// TestCommitRetry: a failed Commit leaves the export committing; Abort
// refuses and a second Commit finishes.
func TestCommitRetry(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, _ := open(t, dir, Options{}, nil)
	cutoff := mustTime("2025-03-03T06:00:00Z")
	e, files := export(t, s, cutoff, sampleRows("k", mustTime("2025-03-02T20:00:00Z"), 300))
	// Make the second rename fail: its target name is taken by a directory
	// that is not empty.
	blocker := files[1].Path
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := e.Commit(ctx); err == nil {
		t.Fatal("Commit succeeded")
	}
	if err := e.Abort(); err == nil || !strings.Contains(err.Error(), "commit already started") {
		t.Errorf("Abort after a failed Commit: %v", err)
	}
	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}
	if err := e.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if infos, _ := s.Files(table); len(infos) != 2 {
		t.Errorf("Files = %v", infos)
	}
	if got := testutil.ToFloat64(s.metrics.errors.WithLabelValues(table, opCommit)); got != 1 {
		t.Errorf("errors_total{op=commit} = %v, want 1", got)
	}
}

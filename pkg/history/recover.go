package history

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// load reads every table directory: it finds each table's cursor and
// recovers unfinished exports (see "Crash safety" in the package
// documentation). It runs before any other goroutine sees s.
func (s *Store) load() error {
	tables, err := s.tableNames()
	if err != nil {
		return fmt.Errorf("history: read directory: %w", err)
	}
	for _, table := range tables {
		if err := s.loadTable(table); err != nil {
			return fmt.Errorf("history: open %s: %w", table, err)
		}
	}
	return nil
}

func (s *Store) loadTable(table string) error {
	ts := s.table(table)
	tdir := filepath.Join(s.dir, table)
	entries, err := os.ReadDir(tdir)
	if err != nil {
		return err
	}
	var manifests []string // stems
	for _, ent := range entries {
		name := ent.Name()
		switch {
		case ent.IsDir() || !ent.Type().IsRegular():
		case strings.HasSuffix(name, tmpExt):
			// An interrupted atomic write; the old file is still in place.
			if err := os.Remove(filepath.Join(tdir, name)); err != nil {
				return err
			}
		case name == cursorFile:
			cur, ok, err := readCursor(filepath.Join(tdir, name))
			if err != nil {
				// The file names still tell the cutoffs of committed files.
				s.damage(table, "History cursor file unreadable; using the file names", "err", err)
			}
			if ok {
				s.advanceCursor(ts, cur)
			}
		case strings.HasPrefix(name, ".") && strings.HasSuffix(name, manifestExt):
			stem := strings.TrimSuffix(name[1:], manifestExt)
			if _, ok := parseStem(stem); ok {
				manifests = append(manifests, stem)
			}
		}
	}

	pending := make(map[string][]string) // stem -> pending file paths
	err = s.walkDates(table, func(_, dir string, _ time.Time) error {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, ent := range entries {
			stem, isPending, ok := parseFileName(ent.Name())
			if !ok || !ent.Type().IsRegular() {
				continue
			}
			if isPending {
				pending[stem] = append(pending[stem], filepath.Join(dir, ent.Name()))
				continue
			}
			cutoff, _ := parseStem(stem)
			s.advanceCursor(ts, cutoff)
		}
		return nil
	})
	if err != nil {
		return err
	}

	for stem, paths := range pending {
		if slices.Contains(manifests, stem) {
			continue
		}
		// Prepare did not finish, so the caller cannot have deleted the
		// rows; the files were never fsynced and may be cut short.
		for _, p := range paths {
			_, perr := parquetRows(p)
			s.logger.Warn("History file of an export interrupted before Prepare removed; its rows are still in Deephaven",
				"table", table, "file", p, "valid_parquet", perr == nil, "err", perr)
			if err := os.Remove(p); err != nil {
				return err
			}
			os.Remove(filepath.Dir(p)) // if now empty
		}
	}
	for _, stem := range manifests {
		if err := s.recoverExport(ts, table, stem); err != nil {
			return err
		}
	}
	return nil
}

// recoverExport handles a prepared export found at open: it finishes a
// commit that was under way or reports the export as pending.
func (s *Store) recoverExport(ts *tableState, table, stem string) error {
	e := newExport(s, ts, table, stem, "")
	e.recovered, e.state = true, prepared
	m, err := readManifest(e.manifestPath())
	if err != nil {
		// Written atomically, so this is damage, not a crash. Without the
		// list the export is reported with no files; its pending files are
		// removed by the next Open after Commit or Abort removed the
		// manifest.
		s.damage(table, "History export manifest unreadable", "manifest", e.manifestPath(), "err", err)
	}
	e.timeCol = m.TimeColumn
	started := false
	for _, f := range m.Files {
		f.Path = filepath.Join(e.tableDir(), datePrefix+f.Date, committedName(stem))
		if _, err := time.Parse(dateLayout, f.Date); err != nil {
			s.damage(table, "History export manifest lists a bad date", "manifest", e.manifestPath(), "date", f.Date)
			continue
		}
		pendingPath := e.pendingPath(f)
		switch havePending, err := exists(pendingPath); {
		case err != nil:
			return err
		case havePending:
			rows, err := parquetRows(pendingPath)
			if err == nil && rows != f.Rows {
				err = fmt.Errorf("%d rows, manifest says %d", rows, f.Rows)
			}
			if err != nil {
				s.damage(table, "History file of a prepared export is damaged; removed", "file", pendingPath, "err", err)
				if err := os.Remove(pendingPath); err != nil {
					return err
				}
				continue
			}
		default:
			if done, err := exists(f.Path); err != nil {
				return err
			} else if !done {
				s.damage(table, "History file of a prepared export is missing", "file", pendingPath)
				continue
			}
			started = true
		}
		e.files = append(e.files, f)
	}
	ts.exports = append(ts.exports, e)
	if !started {
		s.logger.Warn("History export was prepared but not committed; waiting for the caller to commit or abort it",
			"table", table, "cutoff", e.cutoff, "files", len(e.files))
		return nil
	}
	// Commit was under way, and the caller calls it only after deleting
	// the rows from Deephaven: finish it.
	e.mu.Lock()
	defer e.mu.Unlock()
	e.state = committing
	if err := e.commit(); err != nil {
		return fmt.Errorf("finish commit of %s: %w", stem, err)
	}
	s.logger.Info("History export's interrupted commit finished", "table", table, "cutoff", e.cutoff, "files", len(e.files))
	return nil
}

// damage logs and counts damaged data found at open.
func (s *Store) damage(table, msg string, args ...any) {
	s.metrics.errors.WithLabelValues(table, opOpen).Inc()
	s.logger.Warn(msg, append([]any{"table", table}, args...)...)
}

package history

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Names in the store directory. See the package documentation.
const (
	cutoffLayout  = "20060102T150405.000000000Z" // fixed width: sorts like the time
	dateLayout    = "2006-01-02"
	datePrefix    = "date="
	parquetExt    = ".parquet"
	pendingExt    = ".parquet.pending"
	manifestExt   = ".prepared"
	tmpExt        = ".tmp"
	cursorFile    = ".cursor"
	maxTableBytes = 128
)

var (
	tableRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	// stemRE matches "<cutoff>_<export id>", the name shared by all files of
	// one export.
	stemRE = regexp.MustCompile(`^(\d{8}T\d{6}\.\d{9}Z)_([0-9a-f]{16})$`)
)

// ValidTable reports whether name can be a table name in the store: it
// becomes a directory name, so only letters, digits and underscores.
func ValidTable(name string) bool {
	return len(name) <= maxTableBytes && tableRE.MatchString(name)
}

// newStem names a new export. The random part keeps two exports with the
// same cutoff apart.
func newStem(cutoff time.Time) string {
	var b [8]byte
	rand.Read(b[:])
	return cutoff.UTC().Format(cutoffLayout) + "_" + hex.EncodeToString(b[:])
}

// parseStem returns the cutoff an export stem carries.
func parseStem(stem string) (time.Time, bool) {
	m := stemRE.FindStringSubmatch(stem)
	if m == nil {
		return time.Time{}, false
	}
	t, err := time.Parse(cutoffLayout, m[1])
	return t, err == nil
}

// dateDir is the name of the partition directory for a day number (days
// since the Unix epoch, UTC).
func dateDir(day int64) string {
	return datePrefix + time.Unix(day*86400, 0).UTC().Format(dateLayout)
}

// parseDateDir returns the date of a partition directory name.
func parseDateDir(name string) (time.Time, bool) {
	s, ok := strings.CutPrefix(name, datePrefix)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(dateLayout, s)
	return t, err == nil
}

// Committed files are "<stem>.parquet"; pending ones are hidden
// (".<stem>.parquet.pending") so that no reader, not even one globbing
// "*.parquet*" or reading a directory with pyarrow, picks them up.
func committedName(stem string) string { return stem + parquetExt }
func pendingName(stem string) string   { return "." + stem + pendingExt }
func manifestName(stem string) string  { return "." + stem + manifestExt }

// fileKind tells what a name in a date directory is.
func parseFileName(name string) (stem string, pending, ok bool) {
	if s, found := strings.CutSuffix(name, pendingExt); found && strings.HasPrefix(s, ".") {
		s = s[1:]
		_, ok = parseStem(s)
		return s, true, ok
	}
	if s, found := strings.CutSuffix(name, parquetExt); found {
		_, ok = parseStem(s)
		return s, false, ok
	}
	return "", false, false
}

// manifest is what Prepare records in "<table>/.<stem>.prepared" once all
// files of an export are durable. Its presence means the caller may have
// deleted the rows from Deephaven, so the files must not be dropped
// without the caller's decision.
type manifest struct {
	Table      string `json:"table"`
	Cutoff     string `json:"cutoff"`
	TimeColumn string `json:"time_column"`
	Files      []File `json:"files"`
}

// writeAtomic replaces path with data: temporary file, fsync, rename,
// directory fsync, so that a crash leaves the old file or the new one.
func writeAtomic(path string, data []byte) (err error) {
	tmp := path + tmpExt
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func writeManifest(path string, m manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(path, append(b, '\n'))
}

func readManifest(path string) (manifest, error) {
	var m manifest
	b, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("parse %s: %w", path, err)
	}
	return m, nil
}

// readCursor reads a table's cursor file; ok is false when there is none.
func readCursor(path string) (t time.Time, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	t, err = time.Parse(cutoffLayout, strings.TrimSpace(string(b)))
	if err != nil {
		return time.Time{}, false, fmt.Errorf("parse %s: %w", path, err)
	}
	return t, true, nil
}

func writeCursor(path string, t time.Time) error {
	return writeAtomic(path, []byte(t.UTC().Format(cutoffLayout)+"\n"))
}

// syncDir makes creations, renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeIfExists removes path; a missing file is not an error.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, err
	}
}

package history

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
)

// crossRows are rows with the values readers tend to get wrong: nulls in
// every nullable column, NaN and infinities, extreme doubles, nanosecond
// and pre-1970 times, non-ASCII and empty strings.
func crossRows() []row {
	base := mustTime("2025-03-02T23:59:59.999999999Z").UnixNano()
	vals := []*float64{ptr(1.5), ptr(math.NaN()), ptr(math.Inf(1)), ptr(math.Inf(-1)), nil,
		ptr(math.MaxFloat64), ptr(math.SmallestNonzeroFloat64), ptr(-0.125), ptr(0.0)}
	strs := []*string{ptr("häßlich ✓"), ptr(""), nil, ptr(`quote " backslash \ newline` + "\n"), ptr("plain")}
	var rows []row
	for i := range 40 {
		ts := base + int64(i)*int64(29*time.Minute+123456789)
		r := row{
			T:        ptr(ts),
			Query:    fmt.Sprintf(`rate(node_cpu_seconds_total{mode="idle"}[5m]) * %d`, i%3),
			Job:      "node",
			Instance: strs[i%len(strs)],
			Value:    vals[i%len(vals)],
			Ingest:   ts + 987654321,
			Labels:   `{cpu="` + strconv.Itoa(i%4) + `",instance="host:9100",job="node"}`,
			Key:      fmt.Sprintf("key-%03d", i),
		}
		if i%13 == 7 {
			r.T = nil // to the cutoff's date
		}
		rows = append(rows, r)
	}
	rows[5].T = ptr(int64(-1)) // 1969-12-31T23:59:59.999999999Z
	return rows
}

func TestMain(m *testing.M) { testenv.Main(m) }

// crossExport commits crossRows to a new store and returns the table's
// directory.
func crossExport(t *testing.T) (dir string, rows []row, cutoff time.Time) {
	t.Helper()
	s, _ := open(t, t.TempDir(), Options{RowGroupRows: 16}, nil)
	cutoff = mustTime("2025-03-04T06:00:00Z")
	rows = crossRows()
	e, files := export(t, s, cutoff, rows[:25], rows[25:])
	if err := e.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 { // 1969-12-31, 2025-03-02, 2025-03-03 and the cutoff's date for null times
		t.Fatalf("want 4 dates, got %v", files)
	}
	return filepath.Join(s.dir, table), rows, cutoff
}

// TestReadersAgree reads committed files back with pyarrow, pandas and
// DuckDB (hive-partitioned directory reads, as users would) and compares
// every value with what was written.
func TestReadersAgree(t *testing.T) {
	py := testenv.Python(t)
	if out, err := exec.Command(py, "-c", "import pyarrow, pandas, duckdb").CombinedOutput(); err != nil {
		testenv.Missing(t, "%s lacks pyarrow, pandas or duckdb: %v\n%s", py, err, out)
	}
	dir, rows, cutoff := crossExport(t)
	checkReaders(t, crosscheck(t, py, dir), rows, cutoff, map[string]map[string]string{
		"pyarrow": {"PrometheusDateTime": "timestamp[ns, tz=UTC]", "Value": "double", "Job": "string"},
		"pandas":  {"PrometheusDateTime": "datetime64[ns, UTC]", "Value": "float64"},
		"duckdb":  {"PrometheusDateTime": "TIMESTAMPTZ_NS", "Value": "DOUBLE", "Job": "VARCHAR", "date": "DATE"},
	})
}

// TestDeephavenReads has a Deephaven server read the table's directory
// with parquet.read(..., file_layout=KV_PARTITIONED): times must come back
// as Instants, strings as Strings, doubles as doubles, with every value.
func TestDeephavenReads(t *testing.T) {
	addr := testenv.Deephaven(t)
	dir, rows, cutoff := crossExport(t)
	checkReaders(t, crosscheck(t, testenv.Python(t), dir, "--deephaven", addr), rows, cutoff, map[string]map[string]string{
		"deephaven": {
			"PrometheusDateTime": "timestamp[ns, tz=UTC]|java.time.Instant",
			"Value":              "double|double",
			"Job":                "string|java.lang.String",
			"date":               "string|java.lang.String", // KV_PARTITIONED infers String
		},
	})
}

// crossResult is what testdata/crosscheck.py prints for one reader.
type crossResult struct {
	Names []string
	Types map[string]string
	Rows  [][]any
}

func crosscheck(t *testing.T, py string, args ...string) map[string]crossResult {
	t.Helper()
	cmd := exec.Command(py, append([]string{filepath.Join("testdata", "crosscheck.py")}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("crosscheck.py: %v\n%s", err, stderr.String())
	}
	var got map[string]crossResult
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber() // nanoseconds do not fit a float64
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	return got
}

// checkReaders compares what each reader saw with rows, by column name.
func checkReaders(t *testing.T, got map[string]crossResult, rows []row, cutoff time.Time, wantTypes map[string]map[string]string) {
	t.Helper()
	var names []string
	for _, f := range metricSchema.Fields() {
		names = append(names, f.Name)
	}
	names = append(names, "date")
	for reader, types := range wantTypes {
		res, ok := got[reader]
		if !ok {
			t.Errorf("%s: no result", reader)
			continue
		}
		if !slices.Equal(slices.Sorted(slices.Values(res.Names)), slices.Sorted(slices.Values(names))) {
			t.Errorf("%s: columns %v, want %v", reader, res.Names, names)
			continue
		}
		for col, want := range types {
			if res.Types[col] != want {
				t.Errorf("%s: %s is %s, want %s", reader, col, res.Types[col], want)
			}
		}
		if len(res.Rows) != len(rows) {
			t.Errorf("%s: %d rows, want %d", reader, len(res.Rows), len(rows))
			continue
		}
		for i, r := range rows { // keys sort like the rows
			want := map[string]any{
				"PrometheusDateTime": r.T, "PrometheusQuery": r.Query, "Job": r.Job, "Instance": r.Instance,
				"Value": r.Value, "MetricIngestDateTime": r.Ingest, "Labels": r.Labels, "SeriesKey": r.Key,
				"date": dateOf(r, cutoff),
			}
			if reader == "pandas" && r.Value == nil {
				want["Value"] = ptr(math.NaN()) // pandas has no null floats
			}
			for j, name := range res.Names {
				if g := res.Rows[i][j]; !sameValue(g, want[name]) {
					t.Errorf("%s: row %s column %s: got %v (%T), want %v", reader, r.Key, name, g, g, show(want[name]))
				}
			}
		}
	}
}

func dateOf(r row, cutoff time.Time) string {
	if r.T == nil {
		return cutoff.UTC().Format(dateLayout)
	}
	return day(*r.T)
}

// sameValue compares a decoded JSON value of crosscheck.py with a value
// written.
func sameValue(got, want any) bool {
	switch w := want.(type) {
	case *int64:
		if w == nil {
			return got == nil
		}
		return sameValue(got, *w)
	case int64:
		n, ok := got.(json.Number)
		return ok && n.String() == strconv.FormatInt(w, 10)
	case *string:
		if w == nil {
			return got == nil
		}
		return got == *w
	case string:
		return got == w
	case *float64:
		if w == nil {
			return got == nil
		}
		switch g := got.(type) {
		case string:
			return g == map[bool]string{true: "NaN"}[math.IsNaN(*w)] ||
				g == "+Inf" && math.IsInf(*w, 1) || g == "-Inf" && math.IsInf(*w, -1)
		case json.Number:
			f, err := g.Float64()
			return err == nil && f == *w && math.Signbit(f) == math.Signbit(*w)
		}
	}
	return false
}

func show(v any) string {
	switch v := v.(type) {
	case *int64:
		if v != nil {
			return strconv.FormatInt(*v, 10)
		}
	case *string:
		if v != nil {
			return strconv.Quote(*v)
		}
	case *float64:
		if v != nil {
			return fmt.Sprint(*v)
		}
	default:
		return fmt.Sprint(v)
	}
	return "null"
}

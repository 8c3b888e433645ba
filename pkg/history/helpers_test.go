package history

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
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
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	table   = "prometheus_metrics"
	timeCol = "PrometheusDateTime"
)

var instant = &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}

// dhField makes a field the way Deephaven's Flight DoGet sends it.
func dhField(name string, t arrow.DataType, javaType string) arrow.Field {
	return arrow.Field{Name: name, Type: t, Nullable: true,
		Metadata: arrow.NewMetadata([]string{"deephaven:type", "deephaven:isSortable"}, []string{javaType, "true"})}
}

// metricSchema is shaped like the bridge's prometheus_metrics table as
// Deephaven sends it, metadata included.
var metricSchema = func() *arrow.Schema {
	str := arrow.BinaryTypes.String
	meta := arrow.NewMetadata([]string{"deephaven:attribute.AddOnly", "deephaven:attribute_type.AddOnly"}, []string{"true", "java.lang.Boolean"})
	return arrow.NewSchema([]arrow.Field{
		dhField("PrometheusDateTime", instant, "java.time.Instant"),
		dhField("PrometheusQuery", str, "java.lang.String"),
		dhField("Job", str, "java.lang.String"),
		dhField("Instance", str, "java.lang.String"),
		dhField("Value", arrow.PrimitiveTypes.Float64, "double"),
		dhField("MetricIngestDateTime", instant, "java.time.Instant"),
		dhField("Labels", str, "java.lang.String"),
		dhField("SeriesKey", str, "java.lang.String"),
	}, &meta)
}()

// row is one row of metricSchema; nil pointers are nulls.
type row struct {
	T        *int64 // Unix nanoseconds
	Query    string
	Job      string
	Instance *string
	Value    *float64
	Ingest   int64
	Labels   string
	Key      string // unique per row in tests, to sort by
}

func ptr[T any](v T) *T { return &v }

// record builds a record batch of rows; the caller releases it.
func record(rows []row) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, metricSchema)
	defer b.Release()
	s := func(i int) *array.StringBuilder { return b.Field(i).(*array.StringBuilder) }
	ts := func(i int) *array.TimestampBuilder { return b.Field(i).(*array.TimestampBuilder) }
	for _, r := range rows {
		if r.T == nil {
			ts(0).AppendNull()
		} else {
			ts(0).Append(arrow.Timestamp(*r.T))
		}
		s(1).Append(r.Query)
		s(2).Append(r.Job)
		if r.Instance == nil {
			s(3).AppendNull()
		} else {
			s(3).Append(*r.Instance)
		}
		if r.Value == nil {
			b.Field(4).(*array.Float64Builder).AppendNull()
		} else {
			b.Field(4).(*array.Float64Builder).Append(*r.Value)
		}
		ts(5).Append(arrow.Timestamp(r.Ingest))
		s(6).Append(r.Labels)
		s(7).Append(r.Key)
	}
	return b.NewRecordBatch()
}

// rowsOf converts a record of metricSchema's columns back to rows.
func rowsOf(t testing.TB, rec arrow.RecordBatch) []row {
	t.Helper()
	col := func(name string) arrow.Array {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) != 1 {
			t.Fatalf("column %s missing in %s", name, rec.Schema())
		}
		return rec.Column(idx[0])
	}
	tsc, ing := col("PrometheusDateTime").(*array.Timestamp), col("MetricIngestDateTime").(*array.Timestamp)
	q, job, inst := col("PrometheusQuery").(*array.String), col("Job").(*array.String), col("Instance").(*array.String)
	val := col("Value").(*array.Float64)
	lab, key := col("Labels").(*array.String), col("SeriesKey").(*array.String)
	out := make([]row, rec.NumRows())
	for i := range out {
		r := row{Query: q.Value(i), Job: job.Value(i), Ingest: int64(ing.Value(i)), Labels: lab.Value(i), Key: key.Value(i)}
		if tsc.IsValid(i) {
			r.T = ptr(int64(tsc.Value(i)))
		}
		if inst.IsValid(i) {
			r.Instance = ptr(inst.Value(i))
		}
		if val.IsValid(i) {
			r.Value = ptr(val.Value(i))
		}
		out[i] = r
	}
	return out
}

func (r row) String() string {
	f := func(p any) string {
		switch p := p.(type) {
		case *int64:
			if p != nil {
				return fmt.Sprint(*p)
			}
		case *string:
			if p != nil {
				return fmt.Sprintf("%q", *p)
			}
		case *float64:
			if p != nil {
				return fmt.Sprint(*p)
			}
		}
		return "null"
	}
	return fmt.Sprintf("{%s %q %q %s %s %d %q %q}", f(r.T), r.Query, r.Job, f(r.Instance), f(r.Value), r.Ingest, r.Labels, r.Key)
}

func equalRows(a, b []row) bool {
	return slices.EqualFunc(a, b, func(x, y row) bool {
		if (x.Value == nil) != (y.Value == nil) || x.Value != nil && !sameFloat(*x.Value, *y.Value) {
			return false
		}
		x.Value, y.Value = nil, nil
		return x.String() == y.String()
	})
}

func sameFloat(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }

func checkRows(t testing.TB, what string, got, want []row) {
	t.Helper()
	if !equalRows(got, want) {
		t.Errorf("%s: got %d rows, want %d", what, len(got), len(want))
		for i := 0; i < max(len(got), len(want)); i++ {
			var g, w string
			if i < len(got) {
				g = got[i].String()
			}
			if i < len(want) {
				w = want[i].String()
			}
			if g != w {
				t.Errorf("row %d:\n got  %s\n want %s", i, g, w)
			}
		}
	}
}

// readFile reads a committed or pending file back with pqarrow.
func readFile(t testing.TB, path string) []row {
	t.Helper()
	var out []row
	err := readParquet(context.Background(), path, func(rec arrow.RecordBatch) error {
		out = append(out, rowsOf(t, rec)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// day returns the UTC date of ns as YYYY-MM-DD.
func day(ns int64) string { return time.Unix(0, ns).UTC().Format(dateLayout) }

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// logBuffer collects log lines for tests that check warnings.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// open opens a store in dir with a fresh registry; the store is closed
// when the test ends unless the test closes it first.
func open(t testing.TB, dir string, opts Options, logs *logBuffer) (*Store, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	lb := logs
	if lb == nil {
		lb = &logBuffer{}
	}
	s, err := Open(dir, opts, lb.logger(), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, reg
}

// export runs Begin, Write of each batch, and Prepare.
func export(t testing.TB, s *Store, cutoff time.Time, batches ...[]row) (*Export, []File) {
	t.Helper()
	ctx := context.Background()
	e, err := s.Begin(ctx, table, cutoff, timeCol)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		rec := record(b)
		err := e.Write(ctx, rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	files, err := e.Prepare(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return e, files
}

// listTree lists the files under dir relative to it, sorted.
func listTree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func countMatching(paths []string, pred func(string) bool) int {
	n := 0
	for _, p := range paths {
		if pred(filepath.Base(p)) {
			n++
		}
	}
	return n
}

func isCommitted(name string) bool {
	return strings.HasSuffix(name, parquetExt) && !strings.HasPrefix(name, ".")
}
func isPending(name string) bool { return strings.HasSuffix(name, pendingExt) }

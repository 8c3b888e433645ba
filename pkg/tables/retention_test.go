package tables_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/tables"
)

func metricRows(n int, at time.Time, tag string) []rows.MetricRow {
	rs := make([]rows.MetricRow, n)
	for i := range rs {
		rs[i] = rows.MetricRow{PrometheusDateTime: at, PrometheusQuery: "q", Value: float64(i), Labels: fmt.Sprintf(`{i="%s%d"}`, tag, i), SeriesKey: fmt.Sprintf("%s%d", tag, i)}
	}
	return rs
}

// readColumn reads a table's Slot column and its row count.
func slotsOf(t *testing.T, c *deephaven.Client, name string) map[int64]string {
	t.Helper()
	tab, err := c.Snapshot(context.Background(), c.NamedTable(name))
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Release()
	out := map[int64]string{}
	tr := array.NewTableReader(tab, 0)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		sk := rec.Column(rec.Schema().FieldIndices("SeriesKey")[0]).(*array.String)
		sl := rec.Column(rec.Schema().FieldIndices("Slot")[0]).(*array.Int64)
		for i := 0; i < int(rec.NumRows()); i++ {
			if _, dup := out[sl.Value(i)]; dup {
				t.Fatalf("slot %d twice", sl.Value(i))
			}
			out[sl.Value(i)] = sk.Value(i)
		}
	}
	return out
}

// Expire hands exactly the old rows to keep, deletes them, and the slots
// they held are reused (after the grace); a second Tables on the same
// names (a restarted bridge) never writes over rows of the first.
func TestExpireAndSlots(t *testing.T) {
	c, tb := setup(t)
	ctx := context.Background()
	now := time.Now().UTC()
	if err := tb.AddMetrics(ctx, metricRows(5000, now.Add(-time.Hour), "old")); err != nil {
		t.Fatal(err)
	}
	if err := tb.AddMetrics(ctx, metricRows(100, now, "new")); err != nil {
		t.Fatal(err)
	}
	var kept int64
	n, err := tb.Expire(ctx, tables.Metrics, now.Add(-time.Minute), func(ctx context.Context, rows int64, read tables.ReadFunc) error {
		return read(func(_ *arrow.Schema, rec arrow.RecordBatch) error {
			if rec != nil {
				kept += rec.NumRows()
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 5000 || kept != 5000 {
		t.Fatalf("expired %d rows, kept %d, want 5000", n, kept)
	}
	left := slotsOf(t, c, tb.Names().Metrics)
	if len(left) != 100 {
		t.Fatalf("%d rows left, want 100", len(left))
	}
	// A restarted bridge (same writer, new Tables) learns which slots hold
	// rows and never writes over them.
	tb2 := tables.New(c, tb.Names(), nil)
	if err := tb2.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tb2.AddMetrics(ctx, metricRows(200, now, "second")); err != nil {
		t.Fatal(err)
	}
	all := slotsOf(t, c, tb.Names().Metrics)
	if len(all) != 300 {
		t.Fatalf("%d rows after the restarted bridge wrote 200 more, want 300", len(all))
	}
	// An export waiting for its delete asks whether the rows are still
	// there: a row read from the table is, one never written is not.
	tab, err := c.Snapshot(ctx, c.NamedTable(tb.Names().Metrics))
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Release()
	tr := array.NewTableReader(tab, 0)
	defer tr.Release()
	tr.Next()
	held := tr.RecordBatch().NewSlice(0, 1)
	defer held.Release()
	if ok, err := tb2.Holds(ctx, tables.Metrics, held); err != nil || !ok {
		t.Fatalf("Holds(a row of the table) = %v, %v", ok, err)
	}
	never := rows.MetricRecord(memory.DefaultAllocator, metricRows(1, now, "second"), rows.Places{Writer: tables.WriterID(""), Slots: []int64{-1}})
	defer never.Release()
	if ok, err := tb2.Holds(ctx, tables.Metrics, never); err != nil || ok {
		t.Fatalf("Holds(a row never written) = %v, %v", ok, err)
	}
}

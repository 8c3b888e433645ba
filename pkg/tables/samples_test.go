package tables_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// Samples land in their own append-only table with every column, NaN kept.
func TestAddSamples(t *testing.T) {
	c, tb := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	at := time.Date(2026, 12, 2, 10, 0, 0, 5e6, time.UTC)
	in := []rows.SampleRow{
		{PrometheusDateTime: at, MetricName: "up", SeriesKey: `{job="j"}`, Labels: `{__name__="up", job="j"}`, Value: 1, Job: "j", SampleIngestDateTime: at.Add(time.Second)},
		{PrometheusDateTime: at, MetricName: "up", SeriesKey: `{job="j"}`, Labels: `{__name__="up", job="j"}`, Value: math.NaN(), Job: "j", SampleIngestDateTime: at.Add(time.Second)},
	}
	// Twice: the table is append-only, a repeat is a row of its own.
	for range 2 {
		if err := tb.AddSamples(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	tab, err := c.Snapshot(ctx, c.NamedTable(tb.Names().Samples))
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Release()
	if tab.NumRows() != 4 || int(tab.NumCols()) != len(rows.SampleColumns) {
		t.Fatalf("table has %d rows and %d columns, want 4 and %d", tab.NumRows(), tab.NumCols(), len(rows.SampleColumns))
	}
	tr := array.NewTableReader(tab, 0)
	defer tr.Release()
	nan := 0
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			if v := rec.Column(4).(*array.Float64).Value(i); math.IsNaN(v) {
				nan++
			}
			if got := rec.Column(3).(*array.String).Value(i); got != `{__name__="up", job="j"}` {
				t.Errorf("Labels = %s", got)
			}
			if got := time.Unix(0, int64(rec.Column(0).(*array.Timestamp).Value(i))).UTC(); !got.Equal(at) {
				t.Errorf("PrometheusDateTime = %s, want %s", got, at)
			}
		}
	}
	if nan != 2 {
		t.Errorf("%d NaN values, want 2", nan)
	}
}

package main

import (
	"context"
	"testing"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
)

// A short metrics round: the path, the raw upload into the same tables and
// the one into a plain table each land every row, and emptying the tables
// between rounds leaves none. `go run ./cmd/bridge-bench --only metrics`
// is the full-size run.
func TestMetricsRoundShort(t *testing.T) {
	ctx := context.Background()
	c, err := deephaven.Dial(ctx, testenv.Deephaven(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mt, err := newMetricsTables(ctx, c, 2000, 4)
	if err != nil {
		t.Fatal(err)
	}
	count := func() [3]int64 {
		t.Helper()
		var n [3]int64
		for i, name := range []string{mt.path.Names().Metrics, mt.raw.Names().Metrics, mt.plain.Name()} {
			var err error
			if n[i], err = countRows(ctx, c, name); err != nil {
				t.Fatalf("count the rows of %s: %v", name, err)
			}
		}
		return n
	}
	const rows = 5000
	for r := range 2 {
		path, raw, plain, err := mt.round(ctx, rows, r == 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := count(); got != [3]int64{rows, rows, rows} {
			t.Fatalf("round %d: path, raw and plain tables hold %v rows, want %d each", r, got, rows)
		}
		for _, run := range []metricsRun{path, raw, plain} {
			if run.rows != rows || run.rate <= 0 {
				t.Fatalf("round %d: run %+v", r, run)
			}
		}
		if err := mt.empty(ctx); err != nil {
			t.Fatal(err)
		}
		if got := count(); got != [3]int64{} {
			t.Fatalf("round %d: after empty the tables hold %v rows", r, got)
		}
	}
}

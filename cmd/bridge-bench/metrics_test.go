package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/tables"
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

// The ceiling of the bridge's own work lands every alert and its
// notification, and the derived tables see them: one episode an alert. Two
// uploaders share the rows, as with --ceiling-splits.
func TestUploadPairsShort(t *testing.T) {
	ctx := context.Background()
	c, err := deephaven.Dial(ctx, testenv.Deephaven(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tb := tables.New(c, tables.DefaultNames.WithSuffix(fmt.Sprintf("testrp_%d", time.Now().UnixNano()%1e9)), nil)
	if err := tb.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	var seq atomic.Int64
	const alerts = 1050 // not a multiple of the upload size: the last upload is short
	rate, err := uploadPairs(ctx, tb, &seq, alerts, 200, 2)
	if err != nil {
		t.Fatal(err)
	}
	if rate <= 0 {
		t.Fatalf("rate %v", rate)
	}
	names := tb.Names()
	for _, name := range []string{names.Alerts, names.Notifications, names.Episodes} {
		n, err := countRows(ctx, c, name)
		if err != nil {
			t.Fatalf("count the rows of %s: %v", name, err)
		}
		if n != alerts {
			t.Errorf("%s holds %d rows, want %d", name, n, alerts)
		}
	}
	if got := seq.Load(); got != alerts {
		t.Errorf("%d alerts made, want %d", got, alerts)
	}
}

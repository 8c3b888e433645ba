package retention_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/history"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/retention"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/tables"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// A step stopped right after Deephaven deleted the expired rows (a
// shutdown, here the step's context cancelled the moment the delete
// returned) still commits their export: the rows are in the history at
// once, not only after the next start settles a pending export. Before
// this was handled, the failure to free the slots after the delete sent
// the export down the path for an unknown outcome, which cannot finish
// with a cancelled context.
func TestStepStoppedAfterTheDeleteCommitsTheExport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stepCtx, stop := context.WithCancel(ctx)
	defer stop()
	var armed, fired atomic.Bool
	stopAfterDelete := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if err == nil && strings.HasSuffix(method, "/DeleteTableFromInputTable") && armed.Load() {
			fired.Store(true)
			stop()
		}
		return err
	}
	c, err := deephaven.Dial(ctx, testenv.Deephaven(t), deephaven.WithDialOptions(grpc.WithChainUnaryInterceptor(stopAfterDelete)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sfx := fmt.Sprint(time.Now().UnixNano() % 1e9)
	names := tables.DefaultNames.WithSuffix(sfx)
	tb := tables.New(c, names, nil)
	if err := tb.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 100
	old := time.Now().Add(-2 * time.Hour).UTC()
	rs := make([]rows.MetricRow, n)
	for i := range rs {
		rs[i] = rows.MetricRow{PrometheusDateTime: old, PrometheusQuery: "q", Value: float64(i), Labels: fmt.Sprintf(`{i="%d"}`, i), SeriesKey: fmt.Sprint(i)}
	}
	if err := tb.AddMetrics(ctx, rs); err != nil {
		t.Fatal(err)
	}
	hist, err := history.Open(t.TempDir(), history.Options{}, testenv.Logger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer hist.Close()
	k := retention.New(func() *tables.Tables { return tb }, hist, retention.Options{Live: time.Hour, Interval: time.Hour}, testenv.Logger(t), prometheus.NewRegistry())

	armed.Store(true)
	err = k.Step(stepCtx)
	if !fired.Load() {
		t.Fatalf("the step deleted nothing (err %v)", err)
	}
	if err == nil {
		t.Fatal("the step reported no error, though its context ended before it freed the slots")
	}
	t.Logf("step: %v", err)

	files, err := hist.Files(names.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	for _, f := range files {
		committed += f.Rows
	}
	if committed != n {
		t.Errorf("history holds %d committed rows right after the step, want %d", committed, n)
	}
	live, err := c.Snapshot(ctx, c.NamedTable(names.Metrics))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Release()
	if live.NumRows() != 0 {
		t.Errorf("live table holds %d rows, want 0", live.NumRows())
	}
}

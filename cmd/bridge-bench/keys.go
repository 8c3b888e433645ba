package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// retentionKeys measures why the metrics table is keyed by place: it pushes
// rows through a window of 500,000 in a key-backed table keyed on what the
// rows are (query, series, time) and in one keyed on (Writer, Slot) with
// slots reused, deleting the oldest rows as retention does, and prints
// Deephaven's heap after GC as rows pass.
func retentionKeys(ctx context.Context, dh string, dhPid int, batches int, out io.Writer) error {
	c, err := deephaven.Dial(ctx, dh)
	if err != nil {
		return err
	}
	defer c.Close()
	const batch, window = 100_000, 500_000
	base := time.Now().Add(-24 * time.Hour)
	at := func(n int) time.Time { return base.Add(time.Duration(n/5000) * 15 * time.Second) }
	fmt.Fprintln(out, "| table keyed on | rows written | rows live | Deephaven heap after GC |")
	fmt.Fprintln(out, "|---|---:|---:|---:|")
	for _, kind := range []struct {
		name string
		keys []string
		slot func(n int) int64
	}{
		{"(PrometheusQuery, SeriesKey, PrometheusDateTime)", []string{"PrometheusQuery", "SeriesKey", "PrometheusDateTime"}, func(n int) int64 { return int64(n) }},
		{"(Writer, Slot), slots reused", rows.SlotKeys, func(n int) int64 { return int64(n % (window + batch)) }},
	} {
		it, err := c.CreateInputTable(ctx, fmt.Sprintf("bench_keys_%d", time.Now().UnixNano()), rows.MetricSchema, kind.keys...)
		if err != nil {
			return err
		}
		for b := 0; b < batches; b++ {
			if b*batch >= window {
				old, err := it.Table().Where(ctx, fmt.Sprintf("PrometheusDateTime < '%s'", at(b*batch-window+batch).UTC().Format(time.RFC3339Nano)))
				if err != nil {
					return err
				}
				frozen, err := old.Freeze(ctx)
				if err == nil {
					err = it.DeleteRows(ctx, frozen)
					frozen.Release(ctx)
				}
				old.Release(ctx)
				if err != nil {
					return err
				}
			}
			rs := make([]rows.MetricRow, batch)
			slots := make([]int64, batch)
			for i := range rs {
				n := b*batch + i
				s := n % 5000
				lab := fmt.Sprintf(`{cpu="%d", instance="host%d:9100", job="node", mode="idle"}`, s%8, s/8)
				rs[i] = rows.MetricRow{PrometheusDateTime: at(n), PrometheusQuery: fmt.Sprintf("q%d", s%5), Job: "node",
					Instance: fmt.Sprintf("host%d:9100", s/8), Value: float64(n), MetricIngestDateTime: time.Now(), Labels: lab, SeriesKey: lab}
				slots[i] = kind.slot(n)
			}
			rec := rows.MetricRecord(memory.DefaultAllocator, rs, rows.Places{Writer: 1, Slots: slots})
			err := it.Add(ctx, rec)
			rec.Release()
			if err != nil {
				return err
			}
			if (b+1)%(batches/4) == 0 {
				heap, err := heapUsedMiB(dhPid)
				if err != nil {
					return err
				}
				live, err := countRows(ctx, c, it.Name())
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "| %s | %d | %d | %.0f MiB |\n", kind.name, (b+1)*batch, live, heap)
			}
		}
	}
	return nil
}

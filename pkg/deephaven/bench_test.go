package deephaven_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// Benchmarks against the shared test server; cmd/dhbench prints the same
// workloads side by side with pydeephaven.

func BenchmarkImport100kRows(b *testing.B) {
	c := shared(b)
	rec := bigRecord(100_000)
	defer rec.Release()
	ctx := ctxT(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t, err := c.Import(ctx, kvSchema, rec)
		if err != nil {
			b.Fatal(err)
		}
		t.Release(ctx)
	}
	b.ReportMetric(float64(b.N)*100_000/b.Elapsed().Seconds(), "rows/s")
}

func benchAppend(b *testing.B, rows, callers int) {
	c := shared(b)
	ctx := ctxT(b)
	it, err := c.CreateInputTable(ctx, uniqueName("bench"), kvSchema)
	if err != nil {
		b.Fatal(err)
	}
	rec := bigRecord(rows)
	defer rec.Release()
	b.SetParallelism(callers)
	b.ResetTimer()
	if callers == 1 {
		for i := 0; i < b.N; i++ {
			if err := it.Add(ctx, rec); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := it.Add(ctx, rec); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkAppend1000Rows(b *testing.B)           { benchAppend(b, 1000, 1) }
func BenchmarkAppendSingleRow(b *testing.B)          { benchAppend(b, 1, 1) }
func BenchmarkAppendSingleRow16Callers(b *testing.B) { benchAppend(b, 1, 16) }

// BenchmarkAlertUploadBatchSizes appends rows of the bridge's alert schema
// to a key-backed input table in batches of several sizes. The rows/s show
// the server's fixed cost per upload: with DH_PID set to the server's
// process id, server-cpu-µs/row shows it directly.
//
//	DH_ADDR=127.0.0.1:10000 DH_PID=$(pgrep -f run_deephaven.py) go test -run '^$' -bench AlertUploadBatchSizes ./pkg/deephaven/
func BenchmarkAlertUploadBatchSizes(b *testing.B) {
	c := shared(b)
	ctx := ctxT(b)
	pid, _ := strconv.Atoi(os.Getenv("DH_PID"))
	for _, size := range []int{1, 10, 100, 400, 2000, 10000} {
		b.Run(fmt.Sprintf("rows=%d", size), func(b *testing.B) {
			it, err := c.CreateInputTable(ctx, uniqueName("alertbench"), rows.AlertSchema, rows.AlertKeys...)
			if err != nil {
				b.Fatal(err)
			}
			off := 0
			batch := func() arrow.RecordBatch {
				rs := make([]rows.AlertRow, size)
				now := time.Now().UTC()
				for i := range rs {
					off++
					rs[i] = rows.AlertRow{PrometheusDateTime: now, Job: "bench", Instance: fmt.Sprintf("host-%d:9100", off%500),
						PrometheusQuery: "Bench", Status: "firing", AlertIngestDateTime: now, AlertName: "Bench", Severity: "warning",
						Fingerprint: fmt.Sprintf("%016x", off), StartsAt: now, Labels: fmt.Sprintf(`{alertname="Bench", instance="host-%d:9100"}`, off%500),
						Annotations: "{}", Receiver: "bench", Source: "alertmanager", SeriesKey: fmt.Sprintf(`{instance="host-%d:9100"}`, off%500)}
				}
				return rows.AlertRecord(memory.DefaultAllocator, rs)
			}
			cpu0 := deephaven.ServerCPU(pid)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				rec := batch()
				b.StartTimer()
				if err := it.Add(ctx, rec); err != nil {
					b.Fatal(err)
				}
				rec.Release()
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "rows/s")
			if pid > 0 {
				b.ReportMetric(float64((deephaven.ServerCPU(pid)-cpu0).Microseconds())/float64(b.N*size), "server-cpu-µs/row")
			}
		})
	}
}

package deephaven_test

import (
	"testing"
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

package history

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/compress"
)

// metricBatches makes n metrics-like rows in batches of batchRows, in time
// order as Deephaven holds them: 1000 series (10 queries, 5 jobs, 200
// instances) polled every 15 s (about 4 h 10 min, across midnight), a
// random walk of values, real-looking label sets and series keys.
func metricBatches(n, batchRows int) []arrow.RecordBatch {
	const series = 1000
	start := time.Date(2025, 3, 2, 22, 0, 0, 0, time.UTC).UnixNano()
	b := array.NewRecordBuilder(memory.DefaultAllocator, metricSchema)
	defer b.Release()
	s := func(i int) *array.StringBuilder { return b.Field(i).(*array.StringBuilder) }
	ts := func(i int) *array.TimestampBuilder { return b.Field(i).(*array.TimestampBuilder) }
	vals := make([]float64, series)
	x := uint64(88172645463325252)
	var out []arrow.RecordBatch
	for i := range n {
		k := i % series
		// All series of a round share the evaluation time, as the poller's.
		t := start + int64(i/series)*int64(15*time.Second)
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		vals[k] += float64(x%1000)/1000 - 0.5
		q := fmt.Sprintf(`rate(node_network_receive_bytes_total{device!="lo"}[5m]) / %d`, k%10)
		job := fmt.Sprintf("job-%d", k%5)
		inst := fmt.Sprintf("10.0.%d.%d:9100", k/200, k%200)
		ts(0).Append(arrow.Timestamp(t))
		s(1).Append(q)
		s(2).Append(job)
		s(3).Append(inst)
		b.Field(4).(*array.Float64Builder).Append(math.Round(vals[k]*1000) / 1000)
		ts(5).Append(arrow.Timestamp(t + 250*int64(time.Millisecond)))
		s(6).Append(fmt.Sprintf(`{device="eth%d",instance=%q,job=%q}`, k%3, inst, job))
		s(7).Append(fmt.Sprintf(`device="eth%d",instance=%q,job=%q`, k%3, inst, job))
		if (i+1)%batchRows == 0 || i == n-1 {
			out = append(out, b.NewRecordBatch())
		}
	}
	return out
}

// BenchmarkWrite exports 1M metrics-like rows (two dates) per iteration:
// Begin, Write of 4096-row batches, Prepare (fsync), Commit. It reports
// rows/s, bytes/row of the files and the peak Go heap while writing.
func BenchmarkWrite(b *testing.B) {
	const rows = 1_000_000
	batches := metricBatches(rows, 4096)
	defer func() {
		for _, r := range batches {
			r.Release()
		}
	}()
	for _, bc := range []struct {
		name  string
		codec compress.Compression
		rg    int64
	}{
		{"zstd/rg128k", compress.Codecs.Zstd, 128 << 10},
		{"zstd/rg64k", compress.Codecs.Zstd, 64 << 10},
		{"snappy/rg128k", compress.Codecs.Snappy, 128 << 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(b.TempDir(), Options{RowGroupRows: bc.rg, compression: bc.codec}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var base, held uint64
			cutoff := time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC)
			var bytes int64
			for i := 0; b.Loop(); i++ {
				if i == 0 {
					base = liveHeap(b)
				}
				e, err := s.Begin(ctx, table, cutoff.Add(time.Duration(i)), timeCol)
				if err != nil {
					b.Fatal(err)
				}
				for j, r := range batches {
					if err := e.Write(ctx, r); err != nil {
						b.Fatal(err)
					}
					if i == 0 && j == len(batches)/3 {
						held = liveHeap(b) - base
					}
				}
				files, err := e.Prepare(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if err := e.Commit(ctx); err != nil {
					b.Fatal(err)
				}
				bytes = 0
				for _, f := range files {
					bytes += f.Bytes
				}
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(bytes)/rows, "bytes/row")
			b.ReportMetric(float64(held)/(1<<20), "held-MiB")
		})
	}
}

// liveHeap returns the live heap, outside the timing.
func liveHeap(b *testing.B) uint64 {
	b.StopTimer()
	defer b.StartTimer()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
)

// BenchmarkAppend measures group-committed appends from many goroutines,
// with 200-byte records. Whenever the journal fills up everything is marked
// delivered, so retention runs as in steady state.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			j, err := Open(b.TempDir(), Options{MaxBytes: 64 << 20, SegmentBytes: 4 << 20}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			recs := make([][]byte, n)
			for i := range recs {
				recs[i] = bytes.Repeat([]byte("x"), 200)
			}
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					for {
						_, err := j.Append(context.Background(), recs)
						if errors.Is(err, ErrFull) {
							if err := j.MarkDelivered(j.Stats().LastSeq); err != nil {
								b.Error(err)
								return
							}
							continue
						}
						if err != nil {
							b.Error(err)
							return
						}
						break
					}
				}
			})
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(j.fsyncs.Load())/float64(b.N), "fsyncs/op")
		})
	}
}

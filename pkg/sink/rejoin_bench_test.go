package sink

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkSynchronousCallers shows what RejoinWindow does for callers that
// wait for each answer, as Alertmanager does: 8 callers of 100 rows each
// against an upload that takes 10 ms whatever its size (Deephaven's fixed
// cost dominates small uploads). Without it the callers split into cohorts
// taking turns; rows/upload is the figure to compare.
func BenchmarkSynchronousCallers(b *testing.B) {
	for _, window := range []time.Duration{-1, 2 * time.Millisecond} {
		b.Run(fmt.Sprintf("rejoin=%v", window), func(b *testing.B) {
			var uploads, rowsUp atomic.Int64
			bt := New(func(ctx context.Context, rs []int) error {
				uploads.Add(1)
				rowsUp.Add(int64(len(rs)))
				time.Sleep(10 * time.Millisecond)
				return nil
			}, Options{Table: "t", MaxInFlight: 4, RejoinWindow: window}, nil, nil)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { bt.Run(ctx, context.Background()); close(done) }()
			rows := make([]int, 100)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := bt.Write(context.Background(), rows); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			cancel()
			<-done
			b.ReportMetric(float64(rowsUp.Load())/float64(uploads.Load()), "rows/upload")
			b.ReportMetric(float64(rowsUp.Load())/elapsed.Seconds(), "rows/s")
		})
	}
}

package sink

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkSynchronousCallers shows what RejoinWindow and RejoinPerRow do
// for callers that wait for each answer, as Alertmanager does: 8 callers of
// 100 rows each against an upload that takes 10 ms whatever its size
// (Deephaven's fixed cost dominates small uploads). Each caller needs
// "turnaround" to come back with its next rows (the bridge decodes 100
// alerts and builds their rows in ~2–4 ms on a busy machine). Without a
// window that covers it the callers split into cohorts taking turns;
// rows/upload is the figure to compare.
func BenchmarkSynchronousCallers(b *testing.B) {
	for _, c := range []struct {
		window, perRow, turnaround time.Duration
	}{
		{-1, -1, 0},
		{2 * time.Millisecond, -1, 0},
		{2 * time.Millisecond, -1, 3 * time.Millisecond},
		{2 * time.Millisecond, 0, 3 * time.Millisecond}, // the defaults
	} {
		b.Run(fmt.Sprintf("rejoin=%v/perRow=%v/turnaround=%v", c.window, c.perRow, c.turnaround), func(b *testing.B) {
			var uploads, rowsUp atomic.Int64
			bt := New(func(ctx context.Context, rs []int) error {
				uploads.Add(1)
				rowsUp.Add(int64(len(rs)))
				time.Sleep(10 * time.Millisecond)
				return nil
			}, Options{Table: "t", MaxInFlight: 4, RejoinWindow: c.window, RejoinPerRow: c.perRow}, nil, nil)
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
						time.Sleep(c.turnaround)
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

package sink

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func startPair[A, B any](p *Pair[A, B]) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx, context.Background()); close(done) }()
	return func() { cancel(); <-done }
}

// The rows of concurrent requests travel in the same batches: one upload
// per table for all of them, both tables at once.
func TestPairWritesBothTablesInTheSameBatches(t *testing.T) {
	ta, tb := &fakeTable{}, &fakeTable{}
	p := NewPair(ta.upload, tb.upload, "a", "b", Options{MaxDelay: 200 * time.Millisecond}, nil, nil)
	stop := startPair(p)
	defer stop()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, err := p.WritePair(context.Background(), []int{i, i}, []int{i}); err != nil || st != (Stored{true, true}) {
				t.Errorf("write %d: %v, %+v", i, err, st)
			}
		}()
	}
	wg.Wait()
	na, ba := ta.rows()
	nb, bb := tb.rows()
	if na != 40 || nb != 20 {
		t.Fatalf("stored %d and %d rows, want 40 and 20", na, nb)
	}
	if ba != 1 || bb != 1 {
		t.Fatalf("%d and %d uploads, want one per table", ba, bb)
	}
}

// A part whose upload failed is retried alone: the part already stored is
// not uploaded again (the notification log appends; a repeat would be a
// duplicate row).
func TestPairRetriesOnlyTheFailedPart(t *testing.T) {
	ta := &fakeTable{}
	tb := &fakeTable{failN: 2, failErr: errors.New("unavailable")}
	p := NewPair(ta.upload, tb.upload, "a", "b", Options{MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}, nil, nil)
	stop := startPair(p)
	defer stop()
	if _, err := p.WritePair(context.Background(), []int{1, 2}, []int{3}); err != nil {
		t.Fatal(err)
	}
	if na, ba := ta.rows(); na != 2 || ba != 1 {
		t.Fatalf("first table: %d rows in %d uploads, want 2 in 1 (not uploaded again on the retries)", na, ba)
	}
	if nb, bb := tb.rows(); nb != 1 || bb != 1 {
		t.Fatalf("second table: %d rows in %d uploads, want 1 in 1", nb, bb)
	}
}

// After an error the caller learns which part is stored, so that it marks
// only that one as written.
func TestPairReportsWhatIsStoredAfterAnError(t *testing.T) {
	ta := &fakeTable{}
	tb := &fakeTable{failN: 1 << 30, failErr: errors.New("schema mismatch")}
	p := NewPair(ta.upload, tb.upload, "a", "b", Options{Retryable: func(error) bool { return false }}, nil, nil)
	stop := startPair(p)
	defer stop()
	st, err := p.WritePair(context.Background(), []int{1}, []int{2})
	if err == nil || st != (Stored{First: true}) {
		t.Fatalf("got %+v, %v; want the first part stored and an error", st, err)
	}
	// Writers of one table go through the same batches.
	if err := p.First().Write(context.Background(), []int{4}); err != nil {
		t.Fatal(err)
	}
	if na, _ := ta.rows(); na != 2 {
		t.Fatalf("first table holds %d rows, want 2", na)
	}
}

// Rows with the same key of the first table are applied in arrival order
// even with several uploads in flight, as with a Batcher.
func TestPairKeepsKeyOrderWithUploadsInFlight(t *testing.T) {
	var mu sync.Mutex
	var order []int
	slow := func(ctx context.Context, rs []int) error {
		// Earlier rows take longer: without the key, later uploads would
		// overtake them.
		time.Sleep(time.Duration(12-rs[0]) * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		order = append(order, rs...)
		return nil
	}
	p := NewPair(slow, func(context.Context, []int) error { return nil }, "a", "b",
		Options{MaxInFlight: 4, PipelineMinRows: 1, RejoinWindow: -1}, nil, nil)
	p.SetKey(func(int) uint64 { return 7 }) // every row has the same key
	stop := startPair(p)
	defer stop()
	var wg sync.WaitGroup
	for i := range 10 {
		// Each write is enqueued before the next starts, so arrival order
		// is i's order.
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.WritePair(context.Background(), []int{i}, []int{i}); err != nil {
				t.Error(err)
			}
		}()
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	for i := range order {
		if order[i] != i {
			t.Fatalf("rows of one key applied out of order: %v", order)
		}
	}
}

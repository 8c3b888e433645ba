package sink

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeTable records uploads and fails the first failN of them.
type fakeTable struct {
	mu      sync.Mutex
	batches [][]int
	failN   int
	failErr error
}

func (f *fakeTable) upload(ctx context.Context, rows []int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failN > 0 {
		f.failN--
		return f.failErr
	}
	f.batches = append(f.batches, append([]int(nil), rows...))
	return nil
}

func (f *fakeTable) rows() (n int, batches int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.batches {
		n += len(b)
	}
	return n, len(f.batches)
}

func start[R any](t *testing.T, b *Batcher[R]) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx, context.Background()); close(done) }()
	return func() { cancel(); <-done }
}

func TestWritesShareOneUpload(t *testing.T) {
	f := &fakeTable{}
	b := New[int](f.upload, Options{Table: "t", MaxRows: 1000, MaxDelay: 200 * time.Millisecond}, nil, nil)
	stop := start(t, b)
	defer stop()
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := b.Write(context.Background(), []int{i, i}); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	n, batches := f.rows()
	if n != 100 {
		t.Fatalf("uploaded %d rows, want 100", n)
	}
	if batches >= 50 {
		t.Fatalf("50 writes took %d uploads; they should share", batches)
	}
}

func TestFlushesAtMaxRows(t *testing.T) {
	f := &fakeTable{}
	b := New[int](f.upload, Options{Table: "t", MaxRows: 3, MaxDelay: time.Hour}, nil, nil)
	stop := start(t, b)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// With an hour of delay, only the size limit can flush this.
	if err := b.Write(ctx, []int{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
}

func TestRetriesTransientFailures(t *testing.T) {
	f := &fakeTable{failN: 3, failErr: errors.New("unavailable")}
	b := New[int](f.upload, Options{Table: "t", MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxDelay: time.Millisecond}, nil, nil)
	stop := start(t, b)
	defer stop()
	if err := b.Write(context.Background(), []int{1}); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.rows(); n != 1 {
		t.Fatalf("uploaded %d rows, want 1", n)
	}
}

func TestPermanentFailureIsReported(t *testing.T) {
	perm := errors.New("schema mismatch")
	f := &fakeTable{failN: 1, failErr: perm}
	b := New[int](f.upload, Options{Table: "t", MaxDelay: time.Millisecond, Retryable: func(err error) bool { return !errors.Is(err, perm) }}, nil, nil)
	stop := start(t, b)
	defer stop()
	if err := b.Write(context.Background(), []int{1}); !errors.Is(err, perm) {
		t.Fatalf("got %v, want the permanent error", err)
	}
}

func TestCallerDeadlineEndsTheWait(t *testing.T) {
	f := &fakeTable{failN: 1 << 30, failErr: errors.New("down")}
	b := New[int](f.upload, Options{Table: "t", MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, MaxDelay: time.Millisecond}, nil, nil)
	stop := start(t, b)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := b.Write(ctx, []int{1}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want deadline exceeded", err)
	}
}

func TestShutdownDrainsWaitingRows(t *testing.T) {
	f := &fakeTable{}
	b := New[int](f.upload, Options{Table: "t", MaxDelay: time.Hour}, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx, context.Background()); close(done) }()
	errc := make(chan error, 1)
	go func() { errc <- b.Write(context.Background(), []int{7}) }()
	// Wait until the row is queued, then stop: the drain must upload it.
	for deadline := time.Now().Add(5 * time.Second); len(b.in) > 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
	cancel()
	<-done
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n, _ := f.rows(); n != 1 {
		t.Fatalf("uploaded %d rows, want 1", n)
	}
	if err := b.Write(context.Background(), []int{8}); !errors.Is(err, ErrStopped) {
		t.Fatalf("write after stop: got %v, want ErrStopped", err)
	}
}

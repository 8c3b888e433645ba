package sink

import (
	"context"
	"errors"
	"math/rand/v2"
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

// Up to MaxInFlight uploads run at once; rows that arrive meanwhile wait
// for a free slot and form the next batch.
func TestUploadsInFlight(t *testing.T) {
	var mu sync.Mutex
	running, most := 0, 0
	release := make(chan struct{})
	upload := func(ctx context.Context, rows []int) error {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		<-release
		mu.Lock()
		running--
		mu.Unlock()
		return nil
	}
	b := New(upload, Options{MaxInFlight: 4, PipelineMinRows: 1}, nil, nil)
	stop := start(t, b)
	defer stop()
	var wg sync.WaitGroup
	// One at a time, so that each is a batch while slots are free.
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); b.Write(context.Background(), []int{i}) }()
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	if running != 4 {
		t.Errorf("%d uploads in flight, want 4", running)
	}
	mu.Unlock()
	close(release)
	wg.Wait()
	if most != 4 {
		t.Errorf("at most %d uploads in flight, want 4", most)
	}
}

// Rows with the same key are applied in the order they arrived, whatever
// the uploads' speed and retries: a batch holding a key in flight waits.
func TestSameKeyKeepsArrivalOrder(t *testing.T) {
	type row struct{ key, version int }
	var mu sync.Mutex
	table := map[int]int{} // key -> version applied last
	attempts := 0
	upload := func(ctx context.Context, rs []row) error {
		mu.Lock()
		attempts++
		fail := attempts%5 == 0
		mu.Unlock()
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		if fail {
			return errors.New("transient")
		}
		mu.Lock()
		defer mu.Unlock()
		for _, r := range rs {
			table[r.key] = r.version
		}
		return nil
	}
	b := New(upload, Options{MaxInFlight: 4, PipelineMinRows: 1, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}, nil, nil)
	b.SetKey(func(r row) uint64 { return uint64(r.key) })
	stop := start(t, b)
	defer stop()
	want := map[int]int{}
	var reqs []request[row]
	for v := 1; v <= 300; v++ {
		k := rand.IntN(10)
		want[k] = v
		req, err := b.enqueue(context.Background(), []row{{k, v}})
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, req)
		// Most requests become batches of their own, so that several
		// race in flight.
		for len(b.in) > 0 {
			time.Sleep(50 * time.Microsecond)
		}
	}
	for _, req := range reqs {
		if err := b.await(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for k, v := range want {
		if table[k] != v {
			t.Errorf("key %d holds version %d, want %d (the last to arrive)", k, table[k], v)
		}
	}
}

// While an upload is in flight, a batch smaller than PipelineMinRows waits
// for it and grows; a big one goes at once.
func TestSmallBatchesWaitForTheUploadInFlight(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	running, most := 0, 0
	release := make(chan struct{})
	upload := func(ctx context.Context, rows []int) error {
		mu.Lock()
		running++
		most = max(most, running)
		sizes = append(sizes, len(rows))
		mu.Unlock()
		<-release
		mu.Lock()
		running--
		mu.Unlock()
		return nil
	}
	b := New(upload, Options{MaxInFlight: 4, PipelineMinRows: 10}, nil, nil)
	stop := start(t, b)
	defer stop()
	var wg sync.WaitGroup
	write := func(n int) {
		wg.Add(1)
		go func() { defer wg.Done(); b.Write(context.Background(), make([]int, n)) }()
		time.Sleep(10 * time.Millisecond)
	}
	write(1) // in flight alone
	for i := 0; i < 5; i++ {
		write(1) // wait, gathering
	}
	mu.Lock()
	if running != 1 {
		t.Errorf("%d uploads in flight with small batches waiting, want 1", running)
	}
	mu.Unlock()
	write(20) // joins the gathered ones: big enough to go in parallel
	mu.Lock()
	if running != 2 || sizes[len(sizes)-1] != 25 {
		t.Errorf("%d uploads in flight, last batch %v rows; want 2 and 25", running, sizes)
	}
	mu.Unlock()
	close(release)
	wg.Wait()
}

// The rejoin window grows with the rows each answered caller brought, up
// to a cap, and never shrinks below RejoinWindow.
func TestRejoinWindowGrowsWithRowsPerCaller(t *testing.T) {
	b := New[int](nil, Options{}, nil, nil)
	for _, c := range []struct {
		rows int
		want time.Duration
	}{
		{0, 2 * time.Millisecond},
		{1, 2*time.Millisecond + 80*time.Microsecond},
		{50, 6 * time.Millisecond},
		{100, maxRejoinWindow},
		{2000, maxRejoinWindow},
	} {
		if got := b.rejoinWindow(c.rows); got != c.want {
			t.Errorf("%d rows per caller: window %v, want %v", c.rows, got, c.want)
		}
	}
	off := New[int](nil, Options{RejoinPerRow: -1}, nil, nil)
	if got := off.rejoinWindow(100); got != 2*time.Millisecond {
		t.Errorf("RejoinPerRow off: window %v, want 2ms", got)
	}
	never := New[int](nil, Options{RejoinWindow: -1}, nil, nil)
	if got := never.rejoinWindow(100); got != 0 {
		t.Errorf("RejoinWindow off: window %v, want 0", got)
	}
}

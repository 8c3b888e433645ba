package sink

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// PairWriter takes the rows of two tables that one caller writes together:
// a webhook request's alerts and its notifications.
//
// WritePair returns nil once both parts are stored. After an error, Stored
// says which parts are known to be stored, so that the caller marks those
// as written and a retry does not write them again; a part not marked may
// still be stored later, as with Writer. An empty part counts as stored.
// WritePair must be safe for concurrent use and honour ctx.
type PairWriter[A, B any] interface {
	WritePair(ctx context.Context, a []A, b []B) (Stored, error)
}

// Stored says which parts of a WritePair are stored.
type Stored struct{ First, Second bool }

// Parallel writes the two parts to their own writers at once (used where
// each table has a writer that is its own destination: the journal,
// Kafka). A request waits for the slower of the two.
func Parallel[A, B any](wa Writer[A], wb Writer[B]) PairWriter[A, B] {
	return parallel[A, B]{wa, wb}
}

type parallel[A, B any] struct {
	wa Writer[A]
	wb Writer[B]
}

func (p parallel[A, B]) WritePair(ctx context.Context, a []A, b []B) (Stored, error) {
	errB := make(chan error, 1)
	if len(b) > 0 {
		go func() { errB <- p.wb.Write(ctx, b) }()
	} else {
		errB <- nil
	}
	var errA error
	if len(a) > 0 {
		errA = p.wa.Write(ctx, a)
	}
	eb := <-errB
	return Stored{First: errA == nil, Second: eb == nil}, errors.Join(errA, eb)
}

// Pair batches the rows of two tables that callers write together, so that
// the rows of the same requests travel in the same uploads: each batch is
// one upload per table, both at once, and the callers of a batch are
// answered together. With a Batcher per table, a request waits for two
// batches formed independently; its callers then come back at different
// times and split into cohorts that take turns with half-size uploads,
// and Deephaven pays its fixed cost per upload twice as often.
//
// Everything Batcher promises holds: rows with the same key of the first
// table (SetKey) are applied in arrival order, and a batch is retried with
// backoff while a caller waits. A failed part is retried alone: the part
// already stored is not uploaded again (the second table may append, so a
// repeat would be a duplicate row). First and Second write one table
// alone through the same batches, so that every writer of the first table
// shares its key order.
//
// Run owns the batching; see Batcher.Run for shutdown.
type Pair[A, B any] struct {
	b        *Batcher[*pairWrite[A, B]]
	upA      Upload[A]
	upB      Upload[B]
	keyA     func(A) uint64
	ma, mb   *batchMetrics
	retrying func(error) bool
}

// pairWrite is one caller's rows; the stored flags survive retries of its
// batch (and are read by the caller after an error).
type pairWrite[A, B any] struct {
	a       []A
	b       []B
	aStored atomic.Bool
	bStored atomic.Bool
}

// NewPair makes a Pair uploading with upA and upB; opts.Table names the
// pair in logs, tableA and tableB name the tables in metrics. MaxRows and
// PipelineMinRows count the larger part of each write.
func NewPair[A, B any](upA Upload[A], upB Upload[B], tableA, tableB string, opts Options, logger *slog.Logger, m *Metrics) *Pair[A, B] {
	opts.defaults()
	p := &Pair[A, B]{upA: upA, upB: upB, ma: m.forTable(tableA), mb: m.forTable(tableB), retrying: opts.Retryable}
	if opts.Table == "" {
		opts.Table = tableA + " and " + tableB
	}
	p.b = newBatcher(p.upload, opts, logger, nil)
	p.b.size = func(w *pairWrite[A, B]) int { return max(len(w.a), len(w.b)) }
	return p
}

// SetKey keeps rows of the first table in order; see Batcher.SetKey.
// Call it before Run.
func (p *Pair[A, B]) SetKey(key func(A) uint64) {
	p.b.keys = func(w *pairWrite[A, B], add func(uint64)) {
		for i := range w.a {
			add(key(w.a[i]))
		}
	}
}

// Run batches and uploads until ctx ends, then drains under drainCtx.
func (p *Pair[A, B]) Run(ctx, drainCtx context.Context) { p.b.Run(ctx, drainCtx) }

// WritePair writes a and b in the same batch and waits until both are
// stored.
func (p *Pair[A, B]) WritePair(ctx context.Context, a []A, b []B) (Stored, error) {
	if len(a) == 0 && len(b) == 0 {
		return Stored{true, true}, nil
	}
	w := &pairWrite[A, B]{a: a, b: b}
	w.aStored.Store(len(a) == 0)
	w.bStored.Store(len(b) == 0)
	err := p.b.Write(ctx, []*pairWrite[A, B]{w})
	return Stored{First: w.aStored.Load(), Second: w.bStored.Load()}, err
}

// First is a Writer of the first table alone.
func (p *Pair[A, B]) First() Writer[A] {
	return WriterFunc[A](func(ctx context.Context, a []A) error {
		_, err := p.WritePair(ctx, a, nil)
		return err
	})
}

// Second is a Writer of the second table alone.
func (p *Pair[A, B]) Second() Writer[B] {
	return WriterFunc[B](func(ctx context.Context, b []B) error {
		_, err := p.WritePair(ctx, nil, b)
		return err
	})
}

// upload uploads the parts of ws not yet stored, one upload per table at
// once, and marks each part stored when its upload succeeds.
func (p *Pair[A, B]) upload(ctx context.Context, ws []*pairWrite[A, B]) error {
	var na, nb int
	for _, w := range ws {
		na, nb = na+len(w.a), nb+len(w.b)
	}
	as, bs := make([]A, 0, na), make([]B, 0, nb)
	for _, w := range ws {
		if !w.aStored.Load() {
			as = append(as, w.a...)
		}
		if !w.bStored.Load() {
			bs = append(bs, w.b...)
		}
	}
	var errB error
	var wg sync.WaitGroup
	if len(bs) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errB = timed(ctx, p.upB, bs, p.mb)
		}()
	}
	var errA error
	if len(as) > 0 {
		errA = timed(ctx, p.upA, as, p.ma)
	}
	wg.Wait()
	for _, w := range ws {
		if errA == nil {
			w.aStored.Store(true)
		}
		if errB == nil {
			w.bStored.Store(true)
		}
	}
	// A part that cannot succeed decides: retrying the other would not
	// help the callers.
	for _, err := range []error{errA, errB} {
		if err != nil && !p.retrying(err) {
			return err
		}
	}
	return errors.Join(errA, errB)
}

func timed[R any](ctx context.Context, up Upload[R], rs []R, m *batchMetrics) error {
	start := time.Now()
	err := up(ctx, rs)
	m.observe(len(rs), time.Since(start), err)
	return err
}

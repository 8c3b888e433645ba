// Package sink is where rows wait on their way to Deephaven (or Kafka).
//
// Sources hand rows to a [Writer], one per table, and do not know what is
// behind it. Behind it there is usually a [Batcher]: rows from many webhook
// requests and polls are grouped into one upload per table, so throughput
// does not depend on how many rows one caller brings, and a failed upload is
// retried with capped exponential backoff while anyone still waits for it.
//
// Data flow: source → Writer.Write → batch → Upload → Deephaven (pkg/tables)
// or Kafka (pkg/kafkasink, whose writers produce to topics directly, without
// a Batcher).
package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Writer takes the rows of one table.
//
// Write returns nil once the rows are stored where the sink keeps them (in
// a Deephaven input table, in the alert journal, or in a Kafka topic that
// acknowledged them), and an error otherwise; after an error some of the
// rows may still be stored later, so callers retry whole writes and tables
// tolerate repeats (key-backed tables replace, the poller never re-sends
// what it was told is stored). Write must be safe for concurrent use and
// honour ctx. Callers must not change the rows while Write runs, nor after
// it returned an error early (an upload in flight may still read them).
type Writer[R any] interface {
	Write(ctx context.Context, rows []R) error
}

// WriterFunc makes a function a Writer.
type WriterFunc[R any] func(ctx context.Context, rows []R) error

// Write calls f.
func (f WriterFunc[R]) Write(ctx context.Context, rows []R) error { return f(ctx, rows) }

// Upload writes one batch of rows to their table. It returns an error the
// Batcher may retry when Retryable says so.
type Upload[R any] func(ctx context.Context, rows []R) error

// Options tunes a Batcher.
type Options struct {
	Table      string        // the table name, for logs and metrics
	MaxRows    int           // most rows in one upload (default 10000); one Write's rows are never split
	MaxDelay   time.Duration // how long the first row of an idle batcher waits for company (default 0: none)
	MinBackoff time.Duration // first retry delay (default 100ms)
	MaxBackoff time.Duration // retry delay cap (default 10s)
	// Retryable says whether a failed upload should be tried again.
	Retryable func(error) bool
	// MaxInFlight bounds the uploads in flight at once (default 1). More
	// than one lets uploads overlap, while the rows that arrive meanwhile
	// form the next batch.
	MaxInFlight int
	// PipelineMinRows is how many rows a batch needs to be uploaded while
	// another upload is in flight (default 1000); smaller batches wait for
	// that upload to end, gathering more rows. Deephaven spends several
	// milliseconds of CPU on every upload whatever its size, so many small
	// uploads in parallel cost more than they save: overlap pays only for
	// big batches.
	PipelineMinRows int
	// RejoinWindow is how long after an upload ends a small batch waits
	// for the callers that upload just answered (default 2ms, negative:
	// never). Synchronous callers (Alertmanager waits for each answer)
	// come back a moment after their answer; without this they miss the
	// next batch and wait out a whole upload, so the callers split into
	// cohorts taking turns with half-size uploads. The wait ends as soon
	// as as many callers wait as the last upload and its queue had.
	RejoinWindow time.Duration
	// RejoinPerRow lengthens the window by this much per row that each
	// answered caller brought (default 80µs, negative: never), up to
	// maxRejoinWindow in all: a caller that brought 100 alerts must have
	// its next request decoded and turned into rows (~20µs per alert,
	// with eight of them on two cores the server also uses) before it can
	// join, one that brought one alert is back at once. 40µs left 8 × 100
	// at 543–571 rows per upload against 671–694 with 80µs, and Deephaven
	// spending 77–121 ms of CPU per 1,000 alerts against 55–93
	// (bridge-bench, alternating runs on one server).
	RejoinPerRow time.Duration
}

// maxRejoinWindow caps RejoinWindow plus RejoinPerRow's share: past it,
// waiting for callers costs more latency than a second upload costs.
const maxRejoinWindow = 10 * time.Millisecond

func (o *Options) defaults() {
	if o.MaxRows <= 0 {
		o.MaxRows = 10000
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.Retryable == nil {
		o.Retryable = func(error) bool { return true }
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 1
	}
	if o.PipelineMinRows <= 0 {
		o.PipelineMinRows = 1000
	}
	if o.RejoinWindow == 0 {
		o.RejoinWindow = 2 * time.Millisecond
	}
	if o.RejoinPerRow == 0 {
		o.RejoinPerRow = 80 * time.Microsecond
	}
}

// ErrStopped is returned by Write once the Batcher has stopped.
var ErrStopped = errors.New("sink: stopped")

type request[R any] struct {
	ctx  context.Context
	rows []R
	done chan error // buffered (1)
}

// Batcher groups rows of one table into uploads.
//
// Write may be called from any number of goroutines. Rows of one Write are
// uploaded together, in one batch; batches are formed in arrival order and
// up to Options.MaxInFlight of them are uploaded at once. Batches in flight
// together never share a key (SetKey), so rows with the same key are
// applied in arrival order. Write returns nil only once its rows were
// uploaded, or an error when its context ended first or the upload failed
// for good (the rows may still be uploaded later by a retry; uploads must be
// idempotent or the caller must tolerate that).
//
// Run owns all batching state. When its context ends it stops taking rows,
// lets the uploads in flight finish and makes one last attempt to upload
// what waits, both bounded by the drain context given to Run, answers every
// waiting Write and returns.
type Batcher[R any] struct {
	opts Options
	// keys calls add with the key hash of each row r stands for (SetKey);
	// size is how many rows r stands for (default 1). Both let a Pair
	// batch whole requests of two tables.
	keys    func(r R, add func(uint64))
	size    func(r R) int
	upload  Upload[R]
	logger  *slog.Logger
	in      chan request[R]
	stopped chan struct{}
	m       *batchMetrics
}

// New makes a Batcher. Call Run to start it.
func New[R any](upload Upload[R], opts Options, logger *slog.Logger, m *Metrics) *Batcher[R] {
	return newBatcher(upload, opts, logger, m.forTable(opts.Table))
}

// newBatcher makes a Batcher that reports its uploads to m (nil: the
// upload reports them itself).
func newBatcher[R any](upload Upload[R], opts Options, logger *slog.Logger, m *batchMetrics) *Batcher[R] {
	opts.defaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Batcher[R]{
		opts:    opts,
		upload:  upload,
		logger:  logger.With("table", opts.Table),
		in:      make(chan request[R], 1024),
		stopped: make(chan struct{}),
		m:       m,
	}
}

// SetKey makes the batcher keep rows of a key-backed table in order: key
// identifies a row (a hash; collisions only cost waiting), and a batch
// holding a key that a batch in flight holds waits for that one to be done,
// retries included, so rows with the same key are applied in the order they
// arrived. Call it before Run.
func (b *Batcher[R]) SetKey(key func(R) uint64) {
	b.keys = func(r R, add func(uint64)) { add(key(r)) }
}

// rows is how many rows rs stand for.
func (b *Batcher[R]) rows(rs []R) int {
	if b.size == nil {
		return len(rs)
	}
	n := 0
	for _, r := range rs {
		n += b.size(r)
	}
	return n
}

// Write hands rows to the batcher and waits until they are uploaded.
func (b *Batcher[R]) Write(ctx context.Context, rows []R) error {
	if len(rows) == 0 {
		return nil
	}
	req, err := b.enqueue(ctx, rows)
	if err != nil {
		return err
	}
	return b.await(ctx, req)
}

// enqueue hands the rows to Run; rows enqueued one after the other are
// batched in that order.
func (b *Batcher[R]) enqueue(ctx context.Context, rows []R) (request[R], error) {
	req := request[R]{ctx: ctx, rows: rows, done: make(chan error, 1)}
	select {
	case <-b.stopped:
		return req, ErrStopped
	default:
	}
	select {
	case b.in <- req:
		return req, nil
	case <-b.stopped:
		return req, ErrStopped
	case <-ctx.Done():
		return req, fmt.Errorf("sink: queue rows for %s: %w", b.opts.Table, context.Cause(ctx))
	}
}

// await waits for the outcome of an enqueued request.
func (b *Batcher[R]) await(ctx context.Context, req request[R]) error {
	select {
	case err := <-req.done:
		return err
	case <-b.stopped:
		// Run answered everything it took before stopping; a request that
		// slipped in after its last drain is not going to be uploaded.
		select {
		case err := <-req.done:
			return err
		default:
			return ErrStopped
		}
	case <-ctx.Done():
		return fmt.Errorf("sink: write rows to %s: %w", b.opts.Table, context.Cause(ctx))
	}
}

// Run batches and uploads until ctx ends; then it drains under drainCtx.
//
// Batching is group commit: when an upload slot is free, everything queued
// is taken (after lingering up to MaxDelay for company, if set), up to
// MaxRows, and uploaded; whatever arrives while the slots are busy forms
// the next batch. Under load batches grow by themselves; when idle, a row
// waits for nobody. A batch starts while another upload is in flight only
// once it holds PipelineMinRows rows.
func (b *Batcher[R]) Run(ctx context.Context, drainCtx context.Context) {
	defer close(b.stopped)
	p := &pipeline[R]{b: b, done: make(chan *flight, b.opts.MaxInFlight), keys: map[uint64]int{}}
	var carry *request[R] // a request that did not fit into the last batch
	for {
		// A free slot first: rows that arrive meanwhile join the batch.
		for len(p.inflight) >= b.opts.MaxInFlight {
			if !p.wait(ctx) {
				b.stop(drainCtx, p, carried(carry))
				return
			}
		}
		var pending []request[R]
		n := 0
		take := func(req request[R]) bool {
			size := b.rows(req.rows)
			if n > 0 && n+size > b.opts.MaxRows {
				carry = &req
				return false
			}
			pending = append(pending, req)
			n += size
			return n < b.opts.MaxRows
		}
		if carry != nil {
			req := *carry
			carry = nil
			take(req)
		} else {
			select {
			case req := <-b.in:
				take(req)
			case f := <-p.done:
				p.finish(f, 0)
				continue
			case <-ctx.Done():
				b.stop(drainCtx, p, nil)
				return
			}
		}
		if b.opts.MaxDelay > 0 && n < b.opts.MaxRows && carry == nil {
			timer := time.NewTimer(b.opts.MaxDelay)
		linger:
			for {
				select {
				case req := <-b.in:
					if !take(req) {
						break linger
					}
				case <-timer.C:
					break linger
				case <-ctx.Done():
					break linger
				}
			}
			timer.Stop()
		}
		// Everything already queued joins this batch.
	queued:
		for carry == nil && n < b.opts.MaxRows {
			select {
			case req := <-b.in:
				take(req)
			default:
				break queued
			}
		}
		// A small batch waits while an upload is in flight, and grows.
	gather:
		for len(p.inflight) > 0 && n < b.opts.PipelineMinRows && carry == nil {
			select {
			case req := <-b.in:
				take(req)
			case f := <-p.done:
				p.finish(f, len(pending))
			case <-ctx.Done():
				break gather
			}
		}
		// The callers the last upload answered are on their way back.
		if len(p.inflight) == 0 && n < b.opts.PipelineMinRows && carry == nil && len(pending) < p.callers {
			if wait := time.Until(p.doneAt.Add(b.rejoinWindow(p.rowsPerCaller))); wait > 0 {
				timer := time.NewTimer(wait)
			rejoin:
				for len(pending) < p.callers && carry == nil {
					select {
					case req := <-b.in:
						if !take(req) {
							break rejoin
						}
					case <-timer.C:
						break rejoin
					case <-ctx.Done():
						break rejoin
					}
				}
				timer.Stop()
			}
		}
		if ctx.Err() != nil {
			b.stop(drainCtx, p, append(pending, carried(carry)...))
			return
		}
		keys := b.keysOf(pending)
		// A batch holding a key of a batch in flight waits for it.
		for p.conflicts(keys) {
			if !p.wait(ctx) {
				b.stop(drainCtx, p, append(pending, carried(carry)...))
				return
			}
		}
		p.start(ctx, drainCtx, pending, n, keys)
	}
}

// rejoinWindow is how long after an upload ended a small batch waits for
// the callers it answered, who brought rowsPerCaller rows each.
func (b *Batcher[R]) rejoinWindow(rowsPerCaller int) time.Duration {
	w := b.opts.RejoinWindow
	if w < 0 {
		return 0
	}
	if b.opts.RejoinPerRow > 0 {
		w += time.Duration(rowsPerCaller) * b.opts.RejoinPerRow
	}
	return max(min(w, maxRejoinWindow), b.opts.RejoinWindow)
}

// stop waits for the uploads in flight, then drains what is queued.
func (b *Batcher[R]) stop(drainCtx context.Context, p *pipeline[R], pending []request[R]) {
	for len(p.inflight) > 0 {
		p.finish(<-p.done, 0)
	}
	b.drain(drainCtx, pending)
}

// keysOf returns the key hashes of the rows of reqs, or nil without a key
// (SetKey).
func (b *Batcher[R]) keysOf(reqs []request[R]) map[uint64]struct{} {
	if b.keys == nil {
		return nil
	}
	keys := map[uint64]struct{}{}
	add := func(k uint64) { keys[k] = struct{}{} }
	for _, r := range reqs {
		for i := range r.rows {
			b.keys(r.rows[i], add)
		}
	}
	return keys
}

// pipeline is Run's view of the uploads in flight. It is used by Run's
// goroutine only; uploads report on done.
type pipeline[R any] struct {
	b        *Batcher[R]
	inflight []*flight
	done     chan *flight
	keys     map[uint64]int // keys of the batches in flight, with counts
	// When the last upload ended, and how many callers it answered plus
	// how many waited then: the callers expected back (RejoinWindow), and
	// how many rows each of those it answered brought (RejoinPerRow).
	doneAt        time.Time
	callers       int
	rowsPerCaller int
}

// flight is one batch being uploaded.
type flight struct {
	keys map[uint64]struct{}
	reqs int // callers it answers
	rows int
}

func (p *pipeline[R]) start(ctx, drainCtx context.Context, reqs []request[R], rows int, keys map[uint64]struct{}) {
	f := &flight{keys: keys, reqs: len(reqs), rows: rows}
	p.inflight = append(p.inflight, f)
	for k := range keys {
		p.keys[k]++
	}
	go func() {
		p.b.flush(ctx, drainCtx, reqs)
		p.done <- f
	}()
}

// wait waits for an upload to be done; false when ctx ended first.
func (p *pipeline[R]) wait(ctx context.Context) bool {
	select {
	case f := <-p.done:
		p.finish(f, 0)
		return true
	case <-ctx.Done():
		return false
	}
}

// finish forgets a finished upload; waiting is how many callers Run holds
// in its batch being formed.
func (p *pipeline[R]) finish(f *flight, waiting int) {
	p.doneAt = time.Now()
	p.callers = f.reqs + waiting + len(p.b.in)
	p.rowsPerCaller = f.rows / max(f.reqs, 1)
	for i, g := range p.inflight {
		if g == f {
			p.inflight = append(p.inflight[:i], p.inflight[i+1:]...)
			break
		}
	}
	for k := range f.keys {
		if p.keys[k]--; p.keys[k] == 0 {
			delete(p.keys, k)
		}
	}
}

func (p *pipeline[R]) conflicts(keys map[uint64]struct{}) bool {
	if len(p.keys) == 0 {
		return false
	}
	for k := range keys {
		if p.keys[k] > 0 {
			return true
		}
	}
	return false
}

func carried[R any](c *request[R]) []request[R] {
	if c == nil {
		return nil
	}
	return []request[R]{*c}
}

// drain takes whatever is still queued and makes one last upload attempt.
func (b *Batcher[R]) drain(ctx context.Context, pending []request[R]) {
	for {
		select {
		case req := <-b.in:
			pending = append(pending, req)
			continue
		default:
		}
		break
	}
	if len(pending) > 0 {
		b.flush(ctx, ctx, pending)
	}
}

// flush uploads the rows of the waiting requests as one batch, retrying
// transient failures with backoff while at least one caller still waits and
// ctx has not ended. Uploads are bounded by callCtx, so that one in flight
// at shutdown may finish within the drain.
func (b *Batcher[R]) flush(ctx, callCtx context.Context, reqs []request[R]) {
	var backoff time.Duration
	var lastErr string
	for attempt := 1; ; attempt++ {
		reqs = live(reqs)
		if len(reqs) == 0 {
			return
		}
		var batch []R
		if len(reqs) == 1 {
			batch = reqs[0].rows
		} else {
			// Sized once: growing by appends copied each row about twice,
			// ~15 % of the metrics path's CPU with 50,000-row batches.
			n := 0
			for _, r := range reqs {
				n += len(r.rows)
			}
			batch = make([]R, 0, n)
			for _, r := range reqs {
				batch = append(batch, r.rows...)
			}
		}
		start := time.Now()
		err := b.upload(callCtx, batch)
		n := b.rows(batch)
		if b.m != nil {
			b.m.observe(n, time.Since(start), err)
		}
		if err == nil {
			if attempt > 1 {
				b.logger.Info("Upload to Deephaven succeeded again", "attempts", attempt, "rows", n)
			}
			answer(reqs, nil)
			return
		}
		if !b.opts.Retryable(err) {
			b.logger.Error("Upload to Deephaven failed", "rows", n, "err", err)
			answer(reqs, fmt.Errorf("sink: upload %d rows to %s: %w", n, b.opts.Table, err))
			return
		}
		// One log line per change of error, not one per try.
		if msg := err.Error(); msg != lastErr {
			b.logger.Warn("Upload to Deephaven failed; retrying", "rows", n, "attempt", attempt, "err", err)
			lastErr = msg
		}
		backoff = next(backoff, b.opts.MinBackoff, b.opts.MaxBackoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			answer(reqs, fmt.Errorf("sink: upload %d rows to %s: gave up at shutdown: %w", n, b.opts.Table, err))
			return
		}
	}
}

// live drops requests whose callers have stopped waiting; they already got
// their context's error from Write.
func live[R any](reqs []request[R]) []request[R] {
	out := reqs[:0]
	for _, r := range reqs {
		if r.ctx.Err() == nil {
			out = append(out, r)
		} else {
			r.done <- r.ctx.Err()
		}
	}
	return out
}

func answer[R any](reqs []request[R], err error) {
	for _, r := range reqs {
		r.done <- err
	}
}

func next(prev, min, max time.Duration) time.Duration {
	d := prev * 2
	if d < min {
		d = min
	}
	if d > max {
		d = max
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// Metrics are the sink's Prometheus metrics, shared by its batchers.
type Metrics struct {
	rows     *prometheus.CounterVec
	failures *prometheus.CounterVec
	batch    *prometheus.HistogramVec
	latency  *prometheus.HistogramVec
}

// NewMetrics registers the sink's metrics (nil reg: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_rows_written_total",
			Help: "Rows written to Deephaven, per table.",
		}, []string{"table"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_upload_failures_total",
			Help: "Failed uploads of a batch to Deephaven (each try counts), per table.",
		}, []string{"table"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "prometheus_deephaven_bridge_batch_rows",
			Help:    "Rows per upload to Deephaven.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}, []string{"table"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "prometheus_deephaven_bridge_flush_duration_seconds",
			Help:    "Time to upload one batch to Deephaven.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"table"}),
	}
	if reg != nil {
		reg.MustRegister(m.rows, m.failures, m.batch, m.latency)
	}
	return m
}

type batchMetrics struct {
	rows, failures prometheus.Counter
	batch, latency prometheus.Observer
}

func (m *Metrics) forTable(table string) *batchMetrics {
	if m == nil {
		m = NewMetrics(nil)
	}
	return &batchMetrics{
		rows:     m.rows.WithLabelValues(table),
		failures: m.failures.WithLabelValues(table),
		batch:    m.batch.WithLabelValues(table),
		latency:  m.latency.WithLabelValues(table),
	}
}

func (m *batchMetrics) observe(rows int, d time.Duration, err error) {
	if err != nil {
		m.failures.Inc()
		return
	}
	m.rows.Add(float64(rows))
	m.batch.Observe(float64(rows))
	m.latency.Observe(d.Seconds())
}

// Package poller runs the configured PromQL queries against Prometheus, each
// on its own interval, and hands the resulting rows of the prometheus_metrics
// table to a Sink.
//
// Each query has its own goroutine, so a slow or failing query never delays
// the others. Instant vector and scalar results become rows (see
// rows.MetricRow); other result types, native histogram samples, query errors
// and sink errors are logged and counted in the
// prometheus_deephaven_bridge_query_* metrics.
package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
	"unicode/utf8"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// Sink receives the rows of one poll.
//
// WriteMetrics must be safe for concurrent use (queries are polled in
// parallel) and must honour ctx: the poller cancels it on shutdown and when a
// query is removed or changed, and waits for it to return. The sink owns rows
// once called; the poller does not touch the slice again. An error means the
// rows were not stored; the poller logs and counts it and does not retry.
type Sink interface {
	WriteMetrics(ctx context.Context, rows []rows.MetricRow) error
}

// Query is one PromQL instant query polled at a fixed interval.
type Query struct {
	// Name identifies the query: it is unique, it is the PrometheusQuery
	// column of the query's rows and the "query" label of the poller's metrics.
	Name string
	// Expr is the PromQL expression. It must return an instant vector or a
	// scalar.
	Expr string
	// Interval is the time between the starts of two polls. Must be > 0.
	Interval time.Duration
	// Timeout bounds one poll (the HTTP call, and Prometheus's evaluation via
	// the timeout parameter). Zero means Interval.
	Timeout time.Duration
}

// DefaultMaxBackoff is the default of WithMaxBackoff.
const DefaultMaxBackoff = 30 * time.Second

// Option configures a Poller.
type Option func(*Poller)

// WithClock sets the clock that stamps MetricIngestDateTime and the
// last-success metric. Default time.Now.
func WithClock(now func() time.Time) Option {
	return func(p *Poller) {
		if now != nil {
			p.now = now
		}
	}
}

// WithMaxBackoff caps the backoff of a failing query; see Poller. Values
// <= 0 are ignored. Default DefaultMaxBackoff.
func WithMaxBackoff(d time.Duration) Option {
	return func(p *Poller) {
		if d > 0 {
			p.maxBackoff = d
		}
	}
}

// Poller polls a set of queries and writes their rows to a Sink.
//
// Guarantees:
//
//   - Each query runs in its own goroutine, first right after it starts and
//     then every Interval, measured from the start of the previous poll. A
//     query never runs twice at once: a poll that overruns its interval makes
//     the query skip the ticks it missed instead of piling them up.
//   - Every poll is bounded by the query's Timeout, both through its context
//     and through Prometheus's timeout parameter. The query is evaluated at
//     Prometheus's current time.
//   - A failed poll (Prometheus or transport error, timeout, unsupported result
//     type) makes that query back off: after n consecutive failures it waits a
//     random duration in [d/2, d), and never less than Interval, where
//     d = min(Interval·2ⁿ, limit) and limit = max(Interval, min(10·Interval,
//     WithMaxBackoff's value)). The wait counts from the end of the failed
//     poll. The first success returns it to its normal interval.
//     Sink errors do not cause backoff: Prometheus was fine.
//   - Errors are logged once per change of state (ok → failing, a different
//     error, failing → ok), per query and separately for Prometheus and the
//     sink; repeats of the same error (any timeout counts as the same) are
//     logged at Debug.
//   - Run returns only after every query goroutine has exited. When its
//     context ends, in-flight queries and sink writes are cancelled.
//   - Update may be called at any time, from any goroutine, before, during or
//     after Run. It returns after the goroutines of removed and changed
//     queries have exited, so a removed query is not polled after Update
//     returns. Calls to Update are applied in order.
//
// The zero value is not usable; call New.
type Poller struct {
	api        v1.API
	sink       Sink
	logger     *slog.Logger
	metrics    *metrics
	now        func() time.Time
	maxBackoff time.Duration
	jitter     func() float64 // in [0, 1); replaced in tests

	// mu guards the fields below. It is held while runners are started and
	// stopped (including waiting for them), so Update and the end of Run are
	// serialised. Runners never take it.
	mu      sync.Mutex
	state   runState
	runCtx  context.Context
	desired map[string]Query // validated, Timeout defaulted
	running map[string]*runner

	lwMu        sync.Mutex
	lastWritten map[string]time.Time
}

type runState int

const (
	stateIdle runState = iota
	stateRunning
	stateStopped
)

// ErrAlreadyRun is returned by Run when it is called more than once.
var ErrAlreadyRun = errors.New("poller: Run called more than once")

// New returns a Poller that queries api and writes to sink; api and sink must
// not be nil. It polls nothing until Update gives it queries and Run runs.
// A nil logger discards logs; a nil reg registers no metrics. If reg already
// holds the poller's metrics (a second Poller on the same registry), they are
// shared.
func New(api v1.API, sink Sink, logger *slog.Logger, reg prometheus.Registerer, opts ...Option) *Poller {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Poller{
		api:         api,
		sink:        sink,
		logger:      logger,
		metrics:     newMetrics(reg, logger),
		now:         time.Now,
		maxBackoff:  DefaultMaxBackoff,
		jitter:      rand.Float64,
		desired:     map[string]Query{},
		running:     map[string]*runner{},
		lastWritten: map[string]time.Time{},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Run polls the queries until ctx ends, then stops all of them and returns
// nil once every query goroutine has exited. It returns ErrAlreadyRun if
// called more than once.
func (p *Poller) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.state != stateIdle {
		p.mu.Unlock()
		return ErrAlreadyRun
	}
	p.state = stateRunning
	p.runCtx = ctx
	p.reconcileLocked()
	p.mu.Unlock()

	<-ctx.Done()

	p.mu.Lock()
	defer p.mu.Unlock()
	p.state = stateStopped
	p.stopLocked(func(string) bool { return true })
	p.logger.Debug("Poller stopped")
	return nil
}

// Update replaces the set of queries: new queries start, removed ones stop
// (their metrics' label values and LastWritten entry are deleted) and changed
// ones (any field differs) restart. Invalid queries and duplicate names are
// logged and dropped, the first of duplicates winning; ValidateQueries reports
// the same problems as an error, for callers that want to refuse a reload.
func (p *Poller) Update(queries []Query) {
	valid := make(map[string]Query, len(queries))
	for i, q := range queries {
		if err := validateQuery(q); err != nil {
			p.logger.Error("Ignoring invalid query", "index", i, "query", q.Name, "err", err)
			continue
		}
		if _, dup := valid[q.Name]; dup {
			p.logger.Error("Ignoring query with duplicate name", "index", i, "query", q.Name)
			continue
		}
		if q.Timeout == 0 {
			q.Timeout = q.Interval
		}
		valid[q.Name] = q
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	var removed []string
	for name := range p.desired {
		if _, ok := valid[name]; !ok {
			removed = append(removed, name)
		}
	}
	p.desired = valid
	if p.state == stateRunning {
		p.reconcileLocked()
	}
	// The removed queries' goroutines have exited, so nothing recreates
	// their label values after this.
	for _, name := range removed {
		p.metrics.delete(name)
		p.lwMu.Lock()
		delete(p.lastWritten, name)
		p.lwMu.Unlock()
		p.logger.Info("Query removed", "query", name)
	}
	for name := range valid {
		p.metrics.init(name)
	}
}

// LastWritten returns the timestamp of the newest sample of the query that
// the sink accepted, or the zero time if none was (since the query was added;
// the entry survives changes of the query but not its removal). A gap between
// it and the next written sample is data the poller lost, e.g. to sink or
// Prometheus errors.
func (p *Poller) LastWritten(name string) time.Time {
	p.lwMu.Lock()
	defer p.lwMu.Unlock()
	return p.lastWritten[name]
}

func (p *Poller) setLastWritten(name string, t time.Time) {
	p.lwMu.Lock()
	defer p.lwMu.Unlock()
	if t.After(p.lastWritten[name]) {
		p.lastWritten[name] = t
	}
}

// reconcileLocked makes the running set match the desired set: it stops the
// runners of removed and changed queries, waits for them, then starts the
// runners of new and changed queries. p.mu must be held and p.state be
// stateRunning.
func (p *Poller) reconcileLocked() {
	p.stopLocked(func(name string) bool {
		q, ok := p.desired[name]
		return !ok || q != p.running[name].q
	})
	for name, q := range p.desired {
		if _, ok := p.running[name]; ok {
			continue
		}
		r := newRunner(p, q)
		ctx, cancel := context.WithCancel(p.runCtx)
		r.cancel = cancel
		p.running[name] = r
		go r.run(ctx)
		r.log.Debug("Query started", "expr", q.Expr, "interval", q.Interval, "timeout", q.Timeout)
	}
}

// stopLocked cancels the runners whose name matches, waits until they have
// exited and forgets them. p.mu must be held.
func (p *Poller) stopLocked(match func(name string) bool) {
	var stopped []*runner
	for name, r := range p.running {
		if match(name) {
			r.cancel()
			stopped = append(stopped, r)
			delete(p.running, name)
		}
	}
	for _, r := range stopped {
		<-r.done
	}
}

// ValidateQueries reports every problem that would make Update drop a query:
// empty or non-UTF-8 name, duplicate name, empty expression, Interval <= 0,
// negative Timeout. It returns nil if there is none.
func ValidateQueries(queries []Query) error {
	var errs []error
	seen := make(map[string]bool, len(queries))
	for i, q := range queries {
		if err := validateQuery(q); err != nil {
			errs = append(errs, fmt.Errorf("query %d (%q): %w", i, q.Name, err))
			continue
		}
		if seen[q.Name] {
			errs = append(errs, fmt.Errorf("query %d (%q): duplicate name", i, q.Name))
		}
		seen[q.Name] = true
	}
	return errors.Join(errs...)
}

func validateQuery(q Query) error {
	switch {
	case q.Name == "":
		return errors.New("empty name")
	case !utf8.ValidString(q.Name):
		// It is a label value of our metrics, which must be UTF-8.
		return errors.New("name is not valid UTF-8")
	case q.Expr == "":
		return errors.New("empty expression")
	case q.Interval <= 0:
		return fmt.Errorf("interval %v must be greater than 0", q.Interval)
	case q.Timeout < 0:
		return fmt.Errorf("timeout %v must not be negative", q.Timeout)
	}
	return nil
}

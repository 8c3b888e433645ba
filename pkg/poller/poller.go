// Package poller runs the configured PromQL queries against Prometheus, each
// on its own interval, and hands the resulting rows of the prometheus_metrics
// table to a Sink.
//
// Each query has its own goroutine, so a slow or failing query never delays
// the others. Instant vector and scalar results become rows (see
// rows.MetricRow); other result types, native histogram samples, query errors
// and sink errors are logged and counted in the
// prometheus_deephaven_bridge_query_* metrics.
//
// With WithBackfill, a query that lost samples (Prometheus or the sink
// failed, or the bridge restarted: see SetResumePoints) fills the gap from
// Prometheus's history with range queries before it writes newer rows; see
// Poller for the rules and the prometheus_deephaven_bridge_backfill_*
// metrics.
package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/sink"
)

// Sink receives the rows of each poll (see sink.Writer).
//
// Queries are polled in parallel; the poller cancels a write's ctx on
// shutdown and when a query is removed or changed, and waits for it to
// return. The poller does not touch the slice again. An error means the rows
// were not stored; the poller logs and counts it and does not retry (with
// WithBackfill, a later backfill fetches the samples again from Prometheus,
// so a sink that stored part of the rows and returned an error would cause
// duplicates).
type Sink = sink.Writer[rows.MetricRow]

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
	// Key makes each row's SeriesKey from its sample's labels; the zero
	// value keys on every label but __name__.
	Key rows.KeySpec
	// Also lists more names the same samples are written under, each with
	// its own Key: queries of different names that share an expression
	// share one poll. Their rows are written together with the query's.
	Also []Output
}

// Output is another name a query's rows are written under.
type Output struct {
	Name string
	Key  rows.KeySpec
}

// equal reports whether two queries poll and write the same way.
func (q Query) equal(o Query) bool {
	if q.Name != o.Name || q.Expr != o.Expr || q.Interval != o.Interval || q.Timeout != o.Timeout ||
		!q.Key.Equal(o.Key) || len(q.Also) != len(o.Also) {
		return false
	}
	for i := range q.Also {
		if q.Also[i].Name != o.Also[i].Name || !q.Also[i].Key.Equal(o.Also[i].Key) {
			return false
		}
	}
	return true
}

// DefaultMaxBackoff is the default of WithMaxBackoff.
const DefaultMaxBackoff = 30 * time.Second

// DefaultBackfillMax is the backfill limit the bridge suggests as a flag
// default. Backfill is off unless WithBackfill is given.
const DefaultBackfillMax = time.Hour

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

// WithBackfill makes the poller fill gaps in a query's rows from Prometheus's
// history (see Poller), going back at most limit before the newest sample
// polled. Zero, the default, and negative values turn backfill off.
func WithBackfill(limit time.Duration) Option {
	return func(p *Poller) {
		p.backfillMax = max(limit, 0)
	}
}

// WithHistoryForNewQueries makes a query that starts with nothing written
// (LastWritten zero: it is new, or Resync found none of its rows) fetch the
// last backfill limit of its samples at its first poll, with WithBackfill.
// The bridge uses it so that a query added by a reload or a rule discovered
// later starts with its history, like a query Resync found missing.
func WithHistoryForNewQueries() Option {
	return func(p *Poller) { p.newHistory = true }
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
//     Sink errors do not cause backoff (Prometheus was fine), except those of
//     backfill writes.
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
// Backfill (WithBackfill with a limit > 0):
//
//   - A query may have a gap after a failed poll, a failed write, a write
//     (with its backfill) that held the query up for more than an Interval
//     (a sink that retries while Deephaven is down), or the start of its
//     goroutine (Run, or Update adding or changing it). Its next
//     poll that returns samples checks: if they are more than 1.5·Interval
//     newer than LastWritten (a lost sample, not mere jitter of the poll
//     times), the gap is filled before they are written. Gaps are measured
//     in sample timestamps, i.e. on Prometheus's clock, so clock skew between
//     Prometheus and the bridge does not matter. Ticks skipped by a poll
//     that overran its interval are not backfilled, and a gap is only
//     noticed once the query returns samples again.
//   - Filling runs range queries with Step = Interval (rounded up to whole
//     milliseconds), from LastWritten + Step to just before the new samples,
//     but starting no earlier than the limit before them: older samples are
//     lost (logged at Warn). The steps are split into chunks of at most
//     10,000 points each, below Prometheus's 11,000 points per series, that
//     neither overlap nor leave holes. Chunks run one after the other in the
//     query's goroutine, each bounded by the query's Timeout; their rows,
//     one per float sample in the chunk's time range and newer than
//     LastWritten, sorted by time, are written to the sink chunk by chunk,
//     advancing LastWritten. Nothing at or before LastWritten is written
//     again, and the poll's own samples come after the last step.
//   - The poll's own rows are written only once the gap is filled, so a
//     query's rows reach the sink in time order (unless Prometheus's clock
//     goes back), and the newest row in the sink marks how far its data is
//     complete: that is what SetResumePoints should be given after a restart.
//   - A chunk that fails (Prometheus error, or the sink refused its rows)
//     counts as a failed poll: the poll's rows are dropped, the query backs
//     off, and the next poll resumes after the last written sample. A chunk
//     that failed with a timeout or a rejection (bad_data, execution, a 4xx
//     other than 429, a result other than a matrix) is retried at half its
//     size, and chunks stay that small until the gap is filled. If even a
//     one-step chunk fails so, range queries cannot work for this query: the
//     rest of the gap is abandoned (logged at Error) and the poll's rows are
//     written, so that live rows are not held back for ever.
//   - The start of a backfill ("Backfilling gap") and its end ("Backfill
//     done", with samples, requests and duration) are logged at Info; chunk
//     failures are logged like poll failures, once per change of state, and
//     counted in prometheus_deephaven_bridge_query_errors_total. Per query,
//     prometheus_deephaven_bridge_backfill_requests_total counts range
//     queries, _backfill_samples_total the samples the sink accepted from
//     them, and _backfill_pending_seconds is the span still to fill (0 when
//     there is no gap). A backfill does not change the query_* request,
//     duration and sample metrics, which are about instant polls.
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

	backfillMax time.Duration // 0: off
	newHistory  bool          // new queries backfill the limit, see WithHistoryForNewQueries

	// mu guards the fields below. It is held while runners are started and
	// stopped (including waiting for them), so Update and the end of Run are
	// serialised. Runners never take it.
	mu      sync.Mutex
	state   runState
	runCtx  context.Context
	sets    map[string][]Query // the queries of each set, as given
	desired map[string]Query   // validated, Timeout defaulted
	running map[string]*runner

	lwMu        sync.Mutex
	lastWritten map[string]time.Time
	// rewinds counts, per query, how often Resync moved LastWritten back;
	// a runner that sees it change looks for a gap at its next poll, and
	// a write that was in flight meanwhile does not move LastWritten.
	rewinds map[string]uint64
	// refill marks queries whose LastWritten Resync set to the backfill
	// limit because the sink holds none of their rows: their first
	// backfill is cut at the limit by design, not worth a warning.
	refill map[string]bool
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
		sets:        map[string][]Query{},
		desired:     map[string]Query{},
		running:     map[string]*runner{},
		lastWritten: map[string]time.Time{},
		rewinds:     map[string]uint64{},
		refill:      map[string]bool{},
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

// Update replaces the whole set of queries: new queries start, removed ones
// stop (their metrics' label values and LastWritten entry are deleted) and
// changed ones (any field differs) restart. Invalid queries and duplicate
// names are logged and dropped, the first of duplicates winning;
// ValidateQueries reports the same problems as an error, for callers that
// want to refuse a reload. It is SetQueries("", queries) with no other set.
func (p *Poller) Update(queries []Query) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sets = map[string][]Query{"": queries}
	p.applyLocked()
}

// SetQueries replaces the queries of one named set, leaving the other sets
// alone: the configured queries and those derived from alerting rules are
// kept by different owners. Across sets, a name already taken by a set that
// sorts first wins (the configured queries' set is named "config", the
// rules' "rules"). Otherwise it works like Update.
func (p *Poller) SetQueries(set string, queries []Query) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sets[set] = queries
	p.applyLocked()
}

// applyLocked makes the queries of all sets the desired ones. p.mu is held.
func (p *Poller) applyLocked() {
	names := make([]string, 0, len(p.sets))
	for set := range p.sets {
		names = append(names, set)
	}
	slices.Sort(names)
	valid := map[string]Query{}
	for _, set := range names {
		for i, q := range p.sets[set] {
			if err := validateQuery(q); err != nil {
				p.logger.Error("Ignoring invalid query", "set", set, "index", i, "query", q.Name, "err", err)
				continue
			}
			if _, dup := valid[q.Name]; dup {
				p.logger.Error("Ignoring query with duplicate name", "set", set, "index", i, "query", q.Name)
				continue
			}
			if q.Timeout == 0 {
				q.Timeout = q.Interval
			}
			valid[q.Name] = q
		}
	}

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
		delete(p.rewinds, name)
		delete(p.refill, name)
		p.lwMu.Unlock()
		p.logger.Info("Query removed", "query", name)
	}
	for name := range valid {
		p.metrics.init(name, p.backfillMax > 0)
	}
}

// Queries returns the names of the queries being polled (or to be polled,
// before Run), sorted.
func (p *Poller) Queries() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Sorted(maps.Keys(p.desired))
}

// LastWritten returns the timestamp of the newest sample of the query that
// the sink accepted (or that SetResumePoints said it holds), or the zero
// time if none was (since the query was added; the entry survives changes of
// the query but not its removal). A gap between it and the next written
// sample is data the poller lost, e.g. to sink or Prometheus errors, unless
// backfill filled it.
func (p *Poller) LastWritten(name string) time.Time {
	p.lwMu.Lock()
	defer p.lwMu.Unlock()
	return p.lastWritten[name]
}

// SetResumePoints tells the poller, per query name, the time of the newest
// sample the sink already holds, e.g. the greatest PrometheusDateTime per
// PrometheusQuery in the metrics table after a restart. Each point advances
// the query's LastWritten (it never moves it back; zero times are ignored),
// so with WithBackfill the query's first poll backfills from there, within
// the backfill limit. Without backfill, it only sets LastWritten.
//
// Call it before Run: once a query has written rows, an older point has no
// effect, and the gap before those rows stays unfilled. Names of queries
// that do not exist yet are kept until Update removes a query of that name.
// It is safe for concurrent use.
func (p *Poller) SetResumePoints(points map[string]time.Time) {
	for name, t := range points {
		if !t.IsZero() {
			p.setLastWritten(name, t.UTC())
		}
	}
}

// Resync makes LastWritten agree with what the sink holds now, e.g. when
// Deephaven came back without rows the poller wrote, or at start. held is,
// per query name, the newest sample the sink holds; a query missing from it
// holds none. A query's LastWritten moves to its held time, or to
// now - the backfill limit when it holds none, whichever direction that is:
// forward like SetResumePoints, or back, and then the query's next poll
// backfills from there (with WithBackfill), and a write that was in flight
// does not move LastWritten past the rewind. Without backfill only the
// forward moves apply. A query that holds nothing is never backfilled from
// before notBefore (zero: no bound): older samples are in the history
// already (pkg/retention), and writing them again would double them. Safe
// for concurrent use, before or during Run.
func (p *Poller) Resync(held map[string]time.Time, notBefore time.Time) {
	p.mu.Lock()
	names := make([]string, 0, len(p.desired))
	for name := range p.desired {
		names = append(names, name)
	}
	p.mu.Unlock()
	floor := p.now().Add(-p.backfillMax).UTC()
	if nb := notBefore.Add(-time.Nanosecond); !notBefore.IsZero() && nb.After(floor) {
		// LastWritten means "written up to and including": a sample at
		// notBefore itself was not in the history and must come back.
		floor = nb.UTC()
	}
	p.lwMu.Lock()
	defer p.lwMu.Unlock()
	// Queries that are not polled yet (a rule discovered later) start
	// from what the sink holds of them, like SetResumePoints.
	for name, at := range held {
		if !slices.Contains(names, name) && at.After(p.lastWritten[name]) {
			p.lastWritten[name] = at.UTC()
		}
	}
	for _, name := range names {
		at, ok := held[name]
		if !ok || at.IsZero() {
			if p.backfillMax <= 0 {
				continue
			}
			at = floor
			p.refill[name] = true
		}
		at = at.UTC()
		cur := p.lastWritten[name]
		switch {
		case at.After(cur):
			p.lastWritten[name] = at
			if cur.IsZero() {
				// First sight: the next poll must look for the gap
				// from here, like after a rewind.
				p.rewinds[name]++
			}
		case at.Before(cur) && p.backfillMax > 0:
			p.lastWritten[name] = at
			p.rewinds[name]++
			p.logger.Info("Query's rows are missing from the sink; they will be backfilled", "query", name, "held_until", at, "written_until", cur)
		}
	}
}

// startFloor gives a query that starts with nothing written (a new query,
// or the first start of the bridge against an empty table) the backfill
// limit as its LastWritten, with WithHistoryForNewQueries, so that its first poll fetches the last
// backfill limit of it: a new query's plot starts with history, and a rule
// discovered after a restart fills the time the bridge was down.
func (p *Poller) startFloor(name string) {
	if p.backfillMax <= 0 || !p.newHistory {
		return
	}
	p.lwMu.Lock()
	defer p.lwMu.Unlock()
	if p.lastWritten[name].IsZero() {
		p.lastWritten[name] = p.now().Add(-p.backfillMax).UTC()
		p.refill[name] = true
	}
}

// takeRefill reports, once, that the query's LastWritten was set to the
// backfill limit by Resync.
func (p *Poller) takeRefill(name string) bool {
	p.lwMu.Lock()
	defer p.lwMu.Unlock()
	r := p.refill[name]
	delete(p.refill, name)
	return r
}

// rewound returns the query's rewind count.
func (p *Poller) rewound(name string) uint64 {
	p.lwMu.Lock()
	defer p.lwMu.Unlock()
	return p.rewinds[name]
}

func (p *Poller) setLastWritten(name string, t time.Time) {
	p.setLastWrittenSince(name, t, p.rewound(name))
}

// setLastWrittenSince advances LastWritten unless the query was rewound
// since its count was rewinds.
func (p *Poller) setLastWrittenSince(name string, t time.Time, rewinds uint64) {
	p.lwMu.Lock()
	defer p.lwMu.Unlock()
	if p.rewinds[name] != rewinds {
		return
	}
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
		return !ok || !q.equal(p.running[name].q)
	})
	for name, q := range p.desired {
		if _, ok := p.running[name]; ok {
			continue
		}
		p.startFloor(name)
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

package poller

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// runner polls one query. Its fields below done are owned by its goroutine.
type runner struct {
	p      *Poller
	q      Query
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns

	failures      int      // consecutive failed polls
	queryState    errState // Prometheus side
	sinkState     errState // sink side
	histogramSeen bool     // logged that native histograms are skipped

	// Backfill. mayHaveGap is set at start, by every failure and by a slow
	// write, and cleared once a poll's rows are written promptly; only
	// while it is set can a gap exist.
	mayHaveGap    bool
	rewinds       uint64       // the poller's rewind count of this query, as last seen
	backfillState errState     // range queries
	bf            *backfillRun // the gap being filled; nil if none
	// landed holds the time spans of writes that completed after a rewind:
	// the sink retried them across a Deephaven restart and they reached
	// the new table after Resync read what it holds, so LastWritten does
	// not cover them. A write holds every sample of the query in its span,
	// so the backfill that follows skips the span; it would otherwise
	// write those samples again (polls are tick-aligned, so a range
	// query's steps fall on a poll's very millisecond).
	landed []timeSpan
}

// timeSpan is the closed interval of the sample times of one write.
type timeSpan struct{ from, to time.Time }

func (s timeSpan) holds(t time.Time) bool { return !t.Before(s.from) && !t.After(s.to) }

func newRunner(p *Poller, q Query) *runner {
	return &runner{
		p:          p,
		q:          q,
		log:        p.logger.With("query", q.Name),
		done:       make(chan struct{}),
		mayHaveGap: true,
	}
}

// run polls until ctx ends. A poll cut short by ctx is not counted as failed.
func (r *runner) run(ctx context.Context) {
	defer close(r.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		ok := r.poll(ctx)
		if ctx.Err() != nil {
			return
		}
		timer.Reset(r.nextDelay(ok, time.Since(start)))
	}
}

// nextDelay returns how long to wait before the next poll, given whether the
// last one succeeded and how long it took.
func (r *runner) nextDelay(ok bool, elapsed time.Duration) time.Duration {
	if !ok {
		r.failures++
		d := backoff(r.q.Interval, r.p.maxBackoff, r.failures, r.p.jitter())
		r.log.Debug("Backing off", "consecutive_failures", r.failures, "next_poll_in", d)
		return d
	}
	r.failures = 0
	if elapsed >= r.q.Interval {
		r.log.Debug("Poll overran its interval, skipping ticks", "took", elapsed, "interval", r.q.Interval)
	}
	return untilNextTick(r.q.Interval, elapsed)
}

// untilNextTick returns how long to wait, after a poll that took elapsed, to
// start the next one on the next multiple of interval after the poll's
// start: the ticks an overrunning poll missed are skipped.
func untilNextTick(interval, elapsed time.Duration) time.Duration {
	if elapsed < 0 {
		elapsed = 0
	}
	return interval - elapsed%interval
}

// backoff returns the wait after the given number (>= 1) of consecutive
// failures: a duration in [d/2, d) picked by jitter (in [0, 1)), and never
// less than interval, where d = min(interval·2^failures, limit) and
// limit = max(interval, min(10·interval, maxBackoff)).
func backoff(interval, maxBackoff time.Duration, failures int, jitter float64) time.Duration {
	limit := maxBackoff
	if interval < maxBackoff/10 {
		limit = 10 * interval
	}
	limit = max(limit, interval)
	d := interval
	for i := 0; i < failures && d < limit; i++ {
		if d > limit/2 {
			d = limit
		} else {
			d *= 2
		}
	}
	jitter = min(max(jitter, 0), 1)
	w := d/2 + time.Duration(jitter*float64(d/2))
	return max(w, interval)
}

// poll runs the query once, backfills the gap before its samples if there is
// one, and writes its rows. It reports whether the query and the backfill
// succeeded (a sink error of the poll's own rows still counts as success:
// Prometheus is fine).
func (r *runner) poll(ctx context.Context) bool {
	p, q, m := r.p, r.q, r.p.metrics

	qctx, cancel := context.WithTimeout(ctx, q.Timeout)
	defer cancel()
	m.requests.WithLabelValues(q.Name).Inc()
	start := time.Now()
	val, warnings, infos, err := p.api.Query(qctx, q.Expr, time.Time{}, queryOptions(q.Timeout)...)
	m.duration.WithLabelValues(q.Name).Observe(time.Since(start).Seconds())
	if ctx.Err() != nil {
		return false // stopping: neither success nor failure
	}
	if len(warnings) > 0 || len(infos) > 0 {
		r.log.Debug("Query returned warnings", "warnings", []string(warnings), "infos", []string(infos))
	}

	var out []rows.MetricRow
	var histograms int
	if err == nil {
		out, histograms, err = toRows(q.outputs(), val, p.now())
	}
	if err != nil {
		reason, key, attrs := describeFailure(err, qctx)
		m.errors.WithLabelValues(q.Name, reason).Inc()
		if r.queryState.fail(key) {
			r.log.Error("Query failed", attrs...)
		} else {
			r.log.Debug("Query still failing", append(attrs, "consecutive_failures", r.queryState.failures)...)
		}
		r.mayHaveGap = true
		return false
	}
	if n := r.queryState.ok(); n > 0 {
		r.log.Info("Query recovered", "failed_polls", n)
	}
	r.skippedHistograms(histograms)

	if n := p.rewound(q.Name); n != r.rewinds {
		// Resync moved LastWritten: the sink lacks what was written.
		r.rewinds, r.mayHaveGap = n, true
	}
	writeStart := time.Now()
	if len(out) > 0 && p.backfillMax > 0 && r.mayHaveGap {
		if !r.backfill(ctx, newestSample(out)) {
			// The poll's rows are dropped: the next backfill fetches
			// them again, after the rest of the gap.
			return false
		}
	}

	m.samples.WithLabelValues(q.Name).Add(float64(len(out)))
	if len(out) > 0 {
		if err := r.write(ctx, out); err != nil {
			r.mayHaveGap = true
			return true
		}
		// A sink that held the query up for a tick or more (e.g. one that
		// retries while Deephaven is down) made it miss polls. A slow query
		// does not count: backfilling the ticks it skips would only add load.
		r.mayHaveGap = time.Since(writeStart) > q.Interval
	}
	m.lastSuccess.WithLabelValues(q.Name).Set(float64(p.now().UnixNano()) / 1e9)
	return true
}

// skippedHistograms counts native histogram samples left out of rows, and
// logs the first time it happens.
func (r *runner) skippedHistograms(n int) {
	if n == 0 {
		return
	}
	r.p.metrics.errors.WithLabelValues(r.q.Name, reasonHistogram).Add(float64(n))
	if !r.histogramSeen {
		r.histogramSeen = true
		r.log.Warn("Skipping native histogram samples: they have no single value (logged once per query)", "samples", n)
	}
}

// write hands out (not empty) to the sink and, if it accepts them, advances
// LastWritten to their newest sample. Failures are counted and logged once
// per change of state, except when ctx has ended.
func (r *runner) write(ctx context.Context, out []rows.MetricRow) error {
	p, q, m := r.p, r.q, r.p.metrics
	span := sampleSpan(out) // the sink owns out once called
	rewinds := p.rewound(q.Name)
	if err := p.sink.Write(ctx, out); err != nil {
		if ctx.Err() != nil {
			return err
		}
		m.errors.WithLabelValues(q.Name, reasonSink).Inc()
		if r.sinkState.fail(err.Error()) {
			r.log.Error("Writing rows failed", "rows", len(out), "err", err)
		} else {
			r.log.Debug("Writing rows still failing", "rows", len(out), "err", err)
		}
		return err
	}
	if n := r.sinkState.ok(); n > 0 {
		r.log.Info("Writing rows recovered", "failed_writes", n)
	}
	if p.rewound(q.Name) != rewinds {
		r.landed = append(r.landed, span)
		r.log.Debug("Rows written across a resync; the backfill will skip their time span", "from", span.from, "to", span.to)
	}
	p.setLastWrittenSince(q.Name, span.to, rewinds)
	return nil
}

// sampleSpan returns the oldest and newest sample times of rs.
func sampleSpan(rs []rows.MetricRow) timeSpan {
	var sp timeSpan
	for i := range rs {
		t := rs[i].PrometheusDateTime
		if sp.from.IsZero() || t.Before(sp.from) {
			sp.from = t
		}
		if t.After(sp.to) {
			sp.to = t
		}
	}
	return sp
}

func newestSample(rs []rows.MetricRow) time.Time { return sampleSpan(rs).to }

// queryOptions returns the options of a query bounded by timeout.
func queryOptions(timeout time.Duration) []v1.Option {
	if t := promTimeout(timeout); t > 0 {
		return []v1.Option{v1.WithTimeout(t)}
	}
	return nil
}

// describeFailure returns the reason label of a failed query, the key of its
// state for errState, and the attributes to log it with. qctx is the query's
// own context.
func describeFailure(err error, qctx context.Context) (reason, key string, attrs []any) {
	reason = classify(err, qctx)
	attrs = []any{"reason", reason, "err", err}
	var apiErr *v1.Error
	if errors.As(err, &apiErr) && apiErr.Detail != "" {
		attrs = append(attrs, "detail", truncate(apiErr.Detail, 512))
	}
	// Timeouts read differently depending on where the deadline hit;
	// they are one state.
	key = reason
	if reason != reasonTimeout {
		key += ": " + err.Error()
	}
	return reason, key, attrs
}

// classify returns the reason label of a failed poll. qctx is the poll's own
// context, whose deadline is the query's timeout.
func classify(err error, qctx context.Context) string {
	if errors.Is(err, errResultType) {
		return reasonResultType
	}
	var apiErr *v1.Error
	if errors.As(err, &apiErr) {
		// An answer from Prometheus, even if our deadline passed since.
		switch {
		case apiErr.Type == v1.ErrTimeout:
			return reasonTimeout
		case apiErr.Type == v1.ErrBadResponse && strings.HasPrefix(apiErr.Msg, "unexpected value type"):
			// client_golang refuses string results (and any unknown
			// resultType) with this message while decoding.
			return reasonResultType
		}
		return reasonPrometheus
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(qctx.Err(), context.DeadlineExceeded) {
		return reasonTimeout
	}
	return reasonPrometheus
}

// promTimeout returns d in a form whose String Prometheus parses for its
// timeout parameter: Prometheus rejects fractions such as "1.5s", so d is
// truncated to whole seconds from 1s up and to whole milliseconds below. It
// returns 0 (send no parameter) for d < 1ms. The poll's context still enforces
// the exact d.
func promTimeout(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Truncate(time.Second)
	case d >= time.Millisecond:
		return d.Truncate(time.Millisecond)
	}
	return 0
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// errState turns a stream of outcomes into state changes, so that a failure
// is logged loudly only when it starts or its text changes.
type errState struct {
	last     string // key of the current failure; "" while ok
	failures int    // consecutive failures
}

// fail records a failure, described by key (the error text, or a coarser
// description of it), and reports whether it is a change of state.
func (s *errState) fail(key string) bool {
	s.failures++
	if key == "" {
		key = "(empty error)"
	}
	changed := key != s.last
	s.last = key
	return changed
}

// ok records a success and returns the number of failures it ends (0 if it
// was ok already).
func (s *errState) ok() int {
	n := s.failures
	s.last, s.failures = "", 0
	return n
}

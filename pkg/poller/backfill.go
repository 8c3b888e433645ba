package poller

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// maxChunkSteps is the most steps (points per series) in one backfill range
// query: Prometheus refuses more than 11,000.
const maxChunkSteps = 10_000

// isGap reports whether samples at last and then at until leave a gap: they
// are more than 1.5 intervals apart, so at least one poll's samples are
// missing. Less is jitter of the poll times, or a quick restart.
func isGap(last, until time.Time, interval time.Duration) bool {
	return until.Sub(last) > interval+interval/2
}

// backfillPlan is the steps of the range queries that fill one gap: first,
// first+step, …, first+(steps-1)·step, all in milliseconds like Prometheus.
type backfillPlan struct {
	first model.Time
	step  int64 // milliseconds, >= 1
	steps int64
	cut   bool // the gap is longer than the limit; first is limit before until
}

// planBackfill plans the filling of the gap between samples at last and at
// until: steps of interval (rounded up to whole milliseconds) from last+step
// to strictly before until, none earlier than until-limit. The steps start
// after last, so no sample at or before last is fetched again; no step falls
// on until, the time of the samples that follow.
func planBackfill(last, until time.Time, interval, limit time.Duration) backfillPlan {
	step := int64(interval / time.Millisecond)
	if interval%time.Millisecond != 0 {
		step++
	}
	u := until.UnixMilli()
	pl := backfillPlan{first: model.Time(last.UnixMilli() + step), step: step}
	if lower := model.Time(u - int64(limit/time.Millisecond)); pl.first < lower {
		pl.first, pl.cut = lower, true
	}
	if end := model.Time(u - 1); pl.first <= end {
		pl.steps = int64(end-pl.first)/step + 1
	}
	return pl
}

// backfillRun is the state of the gap being filled, over the polls it takes.
type backfillRun struct {
	started  time.Time // wall clock
	chunk    int64     // steps per range query; halved when one is rejected
	requests int
	samples  int
	cutSeen  bool // logged that the gap exceeds the limit
}

// chunkResult is the outcome of one backfill range query.
type chunkResult int

const (
	chunkDone     chunkResult = iota
	chunkFailed               // retry after backoff
	chunkRejected             // retry smaller, after backoff
)

// backfill fills the gap, if there is one, between the query's last written
// sample and until, the time of the samples its poll just returned and has
// not written yet. It reports whether those may be written now: there is no
// gap, it is filled, or it was abandoned. It returns false when a chunk
// failed: the poll fails and the next one resumes after the last written
// sample.
func (r *runner) backfill(ctx context.Context, until time.Time) bool {
	p, q, m := r.p, r.q, r.p.metrics
	pending := m.backfillPending.WithLabelValues(q.Name)
	last := p.LastWritten(q.Name)
	if last.IsZero() || !isGap(last, until, q.Interval) {
		if r.bf != nil {
			// SetResumePoints closed the rest of the gap.
			r.finishBackfill()
		}
		pending.Set(0)
		return true
	}
	pl := planBackfill(last, until, q.Interval, p.backfillMax)
	if p.takeRefill(q.Name) {
		// Resync put LastWritten at the limit: the cut is the plan.
		pl.cut = false
	}
	if pl.steps == 0 {
		// The limit is shorter than a step: the whole gap is too old.
		r.log.Warn("Gap exceeds the backfill limit, older samples are not backfilled",
			"last_written", last, "until", until, "limit", p.backfillMax)
		if r.bf != nil {
			r.finishBackfill()
		}
		pending.Set(0)
		return true
	}
	step := time.Duration(pl.step) * time.Millisecond
	if r.bf == nil {
		r.bf = &backfillRun{started: time.Now(), chunk: maxChunkSteps}
		r.log.Info("Backfilling gap", "last_written", last, "from", pl.first.Time().UTC(),
			"to", (pl.first + model.Time((pl.steps-1)*pl.step)).Time().UTC(), "step", step,
			"chunks", (pl.steps+r.bf.chunk-1)/r.bf.chunk)
	} else {
		r.log.Debug("Resuming backfill", "last_written", last, "from", pl.first.Time().UTC(),
			"chunks", (pl.steps+r.bf.chunk-1)/r.bf.chunk)
	}
	if pl.cut && !r.bf.cutSeen {
		r.bf.cutSeen = true
		r.log.Warn("Gap exceeds the backfill limit, older samples are not backfilled",
			"last_written", last, "from", pl.first.Time().UTC(), "limit", p.backfillMax)
	}

	u := model.Time(until.UnixMilli())
	pending.Set(float64(u-pl.first+model.Time(pl.step)) / 1e3)
	start, remaining := pl.first, pl.steps
	for remaining > 0 {
		n := min(remaining, r.bf.chunk)
		end := start + model.Time((n-1)*pl.step)
		switch r.backfillChunk(ctx, start, end, step) {
		case chunkDone:
		case chunkRejected:
			if n > 1 {
				r.bf.chunk = n / 2
				r.log.Debug("Shrinking backfill chunks", "steps", r.bf.chunk)
				return false
			}
			r.log.Error("Abandoning backfill: Prometheus rejects even one-step range queries, the rest of the gap stays empty",
				"from", start.Time().UTC(), "until", until, "samples", r.bf.samples)
			r.bf = nil
			pending.Set(0)
			return true
		default:
			return false
		}
		start, remaining = end+model.Time(pl.step), remaining-n
		pending.Set(float64(u-end) / 1e3)
	}
	r.finishBackfill()
	pending.Set(0)
	return true
}

// finishBackfill logs the end of the gap being filled and forgets it.
func (r *runner) finishBackfill() {
	r.log.Info("Backfill done", "samples", r.bf.samples, "requests", r.bf.requests, "duration", time.Since(r.bf.started))
	r.bf = nil
	r.landed = nil
}

// backfillChunk runs the range query of the steps from start to end of the
// gap being filled and writes its rows: the samples within [start, end]
// that are newer than LastWritten. Failures are counted and logged once per
// change of state, unless ctx has ended.
func (r *runner) backfillChunk(ctx context.Context, start, end model.Time, step time.Duration) chunkResult {
	p, q, m := r.p, r.q, r.p.metrics
	qctx, cancel := context.WithTimeout(ctx, q.Timeout)
	defer cancel()
	m.backfillRequests.WithLabelValues(q.Name).Inc()
	r.bf.requests++
	rng := v1.Range{Start: start.Time(), End: end.Time(), Step: step}
	val, warnings, infos, err := p.api.QueryRange(qctx, q.Expr, rng, queryOptions(q.Timeout)...)
	if ctx.Err() != nil {
		return chunkFailed // stopping: neither success nor failure
	}
	if len(warnings) > 0 || len(infos) > 0 {
		r.log.Debug("Backfill query returned warnings", "warnings", []string(warnings), "infos", []string(infos))
	}

	var out []rows.MetricRow
	var histograms int
	if err == nil {
		after := p.LastWritten(q.Name)
		out, histograms, err = rangeToRows(q.outputs(), val, p.now(), func(t model.Time) bool {
			return t >= start && t <= end && t.Time().After(after)
		})
	}
	if err != nil {
		reason, key, attrs := describeFailure(err, qctx)
		m.errors.WithLabelValues(q.Name, reason).Inc()
		attrs = append(attrs, "start", rng.Start.UTC(), "end", rng.End.UTC())
		if r.backfillState.fail(key) {
			r.log.Error("Backfill query failed", attrs...)
		} else {
			r.log.Debug("Backfill query still failing", append(attrs, "consecutive_failures", r.backfillState.failures)...)
		}
		if rejected(err, reason) {
			return chunkRejected
		}
		return chunkFailed
	}
	if n := r.backfillState.ok(); n > 0 {
		r.log.Info("Backfill query recovered", "failed_requests", n)
	}
	r.skippedHistograms(histograms)
	if len(r.landed) > 0 {
		out = slices.DeleteFunc(out, func(row rows.MetricRow) bool {
			return slices.ContainsFunc(r.landed, func(s timeSpan) bool { return s.holds(row.PrometheusDateTime) })
		})
	}
	if len(out) == 0 {
		return chunkDone
	}
	if err := r.write(ctx, out); err != nil {
		return chunkFailed
	}
	m.backfillSamples.WithLabelValues(q.Name).Add(float64(len(out)))
	r.bf.samples += len(out)
	return chunkDone
}

// rejected reports whether a failed range query was refused for what it
// asked rather than because Prometheus is unwell, so that a smaller one may
// succeed: a timeout, bad_data, execution (e.g. too many samples) or another
// 4xx except 429, or an unexpected result.
func rejected(err error, reason string) bool {
	if reason == reasonTimeout || reason == reasonResultType {
		return true
	}
	var apiErr *v1.Error
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.Type {
	case v1.ErrBadData, v1.ErrExec:
		return true
	case v1.ErrClient:
		return !strings.HasSuffix(apiErr.Msg, ": 429")
	case v1.ErrServer:
		// Prometheus answers its own timeouts with 503, which
		// client_golang reports as a server error with the body as detail.
		return strings.Contains(apiErr.Detail, `"errorType":"timeout"`)
	}
	return false
}

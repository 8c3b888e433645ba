package poller

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// simBase is the simulated Prometheus's clock before its first query.
const simBase = model.Time(1795575363000)

// simProm simulates the history of a Prometheus whose series have a sample
// at every millisecond, valued its own timestamp in milliseconds. Its clock
// advances by tick at every instant query, failed or not, and a successful
// one returns the samples at the new time, as Prometheus stamps samples
// with the evaluation time. A range query returns the samples at its steps,
// and fails the test if it reaches past the clock. So with tick = the
// query's interval, complete data is a sample every interval.
type simProm struct {
	t      *testing.T
	tick   int64
	series []model.Metric

	mu        sync.Mutex
	now       model.Time
	failPoll  func(n int) bool                // instant queries answered 503
	failRange func(n int, rr rangeReq) *reply // range queries answered otherwise
	sloppy    bool                            // range results spill one step beyond both ends
}

func newSimProm(t *testing.T, f *fakeProm, expr string, tick time.Duration, nSeries int) *simProm {
	s := &simProm{t: t, tick: tick.Milliseconds(), now: simBase}
	for i := range nSeries {
		s.series = append(s.series, model.Metric{"__name__": "m", "job": "j", "instance": model.LabelValue(fmt.Sprintf("i%d:80", i))})
	}
	f.handle(expr, s.instant)
	f.handleRange(expr, s.rangeQuery)
	return s
}

func (s *simProm) set(fn func(s *simProm)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
}

// clock returns the time of the last instant query.
func (s *simProm) clock() model.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

func (s *simProm) instant(n int) reply {
	s.mu.Lock()
	s.now += model.Time(s.tick)
	now, fail := s.now, s.failPoll
	s.mu.Unlock()
	if fail != nil && fail(n) {
		return reply{status: http.StatusServiceUnavailable, body: "down"}
	}
	vec := model.Vector{}
	for _, m := range s.series {
		vec = append(vec, &model.Sample{Metric: m, Timestamp: now, Value: model.SampleValue(now)})
	}
	return ok(envelope("vector", vec))
}

func (s *simProm) rangeQuery(n int, rr rangeReq) reply {
	s.mu.Lock()
	now, fail, sloppy := s.now, s.failRange, s.sloppy
	s.mu.Unlock()
	if fail != nil {
		if rep := fail(n, rr); rep != nil {
			return *rep
		}
	}
	if rr.end > now {
		s.t.Errorf("range query %+v reaches past Prometheus's time %v", rr, now)
	}
	from, to := rr.start, rr.end
	if sloppy {
		from, to = from-model.Time(rr.step), to+model.Time(rr.step)
	}
	mat := model.Matrix{}
	for _, m := range s.series {
		ss := &model.SampleStream{Metric: m}
		for ts := from; ts <= to; ts += model.Time(rr.step) {
			ss.Values = append(ss.Values, model.SamplePair{Timestamp: ts, Value: model.SampleValue(ts)})
		}
		mat = append(mat, ss)
	}
	return ok(envelope("matrix", mat))
}

func envelope(resultType string, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return `{"status":"success","data":{"resultType":"` + resultType + `","result":` + string(b) + `}}`
}

// seriesTimes returns the sample times of the rows per series, in the order
// the sink received them.
func seriesTimes(rs []rows.MetricRow) map[string][]model.Time {
	out := map[string][]model.Time{}
	for _, r := range rs {
		out[r.Labels] = append(out[r.Labels], model.TimeFromUnixNano(r.PrometheusDateTime.UnixNano()))
	}
	return out
}

// checkComplete checks that every series of rs has a row every tick from
// first on, in order, without repeats, each valued its time, up to at least
// last.
func checkComplete(t *testing.T, rs []rows.MetricRow, nSeries int, tick time.Duration, first, last model.Time) {
	t.Helper()
	for _, r := range rs {
		if r.Value != float64(model.TimeFromUnixNano(r.PrometheusDateTime.UnixNano())) {
			t.Fatalf("row %+v: value is not its sample's", r)
		}
	}
	byS := seriesTimes(rs)
	if len(byS) != nSeries {
		t.Fatalf("rows of %d series, want %d", len(byS), nSeries)
	}
	for labels, ts := range byS {
		if ts[0] != first {
			t.Errorf("%s: first sample at %v, want %v", labels, ts[0], first)
		}
		if ts[len(ts)-1] < last {
			t.Errorf("%s: last sample at %v, want >= %v", labels, ts[len(ts)-1], last)
		}
		for i := 1; i < len(ts); i++ {
			if d := ts[i].Sub(ts[i-1]); d != tick {
				t.Fatalf("%s: sample %d at %v follows %v (step %v, want %v); all: %v", labels, i, ts[i], ts[i-1], d, tick, ts)
			}
		}
	}
}

// newestRow returns the time of the newest row of the query, or 0.
func newestRow(s *fakeSink, name string) model.Time {
	var t model.Time
	for _, r := range s.byQuery(name) {
		t = max(t, model.TimeFromUnixNano(r.PrometheusDateTime.UnixNano()))
	}
	return t
}

func (h *harness) backfillMetric(name, query string) float64 {
	h.t.Helper()
	return h.metric("prometheus_deephaven_bridge_backfill_"+name, map[string]string{"query": query})
}

// ticks returns simBase + n·tick.
func ticks(n int, tick time.Duration) model.Time {
	return simBase + model.Time(int64(n)*tick.Milliseconds())
}

// After Prometheus errors, the poll that succeeds first backfills the gap with
// one range query at the query's interval, strictly after the last written
// sample and before its own samples; nothing is written twice, even when
// Prometheus returns more than asked for.
func TestBackfillAfterPrometheusErrors(t *testing.T) {
	for _, sloppy := range []bool{false, true} {
		t.Run(fmt.Sprintf("sloppy=%v", sloppy), func(t *testing.T) {
			h := newHarness(t, WithBackfill(time.Hour))
			h.p.jitter = func() float64 { return 0 }
			sim := newSimProm(t, h.prom, "q", fast, 2)
			sim.set(func(s *simProm) {
				s.sloppy = sloppy
				s.failPoll = func(n int) bool { return n >= 4 && n <= 9 }
			})
			h.p.Update([]Query{{Name: "q", Expr: "q", Interval: fast, Timeout: time.Minute}})
			h.start()
			waitFor(t, "rows after recovery", func() bool { return newestRow(h.sink, "q") >= ticks(15, fast) })
			if err := h.stop(); err != nil {
				t.Fatal(err)
			}

			// Written: polls 1-3; lost: 4-9; poll 10 backfills 4-9.
			want := []rangeReq{{start: ticks(4, fast), end: ticks(9, fast), step: fast.Milliseconds()}}
			if got := h.prom.ranges("q"); !slices.Equal(got, want) {
				t.Errorf("range queries %+v, want %+v", got, want)
			}
			checkComplete(t, h.sink.byQuery("q"), 2, fast, ticks(1, fast), ticks(15, fast))
			if v := h.backfillMetric("requests_total", "q"); v != 1 {
				t.Errorf("backfill requests = %v, want 1", v)
			}
			if v := h.backfillMetric("samples_total", "q"); v != 12 {
				t.Errorf("backfill samples = %v, want 12", v)
			}
			if v := h.backfillMetric("pending_seconds", "q"); v != 0 {
				t.Errorf("pending = %v after the backfill", v)
			}
			if n := len(h.logs.lines("level=INFO", "Backfilling gap", "chunks=1", "step=10ms")); n != 1 {
				t.Errorf("%d start lines, want 1:\n%s", n, strings.Join(h.logs.lines("query=q"), "\n"))
			}
			if n := len(h.logs.lines("level=INFO", "Backfill done", "samples=12", "requests=1")); n != 1 {
				t.Errorf("%d end lines, want 1", n)
			}
		})
	}
}

// A single lost poll is backfilled: its samples are two intervals apart.
func TestBackfillSingleLostPoll(t *testing.T) {
	h := newHarness(t, WithBackfill(time.Hour))
	h.p.jitter = func() float64 { return 0 }
	sim := newSimProm(t, h.prom, "q", fast, 1)
	sim.set(func(s *simProm) { s.failPoll = func(n int) bool { return n == 3 } })
	h.p.Update([]Query{{Name: "q", Expr: "q", Interval: fast, Timeout: time.Minute}})
	h.start()
	waitFor(t, "rows after recovery", func() bool { return newestRow(h.sink, "q") >= ticks(5, fast) })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	checkComplete(t, h.sink.byQuery("q"), 1, fast, ticks(1, fast), ticks(5, fast))
	want := []rangeReq{{start: ticks(3, fast), end: ticks(3, fast), step: fast.Milliseconds()}}
	if got := h.prom.ranges("q"); !slices.Equal(got, want) {
		t.Errorf("range queries %+v, want %+v", got, want)
	}
}

// A gap longer than a chunk is split into range queries of at most 10,000
// points that follow each other without overlap or hole.
func TestBackfillChunks(t *testing.T) {
	const interval = time.Millisecond
	h := newHarness(t, WithBackfill(time.Hour))
	newSimProm(t, h.prom, "q", interval, 1)
	// The first poll's samples are at simBase+1ms; the sink has everything
	// up to 25,000 steps before.
	resume := simBase + 1 - 25001
	h.p.SetResumePoints(map[string]time.Time{"q": resume.Time()})
	h.p.Update([]Query{{Name: "q", Expr: "q", Interval: interval, Timeout: time.Minute}})
	h.start()
	waitFor(t, "the backfill", func() bool { return newestRow(h.sink, "q") >= simBase+3 })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}

	rs := h.prom.ranges("q")
	if len(rs) != 3 {
		t.Fatalf("%d range queries, want 3: %+v", len(rs), rs)
	}
	next := resume + 1
	for i, rr := range rs {
		if rr.step != 1 || (rr.end-rr.start)/model.Time(rr.step) > 11000 || rr.points() > maxChunkSteps {
			t.Errorf("range query %d: %+v has %d points", i, rr, rr.points())
		}
		if rr.start != next {
			t.Errorf("range query %d starts at %v, want %v (right after the previous one)", i, rr.start, next)
		}
		next = rr.end + 1
	}
	if next != simBase+1 {
		t.Errorf("range queries end at %v, want just before the first poll's samples at %v", next-1, simBase+1)
	}
	checkComplete(t, h.sink.byQuery("q"), 1, interval, resume+1, simBase+3)
	if v := h.errorsOf("q", reasonPrometheus) + h.errorsOf("q", reasonTimeout); v != 0 {
		t.Errorf("%v errors", v)
	}
	if n := len(h.logs.lines("Backfilling gap", "chunks=3")); n != 1 {
		t.Errorf("%d start lines, want 1", n)
	}
}

// Samples older than the limit before the newest poll are not backfilled.
func TestBackfillLimit(t *testing.T) {
	h := newHarness(t, WithBackfill(100*time.Millisecond))
	newSimProm(t, h.prom, "q", fast, 2)
	h.p.SetResumePoints(map[string]time.Time{"q": (simBase - 1000).Time()})
	h.p.Update([]Query{{Name: "q", Expr: "q", Interval: fast, Timeout: time.Minute}})
	h.start()
	waitFor(t, "the backfill", func() bool { return newestRow(h.sink, "q") >= ticks(3, fast) })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}

	// The first poll's samples are at simBase+10ms: the limit reaches back
	// to simBase-90ms.
	rs := h.prom.ranges("q")
	if len(rs) != 1 || rs[0].start != simBase-90 || rs[0].end != simBase {
		t.Errorf("range queries %+v, want one from %v to %v", rs, simBase-90, simBase)
	}
	checkComplete(t, h.sink.byQuery("q"), 2, fast, simBase-90, ticks(3, fast))
	if n := len(h.logs.lines("level=WARN", "exceeds the backfill limit", "limit=100ms")); n != 1 {
		t.Errorf("%d lines about the limit, want 1", n)
	}
}

// Rows the sink refused are backfilled once it accepts rows again.
func TestBackfillAfterSinkRecovery(t *testing.T) {
	h := newHarness(t, WithBackfill(time.Hour))
	h.p.jitter = func() float64 { return 0 }
	newSimProm(t, h.prom, "q", fast, 2)
	h.p.Update([]Query{{Name: "q", Expr: "q", Interval: fast, Timeout: time.Minute}})
	h.start()
	waitFor(t, "rows", func() bool { return newestRow(h.sink, "q") >= ticks(2, fast) })
	h.sink.setErr(errSink)
	waitFor(t, "failed backfill writes", func() bool {
		return h.errorsOf("q", reasonSink) >= 4 && h.backfillMetric("requests_total", "q") >= 2
	})
	if v := h.backfillMetric("pending_seconds", "q"); v <= 0 {
		t.Errorf("pending = %v while the sink fails", v)
	}
	h.sink.setErr(nil)
	waitFor(t, "the backfill", func() bool { return len(h.logs.lines("Backfill done")) == 1 })
	target := newestRow(h.sink, "q") + 3*model.Time(fast.Milliseconds())
	waitFor(t, "more rows", func() bool { return newestRow(h.sink, "q") >= target })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}

	checkComplete(t, h.sink.byQuery("q"), 2, fast, ticks(1, fast), target)
	if v := h.backfillMetric("samples_total", "q"); v < 4 {
		t.Errorf("backfill samples = %v", v)
	}
	if got, want := h.p.LastWritten("q"), newestRow(h.sink, "q").Time(); !got.Equal(want) {
		t.Errorf("LastWritten = %v, want %v", got, want)
	}
	if n := len(h.logs.lines("level=ERROR", "Writing rows failed")); n != 1 {
		t.Errorf("%d sink error lines, want 1", n)
	}
	if n := len(h.logs.lines("level=INFO", "Backfilling gap")); n != 1 {
		t.Errorf("%d backfill start lines over the outage, want 1", n)
	}
}

// A sink that holds writes back while Deephaven is down, instead of failing
// them, makes the query miss polls: they are backfilled too.
func TestBackfillAfterSlowSink(t *testing.T) {
	h := newHarness(t, WithBackfill(time.Hour))
	sim := newSimProm(t, h.prom, "q", fast, 1)
	h.p.Update([]Query{{Name: "q", Expr: "q", Interval: fast, Timeout: time.Minute}})
	h.start()
	waitFor(t, "rows", func() bool { return newestRow(h.sink, "q") >= ticks(2, fast) })
	gate := make(chan struct{})
	h.sink.mu.Lock()
	h.sink.gate = gate
	h.sink.mu.Unlock()
	calls := h.sink.callCount()
	waitFor(t, "a held write", func() bool { return h.sink.callCount() > calls })
	// Deephaven is down for 20 ticks of Prometheus's time, and (at least)
	// 3 intervals of ours.
	sim.set(func(s *simProm) { s.now += 20 * model.Time(fast.Milliseconds()) })
	time.Sleep(3 * fast)
	h.sink.mu.Lock()
	h.sink.gate = nil
	h.sink.mu.Unlock()
	close(gate)
	waitFor(t, "the backfill", func() bool { return len(h.logs.lines("Backfill done", "samples=20")) == 1 })
	target := newestRow(h.sink, "q") + 3*model.Time(fast.Milliseconds())
	waitFor(t, "more rows", func() bool { return newestRow(h.sink, "q") >= target })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	checkComplete(t, h.sink.byQuery("q"), 1, fast, ticks(1, fast), target)
}

// A resume point makes the first poll backfill from it.
func TestBackfillResumePoints(t *testing.T) {
	h := newHarness(t, WithBackfill(time.Hour))
	newSimProm(t, h.prom, "q", fast, 2)
	resume := ticks(-50, fast) // 50 steps before the first poll's samples at ticks(1)
	h.p.SetResumePoints(map[string]time.Time{"q": resume.Time(), "unknown": time.Now(), "zero": {}})
	// Points only move LastWritten forward.
	h.p.SetResumePoints(map[string]time.Time{"q": (resume - 1000).Time()})
	if got := h.p.LastWritten("q"); !got.Equal(resume.Time()) || got.Location() != time.UTC {
		t.Errorf("LastWritten = %v, want %v UTC", got, resume.Time())
	}
	if !h.p.LastWritten("zero").IsZero() {
		t.Error("zero resume point stored")
	}
	h.p.Update([]Query{{Name: "q", Expr: "q", Interval: fast, Timeout: time.Minute}})
	h.start()
	waitFor(t, "rows", func() bool { return newestRow(h.sink, "q") >= ticks(3, fast) })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	rs := h.prom.ranges("q")
	if len(rs) != 1 || rs[0].start != resume+10 || rs[0].points() != 50 {
		t.Errorf("range queries %+v, want one of 50 steps from %v", rs, resume+10)
	}
	checkComplete(t, h.sink.byQuery("q"), 2, fast, resume+10, ticks(3, fast))
}

// Without WithBackfill, nothing is backfilled and there are no backfill
// series.
func TestBackfillOff(t *testing.T) {
	h := newHarness(t)
	h.p.jitter = func() float64 { return 0 }
	sim := newSimProm(t, h.prom, "q", fast, 1)
	sim.set(func(s *simProm) { s.failPoll = func(n int) bool { return n >= 2 && n <= 4 } })
	h.p.SetResumePoints(map[string]time.Time{"q": (simBase - 1000).Time()})
	h.p.Update([]Query{{Name: "q", Expr: "q", Interval: fast, Timeout: time.Minute}})
	h.start()
	waitFor(t, "rows after recovery", func() bool { return newestRow(h.sink, "q") >= ticks(8, fast) })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if rs := h.prom.ranges("q"); len(rs) != 0 {
		t.Errorf("range queries %+v", rs)
	}
	for _, name := range []string{"requests_total", "samples_total", "pending_seconds"} {
		if _, ok := metricValue(t, h.reg, "prometheus_deephaven_bridge_backfill_"+name, map[string]string{"query": "q"}); ok {
			t.Errorf("backfill_%s has a series", name)
		}
	}
	if n := len(h.logs.lines("ackfill")); n != 0 {
		t.Errorf("backfill logs: %v", h.logs.lines("ackfill"))
	}
}

// A failed chunk is retried, after backoff, with the same size; its failure
// is logged once.
func TestBackfillRetriesFailedChunk(t *testing.T) {
	h := newHarness(t, WithBackfill(time.Hour))
	h.p.jitter = func() float64 { return 0 }
	sim := newSimProm(t, h.prom, "q", fast, 1)
	sim.set(func(s *simProm) {
		s.failRange = func(n int, _ rangeReq) *reply {
			if n <= 2 {
				return &reply{status: http.StatusServiceUnavailable, body: "down"}
			}
			return nil
		}
	})
	resume := ticks(-20, fast) // 20 steps
	h.p.SetResumePoints(map[string]time.Time{"q": resume.Time()})
	h.p.Update([]Query{{Name: "q", Expr: "q", Interval: fast, Timeout: time.Minute}})
	h.start()
	waitFor(t, "the backfill", func() bool { return len(h.logs.lines("Backfill done")) == 1 })
	target := newestRow(h.sink, "q") + 2*model.Time(fast.Milliseconds())
	waitFor(t, "more rows", func() bool { return newestRow(h.sink, "q") >= target })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}

	rs := h.prom.ranges("q")
	if len(rs) != 3 {
		t.Fatalf("range queries %+v, want 3", rs)
	}
	for i, rr := range rs {
		// Each retry's gap is one tick longer: the poll's samples moved on.
		if rr.start != resume+10 || rr.points() != int64(20+i) {
			t.Errorf("range query %d: %+v (%d points), want from %v with %d points", i, rr, rr.points(), resume+10, 20+i)
		}
	}
	checkComplete(t, h.sink.byQuery("q"), 1, fast, resume+10, target)
	if n := len(h.logs.lines("level=ERROR", "Backfill query failed", "server_error")); n != 1 {
		t.Errorf("%d error lines, want 1:\n%s", n, strings.Join(h.logs.lines("level=ERROR"), "\n"))
	}
	if n := len(h.logs.lines("level=INFO", "Backfill query recovered", "failed_requests=2")); n != 1 {
		t.Errorf("%d recovery lines, want 1", n)
	}
	if v := h.errorsOf("q", reasonPrometheus); v != 2 {
		t.Errorf("prometheus errors = %v, want 2", v)
	}
	if n := len(h.logs.lines("Backfilling gap")); n != 1 {
		t.Errorf("%d start lines, want 1", n)
	}
}

// Rejected chunks are retried at half their size; when a one-step chunk is
// rejected, the gap is abandoned and polling goes on.
func TestBackfillShrinksThenAbandons(t *testing.T) {
	h := newHarness(t, WithBackfill(time.Hour))
	h.p.jitter = func() float64 { return 0 }
	sim := newSimProm(t, h.prom, "q", fast, 1)
	sim.set(func(s *simProm) {
		s.failRange = func(int, rangeReq) *reply { return &reply{status: http.StatusBadRequest, body: bodyBadData} }
	})
	h.p.SetResumePoints(map[string]time.Time{"q": ticks(-8, fast).Time()}) // 8 steps
	h.p.Update([]Query{{Name: "q", Expr: "q", Interval: fast, Timeout: time.Minute}})
	h.start()
	waitFor(t, "rows", func() bool { return len(h.sink.byQuery("q")) >= 3 })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}

	var sizes []int64
	for _, rr := range h.prom.ranges("q") {
		sizes = append(sizes, rr.points())
	}
	if !slices.Equal(sizes, []int64{8, 4, 2, 1}) {
		t.Errorf("chunk sizes %v, want [8 4 2 1]", sizes)
	}
	if n := len(h.logs.lines("level=ERROR", "Abandoning backfill")); n != 1 {
		t.Errorf("%d abandon lines, want 1", n)
	}
	if n := len(h.logs.lines("level=ERROR", "Backfill query failed")); n != 1 {
		t.Errorf("%d error lines, want 1", n)
	}
	if v := h.backfillMetric("pending_seconds", "q"); v != 0 {
		t.Errorf("pending = %v after abandoning", v)
	}
	// The fourth poll abandoned the gap and wrote its rows; the later ones
	// follow.
	checkComplete(t, h.sink.byQuery("q"), 1, fast, ticks(4, fast), newestRow(h.sink, "q"))
}

// A query's backfill does not hold up other queries, and stopping cancels it.
func TestBackfillDoesNotBlockOthers(t *testing.T) {
	h := newHarness(t, WithBackfill(time.Hour))
	sim := newSimProm(t, h.prom, "slow", fast, 1)
	sim.set(func(s *simProm) {
		s.failRange = func(int, rangeReq) *reply { return &reply{block: true} }
	})
	h.prom.always("up", ok(bodyVectorUp))
	h.p.SetResumePoints(map[string]time.Time{"slow": (simBase - 1000).Time()})
	h.p.Update([]Query{
		{Name: "slow", Expr: "slow", Interval: fast, Timeout: time.Hour},
		{Name: "up", Expr: "up", Interval: fast, Timeout: time.Minute},
	})
	h.start()
	waitFor(t, "the backfill to hang", func() bool { return len(h.prom.ranges("slow")) == 1 })
	n := len(h.sink.byQuery("up"))
	waitFor(t, "rows of the other query", func() bool { return len(h.sink.byQuery("up")) >= n+5 })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the range query to be canceled", func() bool { return h.prom.canceledCount("slow") == 1 })
	if n := len(h.sink.byQuery("slow")); n != 0 {
		t.Errorf("%d rows of the query whose backfill hangs", n)
	}
	if lines := h.logs.lines("level=ERROR"); len(lines) != 0 {
		t.Errorf("stopping logged errors: %v", lines)
	}
}

func TestPlanBackfill(t *testing.T) {
	ms := func(n int64) time.Time { return time.UnixMilli(n) }
	for _, tc := range []struct {
		last, until     time.Time
		interval, limit time.Duration
		want            backfillPlan
	}{
		// Steps strictly between the samples.
		{ms(1000), ms(1100), 10 * time.Millisecond, time.Hour, backfillPlan{first: 1010, step: 10, steps: 9}},
		{ms(1000), ms(1101), 10 * time.Millisecond, time.Hour, backfillPlan{first: 1010, step: 10, steps: 10}},
		// Sub-millisecond intervals round up.
		{ms(1000), ms(1010), 1500 * time.Microsecond, time.Hour, backfillPlan{first: 1002, step: 2, steps: 4}},
		// A sub-millisecond last written time: the first step is still after it.
		{ms(1000).Add(500 * time.Microsecond), ms(1100), 10 * time.Millisecond, time.Hour, backfillPlan{first: 1010, step: 10, steps: 9}},
		// The limit cuts the gap.
		{ms(0), ms(10000), 10 * time.Millisecond, 100 * time.Millisecond, backfillPlan{first: 9900, step: 10, steps: 10, cut: true}},
		{ms(0), ms(10000), 10 * time.Millisecond, 5 * time.Millisecond, backfillPlan{first: 9995, step: 10, steps: 1, cut: true}},
		{ms(0), ms(10000), 10 * time.Millisecond, 500 * time.Microsecond, backfillPlan{first: 10000, step: 10, steps: 0, cut: true}},
		// No room for a step.
		{ms(1000), ms(1010), 10 * time.Millisecond, time.Hour, backfillPlan{first: 1010, step: 10, steps: 0}},
		// An hour of one-millisecond steps.
		{ms(0), ms(7200000), time.Millisecond, time.Hour, backfillPlan{first: 3600000, step: 1, steps: 3600000, cut: true}},
	} {
		if got := planBackfill(tc.last, tc.until, tc.interval, tc.limit); got != tc.want {
			t.Errorf("planBackfill(%v, %v, %v, %v) = %+v, want %+v", tc.last, tc.until, tc.interval, tc.limit, got, tc.want)
		}
	}
}

func TestIsGap(t *testing.T) {
	last := time.UnixMilli(1000)
	for _, tc := range []struct {
		until time.Duration
		want  bool
	}{{-time.Second, false}, {10 * time.Millisecond, false}, {15 * time.Millisecond, false}, {16 * time.Millisecond, true}, {time.Hour, true}} {
		if got := isGap(last, last.Add(tc.until), 10*time.Millisecond); got != tc.want {
			t.Errorf("isGap(+%v) = %v", tc.until, got)
		}
	}
}

const matrixJSON = `[
 {"metric":{"__name__":"up","job":"prometheus","instance":"localhost:9090"},"values":[[1795575343,"1"],[1795575358,"NaN"],[1795575373,"3"]]},
 {"metric":{},"values":[[1795575343,"-Inf"],[1795575358,"5"]]},
 {"metric":{"__name__":"h","job":"j"},"histograms":[[1795575343,{"count":"4","sum":"6.5","buckets":[[0,"0.5","1","1"]]}],[1795575373,{"count":"1","sum":"1","buckets":[]}]]}
]`

func TestRangeToRows(t *testing.T) {
	var mat model.Matrix
	if err := json.Unmarshal([]byte(matrixJSON), &mat); err != nil {
		t.Fatal(err)
	}
	mat = append(mat, nil)
	keep := func(ts model.Time) bool { return ts <= 1795575358000 }
	got, histograms, err := rangeToRows([]Output{{Name: "r"}}, mat, testNow, keep)
	if err != nil {
		t.Fatal(err)
	}
	if histograms != 1 {
		t.Errorf("histograms = %d, want 1 (the other is outside the range)", histograms)
	}
	row := func(sec int64, job, instance string, v float64, labels string) rows.MetricRow {
		return rows.MetricRow{
			PrometheusDateTime: time.Unix(sec, 0).UTC(), PrometheusQuery: "r", Job: job, Instance: instance,
			Value: v, MetricIngestDateTime: testNow.UTC(), Labels: labels,
		}
	}
	up := `{__name__="up", instance="localhost:9090", job="prometheus"}`
	// Sorted by time; series in result order within a time.
	checkRows(t, got, []rows.MetricRow{
		row(1795575343, "prometheus", "localhost:9090", 1, up),
		row(1795575343, "", "", math.Inf(-1), "{}"),
		row(1795575358, "prometheus", "localhost:9090", math.NaN(), up),
		row(1795575358, "", "", 5, "{}"),
	})
}

func TestRangeToRowsRejectsOtherResults(t *testing.T) {
	for name, v := range map[string]model.Value{
		"vector":     model.Vector{},
		"scalar":     &model.Scalar{},
		"nil scalar": (*model.Scalar)(nil),
		"nil string": (*model.String)(nil),
		"nil":        nil,
	} {
		got, _, err := rangeToRows([]Output{{Name: "q"}}, v, testNow, func(model.Time) bool { return true })
		if !errors.Is(err, errResultType) || got != nil {
			t.Errorf("%s: rangeToRows = %v, %v; want errResultType", name, got, err)
		}
	}
}

func TestRejected(t *testing.T) {
	for _, tc := range []struct {
		err    error
		reason string
		want   bool
	}{
		{&v1.Error{Type: v1.ErrBadData, Msg: "exceeded maximum resolution"}, reasonPrometheus, true},
		{&v1.Error{Type: v1.ErrExec, Msg: "query processing would load too many samples into memory"}, reasonPrometheus, true},
		{&v1.Error{Type: v1.ErrClient, Msg: "client error: 403"}, reasonPrometheus, true},
		{&v1.Error{Type: v1.ErrClient, Msg: "client error: 429"}, reasonPrometheus, false},
		{&v1.Error{Type: v1.ErrServer, Msg: "server error: 503", Detail: bodyTimeout}, reasonPrometheus, true},
		{&v1.Error{Type: v1.ErrServer, Msg: "server error: 503", Detail: "down"}, reasonPrometheus, false},
		{&v1.Error{Type: v1.ErrTimeout}, reasonTimeout, true},
		{fmt.Errorf("%w: no result", errResultType), reasonResultType, true},
		{errors.New("connection refused"), reasonPrometheus, false},
	} {
		if got := rejected(tc.err, tc.reason); got != tc.want {
			t.Errorf("rejected(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func FuzzRangeToRows(f *testing.F) {
	f.Add([]byte(matrixJSON), int64(1795575358000))
	f.Add([]byte(`[null,{"metric":null,"values":null}]`), int64(0))
	f.Add([]byte(`[{"values":[[1e300,"NaN"],[-1,"1"]],"histograms":[[1,{"count":"1","sum":"1","buckets":null}]]}]`), int64(-1))
	f.Fuzz(func(t *testing.T, data []byte, until int64) {
		var mat model.Matrix
		if err := json.Unmarshal(data, &mat); err != nil {
			return
		}
		keep := func(ts model.Time) bool { return int64(ts) <= until }
		wantRows, wantHist := 0, 0
		for _, s := range mat {
			if s == nil {
				continue
			}
			for _, v := range s.Values {
				if keep(v.Timestamp) {
					wantRows++
				}
			}
			for _, h := range s.Histograms {
				if keep(h.Timestamp) {
					wantHist++
				}
			}
		}
		got, hist, err := rangeToRows([]Output{{Name: "fuzz"}}, mat, testNow, keep)
		if err != nil {
			t.Fatalf("rangeToRows: %v", err)
		}
		if len(got) != wantRows || hist != wantHist {
			t.Fatalf("got %d rows and %d histograms, want %d and %d", len(got), hist, wantRows, wantHist)
		}
		for i, r := range got {
			if i > 0 && r.PrometheusDateTime.Before(got[i-1].PrometheusDateTime) {
				t.Fatalf("rows not sorted by time at %d", i)
			}
			if r.PrometheusQuery != "fuzz" || !strings.HasPrefix(r.Labels, "{") || r.PrometheusDateTime.Location() != time.UTC {
				t.Fatalf("bad row %+v", r)
			}
		}
	})
}

// Resync after the sink lost rows (Deephaven came back without them): the
// query's LastWritten moves back to what the sink holds and its next poll
// backfills from there; a query the sink holds nothing of starts at the
// backfill limit.
func TestResyncRewindsAndBackfills(t *testing.T) {
	h := newHarness(t, WithBackfill(time.Hour))
	newSimProm(t, h.prom, "q", fast, 2)
	h.p.Update([]Query{{Name: "q", Expr: "q", Interval: fast, Timeout: time.Minute}, {Name: "other", Expr: "other", Interval: time.Hour}})
	h.start()
	waitFor(t, "rows", func() bool { return newestRow(h.sink, "q") >= ticks(5, fast) })
	if rs := h.prom.ranges("q"); len(rs) != 0 {
		t.Fatalf("range queries before the resync: %+v", rs)
	}
	held := ticks(2, fast)
	h.p.Resync(map[string]time.Time{"q": held.Time()}, time.Time{})
	if got := h.p.LastWritten("q"); !got.Equal(held.Time()) {
		t.Errorf("LastWritten after Resync = %v, want %v", got, held.Time())
	}
	if got, want := h.p.LastWritten("other"), h.p.now().Add(-time.Hour).UTC(); !got.Equal(want) {
		t.Errorf("LastWritten of a query the sink holds nothing of = %v, want the backfill limit ago, %v", got, want)
	}
	waitFor(t, "the backfill of the lost rows", func() bool { return len(h.prom.ranges("q")) > 0 })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	rs := h.prom.ranges("q")
	if rs[0].start != held+10 {
		t.Errorf("backfill starts at %v, want %v (the step after what the sink holds)", rs[0].start, held+10)
	}
	if n := len(h.logs.lines("missing from the sink")); n != 1 {
		t.Errorf("%d log lines about the rewind, want 1", n)
	}
}

// With WithHistoryForNewQueries a query added while running fetches the
// backfill limit of its history at its first poll; without, it does not.
func TestHistoryForNewQueries(t *testing.T) {
	for _, on := range []bool{false, true} {
		opts := []Option{WithBackfill(50 * fast)}
		if on {
			opts = append(opts, WithHistoryForNewQueries())
		}
		h := newHarness(t, opts...)
		newSimProm(t, h.prom, "q", fast, 1)
		h.start()
		h.p.Update([]Query{{Name: "q", Expr: "q", Interval: fast, Timeout: time.Minute}})
		waitFor(t, "rows", func() bool { return newestRow(h.sink, "q") >= ticks(3, fast) })
		if err := h.stop(); err != nil {
			t.Fatal(err)
		}
		rs := h.prom.ranges("q")
		if !on && len(rs) != 0 {
			t.Errorf("without the option: range queries %+v", rs)
		}
		if on && (len(rs) == 0 || rs[0].points() < 45) {
			t.Errorf("with the option: range queries %+v, want one of about 50 steps", rs)
		}
		if on && len(h.logs.lines("exceeds the backfill limit")) != 0 {
			t.Errorf("a planned cut was logged as a warning: %v", h.logs.lines("exceeds"))
		}
	}
}

// A poll's write that the sink held across a Deephaven restart reaches the
// new table after Resync read what it holds: the refill that follows must
// not write that sample a second time.
func TestWriteAcrossResyncIsNotWrittenAgain(t *testing.T) {
	h := newHarness(t, WithBackfill(100*fast))
	newSimProm(t, h.prom, "q", fast, 1)
	h.p.Update([]Query{{Name: "q", Expr: "q", Interval: fast, Timeout: time.Minute}})
	h.start()
	waitFor(t, "rows", func() bool { return newestRow(h.sink, "q") >= ticks(5, fast) })
	// Deephaven goes away: the next write waits in the sink.
	gate := make(chan struct{})
	h.sink.mu.Lock()
	h.sink.gate = gate
	calls := h.sink.calls
	h.sink.mu.Unlock()
	waitFor(t, "a write waiting in the sink", func() bool { return h.sink.callCount() > calls })
	// It comes back empty and the tables are prepared again.
	h.sink.mu.Lock()
	h.sink.rows = nil
	h.sink.gate = nil
	h.sink.mu.Unlock()
	h.p.Resync(map[string]time.Time{}, time.Time{})
	close(gate) // the waiting write lands in the new table
	waitFor(t, "the refill", func() bool { return len(h.prom.ranges("q")) > 0 && newestRow(h.sink, "q") > ticks(12, fast) })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	seen := map[int64]int{}
	for _, r := range h.sink.byQuery("q") {
		seen[r.PrometheusDateTime.UnixMilli()]++
	}
	for at, n := range seen {
		if n > 1 {
			t.Errorf("sample at %d written %d times", at, n)
		}
	}
	t.Logf("%d samples after the refill, %d range queries", len(seen), len(h.prom.ranges("q")))
}

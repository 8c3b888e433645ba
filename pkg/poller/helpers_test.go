package poller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// Response bodies of the fake Prometheus, as Prometheus sends them.
const (
	bodyVectorUp = `{"status":"success","data":{"resultType":"vector","result":[` +
		`{"metric":{"__name__":"up","job":"prometheus","instance":"localhost:9090"},"value":[1795575363.813,"1"]}]}}`
	bodyScalar = `{"status":"success","data":{"resultType":"scalar","result":[1795575363.844,"+Inf"]}}`
	bodyMatrix = `{"status":"success","data":{"resultType":"matrix","result":[` +
		`{"metric":{"job":"j"},"values":[[1795575343,"1"],[1795575358,"2"]]}]}}`
	bodyString  = `{"status":"success","data":{"resultType":"string","result":[1795575363.895,"hello"]}}`
	bodyBadData = `{"status":"error","errorType":"bad_data","error":"1:4: parse error: unexpected end of input"}`
	bodyTimeout = `{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}`
)

// reply is what the fake Prometheus answers to one request.
type reply struct {
	status int
	body   string
	delay  time.Duration // before answering; cut short when the client goes away
	block  bool          // answer only once the client goes away
	wait   chan struct{} // if set, answer once it is closed (or the client goes away)
}

func ok(body string) reply { return reply{status: http.StatusOK, body: body} }

// fakeProm is a fake Prometheus /api/v1/query endpoint. The reply to a query
// is chosen by its expression. It counts requests and in-flight requests per
// expression and checks the timeout parameter like Prometheus does.
// /api/v1/query_range requests go to the range handlers; they are recorded
// separately and not counted as queries.
type fakeProm struct {
	t   *testing.T
	srv *httptest.Server

	mu          sync.Mutex
	handlers    map[string]func(n int) reply // n counts this expr's requests from 1
	requests    map[string]int
	inflight    map[string]int
	maxInflight map[string]int
	canceled    map[string]int // requests whose client went away
	times       map[string][]time.Time
	timeouts    map[string][]string // timeout parameters received

	rangeHandlers map[string]func(n int, rr rangeReq) reply
	rangeReqs     map[string][]rangeReq
}

// rangeReq is a query_range request as Prometheus reads it: times rounded
// to milliseconds.
type rangeReq struct {
	start, end model.Time
	step       int64 // milliseconds
}

// points returns the number of steps of the request.
func (rr rangeReq) points() int64 { return int64(rr.end-rr.start)/rr.step + 1 }

func newFakeProm(t *testing.T) *fakeProm {
	t.Helper()
	f := &fakeProm{
		t:           t,
		handlers:    map[string]func(int) reply{},
		requests:    map[string]int{},
		inflight:    map[string]int{},
		maxInflight: map[string]int{},
		canceled:    map[string]int{},
		times:       map[string][]time.Time{},
		timeouts:    map[string][]string{},

		rangeHandlers: map[string]func(int, rangeReq) reply{},
		rangeReqs:     map[string][]rangeReq{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// handle sets the reply to expr.
func (f *fakeProm) handle(expr string, h func(n int) reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[expr] = h
}

func (f *fakeProm) always(expr string, r reply) { f.handle(expr, func(int) reply { return r }) }

// handleRange sets the reply to range queries of expr.
func (f *fakeProm) handleRange(expr string, h func(n int, rr rangeReq) reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rangeHandlers[expr] = h
}

// ranges returns the range requests of expr received so far.
func (f *fakeProm) ranges(expr string) []rangeReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]rangeReq(nil), f.rangeReqs[expr]...)
}

// parsePromTime parses a time parameter like Prometheus: float seconds,
// rounded to milliseconds.
func parsePromTime(s string) (model.Time, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	sec, frac := math.Modf(f)
	return model.Time(int64(sec)*1000 + int64(math.Round(frac*1000))), nil
}

// serveRange records and answers /api/v1/query_range, checking the
// parameters like Prometheus does, including its limit of 11,000 points per
// series.
func (f *fakeProm) serveRange(w http.ResponseWriter, r *http.Request) {
	badData := func(msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"status":"error","errorType":"bad_data","error":%q}`, msg)
	}
	start, err1 := parsePromTime(r.Form.Get("start"))
	end, err2 := parsePromTime(r.Form.Get("end"))
	stepSec, err3 := strconv.ParseFloat(r.Form.Get("step"), 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		badData(err.Error())
		return
	}
	rr := rangeReq{start: start, end: end, step: int64(time.Duration(stepSec*float64(time.Second)) / time.Millisecond)}
	expr := r.Form.Get("query")
	f.mu.Lock()
	f.rangeReqs[expr] = append(f.rangeReqs[expr], rr)
	n := len(f.rangeReqs[expr])
	h := f.rangeHandlers[expr]
	f.mu.Unlock()
	switch {
	case end < start:
		badData("end timestamp must not be before start time")
		return
	case rr.step <= 0:
		badData("zero or negative query resolution step widths are not accepted. Try a positive integer")
		return
	case int64(end-start)/rr.step > 11000:
		badData("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")
		return
	}
	rep := reply{status: http.StatusBadRequest, body: bodyBadData}
	if h != nil {
		rep = h(n, rr)
	}
	f.send(w, r, expr, rep)
}

func (f *fakeProm) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api/v1/query_range" {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.serveRange(w, r)
		return
	}
	if r.URL.Path != "/api/v1/query" {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	expr := r.Form.Get("query")
	timeout := r.Form.Get("timeout")
	f.mu.Lock()
	f.requests[expr]++
	n := f.requests[expr]
	f.inflight[expr]++
	f.maxInflight[expr] = max(f.maxInflight[expr], f.inflight[expr])
	f.times[expr] = append(f.times[expr], time.Now())
	f.timeouts[expr] = append(f.timeouts[expr], timeout)
	h := f.handlers[expr]
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight[expr]--
		f.mu.Unlock()
	}()

	if timeout != "" {
		if _, err := model.ParseDuration(timeout); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"status":"error","errorType":"bad_data","error":"cannot parse %q to a valid duration"}`, timeout)
			return
		}
	}
	rep := reply{status: http.StatusBadRequest, body: bodyBadData}
	if h != nil {
		rep = h(n)
	}
	f.send(w, r, expr, rep)
}

// send writes rep, after its delay or wait.
func (f *fakeProm) send(w http.ResponseWriter, r *http.Request, expr string, rep reply) {
	wait := make(<-chan time.Time)
	if rep.delay > 0 {
		wait = time.After(rep.delay)
	}
	var release <-chan struct{} = rep.wait
	if rep.block || rep.delay > 0 || rep.wait != nil {
		select {
		case <-r.Context().Done():
			f.mu.Lock()
			f.canceled[expr]++
			f.mu.Unlock()
			return
		case <-wait:
		case <-release:
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	fmt.Fprint(w, rep.body)
}

func (f *fakeProm) count(expr string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[expr]
}

func (f *fakeProm) canceledCount(expr string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.canceled[expr]
}

func (f *fakeProm) maxInflightOf(expr string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxInflight[expr]
}

func (f *fakeProm) requestTimes(expr string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.times[expr]...)
}

func (f *fakeProm) timeoutParams(expr string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.timeouts[expr]...)
}

func (f *fakeProm) api() v1.API {
	f.t.Helper()
	c, err := api.NewClient(api.Config{Address: f.srv.URL})
	if err != nil {
		f.t.Fatal(err)
	}
	return v1.NewAPI(c)
}

// fakeSink collects rows in a slice. It fails while err is set, blocks
// (honouring ctx) while block is set, and waits for gate to be closed
// (honouring ctx) while gate is set, like a sink that retries until
// Deephaven is back.
type fakeSink struct {
	mu    sync.Mutex
	rows  []rows.MetricRow
	calls int
	err   error
	block bool
	gate  chan struct{}
}

func (s *fakeSink) Write(ctx context.Context, rs []rows.MetricRow) error {
	s.mu.Lock()
	s.calls++
	err, block, gate := s.err, s.block, s.gate
	s.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows = append(s.rows, rs...)
	return nil
}

func (s *fakeSink) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *fakeSink) byQuery(name string) []rows.MetricRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []rows.MetricRow
	for _, r := range s.rows {
		if r.PrometheusQuery == name {
			out = append(out, r)
		}
	}
	return out
}

func (s *fakeSink) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// logBuffer is a goroutine-safe log sink for slog.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the log lines containing every one of subs.
func (b *logBuffer) lines(subs ...string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range strings.Split(b.buf.String(), "\n") {
		match := l != ""
		for _, s := range subs {
			match = match && strings.Contains(l, s)
		}
		if match {
			out = append(out, l)
		}
	}
	return out
}

// harness runs a Poller against a fake Prometheus and a fake sink.
type harness struct {
	t    *testing.T
	prom *fakeProm
	sink *fakeSink
	reg  *prometheus.Registry
	logs *logBuffer
	p    *Poller

	cancel context.CancelFunc
	done   chan error
}

var testNow = time.Date(2026, 5, 4, 3, 2, 1, 0, time.FixedZone("X", 3600))

func newHarness(t *testing.T, opts ...Option) *harness {
	t.Helper()
	h := &harness{
		t:    t,
		prom: newFakeProm(t),
		sink: &fakeSink{},
		reg:  prometheus.NewRegistry(),
		logs: &logBuffer{},
	}
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts = append([]Option{WithClock(func() time.Time { return testNow })}, opts...)
	h.p = New(h.prom.api(), h.sink, logger, h.reg, opts...)
	return h
}

// start runs the poller until the test ends (or stop is called).
func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.p.Run(ctx) }()
	h.t.Cleanup(func() { h.stop() })
}

// stop cancels Run and waits for it to return.
func (h *harness) stop() error {
	h.t.Helper()
	if h.cancel == nil {
		return nil
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		return err
	case <-time.After(waitTimeout):
		h.t.Fatal("Run did not return after its context was canceled")
		return nil
	}
}

// waitTimeout is generous: the tests wait for counts, not for durations.
const waitTimeout = 20 * time.Second

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// metricValue returns the value of the series of the named metric with the
// given labels (the sample count for a histogram), and whether it exists.
func metricValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func (h *harness) metric(name string, labels map[string]string) float64 {
	h.t.Helper()
	v, _ := metricValue(h.t, h.reg, name, labels)
	return v
}

func (h *harness) errorsOf(query, reason string) float64 {
	h.t.Helper()
	return h.metric("prometheus_deephaven_bridge_query_errors_total", map[string]string{"query": query, "reason": reason})
}

// seriesOf counts the poller's series labelled with the query.
func (h *harness) seriesOf(query string) int {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "query" && lp.GetValue() == query {
					n++
				}
			}
		}
	}
	return n
}

var errSink = errors.New("sink unavailable")

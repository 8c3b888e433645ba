package poller

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

const fast = 10 * time.Millisecond

func TestPollVectorEndToEnd(t *testing.T) {
	h := newHarness(t)
	h.prom.always("vec", ok(`{"status":"success","data":{"resultType":"vector","result":`+vectorJSON+`}}`))
	h.p.Update([]Query{{Name: "v", Expr: "vec", Interval: fast, Timeout: time.Minute}})
	h.start()

	waitFor(t, "rows of two polls", func() bool { return len(h.sink.byQuery("v")) >= 10 })
	checkRows(t, h.sink.byQuery("v")[:5], wantVectorRows("v", testNow))

	if got := h.p.LastWritten("v"); !got.Equal(time.UnixMilli(1795575363813)) {
		t.Errorf("LastWritten = %v, want the newest sample's time", got)
	}
	waitFor(t, "histogram samples counted per sample", func() bool { return h.errorsOf("v", reasonHistogram) >= 2 })
	if n := len(h.logs.lines("native histogram")); n != 1 {
		t.Errorf("%d log lines about native histograms, want 1 per query", n)
	}
	if v := h.metric("prometheus_deephaven_bridge_query_samples_total", map[string]string{"query": "v"}); v < 10 {
		t.Errorf("samples_total = %v, want >= 10", v)
	}
	if v := h.metric("prometheus_deephaven_bridge_query_requests_total", map[string]string{"query": "v"}); v < 2 {
		t.Errorf("requests_total = %v, want >= 2", v)
	}
	if v := h.metric("prometheus_deephaven_bridge_query_duration_seconds", map[string]string{"query": "v"}); v < 2 {
		t.Errorf("duration_seconds count = %v, want >= 2", v)
	}
	if v := h.metric("prometheus_deephaven_bridge_query_last_success_timestamp_seconds", map[string]string{"query": "v"}); v != float64(testNow.Unix()) {
		t.Errorf("last_success = %v, want %v", v, testNow.Unix())
	}
	for _, reason := range []string{reasonPrometheus, reasonTimeout, reasonResultType, reasonSink} {
		if v, ok := metricValue(t, h.reg, "prometheus_deephaven_bridge_query_errors_total", map[string]string{"query": "v", "reason": reason}); !ok || v != 0 {
			t.Errorf("errors_total{reason=%q} = %v (exists %v), want 0", reason, v, ok)
		}
	}
	if got := h.prom.timeoutParams("vec")[0]; got != "1m0s" {
		t.Errorf("timeout parameter = %q, want 1m0s", got)
	}
}

func TestPollScalar(t *testing.T) {
	h := newHarness(t)
	h.prom.always("scalar", ok(bodyScalar))
	h.p.Update([]Query{{Name: "s", Expr: "scalar", Interval: fast, Timeout: 0}})
	h.start()

	waitFor(t, "a scalar row", func() bool { return len(h.sink.byQuery("s")) >= 1 })
	checkRows(t, h.sink.byQuery("s")[:1], []rows.MetricRow{{
		PrometheusDateTime:   time.UnixMilli(1795575363844).UTC(),
		PrometheusQuery:      "s",
		Value:                math.Inf(1),
		MetricIngestDateTime: testNow.UTC(),
		Labels:               "{}",
	}})
	// Timeout 0 means Interval.
	if got := h.prom.timeoutParams("scalar")[0]; got != "10ms" {
		t.Errorf("timeout parameter = %q, want 10ms", got)
	}
}

// A matrix or string result is a counted error of its query only.
func TestUnsupportedResultTypes(t *testing.T) {
	h := newHarness(t)
	h.prom.always("matrix", ok(bodyMatrix))
	h.prom.always("string", ok(bodyString))
	h.prom.always("up", ok(bodyVectorUp))
	h.p.Update([]Query{
		{Name: "m", Expr: "matrix", Interval: fast, Timeout: time.Minute},
		{Name: "str", Expr: "string", Interval: fast, Timeout: time.Minute},
		{Name: "up", Expr: "up", Interval: fast, Timeout: time.Minute},
	})
	h.start()

	waitFor(t, "result_type errors", func() bool {
		return h.errorsOf("m", reasonResultType) >= 2 && h.errorsOf("str", reasonResultType) >= 2
	})
	waitFor(t, "rows of the good query", func() bool { return len(h.sink.byQuery("up")) >= 3 })
	if n := len(h.sink.byQuery("m")) + len(h.sink.byQuery("str")); n != 0 {
		t.Errorf("%d rows of unsupported results", n)
	}
	if v := h.errorsOf("m", reasonPrometheus); v != 0 {
		t.Errorf("matrix counted as prometheus error %v times", v)
	}
	if n := len(h.logs.lines("level=ERROR", "query=m", "Query failed", `matrix`)); n != 1 {
		t.Errorf("%d error lines for the matrix query, want 1:\n%s", n, strings.Join(h.logs.lines("query=m"), "\n"))
	}
	if v := h.errorsOf("up", reasonResultType); v != 0 {
		t.Errorf("good query has %v errors", v)
	}
}

// Errors are logged once per state change; repeats go to Debug.
func TestErrorsLoggedOnStateChange(t *testing.T) {
	h := newHarness(t)
	h.p.jitter = func() float64 { return 0 }
	h.prom.handle("q", func(n int) reply {
		switch {
		case n <= 3:
			return reply{status: http.StatusBadRequest, body: bodyBadData}
		case n <= 5:
			return reply{status: http.StatusServiceUnavailable, body: "overloaded"}
		case n == 6:
			return reply{status: http.StatusServiceUnavailable, body: bodyTimeout}
		}
		return ok(bodyVectorUp)
	})
	h.p.Update([]Query{{Name: "q", Expr: "q", Interval: time.Millisecond, Timeout: 10 * time.Second}})
	h.start()
	waitFor(t, "recovery", func() bool { return len(h.sink.byQuery("q")) >= 2 })

	if v := h.errorsOf("q", reasonPrometheus); v != 6 {
		t.Errorf("prometheus errors = %v, want 6", v)
	}
	errLines := h.logs.lines("level=ERROR", "Query failed")
	if len(errLines) != 2 {
		t.Fatalf("got %d error lines, want 2 (bad_data, then server_error):\n%s", len(errLines), strings.Join(errLines, "\n"))
	}
	if !strings.Contains(errLines[0], "bad_data") || !strings.Contains(errLines[0], "reason=prometheus") {
		t.Errorf("first error line %q", errLines[0])
	}
	if !strings.Contains(errLines[1], "server_error") || !strings.Contains(errLines[1], "detail=overloaded") {
		t.Errorf("second error line %q", errLines[1])
	}
	if n := len(h.logs.lines("level=DEBUG", "Query still failing")); n != 4 {
		t.Errorf("%d debug lines for repeated errors, want 4", n)
	}
	if n := len(h.logs.lines("level=INFO", "Query recovered", "failed_polls=6")); n != 1 {
		t.Errorf("%d recovery lines, want 1", n)
	}
}

// A query may be slower than its interval: it is never run twice at once.
func TestNoConcurrentRunsOfOneQuery(t *testing.T) {
	h := newHarness(t)
	h.prom.always("slow", reply{status: http.StatusOK, body: bodyVectorUp, delay: 50 * time.Millisecond})
	h.p.Update([]Query{{Name: "slow", Expr: "slow", Interval: time.Millisecond, Timeout: 10 * time.Second}})
	h.start()

	waitFor(t, "several slow polls", func() bool { return len(h.sink.byQuery("slow")) >= 5 })
	if n := h.prom.maxInflightOf("slow"); n != 1 {
		t.Errorf("max concurrent requests of one query = %d, want 1", n)
	}
	if v := h.errorsOf("slow", reasonTimeout); v != 0 {
		t.Errorf("%v timeouts", v)
	}
}

// The query's timeout cancels the request, is sent to Prometheus, and counts
// as a timeout; Prometheus's own timeout error counts as one too.
func TestTimeout(t *testing.T) {
	h := newHarness(t)
	h.prom.always("hang", reply{block: true})
	h.prom.always("promtimeout", reply{status: http.StatusUnprocessableEntity, body: bodyTimeout})
	h.p.Update([]Query{
		{Name: "hang", Expr: "hang", Interval: fast, Timeout: 30 * time.Millisecond},
		{Name: "pt", Expr: "promtimeout", Interval: fast, Timeout: 1500 * time.Millisecond},
	})
	h.start()

	waitFor(t, "timeouts", func() bool {
		return h.errorsOf("hang", reasonTimeout) >= 2 && h.errorsOf("pt", reasonTimeout) >= 2
	})
	waitFor(t, "the server to see canceled requests", func() bool { return h.prom.canceledCount("hang") >= 2 })
	if got := h.prom.timeoutParams("hang")[0]; got != "30ms" {
		t.Errorf("timeout parameter = %q, want 30ms", got)
	}
	// 1.5s is sent as 1s: Prometheus cannot parse "1.5s".
	if got := h.prom.timeoutParams("promtimeout")[0]; got != "1s" {
		t.Errorf("timeout parameter = %q, want 1s", got)
	}
	// However the deadline shows up in the error text, it is one state.
	if n := len(h.logs.lines("level=ERROR", "query=hang")); n != 1 {
		t.Errorf("%d error lines for repeated timeouts, want 1:\n%s", n, strings.Join(h.logs.lines("level=ERROR", "query=hang"), "\n"))
	}
	if v := h.errorsOf("hang", reasonPrometheus) + h.errorsOf("pt", reasonPrometheus); v != 0 {
		t.Errorf("timeouts counted as prometheus errors %v times", v)
	}
}

// During an outage a query backs off; it recovers when Prometheus does.
func TestBackoffDuringOutage(t *testing.T) {
	h := newHarness(t)
	h.p.jitter = func() float64 { return 0 } // the shortest waits: [d/2, d) → d/2
	const failures = 8
	h.prom.handle("q", func(n int) reply {
		if n <= failures {
			return reply{status: http.StatusServiceUnavailable, body: "down"}
		}
		return ok(bodyVectorUp)
	})
	// A second query, failing all along, must not disturb the first.
	h.prom.always("other", reply{status: http.StatusServiceUnavailable})
	h.p.Update([]Query{
		{Name: "q", Expr: "q", Interval: fast, Timeout: time.Minute},
		{Name: "other", Expr: "other", Interval: fast, Timeout: time.Minute},
	})
	h.start()

	waitFor(t, "recovery", func() bool { return len(h.sink.byQuery("q")) >= 1 })
	times := h.prom.requestTimes("q")
	// Timers never fire early, so each wait is at least its lower bound:
	// interval 10ms, limit min(10·10ms, 30s) = 100ms; after n failures
	// max(10ms, min(10ms·2ⁿ, 100ms)/2) = 10, 20, 40, 50, 50, 50, 50, 50 ms.
	// Without backoff the 8 waits would take 80ms.
	want := []time.Duration{10, 20, 40, 50, 50, 50, 50, 50}
	var total time.Duration
	for i, w := range want {
		w *= time.Millisecond
		total += w
		// Allow for the fake server stamping the time after the request's
		// transit: the request's start is not earlier than the timer.
		if got := times[i+1].Sub(times[0]); got < total-2*time.Millisecond {
			t.Errorf("request %d came %v after the first, want >= %v", i+2, got, total)
		}
	}
	if v := h.errorsOf("q", reasonPrometheus); v != failures {
		t.Errorf("errors = %v, want %d", v, failures)
	}
}

func TestBackoffFunction(t *testing.T) {
	for _, tc := range []struct {
		interval, maxBackoff time.Duration
		failures             int
		jitter               float64
		want                 time.Duration
	}{
		{time.Second, 30 * time.Second, 1, 0, time.Second},                            // d=2s: [1s, 2s)
		{time.Second, 30 * time.Second, 1, 0.5, 1500 * time.Millisecond},              // d=2s
		{time.Second, 30 * time.Second, 3, 0, 4 * time.Second},                        // d=8s
		{time.Second, 30 * time.Second, 4, 0.999999999, 10 * time.Second},             // d=10s capped by 10·interval
		{time.Second, 30 * time.Second, 1000, 0, 5 * time.Second},                     // no overflow
		{15 * time.Second, 30 * time.Second, 10, 0, 15 * time.Second},                 // d=30s: cap 30s
		{15 * time.Second, 30 * time.Second, 10, 0.5, 22500 * time.Millisecond},       // d=30s
		{time.Minute, 30 * time.Second, 5, 0.9, time.Minute},                          // never below interval
		{time.Second, 3 * time.Second, 5, 0, 1500 * time.Millisecond},                 // custom cap
		{time.Duration(math.MaxInt64 / 3), 30 * time.Second, 5, 0, math.MaxInt64 / 3}, // no overflow
	} {
		got := backoff(tc.interval, tc.maxBackoff, tc.failures, tc.jitter)
		// Allow float rounding of the jitter.
		if d := got - tc.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("backoff(%v, %v, %d, %v) = %v, want %v", tc.interval, tc.maxBackoff, tc.failures, tc.jitter, got, tc.want)
		}
	}
}

// After a success the query returns to its interval, keeping its phase.
func TestNextDelay(t *testing.T) {
	p := New(nil, nil, nil, nil)
	p.jitter = func() float64 { return 0 }
	r := newRunner(p, Query{Name: "q", Expr: "e", Interval: time.Second})
	var waits []time.Duration
	for range 4 {
		waits = append(waits, r.nextDelay(false, 10*time.Millisecond))
	}
	waits = append(waits,
		r.nextDelay(true, 300*time.Millisecond),  // next tick 1s after the poll's start
		r.nextDelay(true, 2300*time.Millisecond), // overran: skip 2 ticks
		r.nextDelay(false, 0),                    // backoff starts over
	)
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second,
		700 * time.Millisecond, 700 * time.Millisecond, time.Second}
	for i := range want {
		if waits[i] != want[i] {
			t.Errorf("wait %d = %v, want %v (all: %v)", i, waits[i], want[i], waits)
		}
	}
}

func TestSinkErrors(t *testing.T) {
	h := newHarness(t)
	h.sink.setErr(errSink)
	h.prom.always("up", ok(bodyVectorUp))
	h.p.Update([]Query{{Name: "up", Expr: "up", Interval: fast, Timeout: time.Minute}})
	h.start()

	waitFor(t, "sink errors", func() bool { return h.errorsOf("up", reasonSink) >= 3 })
	if got := h.p.LastWritten("up"); !got.IsZero() {
		t.Errorf("LastWritten = %v after failed writes", got)
	}
	if _, ok := metricValue(t, h.reg, "prometheus_deephaven_bridge_query_last_success_timestamp_seconds", map[string]string{"query": "up"}); ok {
		t.Error("last success set while the sink fails")
	}
	if n := len(h.logs.lines("level=ERROR", "Writing rows failed", "sink unavailable")); n != 1 {
		t.Errorf("%d error lines for the sink, want 1", n)
	}
	// Sink errors do not make the query back off: Prometheus was fine.
	if v := h.errorsOf("up", reasonPrometheus); v != 0 {
		t.Errorf("prometheus errors %v", v)
	}

	h.sink.setErr(nil)
	// The sink has the rows before the poller learns it did.
	waitFor(t, "LastWritten", func() bool { return !h.p.LastWritten("up").IsZero() })
	if got := h.p.LastWritten("up"); !got.Equal(time.UnixMilli(1795575363813)) {
		t.Errorf("LastWritten = %v", got)
	}
	waitFor(t, "recovery log", func() bool { return len(h.logs.lines("level=INFO", "Writing rows recovered")) == 1 })
}

func TestUpdateAddsRemovesAndRestarts(t *testing.T) {
	h := newHarness(t)
	h.prom.always("a", ok(bodyVectorUp))
	h.prom.always("b", ok(bodyScalar))
	h.prom.always("b2", ok(bodyScalar))
	h.p.Update([]Query{{Name: "A", Expr: "a", Interval: fast, Timeout: time.Minute}})
	h.start()
	waitFor(t, "rows of A", func() bool { return len(h.sink.byQuery("A")) >= 1 })

	h.p.Update([]Query{{Name: "A", Expr: "a", Interval: fast, Timeout: time.Minute}, {Name: "B", Expr: "b", Interval: fast, Timeout: time.Minute}})
	waitFor(t, "rows of B", func() bool { return len(h.sink.byQuery("B")) >= 1 })

	// Remove A, change B's expression. A request sent just before Update
	// may still reach the server afterwards, so counts are compared only
	// from a later point on.
	h.p.Update([]Query{{Name: "B", Expr: "b2", Interval: fast, Timeout: time.Minute}})
	waitFor(t, "polls of the changed B", func() bool { return h.prom.count("b2") >= 3 })
	aRequests, bRequests := h.prom.count("a"), h.prom.count("b")
	waitFor(t, "more polls of the changed B", func() bool { return h.prom.count("b2") >= 8 })
	if n := h.prom.count("a"); n != aRequests {
		t.Errorf("removed query polled %d more times", n-aRequests)
	}
	if n := h.prom.count("b"); n != bRequests {
		t.Errorf("old expression of the changed query polled %d more times", n-bRequests)
	}
	if n := h.seriesOf("A"); n != 0 {
		t.Errorf("removed query still has %d series", n)
	}
	if !h.p.LastWritten("A").IsZero() {
		t.Error("removed query still has LastWritten")
	}
	if h.p.LastWritten("B").IsZero() {
		t.Error("changed query lost LastWritten")
	}

	// Removing everything stops everything.
	h.p.Update(nil)
	h.p.Update([]Query{{Name: "C", Expr: "a", Interval: fast, Timeout: time.Minute}})
	waitFor(t, "polls of C", func() bool { return len(h.sink.byQuery("C")) >= 2 })
	b2Requests := h.prom.count("b2")
	waitFor(t, "more polls of C", func() bool { return len(h.sink.byQuery("C")) >= 7 })
	if n := h.prom.count("b2"); n != b2Requests {
		t.Errorf("removed query polled %d more times", n-b2Requests)
	}
}

// Update before Run takes effect when Run starts; after Run returns it
// starts nothing. Run can be called only once.
func TestUpdateBeforeAndAfterRun(t *testing.T) {
	h := newHarness(t)
	h.prom.always("a", ok(bodyVectorUp))
	h.p.Update([]Query{{Name: "A", Expr: "a", Interval: fast, Timeout: time.Minute}})
	if n := h.seriesOf("A"); n == 0 {
		t.Error("no series for a query before Run")
	}
	h.start()
	waitFor(t, "rows of A", func() bool { return len(h.sink.byQuery("A")) >= 1 })
	if err := h.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	n := h.prom.count("a")
	h.p.Update([]Query{{Name: "A", Expr: "a", Interval: time.Millisecond, Timeout: time.Minute}, {Name: "B", Expr: "a", Interval: time.Millisecond, Timeout: time.Minute}})
	if err := h.p.Run(context.Background()); !errors.Is(err, ErrAlreadyRun) {
		t.Errorf("second Run = %v, want ErrAlreadyRun", err)
	}
	time.Sleep(50 * time.Millisecond) // nothing may happen; no condition to wait for
	// One request sent just before Run returned may reach the server late.
	if got := h.prom.count("a"); got > n+1 {
		t.Errorf("%d polls after Run returned", got-n)
	}
}

// Run returns once every goroutine has stopped, cancelling in-flight
// queries and sink writes.
func TestRunReturnsAfterCancel(t *testing.T) {
	h := newHarness(t)
	h.prom.always("hang", reply{block: true})
	h.prom.always("up", ok(bodyVectorUp))
	h.sink.block = true
	h.p.Update([]Query{
		{Name: "hang", Expr: "hang", Interval: fast, Timeout: time.Hour},
		{Name: "up", Expr: "up", Interval: fast, Timeout: time.Minute},
	})
	h.start()
	waitFor(t, "a hanging request and a blocked write", func() bool {
		return h.prom.count("hang") == 1 && h.sink.callCount() >= 1
	})
	if err := h.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	waitFor(t, "the hanging request to be canceled", func() bool { return h.prom.canceledCount("hang") == 1 })
	if v := h.errorsOf("hang", reasonTimeout) + h.errorsOf("hang", reasonPrometheus) + h.errorsOf("up", reasonSink); v != 0 {
		t.Errorf("shutdown counted as %v errors", v)
	}
	if n := len(h.logs.lines("level=ERROR")); n != 0 {
		t.Errorf("shutdown logged errors: %v", h.logs.lines("level=ERROR"))
	}
}

func TestConcurrentUpdates(t *testing.T) {
	h := newHarness(t)
	h.prom.always("a", ok(bodyVectorUp))
	h.start()
	done := make(chan struct{})
	for i := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for j := range 20 {
				qs := []Query{{Name: "A", Expr: "a", Interval: time.Millisecond, Timeout: time.Minute}}
				if (i+j)%2 == 0 {
					qs = append(qs, Query{Name: "B", Expr: "a", Interval: time.Duration(1+j) * time.Millisecond, Timeout: time.Minute})
				}
				h.p.Update(qs)
			}
		}()
	}
	for range 4 {
		<-done
	}
	h.p.Update([]Query{{Name: "A", Expr: "a", Interval: fast, Timeout: time.Minute}})
	before := len(h.sink.byQuery("A"))
	waitFor(t, "rows of A", func() bool { return len(h.sink.byQuery("A")) > before })
	if n := h.seriesOf("B"); n != 0 {
		t.Errorf("removed query B has %d series", n)
	}
}

func TestValidateQueries(t *testing.T) {
	good := Query{Name: "a", Expr: "up", Interval: time.Second}
	if err := ValidateQueries([]Query{good, {Name: "b", Expr: "up", Interval: 1, Timeout: time.Hour}}); err != nil {
		t.Errorf("valid queries: %v", err)
	}
	for _, tc := range []struct {
		q    Query
		want string
	}{
		{Query{Expr: "up", Interval: time.Second}, `query 1 (""): empty name`},
		{Query{Name: "\xff", Expr: "up", Interval: time.Second}, `query 1 ("\xff"): name is not valid UTF-8`},
		{Query{Name: "b", Interval: time.Second}, `query 1 ("b"): empty expression`},
		{Query{Name: "b", Expr: "up"}, `query 1 ("b"): interval 0s must be greater than 0`},
		{Query{Name: "b", Expr: "up", Interval: time.Second, Timeout: -1}, `query 1 ("b"): timeout -1ns must not be negative`},
		{good, `query 1 ("a"): duplicate name`},
	} {
		err := ValidateQueries([]Query{good, tc.q})
		if err == nil || err.Error() != tc.want {
			t.Errorf("ValidateQueries(%+v) = %v, want %q", tc.q, err, tc.want)
		}
	}
}

// Update drops what ValidateQueries rejects, without panicking.
func TestUpdateDropsInvalidQueries(t *testing.T) {
	h := newHarness(t)
	h.prom.always("a", ok(bodyVectorUp))
	h.prom.always("b", ok(bodyScalar))
	h.p.Update([]Query{
		{Name: "\xff", Expr: "a", Interval: fast, Timeout: time.Minute},
		{Name: "A", Expr: "a", Interval: fast, Timeout: time.Minute},
		{Name: "A", Expr: "b", Interval: fast, Timeout: time.Minute},
		{Name: "Z", Expr: "b"},
	})
	h.start()
	waitFor(t, "rows of A", func() bool { return len(h.sink.byQuery("A")) >= 3 })
	if n := h.prom.count("b"); n != 0 {
		t.Errorf("invalid or duplicate query polled %d times", n)
	}
	if n := len(h.logs.lines("level=ERROR", "Ignoring")); n != 3 {
		t.Errorf("%d lines about ignored queries, want 3", n)
	}
}

func TestPromTimeout(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{
		{0, 0},
		{time.Microsecond, 0},
		{1500 * time.Microsecond, time.Millisecond},
		{999 * time.Millisecond, 999 * time.Millisecond},
		{1500 * time.Millisecond, time.Second},
		{90 * time.Second, 90 * time.Second},
		{25*time.Hour + 1500*time.Millisecond, 25*time.Hour + time.Second},
	} {
		got := promTimeout(tc.in)
		if got != tc.want {
			t.Errorf("promTimeout(%v) = %v, want %v", tc.in, got, tc.want)
		}
		if got > 0 {
			// Prometheus parses the timeout parameter with model.ParseDuration.
			if _, err := model.ParseDuration(got.String()); err != nil {
				t.Errorf("Prometheus cannot parse %q: %v", got, err)
			}
		}
	}
}

// Two pollers on one registry share the metrics instead of panicking; a nil
// registry and logger are fine.
func TestRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	p1 := New(nil, nil, nil, reg)
	p2 := New(nil, nil, nil, reg)
	if p1.metrics.requests != p2.metrics.requests {
		t.Error("second poller does not share the registered metrics")
	}
	p := New(nil, nil, nil, nil)
	p.Update([]Query{{Name: "a", Expr: "up", Interval: time.Second}})
	p.Update(nil)
}

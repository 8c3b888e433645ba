package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/sink"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// fakeSink keeps the rows of successful writes in memory. It does not model
// durability or ordering between concurrent writers; the sink packages test
// that.
type fakeSink struct {
	mu    sync.Mutex
	rows  []rows.AlertRow
	notes []rows.NotificationRow
	calls int
	err   error // when set, Write fails and keeps nothing

	// When block is set, Write signals entered and then waits for
	// block to close or ctx to end, whichever is first.
	block   chan struct{}
	entered chan struct{}
}

func (s *fakeSink) WritePair(ctx context.Context, rs []rows.AlertRow, notes []rows.NotificationRow) (sink.Stored, error) {
	s.mu.Lock()
	s.calls++
	block, entered, err := s.block, s.entered, s.err
	s.mu.Unlock()
	if block != nil {
		entered <- struct{}{}
		select {
		case <-block:
		case <-ctx.Done():
			return sink.Stored{}, ctx.Err()
		}
	}
	if err != nil {
		return sink.Stored{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows = append(s.rows, rs...)
	s.notes = append(s.notes, notes...)
	return sink.Stored{First: true, Second: true}, nil
}

func (s *fakeSink) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *fakeSink) snapshot() ([]rows.AlertRow, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rows.AlertRow(nil), s.rows...), s.calls
}

var testNow = time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC)

type testServer struct {
	h      *Handler
	engine *gin.Engine
	reg    *prometheus.Registry
	logs   *syncBuffer
}

func newTestServer(t *testing.T, sink Sink, opts Options) *testServer {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	ts := &testServer{reg: prometheus.NewRegistry(), logs: &syncBuffer{}, engine: gin.New()}
	logger := slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts.h = NewHandler(sink, opts, logger, ts.reg)
	ts.h.Register(ts.engine)
	return ts
}

func (ts *testServer) post(path string, body []byte, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return ts.do(req)
}

func (ts *testServer) do(req *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	ts.engine.ServeHTTP(w, req)
	return w
}

// metric returns the value of a counter or gauge series, or -1 if it is not
// exported.
func (ts *testServer) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func checkResponse(t *testing.T, w *httptest.ResponseRecorder, code int, body string) {
	t.Helper()
	if w.Code != code || w.Body.String() != body {
		t.Errorf("response %d %s\nwant     %d %s", w.Code, w.Body.String(), code, body)
	}
}

func TestHandlerWritesRows(t *testing.T) {
	sink := &fakeSink{}
	ts := newTestServer(t, sink, Options{})

	checkResponse(t, ts.post("/alerts", readTestdata(t, "am025_firing.json")), 200,
		`{"status":"success","alerts":2,"written":2,"duplicates":0}`)
	checkResponse(t, ts.post("/", readTestdata(t, "am025_resolved.json")), 200,
		`{"status":"success","alerts":1,"written":1,"duplicates":0}`)

	got, calls := sink.snapshot()
	if len(got) != 3 || calls != 2 {
		t.Fatalf("sink got %d rows in %d calls, want 3 in 2", len(got), calls)
	}
	for _, r := range got {
		if !r.AlertIngestDateTime.Equal(testNow) {
			t.Errorf("AlertIngestDateTime = %v, want the injected clock's %v", r.AlertIngestDateTime, testNow)
		}
	}
	if got[2].Status != StatusResolved || got[2].AlertName != "DiskFull" {
		t.Errorf("third row: %+v", got[2])
	}

	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"prometheus_deephaven_bridge_webhook_requests_total", []string{"code", "200"}, 2},
		{"prometheus_deephaven_bridge_webhook_requests_total", []string{"code", "400"}, 0},
		{"prometheus_deephaven_bridge_alerts_received_total", []string{"status", "firing"}, 2},
		{"prometheus_deephaven_bridge_alerts_received_total", []string{"status", "resolved"}, 1},
		{"prometheus_deephaven_bridge_alerts_duplicate_total", nil, 0},
		{"prometheus_deephaven_bridge_alerts_truncated_total", nil, 0},
		{"prometheus_deephaven_bridge_webhook_request_duration_seconds", nil, 2},
		{"prometheus_deephaven_bridge_webhook_requests_in_flight", nil, 0},
	} {
		if got := ts.metric(t, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func TestHandlerMetricsInitialised(t *testing.T) {
	ts := newTestServer(t, &fakeSink{}, Options{})
	for _, s := range []string{"firing", "resolved"} {
		if got := ts.metric(t, "prometheus_deephaven_bridge_alerts_received_total", "status", s); got != 0 {
			t.Errorf("alerts_received_total{status=%q} = %v, want 0 before any request", s, got)
		}
	}
}

func TestHandlerDropsRepeats(t *testing.T) {
	sink := &fakeSink{}
	ts := newTestServer(t, sink, Options{})
	body := readTestdata(t, "am025_firing.json")

	checkResponse(t, ts.post("/alerts", body), 200, `{"status":"success","alerts":2,"written":2,"duplicates":0}`)
	for range 4 {
		checkResponse(t, ts.post("/alerts", body), 200, `{"status":"success","alerts":2,"written":0,"duplicates":2}`)
	}
	got, calls := sink.snapshot()
	if len(got) != 2 || calls != 1 {
		t.Errorf("sink got %d rows in %d calls, want each of 2 rows once", len(got), calls)
	}
	if d := ts.metric(t, "prometheus_deephaven_bridge_alerts_duplicate_total"); d != 8 {
		t.Errorf("alerts_duplicate_total = %v, want 8", d)
	}
	if r := ts.metric(t, "prometheus_deephaven_bridge_alerts_received_total", "status", "firing"); r != 10 {
		t.Errorf("alerts_received_total{firing} = %v, want 10", r)
	}
}

func TestHandlerDropsRepeatsWithinRequest(t *testing.T) {
	sink := &fakeSink{}
	ts := newTestServer(t, sink, Options{})
	checkResponse(t, ts.post("/alerts", readTestdata(t, "dup_in_request.json")), 200,
		`{"status":"success","alerts":2,"written":1,"duplicates":1}`)
	got, _ := sink.snapshot()
	if len(got) != 1 || got[0].Annotations != "{}" {
		t.Errorf("sink got %+v, want only the first of the two", got)
	}
}

func TestHandlerEmptyAlerts(t *testing.T) {
	sink := &fakeSink{}
	ts := newTestServer(t, sink, Options{})
	checkResponse(t, ts.post("/alerts", readTestdata(t, "empty_alerts.json")), 200,
		`{"status":"success","alerts":0,"written":0,"duplicates":0}`)
	if _, calls := sink.snapshot(); calls != 0 {
		t.Errorf("sink called %d times for no rows", calls)
	}
}

func TestHandlerRetryAfterSinkFailureIsWritten(t *testing.T) {
	sink := &fakeSink{err: errors.New("deephaven: connection refused")}
	ts := newTestServer(t, sink, Options{})
	body := readTestdata(t, "am025_firing.json")

	w := ts.post("/alerts", body)
	checkResponse(t, w, 503, `{"error":"writing alerts: deephaven: connection refused","status":"error"}`)
	if ra := w.Header().Get("Retry-After"); ra == "" {
		t.Error("503 without Retry-After")
	}
	if !strings.Contains(ts.logs.String(), `level=WARN msg="Writing alerts failed"`) {
		t.Errorf("no Warn log for the failed write:\n%s", ts.logs)
	}

	// Alertmanager retries; the rows must not count as already written.
	sink.setErr(nil)
	checkResponse(t, ts.post("/alerts", body), 200, `{"status":"success","alerts":2,"written":2,"duplicates":0}`)
	checkResponse(t, ts.post("/alerts", body), 200, `{"status":"success","alerts":2,"written":0,"duplicates":2}`)
	if got, calls := sink.snapshot(); len(got) != 2 || calls != 2 {
		t.Errorf("sink got %d rows in %d calls, want 2 in 2", len(got), calls)
	}
	if c := ts.metric(t, "prometheus_deephaven_bridge_webhook_requests_total", "code", "503"); c != 1 {
		t.Errorf("requests_total{code=503} = %v, want 1", c)
	}
}

func TestHandlerSinkTimeout(t *testing.T) {
	sink := &fakeSink{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	ts := newTestServer(t, sink, Options{RequestTimeout: 20 * time.Millisecond})
	checkResponse(t, ts.post("/alerts", readTestdata(t, "am025_firing.json")), 503,
		`{"error":"writing alerts: context deadline exceeded","status":"error"}`)
}

func TestHandlerBadRequest(t *testing.T) {
	sink := &fakeSink{}
	ts := newTestServer(t, sink, Options{})

	checkResponse(t, ts.post("/alerts", readTestdata(t, "bad_startsAt.json")), 400,
		`{"error":"alerts[2].startsAt: parsing time \"x\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"x\" as \"2006\"","status":"error"}`)
	// alerts[0] is valid, alerts[1] is not: nothing is written.
	checkResponse(t, ts.post("/alerts", readTestdata(t, "bad_status.json")), 400,
		`{"error":"alerts[1].status: must be \"firing\" or \"resolved\", got \"pending\"","status":"error"}`)
	checkResponse(t, ts.post("/alerts", readTestdata(t, "invalid_utf8.json")), 400,
		`{"error":"body is not valid UTF-8 (byte offset 104)","status":"error"}`)

	if _, calls := sink.snapshot(); calls != 0 {
		t.Errorf("sink called %d times for invalid requests", calls)
	}
	logs := ts.logs.String()
	if !strings.Contains(logs, `level=DEBUG msg="Rejected webhook request" code=400 err="alerts[2].startsAt: parsing time`) {
		t.Errorf("no Debug log for the rejected request:\n%s", logs)
	}
	if strings.Contains(logs, "level=WARN") || strings.Contains(logs, "level=ERROR") {
		t.Errorf("client errors logged above Debug:\n%s", logs)
	}
	if r := ts.metric(t, "prometheus_deephaven_bridge_alerts_received_total", "status", "firing"); r != 0 {
		t.Errorf("alerts of invalid requests counted as received: %v", r)
	}
}

func TestHandlerContentType(t *testing.T) {
	ts := newTestServer(t, &fakeSink{}, Options{})
	body := readTestdata(t, "am025_firing.json")
	for _, tc := range []struct {
		ct   string
		code int
		body string
	}{
		{"text/plain", 415, `{"error":"unsupported Content-Type \"text/plain\", want application/json","status":"error"}`},
		{"", 415, `{"error":"missing Content-Type, want application/json","status":"error"}`},
		{"application/json; charset=iso-8859-1", 415, `{"error":"unsupported charset \"iso-8859-1\", want utf-8","status":"error"}`},
		{"application/json;;", 415, `{"error":"invalid Content-Type \"application/json;;\": mime: invalid media parameter","status":"error"}`},
		{"application/json", 200, ""},
		{"Application/JSON; charset=UTF-8", 200, ""},
	} {
		w := ts.post("/alerts", body, "Content-Type", tc.ct)
		if w.Code != tc.code || (tc.body != "" && w.Body.String() != tc.body) {
			t.Errorf("Content-Type %q: %d %s, want %d %s", tc.ct, w.Code, w.Body, tc.code, tc.body)
		}
	}
}

// lazyReader yields n bytes of JSON-ish filler without holding them, and
// counts how many were read.
type lazyReader struct {
	n, read int64
}

func (r *lazyReader) Read(p []byte) (int, error) {
	if r.read >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.read)]
	for i := range p {
		p[i] = ' '
	}
	r.read += int64(len(p))
	return len(p), nil
}

func TestHandlerBodyTooLarge(t *testing.T) {
	const size = 50 << 20
	ts := newTestServer(t, &fakeSink{}, Options{MaxBodyBytes: 1 << 20})
	want := `{"error":"request body larger than 1048576 bytes","status":"error"}`

	// With a Content-Length the body is not read at all.
	body := &lazyReader{n: size}
	req := httptest.NewRequest(http.MethodPost, "/alerts", body)
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = size
	checkResponse(t, ts.do(req), 413, want)
	if body.read != 0 {
		t.Errorf("read %d bytes of a body announced as too large", body.read)
	}

	// Without one (chunked), reading stops just past the limit.
	body = &lazyReader{n: size}
	req = httptest.NewRequest(http.MethodPost, "/alerts", body)
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1
	checkResponse(t, ts.do(req), 413, want)
	if body.read > 1<<20+64<<10 {
		t.Errorf("read %d bytes of a 50 MB body with a 1 MiB limit", body.read)
	}
}

func TestHandlerBearerToken(t *testing.T) {
	const token = "s3cret-t0ken"
	sink := &fakeSink{}
	ts := newTestServer(t, sink, Options{BearerToken: token})
	body := readTestdata(t, "am025_firing.json")
	const unauthorized = `{"error":"missing or invalid bearer token","status":"error"}`

	for _, auth := range []string{"", "Bearer wrong-guess", "Basic " + token, "Bearer", token, "Bearer " + token + "x"} {
		w := ts.post("/alerts", body, "Authorization", auth)
		checkResponse(t, w, 401, unauthorized)
		if got := w.Header().Get("WWW-Authenticate"); got != "Bearer" {
			t.Errorf("Authorization %q: WWW-Authenticate %q, want Bearer", auth, got)
		}
	}
	if _, calls := sink.snapshot(); calls != 0 {
		t.Errorf("sink called %d times without a valid token", calls)
	}
	// The scheme is case-insensitive (RFC 9110).
	checkResponse(t, ts.post("/alerts", body, "Authorization", "bearer "+token), 200,
		`{"status":"success","alerts":2,"written":2,"duplicates":0}`)
	// Authentication comes first: an unauthenticated client learns nothing
	// about what else is wrong with its request.
	checkResponse(t, ts.post("/alerts", []byte("junk"), "Content-Type", "text/plain"), 401, unauthorized)

	if logs := ts.logs.String(); strings.Contains(logs, token) || strings.Contains(logs, "wrong-guess") {
		t.Errorf("a token was logged:\n%s", logs)
	}
}

func TestHandlerConcurrencyLimit(t *testing.T) {
	sink := &fakeSink{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	ts := newTestServer(t, sink, Options{MaxConcurrent: 1})
	body := readTestdata(t, "am025_firing.json")

	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- ts.post("/alerts", body) }()
	<-sink.entered // the first request holds the only slot

	if g := ts.metric(t, "prometheus_deephaven_bridge_webhook_requests_in_flight"); g != 1 {
		t.Errorf("requests_in_flight = %v, want 1", g)
	}
	w := ts.post("/alerts", readTestdata(t, "am025_resolved.json"))
	checkResponse(t, w, 503, `{"error":"too many concurrent requests (limit 1), retry later","status":"error"}`)
	if w.Header().Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q, want 1", w.Header().Get("Retry-After"))
	}

	close(sink.block)
	checkResponse(t, <-done, 200, `{"status":"success","alerts":2,"written":2,"duplicates":0}`)
	// The slot is free again.
	checkResponse(t, ts.post("/alerts", readTestdata(t, "am025_resolved.json")), 200,
		`{"status":"success","alerts":1,"written":1,"duplicates":0}`)
	if g := ts.metric(t, "prometheus_deephaven_bridge_webhook_requests_in_flight"); g != 0 {
		t.Errorf("requests_in_flight = %v, want 0", g)
	}
}

func TestHandlerSetOptions(t *testing.T) {
	sink := &fakeSink{}
	ts := newTestServer(t, sink, Options{})
	checkResponse(t, ts.post("/alerts", readTestdata(t, "am025_firing.json")), 200,
		`{"status":"success","alerts":2,"written":2,"duplicates":0}`)

	ts.h.SetOptions(Options{QueryLabel: "job", BearerToken: "t", Now: func() time.Time { return testNow }})
	checkResponse(t, ts.post("/alerts", readTestdata(t, "am025_resolved.json")), 401,
		`{"error":"missing or invalid bearer token","status":"error"}`)
	checkResponse(t, ts.post("/alerts", readTestdata(t, "am025_resolved.json"), "Authorization", "Bearer t"), 200,
		`{"status":"success","alerts":1,"written":1,"duplicates":0}`)
	got, _ := sink.snapshot()
	if got[2].PrometheusQuery != "node" {
		t.Errorf("PrometheusQuery = %q after reload, want the job label", got[2].PrometheusQuery)
	}
	// The dedup cache survived the reload.
	checkResponse(t, ts.post("/alerts", readTestdata(t, "am025_firing.json"), "Authorization", "Bearer t"), 200,
		`{"status":"success","alerts":2,"written":0,"duplicates":2}`)

	ts.h.SetOptions(Options{DedupCapacity: 1})
	if n := ts.h.dedup.Len(); n != 1 {
		t.Errorf("dedup holds %d keys after shrinking to 1", n)
	}
}

// TestHandlerOverHTTP runs one request through a real server, as
// Alertmanager sends it.
func TestHandlerOverHTTP(t *testing.T) {
	sink := &fakeSink{}
	ts := newTestServer(t, sink, Options{})
	srv := httptest.NewServer(ts.engine)
	defer srv.Close()

	req, err := http.NewRequest(http.MethodPost, srv.URL+"/alerts", bytes.NewReader(readTestdata(t, "am034_extra_fields.json")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Alertmanager/0.34.2")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != `{"status":"success","alerts":2,"written":2,"duplicates":0}` {
		t.Errorf("response %d %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if got := ts.metric(t, "prometheus_deephaven_bridge_alerts_truncated_total"); got != 3 {
		t.Errorf("alerts_truncated_total = %v, want 3", got)
	}
}

func TestNewHandlerNilLoggerAndRegistry(t *testing.T) {
	h := NewHandler(&fakeSink{}, Options{}, nil, nil)
	e := gin.New()
	h.Register(e)
	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(readTestdata(t, "am025_firing.json")))
	req.Header.Set("Content-Type", "application/json")
	e.ServeHTTP(w, req)
	if w.Code != 200 {
		t.Errorf("code %d: %s", w.Code, w.Body)
	}
}

// errorBody is the body of a refused request, as the handler writes it.
func errorBody(t *testing.T, msg string) string {
	t.Helper()
	b, err := json.Marshal(gin.H{"status": "error", "error": msg})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandlerGrafana(t *testing.T) {
	sink := &fakeSink{}
	ts := newTestServer(t, sink, Options{})
	checkResponse(t, ts.post("/alerts", readTestdata(t, "grafana_11_firing.json"), "User-Agent", "Grafana"), 200,
		`{"status":"success","alerts":2,"written":2,"duplicates":0}`)
	// Grafana resends the group at every flush: the repeat is not written.
	checkResponse(t, ts.post("/alerts", readTestdata(t, "grafana_11_firing.json")), 200,
		`{"status":"success","alerts":2,"written":0,"duplicates":2}`)
	got, _ := sink.snapshot()
	if len(got) != 2 {
		t.Fatalf("sink got %d rows, want 2", len(got))
	}
	for _, r := range got {
		if r.Source != "grafana" || r.Values != `{B="44.23943737541908", C="1"}` || r.AlertValue == nil || *r.AlertValue != 44.23943737541908 {
			t.Errorf("row: Source %q Values %q AlertValue %s", r.Source, r.Values, fmtValue(r.AlertValue))
		}
	}
	if r := ts.metric(t, "prometheus_deephaven_bridge_alerts_received_total", "status", "firing"); r != 4 {
		t.Errorf("alerts_received_total{firing} = %v, want 4", r)
	}
}

// Hostile or broken Grafana bodies get a 4xx naming the problem, and nothing
// of them is written.
func TestHandlerGrafanaHostile(t *testing.T) {
	sink := &fakeSink{}
	ts := newTestServer(t, sink, Options{})
	// A valueString larger than the body limit (4 MiB by default).
	huge := grafanaBody("null", `"[ var='B' labels={} value=1 ]`+strings.Repeat(" ", 5<<20)+`"`)
	for _, tc := range []struct {
		name string
		body []byte
		code int
		err  string
	}{
		{"values as a string", readTestdata(t, "grafana_values_string.json"), 400, "alerts[0].values: expected object or null, got string"},
		{"values as an array", readTestdata(t, "grafana_values_array.json"), 400, "alerts[0].values: expected object or null, got array"},
		{"values entry a string", readTestdata(t, "grafana_values_entry_string.json"), 400, `alerts[0].values["B"]: expected number, got string`},
		{"NaN as a string", readTestdata(t, "grafana_values_nan_string.json"), 400, `alerts[0].values["B"]: expected number, got string`},
		{"NaN as a bare word", readTestdata(t, "grafana_values_nan_literal.json"), 400, "invalid JSON at byte offset 460: invalid character 'N' looking for beginning of value"},
		{"values entry null", readTestdata(t, "grafana_values_entry_null.json"), 400, `alerts[0].values["B"]: expected number, got null`},
		{"values entry an object", readTestdata(t, "grafana_values_entry_object.json"), 400, `alerts[0].values["B"]: expected number, got object`},
		{"values entry beyond float64", readTestdata(t, "grafana_values_out_of_range.json"), 400, `alerts[0].values["B"]: 1e999 is out of the float64 range`},
		{"values with an empty name", readTestdata(t, "grafana_values_empty_name.json"), 400, "alerts[0].values: empty value name"},
		{"10,000 values", grafanaBody(manyValues(10000), `""`), 400, "alerts[0].values: 10000 entries, more than the limit of 1000"},
		{"10,000 valueString entries", grafanaBody("null", manyValueStringEntries(10000)), 400, "alerts[0].valueString: more than 1000 values, the limit"},
		{"deep nesting inside values", readTestdata(t, "grafana_values_deep_nesting.json"), 400, "JSON nested deeper than 100 levels"},
		{"huge valueString", huge, 413, "request body larger than 4194304 bytes"},
		{"orgId as a string", readTestdata(t, "grafana_orgId_string.json"), 400, "orgId: expected number, got string"},
		{"orgId not an integer", readTestdata(t, "grafana_orgId_float.json"), 400, "orgId: expected an integer, got 1.5"},
		{"title a number", readTestdata(t, "grafana_title_number.json"), 400, "title: expected string, got number"},
		{"invalid UTF-8 in title", readTestdata(t, "grafana_title_invalid_utf8.json"), 400, "body is not valid UTF-8 (byte offset 699)"},
		{"valueString a number", readTestdata(t, "grafana_valueString_number.json"), 400, "alerts[0].valueString: expected string, got number"},
		{"silenceURL an object", readTestdata(t, "grafana_silenceURL_object.json"), 400, "alerts[0].silenceURL: expected string, got object"},
		{"alert missing status", readTestdata(t, "grafana_missing_status.json"), 400, "alerts[0].status: missing"},
		{"version 1 as a number", readTestdata(t, "grafana_version_number.json"), 400, "version: expected string, got number"},
		{"version 2", readTestdata(t, "grafana_version_2.json"), 400, `version: unsupported webhook version "2", want "4" (Alertmanager) or "1" (Grafana)`},
	} {
		checkResponse(t, ts.post("/alerts", tc.body), tc.code, errorBody(t, tc.err))
	}
	if got, calls := sink.snapshot(); len(got) != 0 || calls != 0 {
		t.Errorf("sink got %d rows in %d calls for hostile bodies, want none", len(got), calls)
	}
	if r := ts.metric(t, "prometheus_deephaven_bridge_alerts_received_total", "status", "firing"); r != 0 {
		t.Errorf("alerts of refused requests counted as received: %v", r)
	}
	if logs := ts.logs.String(); strings.Contains(logs, "level=WARN") || strings.Contains(logs, "level=ERROR") {
		t.Errorf("client errors logged above Debug:\n%s", logs)
	}
}

// Grafana's truncatedAlerts (its webhook's Max Alerts setting) counts like
// Alertmanager's.
func TestHandlerGrafanaTruncated(t *testing.T) {
	ts := newTestServer(t, &fakeSink{}, Options{})
	checkResponse(t, ts.post("/alerts", readTestdata(t, "grafana_12_values_null_constructed.json")), 200,
		`{"status":"success","alerts":2,"written":2,"duplicates":0}`)
	checkResponse(t, ts.post("/alerts", readTestdata(t, "am034_extra_fields.json")), 200,
		`{"status":"success","alerts":2,"written":2,"duplicates":0}`)
	if got := ts.metric(t, "prometheus_deephaven_bridge_alerts_truncated_total"); got != 2+3 {
		t.Errorf("alerts_truncated_total = %v, want 5 (2 from Grafana, 3 from Alertmanager)", got)
	}
	if !strings.Contains(ts.logs.String(), `msg="The sender truncated the notification (max_alerts)" group_key=`) {
		t.Errorf("no Debug log for the truncation:\n%s", ts.logs)
	}
}

// partSink stores each part of a write on its own; failFirst/failSecond
// make that part fail once.
type partSink struct {
	mu                    sync.Mutex
	alerts                []rows.AlertRow
	notes                 []rows.NotificationRow
	failFirst, failSecond bool
}

func (s *partSink) WritePair(_ context.Context, a []rows.AlertRow, n []rows.NotificationRow) (sink.Stored, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st sink.Stored
	var err error
	if s.failFirst && len(a) > 0 {
		s.failFirst, err = false, errors.New("alerts table unavailable")
	} else {
		s.alerts, st.First = append(s.alerts, a...), true
	}
	if s.failSecond && len(n) > 0 {
		s.failSecond, err = false, errors.New("notification log unavailable")
	} else {
		s.notes, st.Second = append(s.notes, n...), true
	}
	return st, err
}

// When one part of a request is stored and the other is not, the sender's
// retry writes the missing part and not the stored one again: the
// notification log appends, so a repeat would count a notification twice.
func TestHandlerRetryWritesOnlyTheMissingPart(t *testing.T) {
	body := readTestdata(t, "am025_firing.json")
	for _, c := range []struct {
		name                  string
		failFirst, failSecond bool
	}{{"alerts failed", true, false}, {"notifications failed", false, true}} {
		t.Run(c.name, func(t *testing.T) {
			s := &partSink{failFirst: c.failFirst, failSecond: c.failSecond}
			ts := newTestServer(t, s, Options{})
			ts.h.SetNotificationLog(NewNotificationLog(time.Minute))
			if w := ts.post("/alerts", body); w.Code != 503 {
				t.Fatalf("first try: %d, want 503", w.Code)
			}
			if w := ts.post("/alerts", body); w.Code != 200 {
				t.Fatalf("retry: %d, want 200", w.Code)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(s.alerts) == 0 || len(s.notes) == 0 {
				t.Fatalf("after the retry %d alert rows and %d notification rows, want both", len(s.alerts), len(s.notes))
			}
			if len(s.alerts) != len(s.notes) {
				t.Errorf("%d alert rows, %d notification rows: a part was written twice", len(s.alerts), len(s.notes))
			}
		})
	}
}

// restartingSink stands for Deephaven restarting empty while a request's
// write waits for it: the bridge notices, forgets what it wrote (the
// handler's ForgetWritten), and the write then lands in the new server.
type restartingSink struct {
	partSink
	restart func()
}

func (s *restartingSink) WritePair(ctx context.Context, a []rows.AlertRow, n []rows.NotificationRow) (sink.Stored, error) {
	if s.restart != nil {
		s.restart()
		s.restart = nil
		s.mu.Lock()
		s.alerts = nil // the new server holds nothing
		s.mu.Unlock()
	}
	return s.partSink.WritePair(ctx, a, n)
}

// A repeat notification whose alert the cache calls written, arriving
// while Deephaven restarts empty: its notification's write waits for the
// new server, and the alert row the cache skipped is written too, so the
// repeat restores it (Alertmanager sends no other copy for hours).
func TestHandlerRewritesCachedAlertsWhenDeephavenRestartedMidRequest(t *testing.T) {
	body := readTestdata(t, "am025_firing.json")
	s := &restartingSink{}
	now := testNow
	ts := newTestServer(t, s, Options{Now: func() time.Time { now = now.Add(time.Hour); return now }})
	ts.h.SetNotificationLog(NewNotificationLog(time.Minute)) // posts an hour apart: each a new notification
	if w := ts.post("/alerts", body); w.Code != 200 {
		t.Fatalf("first: %d", w.Code)
	}
	s.mu.Lock()
	n := len(s.alerts)
	s.mu.Unlock()
	s.restart = ts.h.ForgetWritten
	if w := ts.post("/alerts", body); w.Code != 200 {
		t.Fatalf("repeat: %d", w.Code)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.alerts) != n || n == 0 {
		t.Errorf("after the restart the new server holds %d alert rows, want the %d the repeat carries", len(s.alerts), n)
	}
}

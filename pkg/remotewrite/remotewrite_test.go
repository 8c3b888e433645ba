package remotewrite

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/klauspost/compress/snappy"
	writev2 "github.com/prometheus/client_golang/exp/api/remote/genproto/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/protobuf/proto"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/config"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/remotewrite/internal/writev1"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// fakeSink records what it is given. It checks nothing about how rows
// land in Deephaven; the end-to-end test in pkg/app does.
type fakeSink struct {
	mu     sync.Mutex
	rows   []rows.SampleRow
	writes int
	err    error         // returned by Write when set
	block  chan struct{} // Write waits for it when set
}

func (s *fakeSink) Write(ctx context.Context, rs []rows.SampleRow) error {
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.err != nil {
		return s.err
	}
	s.rows = append(s.rows, rs...)
	return nil
}

var (
	t0     = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	ingest = time.Date(2026, 12, 2, 10, 0, 5, 0, time.UTC)
)

func newHandler(t *testing.T, s *fakeSink, opts Options) (*Handler, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	if opts.Now == nil {
		opts.Now = func() time.Time { return ingest }
	}
	return NewHandler(s, opts, nil, reg), reg
}

// series1 is a v1 series with the labels as name, value pairs.
func series1(lv []string, samples ...*writev1.Sample) *writev1.TimeSeries {
	ts := &writev1.TimeSeries{Samples: samples}
	for i := 0; i < len(lv); i += 2 {
		ts.Labels = append(ts.Labels, &writev1.Label{Name: []byte(lv[i]), Value: []byte(lv[i+1])})
	}
	return ts
}

func s1(v float64, at time.Time) *writev1.Sample {
	return &writev1.Sample{Value: v, Timestamp: at.UnixMilli()}
}

func encodeV1(t *testing.T, req *writev1.WriteRequest) []byte {
	t.Helper()
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

// v2req builds a 2.0 request; each series is labels (name, value pairs) and
// samples.
type v2req struct {
	syms writev2.SymbolsTable
	req  writev2.Request
}

func newV2() *v2req { return &v2req{syms: writev2.NewSymbolTable()} }

func (r *v2req) add(lv []string, samples ...*writev2.Sample) *writev2.TimeSeries {
	ts := &writev2.TimeSeries{LabelsRefs: r.syms.SymbolizeLabels(lv, nil), Samples: samples, Metadata: &writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE}}
	r.req.Timeseries = append(r.req.Timeseries, ts)
	return ts
}

func (r *v2req) encode(t *testing.T) []byte {
	t.Helper()
	r.req.Symbols = r.syms.Symbols()
	b, err := r.req.MarshalVT()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

func s2(v float64, at time.Time) *writev2.Sample {
	return &writev2.Sample{Value: v, Timestamp: at.UnixMilli()}
}

const (
	ctV1 = "application/x-protobuf"
	ctV2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
)

func post(h http.Handler, contentType string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func wantCode(t *testing.T, rec *httptest.ResponseRecorder, code int, bodyHas string) {
	t.Helper()
	if rec.Code != code || !strings.Contains(rec.Body.String(), bodyHas) {
		t.Fatalf("got %d %q, want %d with %q", rec.Code, rec.Body.String(), code, bodyHas)
	}
}

func dropped(reg *prometheus.Registry, reason string) float64 {
	return counter(reg, "prometheus_deephaven_bridge_remote_write_samples_dropped_total", "reason", reason)
}

// counter returns the value of a counter (with one label pair, or none).
func counter(reg *prometheus.Registry, name string, lv ...string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(lv); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || l.GetName() == lv[i] && l.GetValue() == lv[i+1]
				}
				if !found {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return math.NaN()
}

func TestV1SamplesBecomeRows(t *testing.T) {
	s := &fakeSink{}
	h, reg := newHandler(t, s, Options{})
	node := []string{"__name__", "node_load1", "instance", "a:9100", "job", "node"}
	req := &writev1.WriteRequest{Timeseries: []*writev1.TimeSeries{
		series1(node, s1(0.5, t0), s1(math.NaN(), t0.Add(time.Second)), s1(math.Inf(1), t0.Add(2*time.Second)),
			s1(math.Float64frombits(staleNaN), t0.Add(3*time.Second)), s1(math.Inf(-1), t0.Add(4*time.Second))),
		// Unsorted, with an empty value: sorted, the empty label left out.
		series1([]string{"le", "0.5", "__name__", "http_request_duration_seconds_bucket", "empty", "", "job", "api"}, s1(3, t0)),
	}}
	rec := post(h, ctV1, encodeV1(t, req))
	wantCode(t, rec, http.StatusNoContent, "")
	if got := rec.Header().Get(headerSamplesWritten); got != "" {
		t.Errorf("1.0 answer carries %s: %s", headerSamplesWritten, got)
	}
	if len(s.rows) != 5 || s.writes != 1 {
		t.Fatalf("%d rows in %d writes, want 5 in 1: %+v", len(s.rows), s.writes, s.rows)
	}
	r := s.rows[0]
	want := rows.SampleRow{PrometheusDateTime: t0, MetricName: "node_load1", SeriesKey: `{instance="a:9100", job="node"}`,
		Labels: `{__name__="node_load1", instance="a:9100", job="node"}`, Value: 0.5, Job: "node", Instance: "a:9100", SampleIngestDateTime: ingest}
	if r != want {
		t.Errorf("row\n got %+v\nwant %+v", r, want)
	}
	for i, v := range []float64{0.5, math.NaN(), math.Inf(1), math.Inf(-1)} {
		if g := s.rows[i].Value; !(g == v || math.IsNaN(g) && math.IsNaN(v)) {
			t.Errorf("row %d: Value %v, want %v", i, g, v)
		}
	}
	if got := s.rows[3].PrometheusDateTime; !got.Equal(t0.Add(4 * time.Second)) {
		t.Errorf("row 3 at %s: the stale marker was not the one left out", got)
	}
	if r := s.rows[4]; r.Labels != `{__name__="http_request_duration_seconds_bucket", job="api", le="0.5"}` || r.SeriesKey != `{job="api", le="0.5"}` || r.Instance != "" {
		t.Errorf("classic histogram bucket row %+v", r)
	}
	if got := dropped(reg, ReasonStale); got != 1 {
		t.Errorf("stale markers dropped = %v, want 1", got)
	}
	for name, want := range map[string]float64{"samples_received_total": 6, "samples_written_total": 5} {
		if got := counter(reg, "prometheus_deephaven_bridge_remote_write_"+name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := counter(reg, "prometheus_deephaven_bridge_remote_write_requests_total", "code", "204"); got != 1 {
		t.Errorf("requests{code=204} = %v", got)
	}
}

// Metadata, exemplars and native histograms are counted and dropped; a
// request of metadata alone (Prometheus sends them every minute) is fine.
func TestV1MetadataExemplarsHistograms(t *testing.T) {
	s := &fakeSink{}
	h, reg := newHandler(t, s, Options{})
	meta := &writev1.WriteRequest{Metadata: []*writev1.MetricMetadata{{Type: writev1.MetricMetadata_GAUGE, MetricFamilyName: []byte("up"), Help: []byte("h\xff")}, {MetricFamilyName: []byte("x")}}}
	wantCode(t, post(h, ctV1, encodeV1(t, meta)), http.StatusNoContent, "")
	if s.writes != 0 {
		t.Errorf("metadata alone made %d writes", s.writes)
	}
	ts := series1([]string{"__name__", "rpc_seconds", "job", "api"}, s1(1, t0))
	ts.Exemplars = []*writev1.Exemplar{{Labels: []*writev1.Label{{Name: []byte("trace_id"), Value: []byte("t")}}, Value: 0.2, Timestamp: t0.UnixMilli()}}
	ts.Histograms = []*writev1.Histogram{{Count: &writev1.Histogram_CountInt{CountInt: 3}, Sum: 1, Timestamp: t0.UnixMilli()}, {Timestamp: t0.Add(time.Second).UnixMilli()}}
	only := series1([]string{"__name__", "native_seconds", "job", "api"})
	only.Histograms = []*writev1.Histogram{{Count: &writev1.Histogram_CountFloat{CountFloat: 2}, Timestamp: t0.UnixMilli()}}
	wantCode(t, post(h, ctV1, encodeV1(t, &writev1.WriteRequest{Timeseries: []*writev1.TimeSeries{ts, only}})), http.StatusNoContent, "")
	if len(s.rows) != 1 || s.rows[0].MetricName != "rpc_seconds" {
		t.Errorf("rows %+v, want the one float sample", s.rows)
	}
	for name, want := range map[string]float64{"metadata_dropped_total": 2, "exemplars_dropped_total": 1, "histograms_dropped_total": 3} {
		if got := counter(reg, "prometheus_deephaven_bridge_remote_write_"+name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

func TestV2SamplesAndWrittenHeaders(t *testing.T) {
	s := &fakeSink{}
	sel, err := config.ParseSelector(`{__name__=~"node_.*"}`)
	if err != nil {
		t.Fatal(err)
	}
	h, reg := newHandler(t, s, Options{Match: [][]*labels.Matcher{sel}})
	r := newV2()
	r.add([]string{"__name__", "node_load1", "instance", "a:9100", "job", "node"}, s2(1.25, t0), s2(math.NaN(), t0.Add(time.Second)), s2(math.Float64frombits(staleNaN), t0.Add(2*time.Second)))
	r.add([]string{"__name__", "go_goroutines", "job", "node"}, s2(7, t0)) // not matched
	hist := r.add([]string{"__name__", "node_native_seconds", "job", "node"})
	hist.Histograms = []*writev2.Histogram{{Count: &writev2.Histogram_CountInt{CountInt: 1}, Timestamp: t0.UnixMilli()}}
	hist.Exemplars = []*writev2.Exemplar{{Value: 1, Timestamp: t0.UnixMilli()}}
	rec := post(h, ctV2, r.encode(t))
	wantCode(t, rec, http.StatusNoContent, "")
	// Stored 2, accepted and dropped on purpose 2 (stale, not matched).
	for hd, want := range map[string]string{headerSamplesWritten: "4", headerHistogramsWritten: "0", headerExemplarsWritten: "0"} {
		if got := rec.Header().Get(hd); got != want {
			t.Errorf("%s: %q, want %q", hd, got, want)
		}
	}
	if len(s.rows) != 2 || s.rows[0].Labels != `{__name__="node_load1", instance="a:9100", job="node"}` || s.rows[0].Value != 1.25 ||
		!s.rows[0].PrometheusDateTime.Equal(t0) || !math.IsNaN(s.rows[1].Value) {
		t.Errorf("rows %+v", s.rows)
	}
	if dropped(reg, ReasonNotMatched) != 1 || dropped(reg, ReasonStale) != 1 {
		t.Errorf("dropped: not_matched %v, stale %v; want 1 and 1", dropped(reg, ReasonNotMatched), dropped(reg, ReasonStale))
	}
}

// A series is kept when it matches all matchers of any one selector.
func TestMatch(t *testing.T) {
	var sels [][]*labels.Matcher
	for _, s := range []string{`{__name__=~"node_cpu.*", job="node"}`, `up`} {
		ms, err := config.ParseSelector(s)
		if err != nil {
			t.Fatal(err)
		}
		sels = append(sels, ms)
	}
	for _, tc := range []struct {
		labels []string
		keep   bool
	}{
		{[]string{"__name__", "node_cpu_seconds_total", "cpu", "0", "job", "node"}, true},
		{[]string{"__name__", "node_cpu_seconds_total", "job", "other"}, false},
		{[]string{"__name__", "node_memory_bytes", "job", "node"}, false},
		{[]string{"__name__", "up", "job", "anything"}, true},
		{[]string{"__name__", "upper", "job", "node"}, false},
	} {
		s := &fakeSink{}
		h, _ := newHandler(t, s, Options{Match: sels})
		wantCode(t, post(h, ctV1, encodeV1(t, &writev1.WriteRequest{Timeseries: []*writev1.TimeSeries{series1(tc.labels, s1(1, t0))}})), http.StatusNoContent, "")
		if got := len(s.rows) == 1; got != tc.keep {
			t.Errorf("%v kept: %v, want %v", tc.labels, got, tc.keep)
		}
	}
}

// A request mixing valid and invalid series stores the valid ones and
// answers 400 naming the problems: Prometheus does not retry a 400, so
// answering it without storing would lose the valid data.
func TestMixedValidAndInvalid(t *testing.T) {
	valid := []string{"__name__", "ok", "job", "j"}
	for _, tc := range []struct {
		name    string
		labels  []string
		samples []*writev1.Sample
		reason  string
		problem string
	}{
		{"no metric name", []string{"job", "j"}, nil, ReasonInvalidLabels, "no metric name"},
		{"empty metric name", []string{"__name__", "", "job", "j"}, nil, ReasonInvalidLabels, "no metric name"},
		{"repeated label", []string{"__name__", "x", "job", "a", "job", "b"}, nil, ReasonInvalidLabels, `label "job" repeated`},
		{"invalid UTF-8 value", []string{"__name__", "x", "job", "\xff"}, nil, ReasonInvalidLabels, "invalid UTF-8"},
		{"empty label name", []string{"__name__", "x", "", "v"}, nil, ReasonInvalidLabels, `invalid label name ""`},
		{"time out of range", []string{"__name__", "x"}, []*writev1.Sample{{Value: 1, Timestamp: math.MaxInt64}}, ReasonInvalidTimestamp, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &fakeSink{}
			h, reg := newHandler(t, s, Options{})
			samples := tc.samples
			if samples == nil {
				samples = []*writev1.Sample{s1(2, t0), s1(3, t0.Add(time.Second))}
			}
			req := &writev1.WriteRequest{Timeseries: []*writev1.TimeSeries{series1(valid, s1(1, t0)), series1(tc.labels, samples...), series1(valid, s1(4, t0.Add(time.Second)))}}
			rec := post(h, ctV1, encodeV1(t, req))
			wantCode(t, rec, http.StatusBadRequest, tc.problem)
			if !strings.Contains(rec.Body.String(), "stored 2 samples") {
				t.Errorf("body %q does not say what was stored", rec.Body.String())
			}
			if len(s.rows) != 2 || s.rows[0].Value != 1 || s.rows[1].Value != 4 {
				t.Errorf("stored %+v, want the two valid samples", s.rows)
			}
			if got := dropped(reg, tc.reason); got != float64(len(samples)) {
				t.Errorf("dropped{%s} = %v, want %d", tc.reason, got, len(samples))
			}
		})
	}
}

func TestV2InvalidSeries(t *testing.T) {
	s := &fakeSink{}
	h, reg := newHandler(t, s, Options{})
	r := newV2()
	r.add([]string{"__name__", "ok", "job", "j"}, s2(1, t0))
	odd := r.add([]string{"__name__", "odd"}, s2(2, t0))
	odd.LabelsRefs = odd.LabelsRefs[:1]
	far := r.add([]string{"__name__", "far"}, s2(3, t0))
	far.LabelsRefs[1] = 999
	r.add([]string{"__name__", "empty"}) // no samples and no histograms
	rec := post(h, ctV2, r.encode(t))
	wantCode(t, rec, http.StatusBadRequest, "odd number of label references")
	for _, want := range []string{"label reference out of range", "no samples and no histograms"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("body %q lacks %q", rec.Body.String(), want)
		}
	}
	if got := rec.Header().Get(headerSamplesWritten); got != "1" {
		t.Errorf("%s = %q, want 1", headerSamplesWritten, got)
	}
	if len(s.rows) != 1 || dropped(reg, ReasonInvalidLabels) != 2 {
		t.Errorf("rows %+v, invalid_labels %v", s.rows, dropped(reg, ReasonInvalidLabels))
	}
}

func TestRefusedRequests(t *testing.T) {
	valid := encodeV1(t, &writev1.WriteRequest{Timeseries: []*writev1.TimeSeries{series1([]string{"__name__", "up"}, s1(1, t0))}})
	for _, tc := range []struct {
		name        string
		contentType string
		encoding    string
		body        []byte
		limit       int64
		code        int
		has         string
	}{
		{"not snappy", ctV1, "", []byte("\xff\xff\xff\xff plain protobuf"), 0, http.StatusBadRequest, "snappy"},
		{"snappy framed format", ctV1, "", append([]byte("\xff\x06\x00\x00sNaPpY"), valid...), 0, http.StatusBadRequest, "snappy"},
		{"not protobuf", ctV1, "", snappy.Encode(nil, []byte("\x0a\xff\xff\xff\xff\x0f")), 0, http.StatusBadRequest, "decode prometheus.WriteRequest"},
		{"v1 body as v2", ctV2, "", snappy.Encode(nil, []byte{0x0a, 0x02, 0x08}), 0, http.StatusBadRequest, "decode io.prometheus.write.v2.Request"},
		{"json", "application/json", "", valid, 0, http.StatusUnsupportedMediaType, "application/x-protobuf"},
		{"unknown message", "application/x-protobuf;proto=io.prometheus.write.v3.Request", "", valid, 0, http.StatusUnsupportedMediaType, "io.prometheus.write.v3.Request"},
		{"gzip", ctV1, "gzip", valid, 0, http.StatusUnsupportedMediaType, "Content-Encoding"},
		{"body over the limit", ctV1, "", valid, int64(len(valid) - 1), http.StatusRequestEntityTooLarge, "larger than"},
		{"decompressed over the limit", ctV1, "", snappy.Encode(nil, make([]byte, 4096)), 1000, http.StatusRequestEntityTooLarge, "decompresses to 4096 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &fakeSink{}
			h, reg := newHandler(t, s, Options{MaxBodyBytes: tc.limit})
			req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			if tc.encoding != "" {
				req.Header.Set("Content-Encoding", tc.encoding)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			wantCode(t, rec, tc.code, tc.has)
			if s.writes != 0 {
				t.Error("a refused request was written")
			}
			if got := counter(reg, "prometheus_deephaven_bridge_remote_write_requests_total", "code", strconv.Itoa(tc.code)); got != 1 {
				t.Errorf("requests{code=%d} = %v", tc.code, got)
			}
		})
	}
}

// Without Content-Length (chunked), the limit holds all the same.
func TestChunkedBodyOverLimit(t *testing.T) {
	h, _ := newHandler(t, &fakeSink{}, Options{MaxBodyBytes: 100})
	req := httptest.NewRequest(http.MethodPost, Path, io.MultiReader(bytes.NewReader(make([]byte, 80)), bytes.NewReader(make([]byte, 80))))
	req.ContentLength = -1
	req.Header.Set("Content-Type", ctV1)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	wantCode(t, rec, http.StatusRequestEntityTooLarge, "larger than 100 bytes")
}

// When the sink cannot store the rows, the answer is 503, which Prometheus
// retries; nothing is counted as written.
func TestSinkErrorIs503(t *testing.T) {
	s := &fakeSink{err: errors.New("deephaven: unavailable")}
	h, reg := newHandler(t, s, Options{})
	r := newV2()
	r.add([]string{"__name__", "up"}, s2(1, t0))
	rec := post(h, ctV2, r.encode(t))
	wantCode(t, rec, http.StatusServiceUnavailable, "deephaven: unavailable")
	if rec.Header().Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if got := rec.Header().Get(headerSamplesWritten); got != "" {
		t.Errorf("a 503 claims %s samples written", got)
	}
	if got := counter(reg, "prometheus_deephaven_bridge_remote_write_samples_written_total"); got != 0 {
		t.Errorf("samples_written_total = %v", got)
	}
}

// The sink's write is bounded by RequestTimeout.
func TestSinkTimeout(t *testing.T) {
	s := &fakeSink{block: make(chan struct{})}
	h, _ := newHandler(t, s, Options{RequestTimeout: 50 * time.Millisecond})
	rec := post(h, ctV1, encodeV1(t, &writev1.WriteRequest{Timeseries: []*writev1.TimeSeries{series1([]string{"__name__", "up"}, s1(1, t0))}}))
	wantCode(t, rec, http.StatusServiceUnavailable, "deadline exceeded")
}

// More concurrent requests than MaxConcurrent get 503 at once.
func TestConcurrencyLimit(t *testing.T) {
	s := &fakeSink{block: make(chan struct{})}
	h, _ := newHandler(t, s, Options{MaxConcurrent: 1})
	body := encodeV1(t, &writev1.WriteRequest{Timeseries: []*writev1.TimeSeries{series1([]string{"__name__", "up"}, s1(1, t0))}})
	done := make(chan int)
	go func() { done <- post(h, ctV1, body).Code }()
	// Wait until the first request holds the only slot.
	for h.inFlight.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	wantCode(t, post(h, ctV1, body), http.StatusServiceUnavailable, "too many concurrent requests")
	close(s.block)
	if code := <-done; code != http.StatusNoContent {
		t.Errorf("first request: %d", code)
	}
}

// The route is POST /api/v1/write; disabled, it answers 404 like a
// Prometheus without its receiver; a reload turns it on and changes the
// selectors.
func TestRegisterAndReload(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	s := &fakeSink{}
	cfg, err := config.Parse([]byte("deephaven: {address: 'localhost:10000'}\nprometheus: {url: 'http://localhost:9090'}\nremote_write: {enabled: false}\n"), "bridge.yml")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := OptionsFromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := newHandler(t, s, opts)
	r := gin.New()
	h.Register(r)
	body := encodeV1(t, &writev1.WriteRequest{Timeseries: []*writev1.TimeSeries{
		series1([]string{"__name__", "up"}, s1(1, t0)), series1([]string{"__name__", "down"}, s1(0, t0))}})
	wantCode(t, post(r, ctV1, body), http.StatusNotFound, "remote_write.enabled")

	cfg.RemoteWrite.Enabled, cfg.RemoteWrite.Match = true, []string{"up"}
	apply, err := h.Reload(cfg)
	if err != nil {
		t.Fatal(err)
	}
	apply()
	wantCode(t, post(r, ctV1, body), http.StatusNoContent, "")
	if len(s.rows) != 1 || s.rows[0].MetricName != "up" {
		t.Errorf("rows %+v, want up only", s.rows)
	}
	cfg.RemoteWrite.Match = []string{"{}"}
	if _, err := h.Reload(cfg); err == nil || !strings.Contains(err.Error(), "remote_write.match[0]") {
		t.Errorf("Reload with an invalid selector: %v", err)
	}
}

// Rows must not point into the request's buffers, which are reused.
func TestDecodeDoesNotAliasInput(t *testing.T) {
	for _, v := range []Version{V1, V2} {
		data := benchV1(3, t0)
		if v == V2 {
			data = benchV2(3, t0)
		}
		c := newConverter(nil, ingest)
		var err error
		if v == V1 {
			err = c.decodeV1(data)
		} else {
			err = c.decodeV2(data)
		}
		if err != nil {
			t.Fatal(err)
		}
		before := c.b.rows[2]
		for i := range data {
			data[i] = 'X'
		}
		if after := c.b.rows[2]; after != before || after.MetricName != "node_cpu_seconds_total" || after.Job != "node" {
			t.Errorf("%s: row changed with the input buffer:\n%+v\n%+v", v, before, after)
		}
	}
}

// A sender that keeps sending bad series is logged at Warn once a minute,
// with the number of requests logged at Debug in between.
func TestWarnLimiter(t *testing.T) {
	var l warnLimiter
	if lvl, n := l.level(); lvl != slog.LevelWarn || n != 0 {
		t.Errorf("first: %v %d", lvl, n)
	}
	for range 3 {
		if lvl, _ := l.level(); lvl != slog.LevelDebug {
			t.Errorf("repeat within a minute: %v", lvl)
		}
	}
	l.last = l.last.Add(-warnInterval)
	if lvl, n := l.level(); lvl != slog.LevelWarn || n != 3 {
		t.Errorf("a minute later: %v %d, want WARN 3", lvl, n)
	}
}

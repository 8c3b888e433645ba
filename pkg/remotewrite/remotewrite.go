// Package remotewrite receives Prometheus's remote write, protocol 1.0 and
// 2.0, on POST /api/v1/write, and hands every float sample, as
// rows.SampleRow, to a Sink: the prometheus_samples table.
//
// # What is kept
//
// Float samples of every series that matches one of the configured
// selectors (all series without any), NaN and ±Inf included; classic
// histograms and summaries are float series (_bucket, _sum, _count) and are
// kept like any other. Not kept, and counted in
// prometheus_deephaven_bridge_remote_write_*_dropped_total:
//
//   - staleness markers: they say that a series ended, they are not
//     values, and in a double column they would be indistinguishable from a
//     real NaN;
//   - native histogram samples: they have no single value, and the table
//     holds one double per row (the poller skips them the same way); a table
//     of their own would be the way to keep them;
//   - exemplars and metric metadata (type, help, unit).
//
// # Status codes
//
// The sender (Prometheus) retries 5xx and, only when told to, 429, and drops
// a batch on any other 4xx; the answers follow from that:
//
//   - 204 once every kept sample is stored: the sink's Write returned, so
//     the rows are in Deephaven;
//   - 400 for a body that is not snappy block-compressed protobuf of the
//     announced message, and for series that break the protocol (no metric
//     name, invalid label names or UTF-8, repeated labels, unknown symbol
//     references, times an Instant cannot hold). Valid series of the same
//     request are stored first: a 400 is never retried, so valid data must
//     not be refused with it. The body names the first few problems;
//   - 404 while remote_write.enabled is false;
//   - 413 for a body, or its decompressed form, over MaxBodyBytes;
//   - 415 for a Content-Type other than application/x-protobuf with the
//     message of 1.0 or 2.0, or a Content-Encoding other than snappy;
//   - 503 with Retry-After when the sink cannot store the rows now (the
//     sender retries the whole request; the table being append-only, rows
//     stored before the failure may then appear twice) or too many requests
//     are being served.
//
// For 2.0, the 204 and 400 answers carry X-Prometheus-Remote-Write-
// Samples-Written, -Histograms-Written and -Exemplars-Written. Samples count
// as written when stored, and also when dropped on purpose (staleness
// markers, series that match no selector): they were accepted, and Prometheus
// logs an error for every batch whose count falls short. Histograms and
// exemplars are never written (0), so a Prometheus that sends them reports
// them as not written, which is true.
//
// # Wire types
//
// 1.0 is described by our own .proto (internal/writev1), written from the
// specification with Prometheus's message names and field numbers and
// compiled with protoc-gen-go; a golden test pins its descriptor. The
// receiver reads 1.0 bodies with protowire by those field numbers (see
// decodeV1 for why), and the generated types serve the tests, the fuzz
// test that holds the two decoders to the same results, and the benchmark.
// 2.0 is decoded with the generated types of
// github.com/prometheus/client_golang/exp (api/remote/genproto/v2), the ones
// Prometheus's own receiver uses, so a second registration of
// io.prometheus.write.v2 can never collide with them. The receiver as a
// whole adds 360 KiB to the binary (245 KiB stripped) and one module, exp,
// whose go.sum lines were already there. Importing Prometheus's prompb
// instead would have added gogo/protobuf and 1.8 MiB (1.3 MiB stripped) for
// the types alone. exp's write handler is not used: its body limit is fixed
// at 32 MiB and its storage interface is unexported and experimental, while
// the HTTP side here is small and follows the webhook's.
//
// # Concurrency and shutdown
//
// A Handler is safe for concurrent use; SetOptions may be called while
// requests are served, and a request finishes with the options it started
// with. Requests are served from their HTTP goroutines and write to the
// sink directly; Run only waits. Requests answered after Run returned still
// write through the sink, which the bridge stops after its sources.
package remotewrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/sink"
)

// Path is where Prometheus's own receiver listens, and so this one.
const Path = "/api/v1/write"

// Sink receives the rows of one request (see sink.Writer). Its Write returns
// nil only once the rows are stored; only then does the sender get its 204.
// The handler never passes an empty slice.
type Sink = sink.Writer[rows.SampleRow]

// Options configure a Handler. Zero (or negative) values get the defaults
// noted on each field.
type Options struct {
	// Disabled makes the handler answer 404, as a Prometheus without its
	// receiver does.
	Disabled bool
	// Match keeps the series that match all matchers of at least one
	// selector; none keeps every series.
	Match [][]*labels.Matcher
	// MaxBodyBytes bounds a body, compressed and decompressed; larger
	// bodies get 413. Default 32 MiB.
	MaxBodyBytes int64
	// MaxConcurrent bounds the requests served at once, and with it memory;
	// more get 503. Default 64, above the 50 shards of a Prometheus.
	MaxConcurrent int
	// RequestTimeout bounds the sink write of one request. Default 30s,
	// Prometheus's remote_timeout.
	RequestTimeout time.Duration
	// Now is the clock for SampleIngestDateTime. Default time.Now.
	Now func() time.Time
}

// Option defaults.
const (
	DefaultMaxBodyBytes   = 32 << 20
	DefaultMaxConcurrent  = 64
	DefaultRequestTimeout = 30 * time.Second
)

func (o Options) withDefaults() Options {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// retryAfter is the Retry-After of a 503, in seconds; Prometheus honours it
// (since 2.48) instead of its own backoff.
const retryAfter = "1"

// The 2.0 response headers.
const (
	headerSamplesWritten    = "X-Prometheus-Remote-Write-Samples-Written"
	headerHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	headerExemplarsWritten  = "X-Prometheus-Remote-Write-Exemplars-Written"
)

// Handler serves remote write requests.
type Handler struct {
	sink   Sink
	logger *slog.Logger

	opts       atomic.Pointer[Options]
	inFlight   atomic.Int64
	invalidLog warnLimiter
	// bufs holds *[]byte for bodies and their decompressed form: they are
	// only read while a request is decoded, and the rows own copies.
	bufs sync.Pool

	requests   *prometheus.CounterVec
	received   prometheus.Counter
	written    prometheus.Counter
	dropped    *prometheus.CounterVec
	histograms prometheus.Counter
	exemplars  prometheus.Counter
	metadata   prometheus.Counter
	decodeDur  prometheus.Histogram
	requestDur prometheus.Histogram
}

// NewHandler returns a Handler writing to sink, which must not be nil. A nil
// logger discards logs; a nil reg registers no metrics. Like promauto, it
// panics if the metrics are already registered on reg: that is a wiring bug,
// not a runtime condition.
func NewHandler(sink Sink, opts Options, logger *slog.Logger, reg prometheus.Registerer) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := promauto.With(reg)
	const ns = "prometheus_deephaven_bridge_remote_write_"
	h := &Handler{
		sink:   sink,
		logger: logger,
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "requests_total",
			Help: "Remote write requests served, by HTTP status code.",
		}, []string{"code"}),
		received: f.NewCounter(prometheus.CounterOpts{
			Name: ns + "samples_received_total",
			Help: "Float samples in decoded remote write requests, retries included.",
		}),
		written: f.NewCounter(prometheus.CounterOpts{
			Name: ns + "samples_written_total",
			Help: "Float samples stored as rows of the samples table.",
		}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "samples_dropped_total",
			Help: "Float samples received and not stored, by reason: stale_marker, not_matched (remote_write.match), invalid_labels and invalid_timestamp (both answered 400).",
		}, []string{"reason"}),
		histograms: f.NewCounter(prometheus.CounterOpts{
			Name: ns + "histograms_dropped_total",
			Help: "Native histogram samples received; the samples table holds floats only, so none is stored.",
		}),
		exemplars: f.NewCounter(prometheus.CounterOpts{
			Name: ns + "exemplars_dropped_total",
			Help: "Exemplars received; none is stored.",
		}),
		metadata: f.NewCounter(prometheus.CounterOpts{
			Name: ns + "metadata_dropped_total",
			Help: "Metric metadata entries received (remote write 1.0); none is stored.",
		}),
		decodeDur: f.NewHistogram(prometheus.HistogramOpts{
			Name:    ns + "decode_duration_seconds",
			Help:    "Time to decompress and decode a request body into rows.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
		}),
		requestDur: f.NewHistogram(prometheus.HistogramOpts{
			Name:    ns + "request_duration_seconds",
			Help:    "Time to serve a remote write request, sink write included.",
			Buckets: prometheus.DefBuckets,
		}),
	}
	// Export every series from the start, so that rate() and absent() work
	// before the first request of a kind arrives.
	for _, r := range dropReasons {
		h.dropped.WithLabelValues(r)
	}
	for _, code := range []int{http.StatusNoContent, http.StatusBadRequest, http.StatusNotFound,
		http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusServiceUnavailable} {
		h.requests.WithLabelValues(strconv.Itoa(code))
	}
	h.SetOptions(opts)
	return h
}

// SetOptions replaces the options, e.g. on a config reload. Requests being
// served finish with the options they started with.
func (h *Handler) SetOptions(opts Options) {
	opts = opts.withDefaults()
	h.opts.Store(&opts)
}

// Register routes POST /api/v1/write to the handler.
func (h *Handler) Register(r gin.IRoutes) {
	r.POST(Path, h.Handle)
}

// Handle serves one remote write request; it is a gin.HandlerFunc.
func (h *Handler) Handle(c *gin.Context) { h.ServeHTTP(c.Writer, c.Request) }

// ServeHTTP serves one remote write request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := h.serve(w, r)
	h.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	h.requestDur.Observe(time.Since(start).Seconds())
}

// serve does the work of Handle and returns the status code it sent.
func (h *Handler) serve(w http.ResponseWriter, req *http.Request) int {
	opts := h.opts.Load()
	ingest := opts.Now().UTC()
	if opts.Disabled {
		return h.reject(w, req, http.StatusNotFound, "the remote write receiver is disabled (remote_write.enabled)")
	}
	version, err := negotiate(req.Header.Get("Content-Type"), req.Header.Get("Content-Encoding"))
	if err != nil {
		return h.reject(w, req, http.StatusUnsupportedMediaType, err.Error())
	}

	// The limit bounds memory (MaxConcurrent × 2 × MaxBodyBytes) and the
	// load on the sink. Prometheus retries the 503.
	if n := h.inFlight.Add(1); n > int64(opts.MaxConcurrent) {
		h.inFlight.Add(-1)
		w.Header().Set("Retry-After", retryAfter)
		return h.reject(w, req, http.StatusServiceUnavailable,
			fmt.Sprintf("too many concurrent requests (limit %d), retry later", opts.MaxConcurrent))
	}
	defer h.inFlight.Add(-1)

	tooLarge := fmt.Sprintf("request body larger than %d bytes", opts.MaxBodyBytes)
	if req.ContentLength > opts.MaxBodyBytes {
		return h.reject(w, req, http.StatusRequestEntityTooLarge, tooLarge)
	}
	bodyBuf, dataBuf := h.buffer(), h.buffer()
	defer h.release(bodyBuf)
	defer h.release(dataBuf)
	// MaxBytesReader stops reading at the limit, whatever Content-Length
	// claimed (or with chunked encoding, where there is none).
	body := bytes.NewBuffer((*bodyBuf)[:0])
	_, err = body.ReadFrom(http.MaxBytesReader(w, req.Body, opts.MaxBodyBytes))
	*bodyBuf = body.Bytes()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return h.reject(w, req, http.StatusRequestEntityTooLarge, tooLarge)
		}
		return h.reject(w, req, http.StatusBadRequest, fmt.Sprintf("reading request body: %v", err))
	}

	start := time.Now()
	data, err := decompress(*dataBuf, body.Bytes(), opts.MaxBodyBytes)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return h.reject(w, req, http.StatusRequestEntityTooLarge, err.Error())
		}
		return h.reject(w, req, http.StatusBadRequest, err.Error())
	}
	*dataBuf = data
	conv := newConverter(opts.Match, ingest)
	if version == V2 {
		err = conv.decodeV2(data)
	} else {
		err = conv.decodeV1(data)
	}
	if err != nil {
		return h.reject(w, req, http.StatusBadRequest, err.Error())
	}
	h.decodeDur.Observe(time.Since(start).Seconds())
	b := conv.b
	h.count(b)

	if len(b.rows) > 0 {
		ctx, cancel := context.WithTimeout(req.Context(), opts.RequestTimeout)
		err := h.sink.Write(ctx, b.rows)
		cancel()
		if err != nil {
			// Debug: the sink logs its failures once per change of error,
			// and the sender retries this request many times.
			h.logger.Debug("Writing remote-written samples failed; the sender retries", "samples", len(b.rows), "err", err)
			w.Header().Set("Retry-After", retryAfter)
			return respond(w, http.StatusServiceUnavailable, fmt.Sprintf("writing samples: %v", err))
		}
		h.written.Add(float64(len(b.rows)))
	}
	if version == V2 {
		accepted := len(b.rows) + b.dropped[ReasonStale] + b.dropped[ReasonNotMatched]
		hd := w.Header()
		hd.Set(headerSamplesWritten, strconv.Itoa(accepted))
		hd.Set(headerHistogramsWritten, "0")
		hd.Set(headerExemplarsWritten, "0")
	}
	if len(b.problems) > 0 {
		msg := fmt.Sprintf("stored %d samples; refused %d invalid series and %d samples with invalid timestamps: %s",
			len(b.rows), b.invalid, b.dropped[ReasonInvalidTimestamp], strings.Join(b.problems, "; "))
		if more := b.invalid + b.dropped[ReasonInvalidTimestamp] - len(b.problems); more > 0 {
			msg += fmt.Sprintf("; and %d more", more)
		}
		// Warn, not Debug: the sender drops what it is refused, so this is
		// data lost, and its operator needs to know why; but once a
		// minute, as a sender that sends bad series sends them again.
		level, suppressed := h.invalidLog.level()
		h.logger.Log(req.Context(), level, "Refused invalid series in a remote write request; stored the valid ones",
			"version", version, "remote", req.RemoteAddr, "user_agent", req.UserAgent(),
			"stored", len(b.rows), "invalid_series", b.invalid, "invalid_timestamps", b.dropped[ReasonInvalidTimestamp],
			"first", b.problems[0], "similar_requests_not_logged", suppressed)
		return respond(w, http.StatusBadRequest, msg)
	}
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

// warnLimiter says at which level to log a repeated problem: Warn at most
// once per interval, Debug in between.
type warnLimiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

const warnInterval = time.Minute

// level returns the level of the next log line and how many lines were
// logged at Debug since the last Warn.
func (l *warnLimiter) level() (slog.Level, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); now.Sub(l.last) >= warnInterval {
		n := l.suppressed
		l.last, l.suppressed = now, 0
		return slog.LevelWarn, n
	}
	l.suppressed++
	return slog.LevelDebug, 0
}

// count adds what a request held to the metrics.
func (h *Handler) count(b *batch) {
	h.received.Add(float64(b.received))
	for reason, n := range b.dropped {
		h.dropped.WithLabelValues(reason).Add(float64(n))
	}
	h.histograms.Add(float64(b.histograms))
	h.exemplars.Add(float64(b.exemplars))
	h.metadata.Add(float64(b.metadata))
}

// reject answers a request the handler refuses without writing anything.
// It logs at Debug only, so that a misbehaving client cannot flood the log;
// the code label of the requests counter shows it.
func (h *Handler) reject(w http.ResponseWriter, req *http.Request, code int, msg string) int {
	h.logger.Debug("Rejected remote write request", "code", code, "err", msg,
		"remote", req.RemoteAddr, "user_agent", req.UserAgent())
	return respond(w, code, msg)
}

// respond writes a plain-text error, as Prometheus's own receiver does.
func respond(w http.ResponseWriter, code int, msg string) int {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
	return code
}

// maxPooled bounds the buffers kept for reuse, so that one huge request
// does not pin its memory.
const maxPooled = 4 << 20

func (h *Handler) buffer() *[]byte {
	if b, ok := h.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 64<<10)
	return &b
}

func (h *Handler) release(b *[]byte) {
	if cap(*b) <= maxPooled {
		*b = (*b)[:0]
		h.bufs.Put(b)
	}
}

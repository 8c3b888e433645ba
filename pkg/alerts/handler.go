// Package alerts receives webhook notifications from Alertmanager and from
// Grafana-managed alerting on one endpoint, and hands their alerts, as
// rows.AlertRow, to a Sink.
//
// The payload's version tells them apart: "4" (or none) is Alertmanager's,
// "1" is Grafana's, which adds its own fields to Alertmanager's; any other
// version is refused. Grafana's alerts also carry the values of the rule's
// queries and expressions by ref ID (the Values column), and the one that
// fed the rule's condition becomes the AlertValue column by a documented
// rule: the annotation deephaven_value_ref when it names one, else a guess
// made for Grafana's default rule layout (query A, reduce B, threshold C
// picks B); see chooseValue.
//
// A request is all-or-nothing: it is decoded and validated completely
// (Decode, in one pass over the body with a JSON scanner of its own, as
// strict as encoding/json), mapped to rows (Message.Rows), stripped of rows
// already written (Dedup), and only then written. The status code tells the
// sender what to do: 200 when the rows are durable, 4xx for a request that
// can never succeed (Alertmanager drops it), and 503 for a transient failure
// (Alertmanager retries with backoff until its flush times out). Grafana
// retries neither: it sends the group again at its next flush
// (group_interval) if it still has firing alerts.
package alerts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/sink"
)

// Sink receives the rows of one webhook request: its new alerts and its
// notifications (see sink.PairWriter). Its WritePair returns nil only once
// the rows are durable (in Deephaven, in the journal, or in Kafka): only
// then does the sender get its 2xx.
type Sink = sink.PairWriter[rows.AlertRow, rows.NotificationRow]

// Options configure a Handler. Zero (or negative) values get the defaults
// noted on each field.
type Options struct {
	// QueryLabel is the alert label naming the polled PromQL query the alert
	// belongs to; alerts without it use their alertname. Default
	// "prometheus_query".
	QueryLabel string
	// SeverityLabel is the alert label copied to the Severity column.
	// Default "severity".
	SeverityLabel string
	// MaxBodyBytes bounds the request body; larger bodies get 413. Default
	// 4 MiB.
	MaxBodyBytes int64
	// MaxAlertsPerRequest bounds the alerts of one notification; more get
	// 400. Set Alertmanager's max_alerts (a Grafana webhook's Max Alerts)
	// at or below it, since neither retries a 4xx. Default 1000.
	MaxAlertsPerRequest int
	// MaxLabelsPerAlert bounds the labels, and separately the annotations
	// and Grafana's values, of one alert. Default 1000.
	MaxLabelsPerAlert int
	// MaxConcurrent bounds the requests served at once; more get 503 with
	// Retry-After. Default 64.
	MaxConcurrent int
	// RequestTimeout bounds the sink write of one request. Default 30s.
	RequestTimeout time.Duration
	// DedupCapacity is the number of alert keys remembered as written.
	// Default 100000.
	DedupCapacity int
	// BearerToken, when not empty, must be sent as "Authorization: Bearer
	// <token>" (Alertmanager's http_config.authorization.credentials).
	BearerToken string
	// JoinLabels are the join labels of each configured query, by name: an
	// alert naming the query (QueryLabel) is keyed on them. Queries missing
	// here use rows.DefaultJoinLabels.
	JoinLabels map[string][]string
	// Resolver, when set, finds the rule-derived query of alerts that name
	// no configured query; see Resolver.
	Resolver Resolver
	// Now is the clock for AlertIngestDateTime. Default time.Now.
	Now func() time.Time
}

// Option defaults.
const (
	DefaultQueryLabel          = "prometheus_query"
	DefaultSeverityLabel       = "severity"
	DefaultMaxBodyBytes        = 4 << 20
	DefaultMaxAlertsPerRequest = 1000
	DefaultMaxLabelsPerAlert   = 1000
	DefaultMaxConcurrent       = 64
	DefaultRequestTimeout      = 30 * time.Second
	DefaultDedupCapacity       = 100000
)

func (o Options) withDefaults() Options {
	if o.QueryLabel == "" {
		o.QueryLabel = DefaultQueryLabel
	}
	if o.SeverityLabel == "" {
		o.SeverityLabel = DefaultSeverityLabel
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxAlertsPerRequest <= 0 {
		o.MaxAlertsPerRequest = DefaultMaxAlertsPerRequest
	}
	if o.MaxLabelsPerAlert <= 0 {
		o.MaxLabelsPerAlert = DefaultMaxLabelsPerAlert
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.DedupCapacity <= 0 {
		o.DedupCapacity = DefaultDedupCapacity
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// retryAfter is the Retry-After of a 503, in seconds. Alertmanager ignores it
// and uses its own backoff (from 500 ms); other clients get a hint.
const retryAfter = "1"

// Handler serves Alertmanager and Grafana webhook requests. It is safe for
// concurrent use; SetOptions may be called while requests are served.
type Handler struct {
	sink   Sink
	logger *slog.Logger
	dedup  *Dedup

	optsMu   sync.Mutex // serialises SetOptions
	opts     atomic.Pointer[Options]
	notes    atomic.Pointer[NotificationLog]
	inFlight atomic.Int64
	// bodies holds request body buffers for reuse (*bytes.Buffer): reading
	// each body into a fresh, doubling slice was a tenth of the webhook's
	// allocations. Decode copies what it keeps, so a buffer is free again
	// once it returns.
	bodies sync.Pool

	requests   *prometheus.CounterVec
	received   *prometheus.CounterVec
	duplicates prometheus.Counter
	truncated  prometheus.Counter
	duration   prometheus.Histogram
	inFlightG  prometheus.Gauge
}

// NewHandler returns a Handler writing to sink, which must not be nil. A nil
// logger discards logs; a nil reg registers no metrics. Like promauto, it
// panics if the metrics are already registered on reg: that is a wiring bug,
// not a runtime condition.
func NewHandler(sink Sink, opts Options, logger *slog.Logger, reg prometheus.Registerer) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	f := promauto.With(reg)
	h := &Handler{
		sink:   sink,
		logger: logger,
		dedup:  NewDedup(opts.DedupCapacity),
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_webhook_requests_total",
			Help: "Webhook requests served, by HTTP status code.",
		}, []string{"code"}),
		received: f.NewCounterVec(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_alerts_received_total",
			Help: "Alerts in valid webhook requests, by status, repeats and retries included.",
		}, []string{"status"}),
		duplicates: f.NewCounter(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_alerts_duplicate_total",
			Help: "Alerts not written because the same alert event was already written or appeared earlier in the same request.",
		}),
		truncated: f.NewCounter(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_alerts_truncated_total",
			Help: "Alerts the sender reported as dropped from notifications (Alertmanager's max_alerts, Grafana's Max Alerts).",
		}),
		duration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "prometheus_deephaven_bridge_webhook_request_duration_seconds",
			Help:    "Time to serve a webhook request, sink write included.",
			Buckets: prometheus.DefBuckets,
		}),
		inFlightG: f.NewGauge(prometheus.GaugeOpts{
			Name: "prometheus_deephaven_bridge_webhook_requests_in_flight",
			Help: "Webhook requests being served, not counting those refused by the concurrency limit.",
		}),
	}
	// Export every series from the start, so that rate() and absent() work
	// before the first alert of a kind arrives.
	for _, s := range []string{StatusFiring, StatusResolved} {
		h.received.WithLabelValues(s)
	}
	for _, code := range []int{http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized,
		http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusServiceUnavailable} {
		h.requests.WithLabelValues(strconv.Itoa(code))
	}
	h.opts.Store(&opts)
	return h
}

// SetOptions replaces the options, e.g. on a config reload. Requests already
// being served finish with the options they started with; new limits (such
// as MaxConcurrent) apply to the next request. The dedup cache
// keeps its keys; a smaller DedupCapacity evicts the least recently used.
func (h *Handler) SetOptions(opts Options) {
	opts = opts.withDefaults()
	h.optsMu.Lock()
	defer h.optsMu.Unlock()
	h.opts.Store(&opts)
	h.dedup.SetCapacity(opts.DedupCapacity)
}

// SetNotificationLog makes the handler log every notification of every
// alert in l (prometheus_alert_notifications); nil stops it. A request is
// answered 2xx only once its notifications are written too.
func (h *Handler) SetNotificationLog(l *NotificationLog) { h.notes.Store(l) }

// APIRows maps alerts read from Alertmanager's API (all firing, sent to
// receiver) into rows as a webhook notification of them would be, so that
// they join their metrics alike, with Source rows.SourceAPI.
func (h *Handler) APIRows(ctx context.Context, as []Alert, receiver string, at time.Time) []rows.AlertRow {
	opts := h.opts.Load()
	m := &Message{Receiver: receiver, Alerts: as}
	rs := m.Rows(ctx, at, *opts)
	for i := range rs {
		rs[i].Source = rows.SourceAPI
	}
	return rs
}

// ForgetWritten empties the dedup cache, so that repeats of alerts written
// before are written again: call it when Deephaven came back without the
// rows the handler wrote (without a journal nothing else would restore
// them). Keys of requests in flight are not remembered either.
func (h *Handler) ForgetWritten() { h.dedup.Reset() }

// Register routes POST /alerts and POST / to the handler.
func (h *Handler) Register(r gin.IRoutes) {
	r.POST("/alerts", h.Handle)
	r.POST("/", h.Handle)
}

// Handle serves one webhook request; it is a gin.HandlerFunc.
func (h *Handler) Handle(c *gin.Context) {
	start := time.Now()
	code := h.serve(c)
	h.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	h.duration.Observe(time.Since(start).Seconds())
}

// result is the body of a 200 response.
type result struct {
	Status     string `json:"status"`
	Alerts     int    `json:"alerts"`
	Written    int    `json:"written"`
	Duplicates int    `json:"duplicates"`
}

// serve does the work of Handle and returns the status code it sent.
func (h *Handler) serve(c *gin.Context) int {
	opts := h.opts.Load()
	receivedAt := opts.Now().UTC()
	req := c.Request

	// Authenticate first, so that unauthenticated clients learn nothing else.
	if opts.BearerToken != "" && !bearerOK(req.Header.Get("Authorization"), opts.BearerToken) {
		c.Header("WWW-Authenticate", "Bearer")
		return h.reject(c, http.StatusUnauthorized, "missing or invalid bearer token")
	}
	if err := checkContentType(req.Header.Get("Content-Type")); err != nil {
		return h.reject(c, http.StatusUnsupportedMediaType, err.Error())
	}

	// The limit bounds memory (MaxConcurrent × MaxBodyBytes) and the load on
	// the sink. 503 makes Alertmanager retry later.
	if n := h.inFlight.Add(1); n > int64(opts.MaxConcurrent) {
		h.inFlight.Add(-1)
		// Logged at Debug like client errors: under overload a log line per
		// refused request would add to the load; the code="503" counter shows it.
		c.Header("Retry-After", retryAfter)
		return h.reject(c, http.StatusServiceUnavailable,
			fmt.Sprintf("too many concurrent requests (limit %d), retry later", opts.MaxConcurrent))
	}
	h.inFlightG.Inc()
	defer func() {
		h.inFlight.Add(-1)
		h.inFlightG.Dec()
	}()

	tooLarge := fmt.Sprintf("request body larger than %d bytes", opts.MaxBodyBytes)
	if req.ContentLength > opts.MaxBodyBytes {
		return h.reject(c, http.StatusRequestEntityTooLarge, tooLarge)
	}
	// MaxBytesReader stops reading at the limit, whatever Content-Length
	// claimed (or with chunked encoding, where there is none).
	buf, _ := h.bodies.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer h.putBody(buf)
	buf.Reset()
	if req.ContentLength > 0 {
		buf.Grow(int(req.ContentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(c.Writer, req.Body, opts.MaxBodyBytes))
	body := buf.Bytes()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return h.reject(c, http.StatusRequestEntityTooLarge, tooLarge)
		}
		return h.reject(c, http.StatusBadRequest, fmt.Sprintf("reading request body: %v", err))
	}

	msg, err := Decode(body, *opts)
	if err != nil {
		return h.reject(c, http.StatusBadRequest, err.Error())
	}
	log := h.logger.With("group_key", msg.GroupKey, "receiver", msg.Receiver)
	for _, a := range msg.Alerts {
		h.received.WithLabelValues(a.Status).Inc()
	}
	if msg.TruncatedAlerts > 0 {
		h.truncated.Add(float64(msg.TruncatedAlerts))
		log.Debug("The sender truncated the notification (max_alerts)", "truncated", msg.TruncatedAlerts)
	}

	all := msg.Rows(req.Context(), receivedAt, *opts)
	// The cache's epoch before it is asked: see the rewrite below.
	epoch := h.dedup.Epoch()
	fresh := make([]rows.AlertRow, 0, len(all))
	ids := make([]keyID, 0, len(all)) // of fresh: each key is hashed once
	var cached []rows.AlertRow        // skipped because the cache says written
	var cachedIDs []keyID
	inRequest := make(map[keyID]struct{}, len(all))
	for _, r := range all {
		id := h.dedup.id(r.Key())
		if _, dup := inRequest[id]; dup {
			continue
		}
		inRequest[id] = struct{}{}
		if h.dedup.seenID(id) {
			cached, cachedIDs = append(cached, r), append(cachedIDs, id)
			continue
		}
		fresh = append(fresh, r)
		ids = append(ids, id)
	}
	dups := len(all) - len(fresh)
	h.duplicates.Add(float64(dups))

	// The alerts and their notifications go to two tables, written together
	// (in direct mode in the same batch, so that the requests answered
	// together come back together). What is stored is marked, and only
	// that, so a retry writes what failed.
	ctx, cancel := context.WithTimeout(req.Context(), opts.RequestTimeout)
	defer cancel()
	var notes Notes
	noteLog := h.notes.Load()
	if noteLog != nil {
		// Right after a start the log first learns what the last process
		// wrote, so that a retry of a request it died answering is not
		// logged twice.
		if err := noteLog.Wait(ctx); err != nil {
			c.Header("Retry-After", retryAfter)
			return h.respondError(c, http.StatusServiceUnavailable, "reading back the notifications logged before the restart: not done yet, retry later")
		}
		notes = noteLog.Pending(all, receivedAt)
	}
	if len(fresh) > 0 || len(notes.Rows) > 0 {
		stored, err := h.sink.WritePair(ctx, fresh, notes.Rows)
		if stored.First {
			h.dedup.addSinceIDs(epoch, ids)
		}
		if noteLog != nil && stored.Second {
			noteLog.Written(notes)
		}
		if err == nil && len(cached) > 0 && h.dedup.Epoch() != epoch {
			// Deephaven came back without the bridge's rows while this
			// request was on its way (the write waited for the new
			// server): the rows the cache called written may be gone
			// with the old one. Write them too; the table is key-backed.
			again := h.dedup.Epoch()
			var st sink.Stored
			if st, err = h.sink.WritePair(ctx, cached, nil); st.First {
				h.dedup.addSinceIDs(again, cachedIDs)
			}
		}
		cancel()
		if err != nil {
			log.Warn("Writing alerts failed", "alerts", len(fresh), "notifications", len(notes.Rows), "err", err)
			c.Header("Retry-After", retryAfter)
			return h.respondError(c, http.StatusServiceUnavailable, fmt.Sprintf("writing alerts: %v", err))
		}
	}
	log.Debug("Webhook request served", "alerts", len(all), "written", len(fresh), "duplicates", dups)
	c.JSON(http.StatusOK, result{Status: "success", Alerts: len(all), Written: len(fresh), Duplicates: dups})
	return http.StatusOK
}

// reject answers a request the handler refuses without trying to write it.
// It logs at Debug only, so that a misbehaving client cannot flood the log.
func (h *Handler) reject(c *gin.Context, code int, msg string) int {
	h.logger.Debug("Rejected webhook request", "code", code, "err", msg,
		"remote", c.Request.RemoteAddr, "user_agent", c.Request.UserAgent())
	return h.respondError(c, code, msg)
}

func (h *Handler) respondError(c *gin.Context, code int, msg string) int {
	c.JSON(code, gin.H{"status": "error", "error": msg})
	return code
}

// checkContentType accepts application/json with no charset or UTF-8, the
// only encoding JSON allows (RFC 8259).
func checkContentType(v string) error {
	if v == "" {
		return errors.New("missing Content-Type, want application/json")
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return fmt.Errorf("invalid Content-Type %q: %w", v, err)
	}
	if mt != "application/json" {
		return fmt.Errorf("unsupported Content-Type %q, want application/json", mt)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return fmt.Errorf("unsupported charset %q, want utf-8", cs)
	}
	return nil
}

// bearerOK reports whether an Authorization header carries token. Both sides
// are hashed first so that the comparison takes the same time whatever the
// length of the guess.
func bearerOK(header, token string) bool {
	scheme, cred, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(cred)))
	want := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// maxPooledBody is the largest body buffer kept for reuse: a rare huge
// request should not pin its memory.
const maxPooledBody = 1 << 20

func (h *Handler) putBody(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBody {
		h.bodies.Put(buf)
	}
}

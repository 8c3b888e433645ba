package poller

import (
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of the reason label of prometheus_deephaven_bridge_query_errors_total.
const (
	reasonPrometheus = "prometheus"  // error response or transport error
	reasonTimeout    = "timeout"     // the query's timeout expired (ours or Prometheus's)
	reasonResultType = "result_type" // result neither vector nor scalar
	reasonSink       = "sink"        // the sink refused the rows
	reasonHistogram  = "histogram"   // native histogram sample skipped (counted per sample)
)

var reasons = []string{reasonPrometheus, reasonTimeout, reasonResultType, reasonSink, reasonHistogram}

// metrics are the poller's own metrics, all labelled by query name.
type metrics struct {
	requests    *prometheus.CounterVec
	errors      *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	samples     *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec

	// Backfill; their series exist only for pollers with backfill enabled.
	backfillRequests *prometheus.CounterVec
	backfillSamples  *prometheus.CounterVec
	backfillPending  *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, logger *slog.Logger) *metrics {
	const ns = "prometheus_deephaven_bridge"
	return &metrics{
		requests: register(reg, logger, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns,
			Name:      "query_requests_total",
			Help:      "Queries sent to Prometheus.",
		}, []string{"query"})),
		errors: register(reg, logger, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns,
			Name:      "query_errors_total",
			Help:      "Failed polls and backfill requests by reason (prometheus, timeout, result_type, sink), and skipped native histogram samples (histogram).",
		}, []string{"query", "reason"})),
		duration: register(reg, logger, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns,
			Name:      "query_duration_seconds",
			Help:      "Duration of queries to Prometheus, failed ones included.",
			Buckets:   []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"query"})),
		samples: register(reg, logger, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns,
			Name:      "query_samples_total",
			Help:      "Samples received from Prometheus and handed to the sink as rows.",
		}, []string{"query"})),
		lastSuccess: register(reg, logger, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns,
			Name:      "query_last_success_timestamp_seconds",
			Help:      "Time of the last poll whose query succeeded and whose rows the sink accepted.",
		}, []string{"query"})),
		backfillRequests: register(reg, logger, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns,
			Name:      "backfill_requests_total",
			Help:      "Range queries sent to Prometheus to backfill gaps, failed ones included.",
		}, []string{"query"})),
		backfillSamples: register(reg, logger, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns,
			Name:      "backfill_samples_total",
			Help:      "Samples received from backfill range queries and accepted by the sink.",
		}, []string{"query"})),
		backfillPending: register(reg, logger, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns,
			Name:      "backfill_pending_seconds",
			Help:      "Time span the query still has to backfill, from its last written sample to the newest sample polled (at most the backfill limit); 0 when it has no gap.",
		}, []string{"query"})),
	}
}

// register registers c with reg, or returns the equal collector reg already
// holds. Any other registration error is logged, not fatal: the poller works
// without its metrics being exported.
func register[C prometheus.Collector](reg prometheus.Registerer, logger *slog.Logger, c C) C {
	if reg == nil {
		return c
	}
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	logger.Error("Registering poller metric failed", "err", err)
	return c
}

// init creates the query's series, so that they exist (at 0) before the
// first poll and the first error; the backfill series only if backfill is on.
func (m *metrics) init(query string, backfill bool) {
	m.requests.WithLabelValues(query)
	m.samples.WithLabelValues(query)
	m.duration.WithLabelValues(query)
	for _, r := range reasons {
		m.errors.WithLabelValues(query, r)
	}
	if backfill {
		m.backfillRequests.WithLabelValues(query)
		m.backfillSamples.WithLabelValues(query)
		m.backfillPending.WithLabelValues(query)
	}
}

// delete removes every series of the query.
func (m *metrics) delete(query string) {
	l := prometheus.Labels{"query": query}
	m.requests.DeletePartialMatch(l)
	m.errors.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.samples.DeletePartialMatch(l)
	m.lastSuccess.DeletePartialMatch(l)
	m.backfillRequests.DeletePartialMatch(l)
	m.backfillSamples.DeletePartialMatch(l)
	m.backfillPending.DeletePartialMatch(l)
}

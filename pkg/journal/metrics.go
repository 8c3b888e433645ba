package journal

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Reasons for prometheus_deephaven_bridge_journal_append_failures_total.
const (
	reasonFull     = "full"      // ErrFull: no room without dropping undelivered records
	reasonIO       = "io"        // writing, syncing or rotating failed
	reasonTooLarge = "too_large" // ErrTooLarge: the request can never fit
)

// metrics belong to one Journal; Close unregisters them so that a journal
// can be reopened on the same registry.
type metrics struct {
	bytes       prometheus.Gauge
	segments    prometheus.Gauge
	undelivered prometheus.Gauge
	appended    prometheus.Counter
	corruptions prometheus.Counter
	tornWrites  prometheus.Counter
	fsync       prometheus.Histogram
	failures    *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prometheus_deephaven_bridge_journal_bytes",
			Help: "Total size of the journal's segment files.",
		}),
		segments: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prometheus_deephaven_bridge_journal_segments",
			Help: "Number of journal segment files.",
		}),
		undelivered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prometheus_deephaven_bridge_journal_undelivered_records",
			Help: "Records in the journal above the delivery watermark.",
		}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_journal_records_appended_total",
			Help: "Records written and fsynced to the journal.",
		}),
		corruptions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_journal_corruptions_total",
			Help: "Damaged journal data found (and repaired at open, or reported by replay).",
		}),
		tornWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_journal_torn_writes_cut_total",
			Help: "Incomplete last records cut at open: a write the process died in, before its fsync, so never acknowledged.",
		}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "prometheus_deephaven_bridge_journal_fsync_duration_seconds",
			Help:    "Time to fsync a journal segment after a write.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_journal_append_failures_total",
			Help: "Appends that failed, by reason (full, io, too_large).",
		}, []string{"reason"}),
	}
	// Export every reason from the start so that rate() sees the first failure.
	for _, r := range []string{reasonFull, reasonIO, reasonTooLarge} {
		m.failures.WithLabelValues(r)
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.bytes, m.segments, m.undelivered, m.appended, m.corruptions, m.tornWrites, m.fsync, m.failures}
}

// register registers all collectors on reg, or none of them.
func (m *metrics) register(reg prometheus.Registerer) error {
	for i, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			for _, done := range m.collectors()[:i] {
				reg.Unregister(done)
			}
			return err
		}
	}
	return nil
}

func (m *metrics) unregister(reg prometheus.Registerer) {
	for _, c := range m.collectors() {
		reg.Unregister(c)
	}
}

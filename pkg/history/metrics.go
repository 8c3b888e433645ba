package history

import "github.com/prometheus/client_golang/prometheus"

// Operations for prometheus_deephaven_bridge_history_errors_total.
const (
	opOpen    = "open"    // recovery found damage or could not clean up
	opWrite   = "write"   // Write
	opPrepare = "prepare" // Prepare
	opCommit  = "commit"  // Commit
	opAbort   = "abort"   // Abort
	opPrune   = "prune"   // Prune
)

// metrics belong to one Store; Close unregisters them so that a store can
// be reopened on the same registry.
type metrics struct {
	files  *prometheus.CounterVec
	rows   *prometheus.CounterVec
	bytes  *prometheus.CounterVec
	pruned *prometheus.CounterVec
	errors *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		files: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_history_files_written_total",
			Help: "Parquet files committed to the history, by table.",
		}, []string{"table"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_history_rows_written_total",
			Help: "Rows in Parquet files committed to the history, by table.",
		}, []string{"table"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_history_bytes_written_total",
			Help: "Size of Parquet files committed to the history, by table.",
		}, []string{"table"}),
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_history_files_pruned_total",
			Help: "History files deleted because they were older than history.max_age, by table.",
		}, []string{"table"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_history_errors_total",
			Help: "Failed history operations and damaged files found, by table and operation (open, write, prepare, commit, abort, prune).",
		}, []string{"table", "op"}),
	}
}

// committed counts the files of a committed export.
func (m *metrics) committed(table string, files []File) {
	for _, f := range files {
		m.files.WithLabelValues(table).Inc()
		m.rows.WithLabelValues(table).Add(float64(f.Rows))
		m.bytes.WithLabelValues(table).Add(float64(f.Bytes))
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.files, m.rows, m.bytes, m.pruned, m.errors}
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

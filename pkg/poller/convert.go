package poller

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// errResultType marks a query result the poller cannot turn into rows.
var errResultType = errors.New("unsupported result type")

// ToRows converts the result of the named query into rows stamped with
// ingest, keyed on every label but __name__. It returns the rows, in result
// order, and the number of native histogram samples it skipped. Vectors and
// scalars are supported; any other result (matrix, string, none) is an error
// wrapping errResultType.
func ToRows(name string, v model.Value, ingest time.Time) ([]rows.MetricRow, int, error) {
	return toRows([]Output{{Name: name}}, v, ingest)
}

// outputs returns the names and keys the query's rows are written under.
func (q Query) outputs() []Output {
	return append([]Output{{Name: q.Name, Key: q.Key}}, q.Also...)
}

// toRows converts a query result into rows for each output: one row per
// sample and output, the outputs of a sample next to each other.
func toRows(outs []Output, v model.Value, ingest time.Time) ([]rows.MetricRow, int, error) {
	switch v := v.(type) {
	case model.Vector:
		out, histograms := vectorToRows(outs, v, ingest)
		return out, histograms, nil
	case *model.Scalar:
		if v == nil {
			return nil, 0, fmt.Errorf("%w: empty scalar", errResultType)
		}
		out := make([]rows.MetricRow, 0, len(outs))
		for _, o := range outs {
			out = append(out, scalarToRow(o, v, ingest))
		}
		return out, 0, nil
	case nil:
		return nil, 0, fmt.Errorf("%w: no result", errResultType)
	default:
		return nil, 0, fmt.Errorf("%w %q: want vector or scalar", errResultType, v.Type())
	}
}

// vectorToRows returns one row per float sample of vec and output, and the
// number of native histogram samples it skipped (they have no single value).
// Nil samples are skipped too, uncounted.
func vectorToRows(outs []Output, vec model.Vector, ingest time.Time) ([]rows.MetricRow, int) {
	out := make([]rows.MetricRow, 0, len(vec)*len(outs))
	histograms := 0
	ingest = ingest.UTC()
	var (
		ls   []rows.Label // one sample's labels, sorted; reused
		buf  []byte       // its label text, then each output's series key; reused
		ends = make([]int, len(outs))
	)
	for _, s := range vec {
		if s == nil {
			continue
		}
		if s.Histogram != nil {
			histograms++
			continue
		}
		ls = sortedLabels(ls[:0], s.Metric)
		// The label text and the series keys share one string: one
		// allocation per sample rather than one per text.
		buf = rows.AppendLabelText(buf[:0], ls)
		labelsEnd := len(buf)
		for i, o := range outs {
			buf = o.Key.AppendKeyText(buf, ls)
			ends[i] = len(buf)
		}
		texts := string(buf)
		labels, from := texts[:labelsEnd], labelsEnd
		for i, o := range outs {
			key := texts[from:ends[i]]
			from = ends[i]
			out = append(out, rows.MetricRow{
				PrometheusDateTime:   s.Timestamp.Time().UTC(),
				PrometheusQuery:      o.Name,
				Job:                  string(s.Metric[model.JobLabel]),
				Instance:             string(s.Metric[model.InstanceLabel]),
				Value:                float64(s.Value),
				MetricIngestDateTime: ingest,
				Labels:               labels,
				SeriesKey:            key,
			})
		}
	}
	return out, histograms
}

// scalarToRow returns the row of a scalar result: no job, instance or labels.
func scalarToRow(o Output, s *model.Scalar, ingest time.Time) rows.MetricRow {
	return rows.MetricRow{
		PrometheusDateTime:   s.Timestamp.Time().UTC(),
		PrometheusQuery:      o.Name,
		Value:                float64(s.Value),
		MetricIngestDateTime: ingest.UTC(),
		Labels:               rows.LabelText(nil),
		SeriesKey:            rows.LabelText(nil),
	}
}

// rangeToRows converts the result of a backfill range query of the named
// query into rows stamped with ingest: one per float sample of each series
// whose timestamp keep accepts, with the same columns as an instant sample of
// that series. The rows are sorted by time, samples of the same time in
// result (series) order. It also returns the number of native histogram
// samples it skipped among those keep accepts. A range query always returns
// a matrix; any other result is an error wrapping errResultType.
func rangeToRows(outs []Output, v model.Value, ingest time.Time, keep func(model.Time) bool) ([]rows.MetricRow, int, error) {
	var mat model.Matrix
	switch v := v.(type) {
	case model.Matrix:
		mat = v
	case nil:
		return nil, 0, fmt.Errorf("%w: no result", errResultType)
	default:
		// %T rather than Type(): a nil pointer must not panic.
		return nil, 0, fmt.Errorf("%w %T: want matrix", errResultType, v)
	}
	var out []rows.MetricRow
	histograms := 0
	ingest = ingest.UTC()
	var ls []rows.Label // one series' labels, sorted; reused
	for _, s := range mat {
		if s == nil {
			continue
		}
		job, instance := string(s.Metric[model.JobLabel]), string(s.Metric[model.InstanceLabel])
		ls = sortedLabels(ls[:0], s.Metric)
		labels := rows.LabelText(ls)
		keys := make([]string, len(outs))
		for i, o := range outs {
			keys[i] = o.Key.KeyText(ls)
		}
		for _, sp := range s.Values {
			if !keep(sp.Timestamp) {
				continue
			}
			for i, o := range outs {
				out = append(out, rows.MetricRow{
					PrometheusDateTime:   sp.Timestamp.Time().UTC(),
					PrometheusQuery:      o.Name,
					Job:                  job,
					Instance:             instance,
					Value:                float64(sp.Value),
					MetricIngestDateTime: ingest,
					Labels:               labels,
					SeriesKey:            keys[i],
				})
			}
		}
		for _, hp := range s.Histograms {
			if keep(hp.Timestamp) {
				histograms++
			}
		}
	}
	slices.SortStableFunc(out, func(a, b rows.MetricRow) int {
		return a.PrometheusDateTime.Compare(b.PrometheusDateTime)
	})
	return out, histograms, nil
}

// sortedLabels appends the labels of m to ls, sorted by name.
func sortedLabels(ls []rows.Label, m model.Metric) []rows.Label {
	for n, v := range m {
		ls = append(ls, rows.Label{Name: string(n), Value: string(v)})
	}
	slices.SortFunc(ls, func(a, b rows.Label) int { return strings.Compare(a.Name, b.Name) })
	return ls
}

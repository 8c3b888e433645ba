package poller

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// errResultType marks a query result the poller cannot turn into rows.
var errResultType = errors.New("unsupported result type")

// ToRows converts the result of the named query into rows stamped with
// ingest. It returns the rows, in result order, and the number of native
// histogram samples it skipped. Vectors and scalars are supported; any other
// result (matrix, string, none) is an error wrapping errResultType.
func ToRows(name string, v model.Value, ingest time.Time) ([]rows.MetricRow, int, error) {
	switch v := v.(type) {
	case model.Vector:
		out, histograms := vectorToRows(name, v, ingest)
		return out, histograms, nil
	case *model.Scalar:
		if v == nil {
			return nil, 0, fmt.Errorf("%w: empty scalar", errResultType)
		}
		return []rows.MetricRow{scalarToRow(name, v, ingest)}, 0, nil
	case nil:
		return nil, 0, fmt.Errorf("%w: no result", errResultType)
	default:
		return nil, 0, fmt.Errorf("%w %q: want vector or scalar", errResultType, v.Type())
	}
}

// vectorToRows returns one row per float sample of vec and the number of
// native histogram samples it skipped (they have no single value). Nil
// samples are skipped too, uncounted.
func vectorToRows(name string, vec model.Vector, ingest time.Time) ([]rows.MetricRow, int) {
	out := make([]rows.MetricRow, 0, len(vec))
	histograms := 0
	ingest = ingest.UTC()
	for _, s := range vec {
		if s == nil {
			continue
		}
		if s.Histogram != nil {
			histograms++
			continue
		}
		out = append(out, rows.MetricRow{
			PrometheusDateTime:   s.Timestamp.Time().UTC(),
			PrometheusQuery:      name,
			Job:                  string(s.Metric[model.JobLabel]),
			Instance:             string(s.Metric[model.InstanceLabel]),
			Value:                float64(s.Value),
			MetricIngestDateTime: ingest,
			Labels:               labelsText(s.Metric),
		})
	}
	return out, histograms
}

// scalarToRow returns the row of a scalar result: no job, instance or labels.
func scalarToRow(name string, s *model.Scalar, ingest time.Time) rows.MetricRow {
	return rows.MetricRow{
		PrometheusDateTime:   s.Timestamp.Time().UTC(),
		PrometheusQuery:      name,
		Value:                float64(s.Value),
		MetricIngestDateTime: ingest.UTC(),
		Labels:               labelsText(nil),
	}
}

// labelsText renders a series' whole label set, __name__ included, as the
// Labels column holds it: model.LabelSet's canonical text, names sorted and
// values Go-quoted, e.g. {__name__="up", instance="a:9090", job="x"}; "{}"
// for no labels. It is the same form the alert rows use.
func labelsText(m model.Metric) string {
	return model.LabelSet(m).String()
}

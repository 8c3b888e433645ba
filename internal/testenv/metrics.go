package testenv

import (
	"fmt"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ScrapeMetric reads the /metrics page at base (http://host:port) and
// returns the sum of the samples of the family name whose labels include
// the name, value pairs lv; found is false when no sample matched. A
// counter that was never incremented for some labels has no sample, so its
// sum is 0.
func ScrapeMetric(base, name string, lv ...string) (sum float64, found bool, err error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("%s/metrics: %s", base, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, false, fmt.Errorf("%s/metrics: %w", base, err)
	}
	for _, m := range mfs[name].GetMetric() {
		if hasLabels(m, lv) {
			sum += value(m)
			found = true
		}
	}
	return sum, found, nil
}

// Metric is ScrapeMetric's sum for a test, which fails if the page cannot
// be read. A wait for a gauge to reach 0 should use ScrapeMetric, whose
// found tells an absent gauge from a zero one.
func Metric(t testing.TB, base, name string, lv ...string) float64 {
	t.Helper()
	sum, _, err := ScrapeMetric(base, name, lv...)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func hasLabels(m *dto.Metric, lv []string) bool {
	for i := 0; i+1 < len(lv); i += 2 {
		ok := false
		for _, l := range m.GetLabel() {
			if l.GetName() == lv[i] && l.GetValue() == lv[i+1] {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	default:
		return m.GetUntyped().GetValue()
	}
}

package poller

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// sameRow compares rows field by field, NaN equal to NaN.
func sameRow(a, b rows.MetricRow) bool {
	va, vb := a.Value, b.Value
	if math.IsNaN(va) || math.IsNaN(vb) {
		if math.IsNaN(va) != math.IsNaN(vb) {
			return false
		}
		va, vb = 0, 0
	}
	return va == vb &&
		a.PrometheusDateTime.Equal(b.PrometheusDateTime) && a.PrometheusDateTime.Location() == b.PrometheusDateTime.Location() &&
		a.MetricIngestDateTime.Equal(b.MetricIngestDateTime) && a.MetricIngestDateTime.Location() == b.MetricIngestDateTime.Location() &&
		a.PrometheusQuery == b.PrometheusQuery && a.Job == b.Job && a.Instance == b.Instance && a.Labels == b.Labels
}

func checkRows(t *testing.T, got, want []rows.MetricRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
	}
	for i := range want {
		if !sameRow(got[i], want[i]) {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// vectorJSON is a vector result as Prometheus sends it: float samples with
// special values and missing labels, and a native histogram sample.
const vectorJSON = `[
 {"metric":{"__name__":"up","job":"prometheus","instance":"localhost:9090"},"value":[1795575363.813,"1"]},
 {"metric":{"__name__":"x"},"value":[1795575363,"NaN"]},
 {"metric":{"job":"j","path":"a\"b\\c\n"},"value":[1795575363.5,"+Inf"]},
 {"metric":{},"value":[1795575363.001,"-Inf"]},
 {"metric":{"__name__":"h","job":"j"},"histogram":[1795575363.813,{"count":"4","sum":"6.5","buckets":[[0,"0.5","1","1"]]}]},
 {"metric":{"instance":"i:1"},"value":[-1.5,"-0.25"]}
]`

func wantVectorRows(query string, ingest time.Time) []rows.MetricRow {
	row := func(ms int64, job, instance string, v float64, labels string) rows.MetricRow {
		return rows.MetricRow{
			PrometheusDateTime:   time.UnixMilli(ms).UTC(),
			PrometheusQuery:      query,
			Job:                  job,
			Instance:             instance,
			Value:                v,
			MetricIngestDateTime: ingest.UTC(),
			Labels:               labels,
		}
	}
	return []rows.MetricRow{
		row(1795575363813, "prometheus", "localhost:9090", 1, `{__name__="up", instance="localhost:9090", job="prometheus"}`),
		row(1795575363000, "", "", math.NaN(), `{__name__="x"}`),
		row(1795575363500, "j", "", math.Inf(1), `{job="j", path="a\"b\\c\n"}`),
		row(1795575363001, "", "", math.Inf(-1), `{}`),
		row(-1500, "", "i:1", -0.25, `{instance="i:1"}`),
	}
}

func TestVectorToRows(t *testing.T) {
	var vec model.Vector
	if err := json.Unmarshal([]byte(vectorJSON), &vec); err != nil {
		t.Fatal(err)
	}
	got, histograms, err := ToRows("q1", vec, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if histograms != 1 {
		t.Errorf("histograms = %d, want 1", histograms)
	}
	checkRows(t, got, wantVectorRows("q1", testNow))
}

func TestScalarToRow(t *testing.T) {
	got, histograms, err := ToRows("s", &model.Scalar{Value: model.SampleValue(math.Inf(1)), Timestamp: 1795575363844}, testNow)
	if err != nil || histograms != 0 {
		t.Fatalf("toRows = %d histograms, %v", histograms, err)
	}
	checkRows(t, got, []rows.MetricRow{{
		PrometheusDateTime: time.UnixMilli(1795575363844).UTC(), PrometheusQuery: "s",
		Value: math.Inf(1), MetricIngestDateTime: testNow.UTC(), Labels: "{}",
	}})
}

func TestToRowsRejectsOtherResults(t *testing.T) {
	for name, v := range map[string]model.Value{
		"matrix":     model.Matrix{{Metric: model.Metric{"a": "b"}, Values: []model.SamplePair{{Timestamp: 1, Value: 2}}}},
		"string":     &model.String{Value: "hello", Timestamp: 1},
		"nil":        nil,
		"nil scalar": (*model.Scalar)(nil),
	} {
		got, _, err := ToRows("q", v, testNow)
		if !errors.Is(err, errResultType) || got != nil {
			t.Errorf("%s: toRows = %v, %v; want no rows and errResultType", name, got, err)
		}
	}
	if _, _, err := ToRows("q", model.Matrix{}, testNow); err == nil || !strings.Contains(err.Error(), `"matrix"`) {
		t.Errorf("matrix error %q does not name the result type", err)
	}
}

func TestEmptyAndNilSamples(t *testing.T) {
	got, histograms, err := ToRows("q", model.Vector{nil, {Metric: model.Metric{"a": "b"}, Value: 1, Timestamp: 2}, nil}, testNow)
	if err != nil || histograms != 0 || len(got) != 1 {
		t.Fatalf("toRows = %v, %d, %v; want 1 row", got, histograms, err)
	}
	got, _, err = ToRows("q", model.Vector{}, testNow)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty vector: toRows = %v, %v", got, err)
	}
}

func FuzzVectorToRows(f *testing.F) {
	f.Add([]byte(vectorJSON))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[null]`))
	f.Add([]byte(`[{"metric":null,"value":[0,"0"]}]`))
	f.Add([]byte(`[{"metric":{"job":"\u00ff\ud800"},"value":[1e300,"1e308"]}]`))
	f.Add([]byte(`[{"histogram":[1,{"count":"1","sum":"1","buckets":null}]},{"value":[1,"NaN"]}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var vec model.Vector
		if err := json.Unmarshal(data, &vec); err != nil {
			return
		}
		wantRows, wantHist := 0, 0
		for _, s := range vec {
			switch {
			case s == nil:
			case s.Histogram != nil:
				wantHist++
			default:
				wantRows++
			}
		}
		got, hist, err := ToRows("fuzz", vec, testNow)
		if err != nil {
			t.Fatalf("toRows: %v", err)
		}
		if len(got) != wantRows || hist != wantHist {
			t.Fatalf("got %d rows and %d histograms, want %d and %d", len(got), hist, wantRows, wantHist)
		}
		for _, r := range got {
			if r.PrometheusQuery != "fuzz" || !strings.HasPrefix(r.Labels, "{") || !strings.HasSuffix(r.Labels, "}") ||
				r.PrometheusDateTime.Location() != time.UTC {
				t.Fatalf("bad row %+v", r)
			}
		}
	})
}

// A query's samples are written once per output, each with its own series
// key, the outputs of a sample next to each other.
func TestOutputsAndSeriesKeys(t *testing.T) {
	vec := model.Vector{
		{Metric: model.Metric{"__name__": "m", "job": "j", "instance": "i1", "mode": "x"}, Value: 1, Timestamp: 1000},
		{Metric: model.Metric{"__name__": "m", "job": "j", "instance": "i2", "mode": "y"}, Value: 2, Timestamp: 1000},
	}
	q := Query{Name: "a", Key: rows.KeySpec{Only: rows.DefaultJoinLabels}, Also: []Output{{Name: "b", Key: rows.KeySpec{Drop: []string{"mode"}}}}}
	got, _, err := toRows(q.outputs(), vec, testNow)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ query, key string }{
		{"a", `{instance="i1", job="j"}`}, {"b", `{instance="i1", job="j"}`},
		{"a", `{instance="i2", job="j"}`}, {"b", `{instance="i2", job="j"}`},
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].PrometheusQuery != w.query || got[i].SeriesKey != w.key {
			t.Errorf("row %d: %s %s, want %s %s", i, got[i].PrometheusQuery, got[i].SeriesKey, w.query, w.key)
		}
	}
	if rs, _, _ := ToRows("q", vec, testNow); rs[0].SeriesKey != `{instance="i1", job="j", mode="x"}` {
		t.Errorf("default key = %s, want every label but __name__", rs[0].SeriesKey)
	}
}

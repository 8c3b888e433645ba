package rows

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/prometheus/common/model"
)

func TestSampleRecord(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	at := time.Date(2026, 12, 2, 10, 0, 0, 123000000, time.UTC)
	vals := []float64{math.NaN(), math.Inf(1), math.Inf(-1), -0.5}
	var rs []SampleRow
	for i, v := range vals {
		rs = append(rs, SampleRow{PrometheusDateTime: at.Add(time.Duration(i) * time.Second), MetricName: "m", SeriesKey: `{job="j"}`,
			Labels: `{__name__="m", job="j"}`, Value: v, Job: "j", Instance: "i", SampleIngestDateTime: at})
	}
	rec := SampleRecord(mem, rs, Places{Writer: 3, Slots: []int64{0, 1, 2, 3}})
	defer rec.Release()
	if !rec.Schema().Equal(SamplesTable.Schema()) || int(rec.NumRows()) != len(rs) {
		t.Fatalf("record schema %s with %d rows, want %s with %d", rec.Schema(), rec.NumRows(), SamplesTable.Schema(), len(rs))
	}
	for i, c := range SampleColumns {
		if rec.ColumnName(i) != c.Name {
			t.Errorf("column %d is %s, want %s", i, rec.ColumnName(i), c.Name)
		}
	}
	col := rec.Column(4).(*array.Float64)
	for i, v := range vals {
		if g := col.Value(i); !(g == v || math.IsNaN(g) && math.IsNaN(v)) {
			t.Errorf("row %d: Value = %v, want %v", i, g, v)
		}
	}
	if got := rec.Column(0).(*array.Timestamp).Value(1); int64(got) != at.Add(time.Second).UnixNano() {
		t.Errorf("PrometheusDateTime = %d", got)
	}
	for i, want := range []string{"", "m", `{job="j"}`, `{__name__="m", job="j"}`, "", "j", "i"} {
		if want == "" {
			continue
		}
		if got := rec.Column(i).(*array.String).Value(0); got != want {
			t.Errorf("column %s = %q, want %q", SampleColumns[i].Name, got, want)
		}
	}
}

// SeriesText is model.LabelSet's String and KeySpec{}.Key without the map:
// compared on label sets chosen to catch ordering and quoting differences.
func TestSeriesTextMatchesLabelSet(t *testing.T) {
	names := []string{"__name__", "a", "a1", "a_b", "A", "_x", "job", "instance", "le", "service.name", "zz"}
	values := []string{"", "x", `q"uote`, `back\slash`, "new\nline", "tab\t", "ünï", "\x00", "a:9100", "1e+10", "\xff"}
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(ls []Label) {
		t.Helper()
		set := model.LabelSet{}
		nonEmpty := model.LabelSet{}
		for _, l := range ls {
			set[model.LabelName(l.Name)] = model.LabelValue(l.Value)
			if l.Value != "" {
				nonEmpty[model.LabelName(l.Name)] = model.LabelValue(l.Value)
			}
		}
		labels, key := SeriesText(ls)
		if want := nonEmpty.String(); labels != want {
			t.Errorf("labels of %v = %s, want %s", ls, labels, want)
		}
		if want := (KeySpec{}).Key(set); key != want {
			t.Errorf("key of %v = %s, want %s", ls, key, want)
		}
	}
	check(nil)
	check([]Label{{"__name__", "up"}})
	check([]Label{{"__name__", ""}, {"job", "x"}})
	for range 2000 {
		var ls []Label
		for _, n := range names {
			if rng.IntN(2) == 0 {
				ls = append(ls, Label{n, values[rng.IntN(len(values))]})
			}
		}
		slices.SortFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
		check(ls)
	}
}

func BenchmarkSeriesText(b *testing.B) {
	ls := []Label{{"__name__", "node_cpu_seconds_total"}, {"cpu", "3"}, {"instance", "host-17.example.com:9100"}, {"job", "node"}, {"mode", "softirq"}}
	b.ReportAllocs()
	for b.Loop() {
		SeriesText(ls)
	}
}

// LabelText and KeySpec.KeyText are model.LabelSet's String and
// KeySpec.Key without the maps, for every kind of spec.
func TestKeySpecTextsMatchLabelSet(t *testing.T) {
	names := []string{"__name__", "a", "a1", "a_b", "A", "_x", "job", "instance", "le", "service.name", "zz"}
	values := []string{"", "x", `q"uote`, `back\slash`, "new\nline", "ünï", "\x00", "a:9100", "\xff"}
	specs := []KeySpec{{}, {Only: DefaultJoinLabels}, {Only: []string{"a", "zz", "missing"}}, {Drop: []string{"job", "a1"}}}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		var ls []Label
		set := model.LabelSet{}
		for _, n := range names {
			if rng.IntN(2) == 0 {
				v := values[rng.IntN(len(values))]
				ls = append(ls, Label{n, v})
				set[model.LabelName(n)] = model.LabelValue(v)
			}
		}
		slices.SortFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
		for _, k := range specs {
			labels, key := LabelText(ls), k.KeyText(ls)
			if want := set.String(); labels != want {
				t.Fatalf("labels of %v = %s, want %s", ls, labels, want)
			}
			if want := k.Key(set); key != want {
				t.Fatalf("key %+v of %v = %s, want %s", k, ls, key, want)
			}
		}
	}
}

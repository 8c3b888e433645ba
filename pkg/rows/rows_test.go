package rows

import (
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/prometheus/common/model"
)

func TestAlertRecordColumnsInOrder(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	start := time.Date(2026, 11, 25, 2, 54, 38, 320000000, time.UTC)
	rec := AlertRecord(mem, []AlertRow{{PrometheusDateTime: start, Job: "j", Status: "firing", Fingerprint: "f", StartsAt: start, Labels: `{job="j"}`}})
	defer rec.Release()
	if rec.NumRows() != 1 || int(rec.NumCols()) != len(AlertColumns) {
		t.Fatalf("got %d rows %d cols", rec.NumRows(), rec.NumCols())
	}
	for i, c := range AlertColumns {
		if rec.ColumnName(i) != c.Name {
			t.Errorf("column %d is %s, want %s", i, rec.ColumnName(i), c.Name)
		}
	}
	if got := rec.Column(10).IsNull(0); !got {
		t.Errorf("EndsAt of a firing alert should be null")
	}
	if got := rec.Column(0).(*array.Timestamp).Value(0); int64(got) != start.UnixNano() {
		t.Errorf("PrometheusDateTime = %d, want %d", got, start.UnixNano())
	}
}

func TestMetricRecordKeepsSpecialValues(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	vals := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1.5}
	var rs []MetricRow
	for _, v := range vals {
		rs = append(rs, MetricRow{PrometheusDateTime: time.Unix(1, 0), PrometheusQuery: "q", Value: v})
	}
	rec := MetricRecord(mem, rs, Places{Writer: 7, Slots: []int64{0, 1, 2, 3}})
	defer rec.Release()
	col := rec.Column(4).(*array.Float64)
	for i, v := range vals {
		g := col.Value(i)
		if !(g == v || (math.IsNaN(g) && math.IsNaN(v))) {
			t.Errorf("row %d: Value = %v, want %v", i, g, v)
		}
	}
	w, slot := rec.Column(8).(*array.Int64), rec.Column(9).(*array.Int64)
	if w.Value(3) != 7 || slot.Value(3) != 3 || rec.NumCols() != int64(len(MetricColumns)) {
		t.Errorf("places: writer %d slot %d, %d columns", w.Value(3), slot.Value(3), rec.NumCols())
	}
}

func TestSeriesKey(t *testing.T) {
	ls := model.LabelSet{"__name__": "node_load1", "instance": "a:9100", "job": "node", "severity": "warning", "empty": ""}
	for _, tc := range []struct {
		spec KeySpec
		want string
	}{
		{KeySpec{}, `{instance="a:9100", job="node", severity="warning"}`},
		{KeySpec{Only: DefaultJoinLabels}, `{instance="a:9100", job="node"}`},
		{KeySpec{Only: []string{"job", "missing"}}, `{job="node"}`},
		{KeySpec{Only: []string{}}, `{}`},
		{KeySpec{Drop: []string{"severity", "alertname"}}, `{instance="a:9100", job="node"}`},
	} {
		if got := tc.spec.Key(ls); got != tc.want {
			t.Errorf("%+v.Key = %s, want %s", tc.spec, got, tc.want)
		}
	}
	if !(KeySpec{Only: []string{"a"}}).Equal(KeySpec{Only: []string{"a"}}) || (KeySpec{Only: []string{}}).Equal(KeySpec{}) {
		t.Error("Equal")
	}
}

// Every record builder writes the columns its spec lists, in order and with
// the spec's types.
func TestRecordsMatchSpecs(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	for _, tc := range []struct {
		name string
		spec TableSpec
		rec  func() arrow.RecordBatch
	}{
		{"alerts", AlertsTable, func() arrow.RecordBatch { return AlertRecord(mem, []AlertRow{{}}) }},
		{"metrics", MetricsTable, func() arrow.RecordBatch { return MetricRecord(mem, []MetricRow{{}}, Places{Slots: []int64{0}}) }},
		{"rules", RulesTable, func() arrow.RecordBatch { return RuleRecord(mem, []RuleRow{{Present: true}}) }},
		{"checkpoints", CheckpointsTable, func() arrow.RecordBatch { return CheckpointRecord(mem, []CheckpointRow{{}}) }},
		{"state", StateTable, func() arrow.RecordBatch { return StateRecord(mem, []AlertStateRow{{}}) }},
		{"notifications", NotificationsTable, func() arrow.RecordBatch {
			return NotificationRecord(mem, []NotificationRow{{}}, Places{Slots: []int64{0}})
		}},
	} {
		rec := tc.rec()
		if !rec.Schema().Equal(tc.spec.Schema()) || rec.NumRows() != 1 {
			t.Errorf("%s: record schema %s, want %s", tc.name, rec.Schema(), tc.spec.Schema())
		}
		rec.Release()
	}
}

package rows

import (
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// BenchmarkMetricRecord measures building one upload's Arrow record from
// metric rows (the bridge's default batch is 50,000 rows).
func BenchmarkMetricRecord(b *testing.B) {
	const n = 50000
	now := time.Now()
	rs := make([]MetricRow, n)
	slots := make([]int64, n)
	for i := range rs {
		inst := fmt.Sprintf("host-%d:9100", i%1000)
		rs[i] = MetricRow{PrometheusDateTime: now, PrometheusQuery: "bench", Job: "node", Instance: inst, Value: float64(i),
			MetricIngestDateTime: now, Labels: `{__name__="node_load1", instance="` + inst + `", job="node"}`,
			SeriesKey: `{instance="` + inst + `", job="node"}`}
		slots[i] = int64(i)
	}
	b.ReportAllocs()
	for b.Loop() {
		MetricRecord(memory.DefaultAllocator, rs, Places{Writer: 1, Slots: slots}).Release()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
}

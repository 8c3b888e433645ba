package poller

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// BenchmarkToRows converts a decoded instant-query response of 1,000
// series, as the metrics path does for every poll.
func BenchmarkToRows(b *testing.B) {
	vec := make(model.Vector, 1000)
	now := model.Now()
	for i := range vec {
		vec[i] = &model.Sample{Metric: model.Metric{"__name__": "node_cpu_seconds_total", "job": "node", "cpu": model.LabelValue(fmt.Sprint(i % 8)),
			"mode": "idle", "instance": model.LabelValue(fmt.Sprintf("host-%d:9100", i))}, Value: model.SampleValue(i), Timestamp: now}
	}
	b.ReportAllocs()
	for b.Loop() {
		ToRows("bench", vec, time.Now())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(vec)), "ns/row")
}

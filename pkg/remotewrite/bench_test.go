package remotewrite

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/klauspost/compress/snappy"
	writev2 "github.com/prometheus/client_golang/exp/api/remote/genproto/v2"
	"google.golang.org/protobuf/proto"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/remotewrite/internal/writev1"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// benchSeries are node exporter-like label sets: n series of 5 labels.
func benchSeries(n int) [][]string {
	modes := []string{"idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"}
	out := make([][]string, n)
	for i := range out {
		out[i] = []string{"__name__", "node_cpu_seconds_total", "cpu", fmt.Sprint(i / len(modes) % 64),
			"instance", fmt.Sprintf("host-%d.example.com:9100", i/512), "job", "node", "mode", modes[i%len(modes)]}
	}
	return out
}

func benchV1(n int, at time.Time) []byte {
	req := &writev1.WriteRequest{}
	for i, lv := range benchSeries(n) {
		ts := &writev1.TimeSeries{Samples: []*writev1.Sample{{Value: float64(i), Timestamp: at.UnixMilli()}}}
		for j := 0; j < len(lv); j += 2 {
			ts.Labels = append(ts.Labels, &writev1.Label{Name: []byte(lv[j]), Value: []byte(lv[j+1])})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	b, err := proto.Marshal(req)
	if err != nil {
		panic(err)
	}
	return b
}

func benchV2(n int, at time.Time) []byte {
	syms := writev2.NewSymbolTable()
	req := &writev2.Request{}
	for i, lv := range benchSeries(n) {
		req.Timeseries = append(req.Timeseries, &writev2.TimeSeries{LabelsRefs: syms.SymbolizeLabels(lv, nil),
			Samples: []*writev2.Sample{{Value: float64(i), Timestamp: at.UnixMilli()}}})
	}
	req.Symbols = syms.Symbols()
	b, err := req.MarshalVT()
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkDecode measures decompressing and decoding a request of 2,000
// samples (Prometheus's max_samples_per_send) into rows, per sample.
func BenchmarkDecode(b *testing.B) {
	const n = 2000
	for _, tc := range []struct {
		name string
		body []byte
		v    Version
	}{{"v1", benchV1(n, t0), V1}, {"v2", benchV2(n, t0), V2}} {
		body := snappy.Encode(nil, tc.body)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, len(tc.body))
			for b.Loop() {
				data, err := decompress(buf, body, 1<<30)
				if err != nil {
					b.Fatal(err)
				}
				c := newConverter(nil, ingest)
				if tc.v == V1 {
					err = c.decodeV1(data)
				} else {
					err = c.decodeV2(data)
				}
				if err != nil || len(c.b.rows) != n {
					b.Fatal(err, len(c.b.rows))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sample")
		})
	}
}

// arrowSink builds the Arrow record of the rows, as the sink into
// Deephaven does before uploading, and drops it.
type arrowSink struct{}

func (arrowSink) Write(_ context.Context, rs []rows.SampleRow) error {
	rows.SampleRecord(memory.DefaultAllocator, rs, rows.Places{Slots: make([]int64, len(rs))}).Release()
	return nil
}

// BenchmarkServeHTTP measures the bridge's side of a request of 2,000
// samples, per sample: the HTTP handler, decoding, rows and their Arrow
// record (what uploading then costs is measured by cmd/bridge-bench).
func BenchmarkServeHTTP(b *testing.B) {
	const n = 2000
	for _, tc := range []struct {
		name, contentType string
		body              []byte
	}{{"v1", ctV1, snappy.Encode(nil, benchV1(n, t0))}, {"v2", ctV2, snappy.Encode(nil, benchV2(n, t0))}} {
		b.Run(tc.name, func(b *testing.B) {
			h := NewHandler(arrowSink{}, Options{}, nil, nil)
			b.ReportAllocs()
			for b.Loop() {
				if rec := post(h, tc.contentType, tc.body); rec.Code != http.StatusNoContent {
					b.Fatal(rec.Code, rec.Body.String())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sample")
		})
	}
}

package remotewrite

import (
	"maps"
	"math"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/remotewrite/internal/writev1"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// TestV1FieldNumbers: the numbers the wire decoder reads are the .proto's.
func TestV1FieldNumbers(t *testing.T) {
	md := writev1.File_writev1_remote_write_v1_proto.Messages()
	for _, tc := range []struct {
		message, field string
		got            int
	}{
		{"WriteRequest", "timeseries", fieldRequestTimeseries},
		{"WriteRequest", "metadata", fieldRequestMetadata},
		{"TimeSeries", "labels", fieldSeriesLabels},
		{"TimeSeries", "samples", fieldSeriesSamples},
		{"TimeSeries", "exemplars", fieldSeriesExemplars},
		{"TimeSeries", "histograms", fieldSeriesHistograms},
		{"Label", "name", fieldLabelName},
		{"Label", "value", fieldLabelValue},
		{"Sample", "value", fieldSampleValue},
		{"Sample", "timestamp", fieldSampleTimestampMil},
	} {
		f := md.ByName(protoreflect.Name(tc.message)).Fields().ByName(protoreflect.Name(tc.field))
		if f == nil || int(f.Number()) != tc.got {
			t.Errorf("%s.%s: decoder reads %d, .proto has %v", tc.message, tc.field, tc.got, f)
		}
	}
}

// referenceV1 converts a request with the generated decoder, the way the
// wire decoder must.
func referenceV1(data []byte) (*batch, error) {
	var req writev1.WriteRequest
	if err := proto.Unmarshal(data, &req); err != nil {
		return nil, err
	}
	c := newConverter(nil, ingest)
	c.b.metadata = len(req.Metadata)
	for i, ts := range req.Timeseries {
		c.ls = c.ls[:0]
		for _, l := range ts.Labels {
			c.ls = append(c.ls, rows.Label{Name: string(l.Name), Value: string(l.Value)})
		}
		addSeries(c, i, ts.Samples, len(ts.Histograms), len(ts.Exemplars))
	}
	return c.b, nil
}

func sameBatch(t *testing.T, got, want *batch) {
	t.Helper()
	if len(got.rows) != len(want.rows) {
		t.Fatalf("%d rows, want %d", len(got.rows), len(want.rows))
	}
	for i := range got.rows {
		g, w := got.rows[i], want.rows[i]
		if math.IsNaN(g.Value) && math.IsNaN(w.Value) {
			g.Value, w.Value = 0, 0
		}
		if g != w {
			t.Fatalf("row %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	if got.received != want.received || !maps.Equal(got.dropped, want.dropped) || got.histograms != want.histograms ||
		got.exemplars != want.exemplars || got.metadata != want.metadata || got.invalid != want.invalid ||
		!reflect.DeepEqual(got.problems, want.problems) {
		t.Fatalf("counts differ:\n got %+v\nwant %+v", *got, *want)
	}
}

// FuzzDecodeV1: whatever the generated decoder accepts, the wire decoder
// turns into the same rows, counts and problems; on anything else it
// returns an error or a batch, never panics. (It may accept what the
// generated decoder refuses: it does not look into the histograms,
// exemplars and metadata it drops.)
func FuzzDecodeV1(f *testing.F) {
	f.Add(benchV1(3, t0))
	ts := series1([]string{"job", "j", "__name__", "up", "job", "again", "instance", "\xff"}, s1(1, t0), s1(math.Float64frombits(staleNaN), t0), &writev1.Sample{Timestamp: math.MinInt64})
	ts.Histograms = []*writev1.Histogram{{Count: &writev1.Histogram_CountInt{CountInt: 1}}}
	ts.Exemplars = []*writev1.Exemplar{{Value: 1}}
	for _, req := range []*writev1.WriteRequest{
		{Timeseries: []*writev1.TimeSeries{ts, series1([]string{"__name__", "x"}, s1(math.Inf(-1), time.Unix(0, 0)))}},
		{Metadata: []*writev1.MetricMetadata{{MetricFamilyName: []byte("m")}}},
	} {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x03, 0x12, 0x01})
	f.Add([]byte{0x0b, 0x0c})
	f.Fuzz(func(t *testing.T, data []byte) {
		want, refErr := referenceV1(data)
		c := newConverter(nil, ingest)
		err := c.decodeV1(data)
		if refErr != nil {
			return
		}
		if err != nil {
			t.Fatalf("the generated decoder accepts what the wire decoder refuses: %v", err)
		}
		sameBatch(t, c.b, want)
	})
}

// FuzzDecodeV2: any body decodes to a batch or an error, without panics,
// and every row it makes has a metric name.
func FuzzDecodeV2(f *testing.F) {
	f.Add(benchV2(3, t0))
	r := newV2()
	r.add([]string{"__name__", "up", "job", "j"}, s2(1, t0))
	bad := r.add([]string{"__name__", "x"}, s2(2, t0))
	bad.LabelsRefs = append(bad.LabelsRefs, 77)
	r.req.Symbols = r.syms.Symbols()
	b, err := r.req.MarshalVT()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newConverter(nil, ingest)
		if err := c.decodeV2(data); err != nil {
			return
		}
		for _, r := range c.b.rows {
			if r.MetricName == "" {
				t.Fatalf("row without a metric name: %+v", r)
			}
		}
	})
}

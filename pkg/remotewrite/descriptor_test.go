package remotewrite

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/remotewrite/internal/writev1"
)

// goldenV1 is the remote write 1.0 request as Prometheus defines it
// (prompb/remote.proto and types.proto of Prometheus v3.16; the field table
// in /work/shared/docs/prometheus-facts.md §3.1): every field of every
// message with its number, cardinality and type, every enum value. Our
// .proto must describe exactly this (its string fields declared bytes, the
// same on the wire; the .proto says why), so that a typo in a number fails here
// rather than silently dropping a field of a real request.
var goldenV1 = []string{
	"prometheus.BucketSpan.length = 2 optional uint32",
	"prometheus.BucketSpan.offset = 1 optional sint32",
	"prometheus.Exemplar.labels = 1 repeated prometheus.Label",
	"prometheus.Exemplar.timestamp = 3 optional int64",
	"prometheus.Exemplar.value = 2 optional double",
	"prometheus.Histogram.ResetHint.GAUGE = 3",
	"prometheus.Histogram.ResetHint.NO = 2",
	"prometheus.Histogram.ResetHint.UNKNOWN = 0",
	"prometheus.Histogram.ResetHint.YES = 1",
	"prometheus.Histogram.count_float = 2 optional double (oneof count)",
	"prometheus.Histogram.count_int = 1 optional uint64 (oneof count)",
	"prometheus.Histogram.custom_values = 16 repeated double packed",
	"prometheus.Histogram.negative_counts = 10 repeated double packed",
	"prometheus.Histogram.negative_deltas = 9 repeated sint64 packed",
	"prometheus.Histogram.negative_spans = 8 repeated prometheus.BucketSpan",
	"prometheus.Histogram.positive_counts = 13 repeated double packed",
	"prometheus.Histogram.positive_deltas = 12 repeated sint64 packed",
	"prometheus.Histogram.positive_spans = 11 repeated prometheus.BucketSpan",
	"prometheus.Histogram.reset_hint = 14 optional prometheus.Histogram.ResetHint",
	"prometheus.Histogram.schema = 4 optional sint32",
	"prometheus.Histogram.sum = 3 optional double",
	"prometheus.Histogram.timestamp = 15 optional int64",
	"prometheus.Histogram.zero_count_float = 7 optional double (oneof zero_count)",
	"prometheus.Histogram.zero_count_int = 6 optional uint64 (oneof zero_count)",
	"prometheus.Histogram.zero_threshold = 5 optional double",
	"prometheus.Label.name = 1 optional bytes",  // string in Prometheus: the same on the wire
	"prometheus.Label.value = 2 optional bytes", // string in Prometheus: the same on the wire
	"prometheus.MetricMetadata.MetricType.COUNTER = 1",
	"prometheus.MetricMetadata.MetricType.GAUGE = 2",
	"prometheus.MetricMetadata.MetricType.GAUGEHISTOGRAM = 4",
	"prometheus.MetricMetadata.MetricType.HISTOGRAM = 3",
	"prometheus.MetricMetadata.MetricType.INFO = 6",
	"prometheus.MetricMetadata.MetricType.STATESET = 7",
	"prometheus.MetricMetadata.MetricType.SUMMARY = 5",
	"prometheus.MetricMetadata.MetricType.UNKNOWN = 0",
	"prometheus.MetricMetadata.help = 4 optional bytes",               // string in Prometheus: the same on the wire
	"prometheus.MetricMetadata.metric_family_name = 2 optional bytes", // string in Prometheus: the same on the wire
	"prometheus.MetricMetadata.type = 1 optional prometheus.MetricMetadata.MetricType",
	"prometheus.MetricMetadata.unit = 5 optional bytes", // string in Prometheus: the same on the wire
	"prometheus.Sample.timestamp = 2 optional int64",
	"prometheus.Sample.value = 1 optional double",
	"prometheus.TimeSeries.exemplars = 3 repeated prometheus.Exemplar",
	"prometheus.TimeSeries.histograms = 4 repeated prometheus.Histogram",
	"prometheus.TimeSeries.labels = 1 repeated prometheus.Label",
	"prometheus.TimeSeries.samples = 2 repeated prometheus.Sample",
	"prometheus.WriteRequest.metadata = 3 repeated prometheus.MetricMetadata",
	"prometheus.WriteRequest.timeseries = 1 repeated prometheus.TimeSeries",
	"prometheus.WriteRequest reserved 2",
}

func describe(fd protoreflect.FileDescriptor) []string {
	var out []string
	var enum func(protoreflect.EnumDescriptor)
	enum = func(e protoreflect.EnumDescriptor) {
		for i := 0; i < e.Values().Len(); i++ {
			v := e.Values().Get(i)
			out = append(out, fmt.Sprintf("%s.%s = %d", e.FullName(), v.Name(), v.Number()))
		}
	}
	var msg func(protoreflect.MessageDescriptor)
	msg = func(m protoreflect.MessageDescriptor) {
		for i := 0; i < m.Fields().Len(); i++ {
			f := m.Fields().Get(i)
			typ := f.Kind().String()
			switch {
			case f.Message() != nil:
				typ = string(f.Message().FullName())
			case f.Enum() != nil:
				typ = string(f.Enum().FullName())
			}
			s := fmt.Sprintf("%s = %d %s %s", f.FullName(), f.Number(), f.Cardinality(), typ)
			if f.IsPacked() {
				s += " packed"
			}
			if o := f.ContainingOneof(); o != nil {
				s += fmt.Sprintf(" (oneof %s)", o.Name())
			}
			out = append(out, s)
		}
		for i := 0; i < m.ReservedRanges().Len(); i++ {
			r := m.ReservedRanges().Get(i)
			for n := r[0]; n < r[1]; n++ {
				out = append(out, fmt.Sprintf("%s reserved %d", m.FullName(), n))
			}
		}
		for i := 0; i < m.Enums().Len(); i++ {
			enum(m.Enums().Get(i))
		}
		for i := 0; i < m.Messages().Len(); i++ {
			msg(m.Messages().Get(i))
		}
	}
	for i := 0; i < fd.Messages().Len(); i++ {
		msg(fd.Messages().Get(i))
	}
	slices.Sort(out)
	return out
}

func TestV1DescriptorIsPrometheus(t *testing.T) {
	fd := writev1.File_writev1_remote_write_v1_proto
	if fd.Package() != "prometheus" || fd.Syntax() != protoreflect.Proto3 {
		t.Errorf("package %s, syntax %s; want prometheus, proto3", fd.Package(), fd.Syntax())
	}
	got, want := describe(fd), slices.Sorted(slices.Values(goldenV1))
	if !slices.Equal(got, want) {
		t.Errorf("descriptor differs from Prometheus's:\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// A request encoded by hand, field number by field number, as Prometheus's
// gogo-generated code writes it, decodes into the generated types: the wire
// format, not only the descriptor, is right.
func TestV1WireFormat(t *testing.T) {
	msg := func(fields ...[]byte) []byte { return slices.Concat(fields...) }
	bytesField := func(n protowire.Number, b []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, n, protowire.BytesType), b)
	}
	str := func(n protowire.Number, s string) []byte { return bytesField(n, []byte(s)) }
	varint := func(n protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, n, protowire.VarintType), v)
	}
	double := func(n protowire.Number, v float64) []byte {
		return protowire.AppendFixed64(protowire.AppendTag(nil, n, protowire.Fixed64Type), math.Float64bits(v))
	}
	label := func(name, value string) []byte { return bytesField(1, msg(str(1, name), str(2, value))) }
	histogram := msg(varint(1, 7), double(3, 2.5), varint(4, protowire.EncodeZigZag(-2)), varint(15, 1700000000123),
		bytesField(12, protowire.AppendVarint(protowire.AppendVarint(nil, protowire.EncodeZigZag(3)), protowire.EncodeZigZag(-1))))
	series := msg(
		label("__name__", "up"), label("job", "node"),
		bytesField(2, msg(double(1, 1.5), varint(2, 1700000000000))),
		bytesField(3, msg(label("trace_id", "abc"), double(2, 9), varint(3, 1700000000001))),
		bytesField(4, histogram),
	)
	meta := msg(varint(1, 1), str(2, "up"), str(4, "help text"), str(5, "seconds"))
	wire := msg(bytesField(1, series), bytesField(3, meta))

	var req writev1.WriteRequest
	if err := proto.Unmarshal(wire, &req); err != nil {
		t.Fatal(err)
	}
	ts := req.GetTimeseries()[0]
	if l := ts.GetLabels(); len(l) != 2 || string(l[0].GetName()) != "__name__" || string(l[1].GetValue()) != "node" {
		t.Errorf("labels %v", l)
	}
	if s := ts.GetSamples()[0]; s.GetValue() != 1.5 || s.GetTimestamp() != 1700000000000 {
		t.Errorf("sample %v", s)
	}
	if e := ts.GetExemplars()[0]; string(e.GetLabels()[0].GetValue()) != "abc" || e.GetValue() != 9 || e.GetTimestamp() != 1700000000001 {
		t.Errorf("exemplar %v", e)
	}
	h := ts.GetHistograms()[0]
	if h.GetCountInt() != 7 || h.GetSum() != 2.5 || h.GetSchema() != -2 || h.GetTimestamp() != 1700000000123 || !slices.Equal(h.GetPositiveDeltas(), []int64{3, -1}) {
		t.Errorf("histogram %v", h)
	}
	if m := req.GetMetadata()[0]; m.GetType() != writev1.MetricMetadata_COUNTER || string(m.GetMetricFamilyName()) != "up" || string(m.GetHelp()) != "help text" || string(m.GetUnit()) != "seconds" {
		t.Errorf("metadata %v", m)
	}
	if len(req.ProtoReflect().GetUnknown()) != 0 || len(ts.ProtoReflect().GetUnknown()) != 0 || len(h.ProtoReflect().GetUnknown()) != 0 {
		t.Error("fields left unknown")
	}
	// And back: our encoding is the same bytes, histograms aside (Go
	// writes oneof fields last, gogo in field order; both decode alike).
	ts.Histograms = nil
	again, err := proto.MarshalOptions{Deterministic: true}.Marshal(&req)
	if err != nil {
		t.Fatal(err)
	}
	series = series[:len(series)-len(bytesField(4, histogram))]
	if want := msg(bytesField(1, series), bytesField(3, meta)); string(again) != string(want) {
		t.Errorf("re-encoded request differs:\n got %x\nwant %x", again, want)
	}
}

package rows

import (
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// DefaultSamplesTable holds the samples Prometheus sends by remote write.
const DefaultSamplesTable = "prometheus_samples"

// SampleRow is one float sample of one series received by remote write: a
// row of the prometheus_samples table.
type SampleRow struct {
	PrometheusDateTime time.Time // the sample's timestamp
	MetricName         string    // the __name__ label
	// SeriesKey is the series' labels but __name__, as canonical text
	// (KeySpec{}.Key): with MetricName it identifies the series, and it is
	// the key a rule's value rows and its alerts carry in the join.
	SeriesKey            string
	Labels               string  // the whole label set as canonical text, as in prometheus_metrics
	Value                float64 // NaN and ±Inf are kept
	Job                  string
	Instance             string
	SampleIngestDateTime time.Time // when the bridge received it
}

// SampleColumns is the column list of prometheus_samples, in order.
var SampleColumns = []Column{
	{"PrometheusDateTime", Instant},
	{"MetricName", String},
	{"SeriesKey", String},
	{"Labels", String},
	{"Value", Double},
	{"Job", String},
	{"Instance", String},
	{"SampleIngestDateTime", Instant},
	{"Writer", Long},
	{"Slot", Long},
}

// SamplesTable holds every sample as a row; it is slotted so that
// retention can bound it.
var SamplesTable = TableSpec{Columns: SampleColumns, Keys: SlotKeys, Time: "PrometheusDateTime", Slotted: true}

// SampleSchema is the Arrow schema of prometheus_samples.
var SampleSchema = SamplesTable.Schema()

// SampleRecord converts sample rows into one Arrow record batch with
// SampleSchema, at the places p. The caller releases it.
func SampleRecord(mem memory.Allocator, rs []SampleRow, p Places) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, SampleSchema)
	defer b.Release()
	b.Reserve(len(rs))
	f := func(i int) *array.StringBuilder { return b.Field(i).(*array.StringBuilder) }
	ts := func(i int) *array.TimestampBuilder { return b.Field(i).(*array.TimestampBuilder) }
	vals := b.Field(4).(*array.Float64Builder)
	for i := range rs {
		r := &rs[i]
		appendInstant(ts(0), r.PrometheusDateTime)
		f(1).Append(r.MetricName)
		f(2).Append(r.SeriesKey)
		f(3).Append(r.Labels)
		vals.Append(r.Value)
		f(5).Append(r.Job)
		f(6).Append(r.Instance)
		appendInstant(ts(7), r.SampleIngestDateTime)
	}
	appendPlaces(b, 8, p)
	return b.NewRecordBatch()
}

// Label is one label of a series.
type Label struct {
	Name, Value string
}

// SeriesText returns the Labels and SeriesKey columns of a series, without
// building a model.LabelSet: labels is model.LabelSet's canonical text of
// ls ({a="1", b="2"}) and key is KeySpec{}.Key of it (the same without
// __name__). ls must be sorted by name, without repeated names; labels
// with an empty value are left out of both, as in Prometheus a label with
// an empty value is no label.
func SeriesText(ls []Label) (labels, key string) {
	// Both texts are built in one buffer, on the stack for common sizes,
	// and become one string: labels first, then key.
	var arr [1024]byte
	b := appendLabelText(arr[:0], ls, func(l Label) bool { return l.Value != "" })
	n := len(b)
	b = appendLabelText(b, ls, KeySpec{}.keeps)
	all := string(b)
	return all[:n], all[n:]
}

// appendQuoted appends s quoted as strconv.AppendQuote does, taking a
// shortcut for the usual printable ASCII.
func appendQuoted(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return strconv.AppendQuote(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

package remotewrite

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// Field numbers of the 1.0 messages that the receiver reads, from
// internal/writev1/remote_write_v1.proto (TestV1FieldNumbers checks them
// against its descriptor, which TestV1DescriptorIsPrometheus pins).
const (
	fieldRequestTimeseries  = 1 // WriteRequest.timeseries
	fieldRequestMetadata    = 3 // WriteRequest.metadata
	fieldSeriesLabels       = 1 // TimeSeries.labels
	fieldSeriesSamples      = 2 // TimeSeries.samples
	fieldSeriesExemplars    = 3 // TimeSeries.exemplars
	fieldSeriesHistograms   = 4 // TimeSeries.histograms
	fieldLabelName          = 1 // Label.name
	fieldLabelValue         = 2 // Label.value
	fieldSampleValue        = 1 // Sample.value
	fieldSampleTimestampMil = 2 // Sample.timestamp
)

// decodeV1 converts a prometheus.WriteRequest. An error means the body is
// no such message; problems with single series are recorded in the batch.
//
// It reads the wire format itself, with protowire, instead of through the
// generated types: those allocate every series, label and sample as an
// object of its own (about 23 allocations per series), which made decoding
// 60 % of the receiver's CPU time. Here labels are read in place, the row
// strings are made once per distinct value and request, and a series
// costs no allocation beyond its row's texts. Like protobuf-go, unknown
// fields are skipped and a known field of an unexpected wire type counts
// as unknown; FuzzDecodeV1 holds it to the generated decoder's results.
func (c *converter) decodeV1(data []byte) error {
	c.borrowed = true
	n, err := countV1(data)
	if err != nil {
		return fmt.Errorf("decode %s: %w", messageV1, err)
	}
	c.b.rows = make([]rows.SampleRow, 0, n)
	i := 0
	for len(data) > 0 {
		num, typ, v, rest, err := consumeField(data)
		if err != nil {
			return fmt.Errorf("decode %s: %w", messageV1, err)
		}
		data = rest
		switch {
		case num == fieldRequestTimeseries && typ == protowire.BytesType:
			if err := c.seriesV1(i, v); err != nil {
				return fmt.Errorf("decode %s: timeseries[%d]: %w", messageV1, i, err)
			}
			i++
		case num == fieldRequestMetadata && typ == protowire.BytesType:
			c.b.metadata++
		}
	}
	return nil
}

// countV1 returns the number of samples of a request, for allocating the
// rows at once. It checks only what it reads.
func countV1(data []byte) (int, error) {
	n := 0
	for len(data) > 0 {
		num, typ, v, rest, err := consumeField(data)
		if err != nil {
			return 0, err
		}
		data = rest
		if num != fieldRequestTimeseries || typ != protowire.BytesType {
			continue
		}
		for len(v) > 0 {
			num, typ, _, r, err := consumeField(v)
			if err != nil {
				return 0, err
			}
			v = r
			if num == fieldSeriesSamples && typ == protowire.BytesType {
				n++
			}
		}
	}
	return n, nil
}

// rawSample is a Sample read off the wire.
type rawSample struct {
	value float64
	ms    int64
}

func (s rawSample) GetValue() float64   { return s.value }
func (s rawSample) GetTimestamp() int64 { return s.ms }

// seriesV1 reads one TimeSeries and converts it. Fields may come in any
// order, so labels and samples are collected before the series is checked.
func (c *converter) seriesV1(i int, data []byte) error {
	c.ls, c.samples = c.ls[:0], c.samples[:0]
	histograms, exemplars := 0, 0
	for len(data) > 0 {
		num, typ, v, rest, err := consumeField(data)
		if err != nil {
			return err
		}
		data = rest
		if typ != protowire.BytesType {
			continue
		}
		switch num {
		case fieldSeriesLabels:
			l, err := labelV1(v)
			if err != nil {
				return fmt.Errorf("labels[%d]: %w", len(c.ls), err)
			}
			c.ls = append(c.ls, l)
		case fieldSeriesSamples:
			s, err := sampleV1(v)
			if err != nil {
				return fmt.Errorf("samples[%d]: %w", len(c.samples), err)
			}
			c.samples = append(c.samples, s)
		case fieldSeriesExemplars:
			exemplars++
		case fieldSeriesHistograms:
			histograms++
		}
	}
	addSeries(c, i, c.samples, histograms, exemplars)
	return nil
}

// labelV1 reads a Label. Its strings point into data: see converter.keep.
func labelV1(data []byte) (rows.Label, error) {
	var l rows.Label
	for len(data) > 0 {
		num, typ, v, rest, err := consumeField(data)
		if err != nil {
			return l, err
		}
		data = rest
		if typ != protowire.BytesType {
			continue
		}
		switch num {
		case fieldLabelName:
			l.Name = yoloString(v)
		case fieldLabelValue:
			l.Value = yoloString(v)
		}
	}
	return l, nil
}

// sampleV1 reads a Sample.
func sampleV1(data []byte) (rawSample, error) {
	var s rawSample
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return s, protowire.ParseError(n)
		}
		data = data[n:]
		switch {
		case num == fieldSampleValue && typ == protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(data)
			if n < 0 {
				return s, protowire.ParseError(n)
			}
			s.value, data = math.Float64frombits(v), data[n:]
		case num == fieldSampleTimestampMil && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(data)
			if n < 0 {
				return s, protowire.ParseError(n)
			}
			s.ms, data = int64(v), data[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, data)
			if n < 0 {
				return s, protowire.ParseError(n)
			}
			data = data[n:]
		}
	}
	return s, nil
}

// consumeField reads one field: its number and wire type, the contents of
// a length-delimited field as v (nil for other types), and what follows.
func consumeField(data []byte) (num protowire.Number, typ protowire.Type, v, rest []byte, err error) {
	num, typ, n := protowire.ConsumeTag(data)
	if n < 0 {
		return 0, 0, nil, nil, protowire.ParseError(n)
	}
	data = data[n:]
	if typ == protowire.BytesType {
		v, n = protowire.ConsumeBytes(data)
	} else {
		n = protowire.ConsumeFieldValue(num, typ, data)
	}
	if n < 0 {
		return 0, 0, nil, nil, protowire.ParseError(n)
	}
	return num, typ, v, data[n:], nil
}

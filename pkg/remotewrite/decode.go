package remotewrite

import (
	"errors"
	"fmt"
	"math"
	"mime"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/klauspost/compress/snappy"
	writev2 "github.com/prometheus/client_golang/exp/api/remote/genproto/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// Version is a remote write protocol version, told by the request's
// Content-Type.
type Version int

// The protocol versions.
const (
	V1 Version = 1 // prometheus.WriteRequest, Content-Type application/x-protobuf
	V2 Version = 2 // io.prometheus.write.v2.Request, application/x-protobuf;proto=io.prometheus.write.v2.Request
)

func (v Version) String() string {
	switch v {
	case V1:
		return "1.0"
	case V2:
		return "2.0"
	}
	return "unknown"
}

// The protobuf messages of the two versions, as named in Content-Type.
const (
	messageV1 = "prometheus.WriteRequest"
	messageV2 = "io.prometheus.write.v2.Request"
)

// errUnsupported marks a request whose Content-Type or Content-Encoding
// the receiver does not take (415).
var errUnsupported = errors.New("unsupported")

// negotiate returns the protocol version of a request from its Content-Type
// and Content-Encoding. Like Prometheus's own receiver it takes a missing
// Content-Type as 1.0 and a missing Content-Encoding as snappy.
func negotiate(contentType, contentEncoding string) (Version, error) {
	if contentEncoding != "" && !strings.EqualFold(contentEncoding, "snappy") {
		return 0, fmt.Errorf("%w Content-Encoding %q, want snappy", errUnsupported, contentEncoding)
	}
	if contentType == "" {
		return V1, nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, fmt.Errorf("%w Content-Type %q: %v", errUnsupported, contentType, err)
	}
	if mt != "application/x-protobuf" {
		return 0, fmt.Errorf("%w Content-Type %q, want application/x-protobuf", errUnsupported, mt)
	}
	switch params["proto"] {
	case "", messageV1:
		return V1, nil
	case messageV2:
		return V2, nil
	}
	return 0, fmt.Errorf("%w protobuf message %q, want %s or %s", errUnsupported, params["proto"], messageV1, messageV2)
}

// errTooLarge marks a body over the limit (413).
var errTooLarge = errors.New("too large")

// decompress returns the snappy block-compressed body decompressed into
// buf's storage, refusing to decompress more than limit bytes.
func decompress(buf, body []byte, limit int64) ([]byte, error) {
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	if int64(n) > limit {
		return nil, fmt.Errorf("%w: the body decompresses to %d bytes, more than the limit of %d", errTooLarge, n, limit)
	}
	out, err := snappy.Decode(buf[:cap(buf)], body)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	return out, nil
}

// Reasons why a received float sample is not written, the reason label
// of prometheus_deephaven_bridge_remote_write_samples_dropped_total.
const (
	// ReasonStale: a staleness marker, which says the series ended; it is
	// no value.
	ReasonStale = "stale_marker"
	// ReasonNotMatched: the series matches no remote_write.match selector.
	ReasonNotMatched = "not_matched"
	// ReasonInvalidLabels: the series' labels break the protocol (no
	// metric name, an invalid or repeated name, invalid UTF-8, an unknown
	// symbol reference). The sender is answered 400.
	ReasonInvalidLabels = "invalid_labels"
	// ReasonInvalidTimestamp: the time cannot be held by an Instant
	// (years 1677 to 2262). The sender is answered 400.
	ReasonInvalidTimestamp = "invalid_timestamp"
)

var dropReasons = []string{ReasonStale, ReasonNotMatched, ReasonInvalidLabels, ReasonInvalidTimestamp}

// staleNaN is the NaN Prometheus writes as a staleness marker
// (model/value.StaleNaN).
const staleNaN = 0x7ff0000000000002

// Instants are nanoseconds in an int64: the millisecond timestamps they
// can hold.
const (
	minMillis = math.MinInt64 / int64(time.Millisecond)
	maxMillis = math.MaxInt64 / int64(time.Millisecond)
)

// maxProblems bounds the problems a 400 response lists.
const maxProblems = 10

// batch is what one request turns into: the rows to write and what was
// left out, and why.
type batch struct {
	rows []rows.SampleRow
	// received counts the float samples; dropped those not in rows, by
	// reason. histograms, exemplars and metadata are never written.
	received   int
	dropped    map[string]int
	histograms int
	exemplars  int
	metadata   int
	// invalid counts the series refused for breaking the protocol;
	// problems describes the first few of them (and of the invalid
	// samples), for the 400 response.
	invalid  int
	problems []string
}

func (b *batch) drop(reason string, n int) {
	if n > 0 {
		b.dropped[reason] += n
	}
}

func (b *batch) problem(format string, args ...any) {
	if len(b.problems) < maxProblems {
		b.problems = append(b.problems, fmt.Sprintf(format, args...))
	}
}

// converter turns the series of one request into rows.
type converter struct {
	match  [][]*labels.Matcher
	ingest time.Time
	b      *batch

	// borrowed says that label strings point into the request's buffer,
	// which is reused: keep copies what rows hold, once per value.
	borrowed bool
	kept     map[string]string

	ls      []rows.Label // scratch
	samples []rawSample  // scratch
}

func newConverter(match [][]*labels.Matcher, ingest time.Time) *converter {
	return &converter{match: match, ingest: ingest, b: &batch{dropped: map[string]int{}}}
}

// keep returns s for a row to hold: s itself, or when it is borrowed a
// copy, the same for every series of the request (metric names, jobs and
// instances repeat).
func (c *converter) keep(s string) string {
	if !c.borrowed || s == "" {
		return s
	}
	if k, ok := c.kept[s]; ok {
		return k
	}
	if c.kept == nil {
		c.kept = map[string]string{}
	}
	k := strings.Clone(s)
	c.kept[k] = k
	return k
}

// sample is what both versions' samples offer.
type sample interface {
	GetValue() float64
	GetTimestamp() int64
}

// decodeV2 converts an io.prometheus.write.v2.Request.
func (c *converter) decodeV2(data []byte) error {
	var req writev2.Request
	if err := req.UnmarshalVT(data); err != nil {
		return fmt.Errorf("decode %s: %w", messageV2, err)
	}
	syms := req.Symbols
	n := 0
	for _, ts := range req.Timeseries {
		n += len(ts.Samples)
	}
	c.b.rows = make([]rows.SampleRow, 0, n)
	for i, ts := range req.Timeseries {
		c.ls = c.ls[:0]
		refs := ts.LabelsRefs
		if len(refs)%2 != 0 {
			c.invalidSeries(i, len(ts.Samples), len(ts.Histograms), len(ts.Exemplars), fmt.Sprintf("odd number of label references (%d)", len(refs)))
			continue
		}
		bad := false
		for j := 0; j < len(refs); j += 2 {
			n, v := refs[j], refs[j+1]
			if int(n) >= len(syms) || int(v) >= len(syms) {
				bad = true
				break
			}
			c.ls = append(c.ls, rows.Label{Name: syms[n], Value: syms[v]})
		}
		if bad {
			c.invalidSeries(i, len(ts.Samples), len(ts.Histograms), len(ts.Exemplars), fmt.Sprintf("label reference out of range (%d symbols)", len(syms)))
			continue
		}
		if len(ts.Samples) == 0 && len(ts.Histograms) == 0 {
			// As Prometheus's receiver: the 2.0 specification wants at
			// least one of them.
			c.invalidSeries(i, 0, 0, len(ts.Exemplars), "no samples and no histograms")
			continue
		}
		addSeries(c, i, ts.Samples, len(ts.Histograms), len(ts.Exemplars))
	}
	return nil
}

// yoloString returns b as a string without copying, as Prometheus's own
// remote write code does. The strings live as long as the request's
// buffer: rows hold copies (converter.keep) or new strings (SeriesText);
// TestDecodeDoesNotAliasInput checks.
func yoloString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// invalidSeries records a series refused whole.
func (c *converter) invalidSeries(i, samples, histograms, exemplars int, why string) {
	b := c.b
	b.received += samples
	b.histograms += histograms
	b.exemplars += exemplars
	b.drop(ReasonInvalidLabels, samples)
	b.invalid++
	b.problem("series %d: %s", i, why)
}

// addSeries converts the series in c.ls (as sent) with its samples into
// rows. i is the series' index in the request, for problem reports.
func addSeries[S sample](c *converter, i int, samples []S, histograms, exemplars int) {
	name, why := c.checkLabels()
	if why != "" {
		c.invalidSeries(i, len(samples), histograms, exemplars, fmt.Sprintf("%s %s", why, labelsForError(c.ls)))
		return
	}
	b := c.b
	b.received += len(samples)
	b.histograms += histograms
	b.exemplars += exemplars
	if !c.matches() {
		b.drop(ReasonNotMatched, len(samples))
		return
	}
	var labelsText, key, job, instance string
	for _, s := range samples {
		v, ms := s.GetValue(), s.GetTimestamp()
		if math.Float64bits(v) == staleNaN {
			b.drop(ReasonStale, 1)
			continue
		}
		if ms < minMillis || ms > maxMillis {
			b.drop(ReasonInvalidTimestamp, 1)
			b.problem("series %d %s: timestamp %d ms is out of range", i, labelsForError(c.ls), ms)
			continue
		}
		if labelsText == "" {
			labelsText, key = rows.SeriesText(c.ls)
			name, job, instance = c.keep(name), c.keep(c.label(model.JobLabel)), c.keep(c.label(model.InstanceLabel))
		}
		b.rows = append(b.rows, rows.SampleRow{
			PrometheusDateTime:   time.UnixMilli(ms).UTC(),
			MetricName:           name,
			SeriesKey:            key,
			Labels:               labelsText,
			Value:                v,
			Job:                  job,
			Instance:             instance,
			SampleIngestDateTime: c.ingest,
		})
	}
}

// checkLabels validates the series' labels as Prometheus's receiver does
// (a metric name, valid UTF-8 names and values, no name twice) and sorts
// them by name if the sender did not. It returns the metric name, or why
// the series is invalid.
func (c *converter) checkLabels() (name, why string) {
	ls := c.ls
	sorted := true
	for i, l := range ls {
		if !model.UTF8Validation.IsValidLabelName(l.Name) {
			return "", fmt.Sprintf("invalid label name %q in", l.Name)
		}
		if !utf8.ValidString(l.Value) {
			return "", fmt.Sprintf("invalid UTF-8 in the value of label %q in", l.Name)
		}
		if l.Name == model.MetricNameLabel {
			name = l.Value
		}
		if i > 0 && ls[i-1].Name >= l.Name {
			sorted = false
		}
	}
	if !sorted {
		slices.SortStableFunc(ls, func(a, b rows.Label) int { return strings.Compare(a.Name, b.Name) })
		for i := 1; i < len(ls); i++ {
			if ls[i-1].Name == ls[i].Name {
				return "", fmt.Sprintf("label %q repeated in", ls[i].Name)
			}
		}
	}
	if name == "" {
		return "", "no metric name (__name__) in"
	}
	return name, ""
}

// label returns the value of a label of the series, "" if absent.
func (c *converter) label(name string) string {
	for _, l := range c.ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// matches reports whether the series matches one of the selectors (all
// its matchers), or there are none. A missing label matches as "".
func (c *converter) matches() bool {
	if len(c.match) == 0 {
		return true
	}
	for _, sel := range c.match {
		ok := true
		for _, m := range sel {
			if !m.Matches(c.label(m.Name)) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// labelsForError renders labels for a problem report, bounded in length.
func labelsForError(ls []rows.Label) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q=%q", l.Name, l.Value)
		if b.Len() > 200 {
			b.WriteString(", …")
			break
		}
	}
	b.WriteByte('}')
	return b.String()
}

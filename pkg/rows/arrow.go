package rows

import (
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// instantType is how Instant columns travel: nanoseconds since the epoch, UTC.
var instantType = &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}

// ArrowType returns the Arrow type a column is uploaded as.
func (t ColumnType) ArrowType() arrow.DataType {
	switch t {
	case String:
		return arrow.BinaryTypes.String
	case Double:
		return arrow.PrimitiveTypes.Float64
	case Instant:
		return instantType
	case Long:
		return arrow.PrimitiveTypes.Int64
	case Bool:
		return arrow.FixedWidthTypes.Boolean
	}
	return arrow.Null
}

// Schema returns the Arrow schema of the table's columns, in order.
func (s TableSpec) Schema() *arrow.Schema {
	fields := make([]arrow.Field, len(s.Columns))
	for i, c := range s.Columns {
		fields[i] = arrow.Field{Name: c.Name, Type: c.Type.ArrowType(), Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

// Schemas of the input tables, built once.
var (
	AlertSchema      = AlertsTable.Schema()
	MetricSchema     = MetricsTable.Schema()
	CheckpointSchema = CheckpointsTable.Schema()
	RuleSchema       = RulesTable.Schema()
	StateSchema      = StateTable.Schema()
	// NotificationSchema is the schema of prometheus_alert_notifications.
	NotificationSchema = NotificationsTable.Schema()
)

func appendInstant(b *array.TimestampBuilder, t time.Time) {
	if t.IsZero() {
		b.AppendNull()
		return
	}
	b.Append(arrow.Timestamp(t.UnixNano()))
}

// AlertRecord converts alert rows into one Arrow record batch with
// AlertSchema. The caller releases it.
func AlertRecord(mem memory.Allocator, rs []AlertRow) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, AlertSchema)
	defer b.Release()
	b.Reserve(len(rs))
	f := func(i int) *array.StringBuilder { return b.Field(i).(*array.StringBuilder) }
	ts := func(i int) *array.TimestampBuilder { return b.Field(i).(*array.TimestampBuilder) }
	alertValue := b.Field(18).(*array.Float64Builder)
	// Sized up front, as in MetricRecord.
	var size [18]int
	for i := range rs {
		r := &rs[i]
		size[1] += len(r.Job)
		size[2] += len(r.Instance)
		size[3] += len(r.PrometheusQuery)
		size[4] += len(r.Status)
		size[6] += len(r.AlertName)
		size[7] += len(r.Severity)
		size[8] += len(r.Fingerprint)
		size[11] += len(r.Labels)
		size[12] += len(r.Annotations)
		size[13] += len(r.GeneratorURL)
		size[14] += len(r.Receiver)
		size[15] += len(r.Source)
		size[16] += len(r.SeriesKey)
		size[17] += len(r.Values)
	}
	reserveStrings(b, size[:])
	for i := range rs {
		r := &rs[i]
		appendInstant(ts(0), r.PrometheusDateTime)
		f(1).Append(r.Job)
		f(2).Append(r.Instance)
		f(3).Append(r.PrometheusQuery)
		f(4).Append(r.Status)
		appendInstant(ts(5), r.AlertIngestDateTime)
		f(6).Append(r.AlertName)
		f(7).Append(r.Severity)
		f(8).Append(r.Fingerprint)
		appendInstant(ts(9), r.StartsAt)
		appendInstant(ts(10), r.EndsAt)
		f(11).Append(r.Labels)
		f(12).Append(r.Annotations)
		f(13).Append(r.GeneratorURL)
		f(14).Append(r.Receiver)
		f(15).Append(r.Source)
		f(16).Append(r.SeriesKey)
		f(17).Append(r.Values)
		if r.AlertValue != nil {
			alertValue.Append(*r.AlertValue)
		} else {
			alertValue.AppendNull()
		}
	}
	return b.NewRecordBatch()
}

// Places are where the rows of a slotted table go: the writer of them all,
// and each row's slot, in order (see TableSpec.Slotted).
type Places struct {
	Writer int64
	Slots  []int64
}

// appendPlaces fills the slot columns, which start at field i.
func appendPlaces(b *array.RecordBuilder, i int, p Places) {
	w := b.Field(i).(*array.Int64Builder)
	for range p.Slots {
		w.Append(p.Writer)
	}
	b.Field(i+1).(*array.Int64Builder).AppendValues(p.Slots, nil)
}

// MetricRecord converts metric rows into one Arrow record batch with
// MetricSchema, at the places p (one slot per row). The caller releases it.
func MetricRecord(mem memory.Allocator, rs []MetricRow, p Places) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, MetricSchema)
	defer b.Release()
	b.Reserve(len(rs))
	f := func(i int) *array.StringBuilder { return b.Field(i).(*array.StringBuilder) }
	ts := func(i int) *array.TimestampBuilder { return b.Field(i).(*array.TimestampBuilder) }
	vals := b.Field(4).(*array.Float64Builder)
	// Sizing the string data up front spares a big batch the copies of a
	// buffer that doubles as it grows.
	var size [8]int
	for i := range rs {
		r := &rs[i]
		size[1] += len(r.PrometheusQuery)
		size[2] += len(r.Job)
		size[3] += len(r.Instance)
		size[6] += len(r.Labels)
		size[7] += len(r.SeriesKey)
	}
	reserveStrings(b, size[:])
	for i := range rs {
		r := &rs[i]
		appendInstant(ts(0), r.PrometheusDateTime)
		f(1).Append(r.PrometheusQuery)
		f(2).Append(r.Job)
		f(3).Append(r.Instance)
		vals.Append(r.Value)
		appendInstant(ts(5), r.MetricIngestDateTime)
		f(6).Append(r.Labels)
		f(7).Append(r.SeriesKey)
	}
	appendPlaces(b, 8, p)
	return b.NewRecordBatch()
}

// CheckpointRecord converts checkpoint rows into one Arrow record batch with
// CheckpointSchema. The caller releases it.
func CheckpointRecord(mem memory.Allocator, rs []CheckpointRow) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, CheckpointSchema)
	defer b.Release()
	f := func(i int) *array.StringBuilder { return b.Field(i).(*array.StringBuilder) }
	for i := range rs {
		r := &rs[i]
		f(0).Append(r.Bridge)
		f(1).Append(r.AlertsTable)
		f(2).Append(r.Host)
		f(3).Append(r.Journal)
		appendInstant(b.Field(4).(*array.TimestampBuilder), r.Since)
	}
	return b.NewRecordBatch()
}

// RuleRecord converts rule rows into one Arrow record batch with
// RuleSchema. The caller releases it.
func RuleRecord(mem memory.Allocator, rs []RuleRow) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, RuleSchema)
	defer b.Release()
	b.Reserve(len(rs))
	f := func(i int) *array.StringBuilder { return b.Field(i).(*array.StringBuilder) }
	d := func(i int) *array.Float64Builder { return b.Field(i).(*array.Float64Builder) }
	bl := func(i int) *array.BooleanBuilder { return b.Field(i).(*array.BooleanBuilder) }
	ts := func(i int) *array.TimestampBuilder { return b.Field(i).(*array.TimestampBuilder) }
	for i := range rs {
		r := &rs[i]
		f(0).Append(r.Group)
		f(1).Append(r.File)
		f(2).Append(r.AlertName)
		f(3).Append(r.Expr)
		f(4).Append(r.ValueExpr)
		bl(5).Append(r.Reduced)
		f(6).Append(r.Derivation)
		f(7).Append(r.Query)
		f(8).Append(r.JoinLabels)
		d(9).Append(r.ForSeconds)
		d(10).Append(r.IntervalSeconds)
		f(11).Append(r.StaticLabels)
		f(12).Append(r.Annotations)
		f(13).Append(r.Health)
		f(14).Append(r.LastError)
		f(15).Append(r.State)
		b.Field(16).(*array.Int64Builder).Append(r.ActiveAlerts)
		appendInstant(ts(17), r.LastEvaluation)
		appendInstant(ts(18), r.UpdatedAt)
		bl(19).Append(r.Present)
	}
	return b.NewRecordBatch()
}

// StateRecord converts alert state rows into one Arrow record batch with
// StateSchema. The caller releases it.
func StateRecord(mem memory.Allocator, rs []AlertStateRow) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, StateSchema)
	defer b.Release()
	b.Reserve(len(rs))
	f := func(i int) *array.StringBuilder { return b.Field(i).(*array.StringBuilder) }
	ts := func(i int) *array.TimestampBuilder { return b.Field(i).(*array.TimestampBuilder) }
	for i := range rs {
		r := &rs[i]
		f(0).Append(r.Fingerprint)
		f(1).Append(r.AlertName)
		f(2).Append(r.Severity)
		f(3).Append(r.State)
		f(4).Append(r.SilencedBy)
		f(5).Append(r.InhibitedBy)
		f(6).Append(r.Receivers)
		appendInstant(ts(7), r.StartsAt)
		appendInstant(ts(8), r.EndsAt)
		appendInstant(ts(9), r.UpdatedAt)
		f(10).Append(r.Labels)
		f(11).Append(r.Annotations)
		f(12).Append(r.GeneratorURL)
		f(13).Append(r.Alertmanager)
		appendInstant(ts(14), r.SyncedAt)
	}
	return b.NewRecordBatch()
}

// NotificationRecord converts notification rows into one Arrow record batch
// with NotificationSchema. The caller releases it.
func NotificationRecord(mem memory.Allocator, rs []NotificationRow, p Places) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, NotificationSchema)
	defer b.Release()
	b.Reserve(len(rs))
	f := func(i int) *array.StringBuilder { return b.Field(i).(*array.StringBuilder) }
	ts := func(i int) *array.TimestampBuilder { return b.Field(i).(*array.TimestampBuilder) }
	var size [7]int
	for i := range rs {
		r := &rs[i]
		size[0] += len(r.Fingerprint)
		size[2] += len(r.Status)
		size[3] += len(r.AlertName)
		size[5] += len(r.Source)
		size[6] += len(r.Receiver)
	}
	reserveStrings(b, size[:])
	for i := range rs {
		r := &rs[i]
		f(0).Append(r.Fingerprint)
		appendInstant(ts(1), r.StartsAt)
		f(2).Append(r.Status)
		f(3).Append(r.AlertName)
		appendInstant(ts(4), r.ReceivedAt)
		f(5).Append(r.Source)
		f(6).Append(r.Receiver)
	}
	appendPlaces(b, 7, p)
	return b.NewRecordBatch()
}

// reserveStrings sizes the data of each string column i of b for size[i]
// bytes (columns of size 0 are left alone).
func reserveStrings(b *array.RecordBuilder, size []int) {
	for i, n := range size {
		if n > 0 {
			b.Field(i).(*array.StringBuilder).ReserveData(n)
		}
	}
}

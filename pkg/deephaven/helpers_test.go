package deephaven_test

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
)

var nameSeq atomic.Int64

// uniqueName gives each test its own global names on the shared server.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, time.Now().UnixNano()%1e9, nameSeq.Add(1))
}

func dial(t testing.TB, addr string, opts ...deephaven.Option) *deephaven.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := deephaven.Dial(ctx, addr, opts...)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func shared(t testing.TB) *deephaven.Client { return dial(t, testenv.Deephaven(t)) }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

var instant = &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}

// allTypes is a schema with every column type the client supports.
var allTypes = arrow.NewSchema([]arrow.Field{
	{Name: "S", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "D", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "L", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "I", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "B", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "T", Type: instant, Nullable: true},
}, nil)

// allTypesRecord has nulls in every column, NaN and ±Inf.
func allTypesRecord() arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, allTypes)
	defer b.Release()
	valid := []bool{true, true, true, true, false}
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"a", `quo"te`, "ünï", "", ""}, valid)
	b.Field(1).(*array.Float64Builder).AppendValues([]float64{1.5, math.NaN(), math.Inf(1), math.Inf(-1), 0}, valid)
	b.Field(2).(*array.Int64Builder).AppendValues([]int64{1, math.MaxInt64, math.MinInt64 + 1, 0, 0}, valid)
	b.Field(3).(*array.Int32Builder).AppendValues([]int32{1, math.MaxInt32, -5, 0, 0}, valid)
	b.Field(4).(*array.BooleanBuilder).AppendValues([]bool{true, false, true, false, false}, valid)
	b.Field(5).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{1, 1_700_000_000_123_456_789, 0, -1_000, 0}, valid)
	return b.NewRecordBatch()
}

// keyValue makes a (K string, V double, At Instant) record.
var kvSchema = arrow.NewSchema([]arrow.Field{
	{Name: "K", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "V", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "At", Type: instant, Nullable: true},
}, nil)

func kv(keys []string, vals []float64, at []int64) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, kvSchema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues(keys, nil)
	b.Field(1).(*array.Float64Builder).AppendValues(vals, nil)
	ts := make([]arrow.Timestamp, len(at))
	for i, v := range at {
		ts[i] = arrow.Timestamp(v)
	}
	b.Field(2).(*array.TimestampBuilder).AppendValues(ts, nil)
	return b.NewRecordBatch()
}

// snapshot reads a table and returns its columns by name as Go values.
func snapshot(t testing.TB, c *deephaven.Client, tb *deephaven.Table) (arrow.Table, map[string][]any) {
	t.Helper()
	tab, err := c.Snapshot(ctxT(t), tb)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	t.Cleanup(tab.Release)
	cols := map[string][]any{}
	for i, f := range tab.Schema().Fields() {
		var vals []any
		for _, chunk := range tab.Column(i).Data().Chunks() {
			for j := 0; j < chunk.Len(); j++ {
				if chunk.IsNull(j) {
					vals = append(vals, nil)
					continue
				}
				switch a := chunk.(type) {
				case *array.String:
					vals = append(vals, a.Value(j))
				case *array.Float64:
					vals = append(vals, a.Value(j))
				case *array.Int64:
					vals = append(vals, a.Value(j))
				case *array.Int32:
					vals = append(vals, a.Value(j))
				case *array.Boolean:
					vals = append(vals, a.Value(j))
				case *array.Timestamp:
					vals = append(vals, int64(a.Value(j)))
				default:
					vals = append(vals, a.ValueStr(j))
				}
			}
		}
		cols[f.Name] = vals
	}
	return tab, cols
}

func sameFloat(a, b float64) bool {
	return a == b || (math.IsNaN(a) && math.IsNaN(b))
}

var (
	nan = math.NaN()
	inf = math.Inf(1)
)

func bigRecord(n int) arrow.RecordBatch {
	keys := make([]string, n)
	vals := make([]float64, n)
	at := make([]int64, n)
	base := time.Now().UnixNano()
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
		vals[i] = float64(i)
		at[i] = base + int64(i)
	}
	return kv(keys, vals, at)
}

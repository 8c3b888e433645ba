package deephaven_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
)

// keysOnly is the key column of kvSchema, for deletes.
var keysOnly = arrow.NewSchema([]arrow.Field{{Name: "K", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)

func keyRecord(keys ...string) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, keysOnly)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues(keys, nil)
	return b.NewRecordBatch()
}

// settled reads tb until the columns in want have the wanted values or 10 s
// pass: a derived table takes the server's next update cycle (usually at
// once, longer when a formula compiles on first use) to see an add.
func settled(t *testing.T, c *deephaven.Client, tb *deephaven.Table, want map[string][]any) map[string][]any {
	t.Helper()
	var cols map[string][]any
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, cols = snapshot(t, c, tb)
		ok := true
		for k, v := range want {
			ok = ok && reflect.DeepEqual(cols[k], v)
		}
		if ok || time.Now().After(deadline) {
			return cols
		}
	}
}

// AggBy over a key-backed input table is computed by the server and ticks on
// adds, replacements and deletes; min/max pick by value, not by position.
func TestAggByTicksOnInputTable(t *testing.T) {
	c := shared(t)
	ctx := ctxT(t)
	it, err := c.CreateInputTable(ctx, uniqueName("agg"), kvSchema, "K")
	if err != nil {
		t.Fatal(err)
	}
	g, err := it.Table().UpdateView(ctx, "G = K.substring(0, 1)")
	if err != nil {
		t.Fatal(err)
	}
	agg, err := g.AggBy(ctx, []deephaven.Agg{
		deephaven.AggCount("N"),
		deephaven.AggMin("MinAt=At"),
		deephaven.AggMax("MaxAt=At", "MaxV=V"),
		deephaven.AggSum("SumV=V"),
		deephaven.AggSortedLast("At", "NewestV=V"),
		deephaven.AggCountWhere("Big", "V > 10"),
		deephaven.AggCountDistinct("Keys=K"),
	}, "G")
	if err != nil {
		t.Fatal(err)
	}
	sorted, err := agg.Sort(ctx, deephaven.Asc("G"))
	if err != nil {
		t.Fatal(err)
	}
	add := func(keys []string, vals []float64, at []int64) {
		t.Helper()
		r := kv(keys, vals, at)
		defer r.Release()
		if err := it.Add(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	add([]string{"a1", "a2", "b1"}, []float64{5, 20, 7}, []int64{300, 100, 50})
	want := map[string][]any{
		"G": {"a", "b"}, "N": {int64(2), int64(1)},
		"MinAt": {int64(100), int64(50)}, "MaxAt": {int64(300), int64(50)}, "MaxV": {20.0, 7.0},
		"SumV": {25.0, 7.0}, "NewestV": {5.0, 7.0}, "Big": {int64(1), int64(0)}, "Keys": {int64(2), int64(1)},
	}
	cols := settled(t, c, sorted, want)
	for k, v := range want {
		if !reflect.DeepEqual(cols[k], v) {
			t.Errorf("after adds: %s = %v, want %v", k, cols[k], v)
		}
	}
	// Replace a1 (its row keeps its position) with a newer time, delete b1.
	add([]string{"a1"}, []float64{1}, []int64{900})
	kr := keyRecord("b1")
	defer kr.Release()
	if err := it.Delete(ctx, keysOnly, kr); err != nil {
		t.Fatal(err)
	}
	want = map[string][]any{
		"G": {"a"}, "N": {int64(2)}, "MinAt": {int64(100)}, "MaxAt": {int64(900)},
		"SumV": {21.0}, "NewestV": {1.0}, "Big": {int64(1)},
	}
	cols = settled(t, c, sorted, want)
	for k, v := range want {
		if !reflect.DeepEqual(cols[k], v) {
			t.Errorf("after replace and delete: %s = %v, want %v", k, cols[k], v)
		}
	}
}

// Merge, NaturalJoin, WhereIn and SelectDistinct are server-side and tick.
func TestMergeJoinWhereIn(t *testing.T) {
	c := shared(t)
	ctx := ctxT(t)
	a, err := c.CreateInputTable(ctx, uniqueName("ma"), kvSchema)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.CreateInputTable(ctx, uniqueName("mb"), kvSchema, "K")
	if err != nil {
		t.Fatal(err)
	}
	merged, err := c.Merge(ctx, a.Table(), b.Table())
	if err != nil {
		t.Fatal(err)
	}
	distinct, err := merged.SelectDistinct(ctx, "K")
	if err != nil {
		t.Fatal(err)
	}
	joined, err := c.NaturalJoin(ctx, a.Table(), b.Table(), []string{"K"}, []string{"BV=V"})
	if err != nil {
		t.Fatal(err)
	}
	in, err := c.WhereIn(ctx, a.Table(), b.Table(), false, "K")
	if err != nil {
		t.Fatal(err)
	}
	notIn, err := c.WhereIn(ctx, a.Table(), b.Table(), true, "K")
	if err != nil {
		t.Fatal(err)
	}
	r1 := kv([]string{"x", "y", "x"}, []float64{1, 2, 3}, []int64{1, 2, 3})
	defer r1.Release()
	r2 := kv([]string{"x"}, []float64{10}, []int64{4})
	defer r2.Release()
	if err := a.Add(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(ctx, r2); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tb   *deephaven.Table
		col  string
		want []any
	}{
		{"merge", merged, "V", []any{1.0, 2.0, 3.0, 10.0}},
		{"select distinct", distinct, "K", []any{"x", "y"}},
		{"natural join", joined, "BV", []any{10.0, nil, 10.0}},
		{"where in", in, "V", []any{1.0, 3.0}},
		{"where not in", notIn, "V", []any{2.0}},
	} {
		if cols := settled(t, c, tc.tb, map[string][]any{tc.col: tc.want}); !reflect.DeepEqual(cols[tc.col], tc.want) {
			t.Errorf("%s: %s = %v, want %v", tc.name, tc.col, cols[tc.col], tc.want)
		}
	}
}

// Retention's step: freeze the rows older than a cutoff, read them, delete
// exactly those by the frozen table. A row that arrives after the freeze
// stays, even though it matches the filter; the live count ticks.
func TestFreezeReadDeleteRows(t *testing.T) {
	c := shared(t)
	ctx := ctxT(t)
	it, err := c.CreateInputTable(ctx, uniqueName("ret"), kvSchema, "K", "At")
	if err != nil {
		t.Fatal(err)
	}
	count, err := it.Table().AggBy(ctx, []deephaven.Agg{deephaven.AggCount("N")})
	if err != nil {
		t.Fatal(err)
	}
	add := func(keys []string, at []int64) {
		t.Helper()
		r := kv(keys, make([]float64, len(keys)), at)
		defer r.Release()
		if err := it.Add(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	add([]string{"a", "a", "b", "b"}, []int64{100, 200, 100, 300})
	old, err := it.Table().Where(ctx, "At < '1970-01-01T00:00:00.000000250Z'")
	if err != nil {
		t.Fatal(err)
	}
	frozen, err := old.Freeze(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !frozen.IsStatic() || frozen.Size() != 3 {
		t.Fatalf("frozen: static %v size %d, want static with 3 rows", frozen.IsStatic(), frozen.Size())
	}
	add([]string{"late"}, []int64{150}) // matches the filter, arrived after the freeze
	var read int64
	if err := c.Read(ctx, frozen, func(_ *arrow.Schema, rec arrow.RecordBatch) error {
		if rec != nil {
			read += rec.NumRows()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if read != 3 {
		t.Fatalf("read %d rows from the frozen table, want 3", read)
	}
	if err := it.DeleteRows(ctx, frozen); err != nil {
		t.Fatal(err)
	}
	settled(t, c, count, map[string][]any{"N": {int64(2)}})
	sorted, err := it.Table().Sort(ctx, deephaven.Asc("K"))
	if err != nil {
		t.Fatal(err)
	}
	_, cols := snapshot(t, c, sorted)
	if want := []any{"b", "late"}; !reflect.DeepEqual(cols["K"], want) {
		t.Errorf("left K = %v, want %v", cols["K"], want)
	}
	ao, err := c.CreateInputTable(ctx, uniqueName("ret_ao"), kvSchema)
	if err != nil {
		t.Fatal(err)
	}
	if err := ao.DeleteRows(ctx, frozen); err == nil {
		t.Error("DeleteRows on an append-only table: no error")
	}
}

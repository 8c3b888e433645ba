package deephaven_test

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
)

func TestSessionAnonymous(t *testing.T) {
	c := shared(t)
	if st := c.Status(); st.State != deephaven.Connected || st.Session != 1 || st.LastError != nil {
		t.Fatalf("status after Dial = %+v, want connected session 1", st)
	}
	cfg, err := c.ServerConfig(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cfg["deephaven.version"], "42.") {
		t.Errorf("deephaven.version = %q, want 42.x", cfg["deephaven.version"])
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := c.Ping(ctxT(t)); !errors.Is(err, deephaven.ErrClosed) {
		t.Fatalf("ping after close = %v, want ErrClosed", err)
	}
}

func TestPreSharedKey(t *testing.T) {
	const key = "s3cret-psk-value-for-test"
	srv := testenv.StartDeephaven(t, testenv.DeephavenOptions{PSK: key})
	c := dial(t, srv.Addr(), deephaven.WithAuth(deephaven.PreSharedKey(key)))
	if err := c.Ping(ctxT(t)); err != nil {
		t.Fatalf("ping with the right key: %v", err)
	}
	for name, auth := range map[string]deephaven.Auth{
		"wrong key": deephaven.PreSharedKey("not-the-key"),
		"anonymous": deephaven.Anonymous(),
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := deephaven.Dial(ctx, srv.Addr(), deephaven.WithAuth(auth))
		cancel()
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: dial error = %v, want Unauthenticated", name, err)
		}
		if err != nil && strings.Contains(err.Error(), key) {
			t.Errorf("%s: error text contains the key", name)
		}
	}
	if s := deephaven.PreSharedKey(key).String(); strings.Contains(s, key) {
		t.Errorf("Auth.String() shows the key: %q", s)
	}
}

func TestTypesRoundTrip(t *testing.T) {
	c := shared(t)
	rec := allTypesRecord()
	defer rec.Release()
	tb, err := c.Import(ctxT(t), allTypes, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Release(ctxT(t))
	tab, cols := snapshot(t, c, tb)
	want := map[string]string{"S": "java.lang.String", "D": "double", "L": "long", "I": "int", "B": "java.lang.Boolean", "T": "java.time.Instant"}
	for _, f := range tab.Schema().Fields() {
		if got := deephaven.TypeName(f); got != want[f.Name] {
			t.Errorf("column %s: Deephaven type %s, want %s", f.Name, got, want[f.Name])
		}
	}
	if tt, ok := tab.Schema().Field(5).Type.(*arrow.TimestampType); !ok || tt.Unit != arrow.Nanosecond {
		t.Errorf("T came back as %s, want timestamp[ns]", tab.Schema().Field(5).Type)
	}
	if got, want := cols["S"], []any{"a", `quo"te`, "ünï", "", nil}; !reflect.DeepEqual(got, want) {
		t.Errorf("S = %q, want %q", got, want)
	}
	wantD := []float64{1.5, nan, inf, -inf}
	for i, w := range wantD {
		if g := cols["D"][i].(float64); !sameFloat(g, w) {
			t.Errorf("D[%d] = %v, want %v", i, g, w)
		}
	}
	if cols["D"][4] != nil {
		t.Errorf("D[4] = %v, want null", cols["D"][4])
	}
	if got, want := cols["L"], []any{int64(1), int64(9223372036854775807), int64(-9223372036854775807), int64(0), nil}; !reflect.DeepEqual(got, want) {
		t.Errorf("L = %v, want %v", got, want)
	}
	if got, want := cols["I"], []any{int32(1), int32(2147483647), int32(-5), int32(0), nil}; !reflect.DeepEqual(got, want) {
		t.Errorf("I = %v, want %v", got, want)
	}
	if got, want := cols["B"], []any{true, false, true, false, nil}; !reflect.DeepEqual(got, want) {
		t.Errorf("B = %v, want %v", got, want)
	}
	if got, want := cols["T"], []any{int64(1), int64(1_700_000_000_123_456_789), int64(0), int64(-1000), nil}; !reflect.DeepEqual(got, want) {
		t.Errorf("T = %v, want %v", got, want)
	}
}

func TestInputTables(t *testing.T) {
	c := shared(t)
	ctx := ctxT(t)
	appendName, keyedName := uniqueName("append"), uniqueName("keyed")

	app, err := c.CreateInputTable(ctx, appendName, kvSchema)
	if err != nil {
		t.Fatal(err)
	}
	r := kv([]string{"a", "b"}, []float64{1, 2}, []int64{10, 20})
	defer r.Release()
	for i := 0; i < 2; i++ {
		if err := app.Add(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, cols := snapshot(t, c, app.Table()); len(cols["K"]) != 4 {
		t.Errorf("append-only table has %d rows after two adds of 2, want 4", len(cols["K"]))
	}

	keyed, err := c.CreateInputTable(ctx, keyedName, kvSchema, "K")
	if err != nil {
		t.Fatal(err)
	}
	r2 := kv([]string{"a", "b"}, []float64{5, 6}, []int64{10, 20})
	defer r2.Release()
	if err := keyed.Add(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := keyed.Add(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if _, cols := snapshot(t, c, keyed.Table()); !reflect.DeepEqual(cols["V"], []any{5.0, 6.0}) {
		t.Errorf("key-backed table V = %v, want [5 6] (a repeated key replaces its row)", cols["V"])
	}

	// Found by name, schema checked.
	if _, err := c.OpenInputTable(ctx, keyedName, kvSchema, "K"); err != nil {
		t.Errorf("open with the right schema: %v", err)
	}
	if _, created, err := c.EnsureInputTable(ctx, keyedName, kvSchema, "K"); err != nil || created {
		t.Errorf("ensure existing table: created=%v err=%v, want found", created, err)
	}
	wrong := arrow.NewSchema([]arrow.Field{
		{Name: "K", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "V", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "At", Type: instant, Nullable: true},
	}, nil)
	_, err = c.OpenInputTable(ctx, keyedName, wrong, "K")
	var se *deephaven.SchemaError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), `column "V" has type double, want long`) {
		t.Errorf("open with a wrong type: %v, want a SchemaError naming V and both types", err)
	}
	if _, err := c.OpenInputTable(ctx, keyedName, kvSchema, "V"); err == nil || !strings.Contains(err.Error(), "key columns are [K], want [V]") {
		t.Errorf("open with wrong keys: %v", err)
	}
	if _, err := c.OpenInputTable(ctx, appendName, kvSchema, "K"); err == nil {
		t.Errorf("opening an append-only table as key-backed should fail")
	}
	_, err = c.OpenInputTable(ctx, uniqueName("missing"), kvSchema)
	if !deephaven.IsNotFound(err) {
		t.Errorf("open of an unknown name: %v, want NotFound", err)
	}
	// A table that is not an input table is refused.
	imp, err := c.Import(ctx, kvSchema, r)
	if err != nil {
		t.Fatal(err)
	}
	staticName := uniqueName("static")
	if err := c.Publish(ctx, imp, staticName); err != nil {
		t.Fatal(err)
	}
	if _, err := c.OpenInputTable(ctx, staticName, kvSchema); err == nil || !strings.Contains(err.Error(), "not an input table") {
		t.Errorf("open of a static table as input table: %v", err)
	}
}

func TestServerErrorsComeBackPromptly(t *testing.T) {
	c := shared(t)
	ctx := ctxT(t)
	it, err := c.CreateInputTable(ctx, uniqueName("errs"), kvSchema, "K")
	if err != nil {
		t.Fatal(err)
	}
	// The server rejects rows of another schema; our client checks first.
	rec := allTypesRecord()
	defer rec.Release()
	if err := it.Add(ctx, rec); err == nil {
		t.Errorf("adding rows of another schema succeeded")
	}
	// Straight to the server: an input table with the name of our table but
	// a different schema.
	other, err := c.CreateInputTable(ctx, uniqueName("errs2"), allTypes)
	if err != nil {
		t.Fatal(err)
	}
	wrongTarget := deephaven.InputTableForTest(c, it.Name(), allTypes)
	err = wrongTarget.Add(ctx, rec)
	var de *deephaven.Error
	if !errors.As(err, &de) || de.Code != codes.InvalidArgument || !strings.Contains(de.Message, "not compatible") {
		t.Errorf("schema mismatch on add: %v, want InvalidArgument with the server's reason", err)
	}
	_ = other
	// Unknown column in an as-of join.
	start := time.Now()
	_, err = c.AsOfJoin(ctx, it.Table(), it.Table(), []string{"Nope"}, "At>=At", nil)
	if !errors.As(err, &de) || de.Code != codes.InvalidArgument {
		t.Errorf("aj on an unknown column: %v, want InvalidArgument", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("aj error took %v", time.Since(start))
	}
	// Unknown name.
	_, err = c.OpenTable(ctx, uniqueName("nothing"))
	if !deephaven.IsNotFound(err) || status.Code(err) != codes.NotFound {
		t.Errorf("open unknown table: %v, want NotFound", err)
	}
	// The session survives all of the above.
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("session broken after errors: %v", err)
	}
	// Deadlines are honoured.
	dctx, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	if _, err := c.ListTables(dctx); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("call with an expired deadline: %v, want DeadlineExceeded", err)
	}
}

func TestTableOperations(t *testing.T) {
	c := shared(t)
	ctx := ctxT(t)
	left := kv([]string{"a", "b", "a"}, []float64{0, 0, 0}, []int64{15, 25, 35})
	defer left.Release()
	right := kv([]string{"a", "a", "b", "a"}, []float64{1, 2, 3, 4}, []int64{10, 20, 20, 40})
	defer right.Release()
	lt, err := c.Import(ctx, kvSchema, left)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := c.Import(ctx, kvSchema, right)
	if err != nil {
		t.Fatal(err)
	}
	j, err := c.AsOfJoin(ctx, lt, rt, []string{"K"}, "At>=At", []string{"RV=V", "RAt=At"})
	if err != nil {
		t.Fatal(err)
	}
	_, cols := snapshot(t, c, j)
	if want := []any{1.0, 3.0, 2.0}; !reflect.DeepEqual(cols["RV"], want) {
		t.Errorf("aj RV = %v, want %v", cols["RV"], want)
	}
	if want := []any{int64(10), int64(20), int64(20)}; !reflect.DeepEqual(cols["RAt"], want) {
		t.Errorf("aj RAt = %v, want %v", cols["RAt"], want)
	}

	w, err := rt.Where(ctx, `K == "a"`, "V > 1")
	if err != nil {
		t.Fatal(err)
	}
	u, err := w.Update(ctx, "V2 = V * 2")
	if err != nil {
		t.Fatal(err)
	}
	d, err := u.DropColumns(ctx, "At")
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.Sort(ctx, deephaven.Desc("V"))
	if err != nil {
		t.Fatal(err)
	}
	tl, err := s.Tail(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	tab, cols := snapshot(t, c, tl)
	if tab.NumCols() != 3 || !reflect.DeepEqual(cols["V2"], []any{4.0}) || !reflect.DeepEqual(cols["K"], []any{"a"}) {
		t.Errorf("where/update/drop/sort/tail gave %v", cols)
	}
	h, err := s.Head(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, cols := snapshot(t, c, h); !reflect.DeepEqual(cols["V"], []any{4.0}) {
		t.Errorf("head after sort desc gave %v", cols["V"])
	}
	v, err := rt.View(ctx, "K", "Twice = V + V")
	if err != nil {
		t.Fatal(err)
	}
	if _, cols := snapshot(t, c, v); !reflect.DeepEqual(cols["Twice"], []any{2.0, 4.0, 6.0, 8.0}) || len(cols) != 2 {
		t.Errorf("view gave %v", cols)
	}
	for _, tb := range []*deephaven.Table{lt, rt, j, w, u, d, s, tl, h, v} {
		tb.Release(ctx)
	}
}

func TestLiveJoinTicksOnInputTables(t *testing.T) {
	c := shared(t)
	ctx := ctxT(t)
	alerts, err := c.CreateInputTable(ctx, uniqueName("alerts"), kvSchema, "K", "At")
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := c.CreateInputTable(ctx, uniqueName("metrics"), kvSchema)
	if err != nil {
		t.Fatal(err)
	}
	j, err := c.AsOfJoin(ctx, alerts.Table(), metrics.Table(), []string{"K"}, "At>=At", []string{"MV=V", "MAt=At"})
	if err != nil {
		t.Fatal(err)
	}
	joinName := uniqueName("joined")
	if err := c.Publish(ctx, j, joinName); err != nil {
		t.Fatal(err)
	}
	j.Release(ctx)
	if j.IsStatic() {
		t.Errorf("join over input tables reports static")
	}
	a := kv([]string{"x"}, []float64{0}, []int64{100})
	m := kv([]string{"x"}, []float64{42}, []int64{90})
	defer a.Release()
	defer m.Release()
	if err := alerts.Add(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := metrics.Add(ctx, m); err != nil {
		t.Fatal(err)
	}
	// The published join is read by name, in a second session.
	c2 := shared(t)
	var cols map[string][]any
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, cols = snapshot(t, c2, c2.NamedTable(joinName)); len(cols["MV"]) == 1 && cols["MV"][0] != nil {
			break
		}
	}
	if !reflect.DeepEqual(cols["MV"], []any{42.0}) || !reflect.DeepEqual(cols["MAt"], []any{int64(90)}) {
		t.Fatalf("live join = %v, want MV=42 MAt=90", cols)
	}
}

func TestPublishAndList(t *testing.T) {
	c := shared(t)
	ctx := ctxT(t)
	r := kv([]string{"p"}, []float64{1}, []int64{1})
	defer r.Release()
	tb, err := c.Import(ctx, kvSchema, r)
	if err != nil {
		t.Fatal(err)
	}
	name := uniqueName("published")
	if err := c.Publish(ctx, tb, name); err != nil {
		t.Fatal(err)
	}
	tb.Release(ctx)
	names, err := c.ListTables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range names {
		found = found || n == name
	}
	if !found {
		t.Fatalf("ListTables = %v, missing %s", names, name)
	}
	// Another session fetches it by name.
	c2 := shared(t)
	ot, err := c2.OpenTable(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if ot.Size() != 1 || ot.Schema().NumFields() != 3 {
		t.Errorf("opened table: size %d, %d columns", ot.Size(), ot.Schema().NumFields())
	}
	sc, err := c2.TableSchema(ctx, name)
	if err != nil || sc.NumFields() != 3 {
		t.Errorf("TableSchema: %v %v", sc, err)
	}
}

func TestImport100kRows(t *testing.T) {
	c := shared(t)
	rec := bigRecord(100_000)
	defer rec.Release()
	tb, err := c.Import(ctxT(t), kvSchema, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Release(ctxT(t))
	ot, err := tb.Tail(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, cols := snapshot(t, c, ot); !reflect.DeepEqual(cols["V"], []any{99999.0}) {
		t.Errorf("last row V = %v", cols["V"])
	}
}

// Deephaven refuses a gRPC message over 100 MiB, on every retry alike; an
// upload of 110 MiB (a journal's backlog of verbose alerts is no bigger)
// travels in smaller messages and lands whole.
func TestImportOverTheMessageLimit(t *testing.T) {
	c := shared(t)
	const rows = 110
	pad := strings.Repeat("p", 1<<20)
	keys, vals, at := make([]string, rows), make([]float64, rows), make([]int64, rows)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i) + pad
		vals[i] = float64(i)
		at[i] = int64(i)
	}
	rec := kv(keys, vals, at)
	defer rec.Release()
	tb, err := c.Import(ctxT(t), kvSchema, rec)
	if err != nil {
		t.Fatalf("import of 110 MiB: %v", err)
	}
	defer tb.Release(ctxT(t))
	if tb.Size() != rows {
		t.Errorf("imported %d rows, want %d", tb.Size(), rows)
	}
	ot, err := tb.Tail(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, cols := snapshot(t, c, ot); !reflect.DeepEqual(cols["V"], []any{float64(rows - 1)}) {
		t.Errorf("last row V = %v", cols["V"])
	}
}

package deephaven_test

import (
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
)

// pydh runs scripts/pydh.py, Deephaven's own Python client, against addr.
func pydh(t *testing.T, addr string, args ...string) []byte {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	root := testenv.RepoRoot(t)
	cmd := exec.Command(testenv.Python(t), append([]string{filepath.Join(root, "scripts", "pydh.py"), args[0], "--port", port}, args[1:]...)...)
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("pydh %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("pydh %v: %v", args, err)
	}
	return out
}

type pyTable struct {
	Columns []struct{ Name, Arrow, Deephaven string }
	Rows    [][]any
}

// What our client writes, Deephaven's Python client reads back the same.
func TestPydeephavenReadsWhatWeWrote(t *testing.T) {
	addr := testenv.Deephaven(t)
	c := dial(t, addr)
	ctx := ctxT(t)
	rec := allTypesRecord()
	defer rec.Release()
	it, err := c.CreateInputTable(ctx, uniqueName("crosscheck"), allTypes)
	if err != nil {
		t.Fatal(err)
	}
	if err := it.Add(ctx, rec); err != nil {
		t.Fatal(err)
	}
	var got pyTable
	if err := json.Unmarshal(pydh(t, addr, "read", "--table", it.Name()), &got); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, c := range got.Columns {
		types = append(types, c.Name+":"+c.Deephaven)
	}
	if want := []string{"S:java.lang.String", "D:double", "L:long", "I:int", "B:java.lang.Boolean", "T:java.time.Instant"}; !reflect.DeepEqual(types, want) {
		t.Errorf("pydeephaven sees columns %v, want %v", types, want)
	}
	want := [][]any{
		{"a", 1.5, 1.0, 1.0, true, 1.0},
		{`quo"te`, "NaN", 9223372036854775807.0, 2147483647.0, false, 1700000000123456789.0},
		{"ünï", "+Inf", -9223372036854775807.0, -5.0, true, 0.0},
		{"", "-Inf", 0.0, 0.0, false, -1000.0},
		{nil, nil, nil, nil, nil, nil},
	}
	if !reflect.DeepEqual(got.Rows, want) {
		t.Errorf("pydeephaven reads rows\n%v\nwant\n%v", got.Rows, want)
	}
}

// What Deephaven's Python client writes, our client reads back the same.
func TestWeReadWhatPydeephavenWrote(t *testing.T) {
	addr := testenv.Deephaven(t)
	name := uniqueName("fromPython")
	pydh(t, addr, "write", "--table", name)
	c := dial(t, addr)
	tab, cols := snapshot(t, c, c.NamedTable(name))
	if tab.NumRows() != 3 {
		t.Fatalf("%d rows, want 3", tab.NumRows())
	}
	if !reflect.DeepEqual(cols["S"], []any{"x", nil, `quote"d`}) {
		t.Errorf("S = %v", cols["S"])
	}
	d := cols["D"]
	if d[0] != 1.5 || !sameFloat(d[1].(float64), nan) || d[2] != -inf {
		t.Errorf("D = %v", d)
	}
	if !reflect.DeepEqual(cols["L"], []any{int64(1), nil, int64(-7)}) {
		t.Errorf("L = %v", cols["L"])
	}
	if !reflect.DeepEqual(cols["T"], []any{int64(1_700_000_000_000_000_001), nil, int64(0)}) {
		t.Errorf("T = %v", cols["T"])
	}
}

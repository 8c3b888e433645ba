// Command dhbench measures our Deephaven client against Deephaven's own
// Python client (pydeephaven) on the same server, side by side, and prints a
// Markdown table:
//
//	(a) one 100,000-row upload (Flight DoPut)
//	(b) appends of 1,000-row batches to an input table
//	(c) appends of single rows to an input table
//
// Usage: dhbench --deephaven 127.0.0.1:10000 [--python .venv/bin/python]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
)

var schema = arrow.NewSchema([]arrow.Field{
	{Name: "Fingerprint", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "At", Type: &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "Value", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
}, nil)

func record(n int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	now := time.Now().UnixNano()
	for i := 0; i < n; i++ {
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("fp%d", i))
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(now + int64(i)))
		b.Field(2).(*array.Float64Builder).Append(float64(i))
	}
	return b.NewRecordBatch()
}

type result struct {
	Rows    int     `json:"rows"`
	Seconds float64 `json:"seconds"`
}

func (r result) rate() float64 { return float64(r.Rows) / r.Seconds }

func main() {
	addr := flag.String("deephaven", "127.0.0.1:10000", "Deephaven host:port")
	python := flag.String("python", ".venv/bin/python", "Python with pydeephaven installed")
	script := flag.String("pydh", "scripts/pydh.py", "path of scripts/pydh.py")
	singles := flag.Int("single-rows", 2000, "single-row appends per client")
	batches := flag.Int("batches", 100, "1,000-row appends per client")
	flag.Parse()
	if err := run(*addr, *python, *script, *singles, *batches); err != nil {
		fmt.Fprintln(os.Stderr, "dhbench:", err)
		os.Exit(1)
	}
}

func run(addr, python, script string, singles, batches int) error {
	ctx := context.Background()
	c, err := deephaven.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	type row struct {
		name     string
		goR, pyR result
	}
	var table []row

	// (a) one 100,000-row upload. Both clients get one untimed warm-up
	// run, so neither pays for the server's first-use costs.
	big := record(100_000)
	defer big.Release()
	if t, err := c.Import(ctx, schema, big); err == nil {
		t.Release(ctx)
	}
	if _, err := py(python, script, addr, "import", 100_000); err != nil {
		return err
	}
	var runs []result
	for i := 0; i < 5; i++ {
		r, err := timeIt(100_000, func() error {
			t, err := c.Import(ctx, schema, big)
			if err == nil {
				t.Release(ctx)
			}
			return err
		})
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].Seconds < runs[j].Seconds })
	goA := runs[len(runs)/2] // median, as for pydeephaven
	pyA, err := py(python, script, addr, "import", 100_000)
	if err != nil {
		return err
	}
	table = append(table, row{"(a) one 100,000-row upload (median of 5)", goA, pyA})

	// (b) 1,000-row appends and (c) single-row appends, one after another
	// from one caller, as pydeephaven does.
	for _, tc := range []struct {
		name    string
		per     int
		calls   int
		mode    string
		callers int // concurrent Go callers; pydeephaven always runs one
	}{
		{"(b) appends of 1,000-row batches", 1000, batches, "append1000", 1},
		{"(c) appends of single rows, one caller", 1, singles, "append1", 1},
		{"(c') appends of single rows, 16 concurrent callers", 1, singles, "append1", 16},
	} {
		it, err := c.CreateInputTable(ctx, fmt.Sprintf("dhbench_%s_%d", tc.mode, time.Now().UnixNano()), schema)
		if err != nil {
			return err
		}
		rec := record(tc.per)
		goR, err := timeIt(tc.per*tc.calls, func() error {
			errc := make(chan error, tc.callers)
			for w := 0; w < tc.callers; w++ {
				go func(w int) {
					for i := w; i < tc.calls; i += tc.callers {
						if err := it.Add(ctx, rec); err != nil {
							errc <- err
							return
						}
					}
					errc <- nil
				}(w)
			}
			var first error
			for w := 0; w < tc.callers; w++ {
				if err := <-errc; err != nil && first == nil {
					first = err
				}
			}
			return first
		})
		rec.Release()
		if err != nil {
			return err
		}
		pyR, err := py(python, script, addr, tc.mode, tc.per*tc.calls)
		if err != nil {
			return err
		}
		table = append(table, row{tc.name, goR, pyR})
	}

	fmt.Println("| workload | rows | Go client rows/s | pydeephaven rows/s | Go / pydeephaven |")
	fmt.Println("|---|---:|---:|---:|---:|")
	for _, r := range table {
		fmt.Printf("| %s | %d | %.0f | %.0f | %.1f× |\n", r.name, r.goR.Rows, r.goR.rate(), r.pyR.rate(), r.goR.rate()/r.pyR.rate())
	}
	return nil
}

func timeIt(rows int, f func() error) (result, error) {
	start := time.Now()
	err := f()
	return result{Rows: rows, Seconds: time.Since(start).Seconds()}, err
}

func py(python, script, addr, mode string, rows int) (result, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return result{}, err
	}
	abs, _ := filepath.Abs(script)
	out, err := exec.Command(python, abs, "bench", "--port", port, "--mode", mode, "--rows", fmt.Sprint(rows)).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return result{}, fmt.Errorf("pydeephaven %s: %v: %s", mode, err, ee.Stderr)
		}
		return result{}, fmt.Errorf("pydeephaven %s: %w", mode, err)
	}
	var r result
	if err := json.Unmarshal(out, &r); err != nil {
		return result{}, fmt.Errorf("pydeephaven %s output %q: %w", mode, out, err)
	}
	return r, nil
}

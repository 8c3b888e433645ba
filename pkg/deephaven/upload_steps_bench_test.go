package deephaven

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	pb "github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven/internal/backplane"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// BenchmarkUploadSteps splits a one-row upload into the server's steps and
// reports the server's CPU for each (DH_PID: the server's process):
// importing the rows (DoPut and releasing the export), the input table's
// add alone (the same imported table added again), and both. Run it with
// a large -benchtime: the server's JIT needs thousands of calls before its
// costs settle (cold, an add costs it 3-4 times as much).
//
//	DH_ADDR=… DH_PID=… go test -run '^$' -bench UploadSteps -benchtime 3000x ./pkg/deephaven/
func BenchmarkUploadSteps(b *testing.B) {
	addr := os.Getenv("DH_ADDR")
	if addr == "" {
		b.Skip("DH_ADDR not set")
	}
	pid, _ := strconv.Atoi(os.Getenv("DH_PID"))
	ctx := context.Background()
	c, err := Dial(ctx, addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	it, err := c.CreateInputTable(ctx, fmt.Sprintf("upload_steps_%d", time.Now().UnixNano()), rows.AlertSchema, rows.AlertKeys...)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	rec := rows.AlertRecord(memory.DefaultAllocator, []rows.AlertRow{{PrometheusDateTime: now, Fingerprint: "x", Status: "firing", StartsAt: now}})
	defer rec.Release()
	s, err := c.active()
	if err != nil {
		b.Fatal(err)
	}
	target, err := it.target(ctx, s)
	if err != nil {
		b.Fatal(err)
	}
	add := func(id []byte) {
		if _, err := c.inputs.AddTableToInputTable(withSession(ctx, s), &pb.AddTableRequest{InputTable: tk(target), TableToAdd: tk(id)}); err != nil {
			b.Fatal(err)
		}
	}
	put := func() []byte {
		id := s.newTicket()
		if err := c.doPut(ctx, s, id, it.schema, []arrow.RecordBatch{rec}); err != nil {
			b.Fatal(err)
		}
		return id
	}
	for _, step := range []string{"import", "add", "import+add"} {
		b.Run(step, func(b *testing.B) {
			var kept []byte
			if step == "add" {
				kept = put()
				defer c.release(s, kept)
			}
			cpu0 := ServerCPU(pid)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				switch step {
				case "add":
					add(kept)
				case "import":
					c.release(s, put())
				case "import+add":
					id := put()
					add(id)
					c.release(s, id)
				}
			}
			if pid > 0 {
				b.ReportMetric(float64((ServerCPU(pid)-cpu0).Microseconds())/float64(b.N), "server-cpu-µs/op")
			}
		})
	}
}

// ServerCPU reads a process's user+system CPU time from /proc, or 0. It is
// exported for the package's external benchmarks.
func ServerCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	st := string(data)
	f := strings.Fields(st[strings.LastIndexByte(st, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	sys, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+sys) * 10 * time.Millisecond
}

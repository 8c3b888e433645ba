package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// A short soak: 5,000 metric rows/s with a 30 s live window. Once the
// window is full, Deephaven's heap after a full GC must stay flat while the
// history keeps growing (an unbounded table would add ~150 bytes per row:
// about 90 MiB over the second half). `go run ./cmd/bridge-bench --soak 30m`
// is the full-length run.
func TestSoakShort(t *testing.T) {
	// G1, not the stack's ZGC: G1's full GC stops the world, so the heap it
	// reports leaves out the rows that arrive while it is measured. Under
	// ZGC the same soak's samples swung by 30 MiB, more than the 18 MiB of
	// growth this test allows.
	dh := testenv.StartDeephaven(t, testenv.DeephavenOptions{Heap: "1g", GC: "g1"})
	d := 2 * time.Minute
	if os.Getenv("SOAK") != "" {
		if v, err := time.ParseDuration(os.Getenv("SOAK")); err == nil {
			d = v
		}
	}
	samples, err := soak(context.Background(), dh.Addr(), dh.Pid(), soakOptions{
		Duration: d, Rate: 5000, Live: 30 * time.Second, Report: 15 * time.Second,
		History: filepath.Join(t.TempDir(), "history"),
	}, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	last := samples[len(samples)-1]
	// The middle: the first report after the window filled up.
	var mid soakSample
	for _, s := range samples {
		if s.Elapsed >= 45*time.Second {
			mid = s
			break
		}
	}
	if mid.Written == 0 || last.History == 0 {
		t.Fatalf("no middle sample or no history: %+v", samples)
	}
	if last.Live > 5000*45 {
		t.Errorf("%d live rows, the 30 s window holds about 150,000", last.Live)
	}
	if last.History+last.Live < last.Written {
		t.Errorf("live %d + history %d < written %d", last.Live, last.History, last.Written)
	}
	growth := last.HeapUsedMiB - mid.HeapUsedMiB
	unbounded := float64(last.Written-mid.Written) * 150 / (1 << 20)
	t.Logf("heap after GC: %.0f MiB at %s, %.0f MiB at the end (%s); an unbounded table would have grown by about %.0f MiB",
		mid.HeapUsedMiB, mid.Elapsed.Round(time.Second), last.HeapUsedMiB, last.Elapsed.Round(time.Second), unbounded)
	if growth > unbounded/3 {
		t.Errorf("heap grew by %.0f MiB over %d rows written after the window filled", growth, last.Written-mid.Written)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// The soak reads the server's heap from either collector's GC.heap_info.
func TestParseHeapUsed(t *testing.T) {
	for _, c := range []struct {
		out  string
		want float64
	}{
		{"1234:\n garbage-first heap   total 139264K, used 94208K [0x0000000680000000, 0x0000000800000000)\n  region size 4096K\n Metaspace       used 56225K, committed 56576K", 92},
		{"1234:\n ZHeap           used 148M, capacity 378M, max capacity 2048M\n Metaspace       used 48780K, committed 49152K", 148},
	} {
		got, err := parseHeapUsed([]byte(c.out))
		if err != nil || got != c.want {
			t.Errorf("parseHeapUsed(%q) = %v, %v; want %v", c.out, got, err, c.want)
		}
	}
	if _, err := parseHeapUsed([]byte("1234:\n Metaspace       used 48780K")); err == nil {
		t.Error("parseHeapUsed found a heap in Metaspace's line")
	}
}

package journal

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// clock is a settable clock for Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// open opens a journal with its own registry and closes it when the test ends.
func open(t testing.TB, dir string, opts Options) (*Journal, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	j, err := Open(dir, opts, nil, reg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { j.Close() })
	return j, reg
}

// metricValue returns the value of a gauge or counter (summed over labels).
func metricValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var v float64
		for _, m := range mf.GetMetric() {
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return v
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

type replayed struct {
	seq  uint64
	t    time.Time
	data string
}

func replayAll(t testing.TB, j *Journal, from uint64) []replayed {
	t.Helper()
	var out []replayed
	err := j.Replay(from, func(seq uint64, at time.Time, rec []byte) error {
		out = append(out, replayed{seq, at, string(rec)})
		return nil
	})
	if err != nil {
		t.Fatalf("Replay(%d): %v", from, err)
	}
	return out
}

// payload is the fixed-size test record for seq: 40 bytes, so an encoded
// record takes 64.
func payload(seq uint64) []byte { return fmt.Appendf(nil, "%040d", seq) }

const recSize = headerSize + 40

// appendSeqs appends one record per Append for seqs from..to and checks the
// returned seqs.
func appendSeqs(t testing.TB, j *Journal, from, to uint64) {
	t.Helper()
	for seq := from; seq <= to; seq++ {
		last, err := j.Append(context.Background(), [][]byte{payload(seq)})
		if err != nil {
			t.Fatalf("Append(%d): %v", seq, err)
		}
		if last != seq {
			t.Fatalf("Append returned seq %d, want %d", last, seq)
		}
	}
}

// checkRecords checks that Replay(from) yields exactly the test records with seqs want.
func checkRecords(t testing.TB, j *Journal, from uint64, want ...uint64) {
	t.Helper()
	got := replayAll(t, j, from)
	var gotSeqs []uint64
	for _, r := range got {
		gotSeqs = append(gotSeqs, r.seq)
		if r.data != string(payload(r.seq)) {
			t.Errorf("record %d holds %q", r.seq, r.data)
		}
	}
	if fmt.Sprint(gotSeqs) != fmt.Sprint(want) {
		t.Fatalf("Replay(%d) seqs = %v, want %v", from, gotSeqs, want)
	}
}

func seqRange(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

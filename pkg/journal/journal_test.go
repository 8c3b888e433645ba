package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestAppendReplayAcrossSegments(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	j, reg := open(t, dir, Options{SegmentBytes: 256, Now: clk.Now})

	var want []string
	var times []time.Time
	for i := range 40 {
		recs := make([][]byte, i%3+1)
		for k := range recs {
			recs[k] = fmt.Appendf(nil, "rec-%d-%d", i, k)
			want = append(want, string(recs[k]))
			times = append(times, clk.Now())
		}
		last, err := j.Append(context.Background(), recs)
		if err != nil {
			t.Fatal(err)
		}
		if last != uint64(len(want)) {
			t.Fatalf("Append %d returned seq %d, want %d", i, last, len(want))
		}
		clk.Advance(time.Second)
	}

	st := j.Stats()
	if st.Segments < 3 || st.FirstSeq != 1 || st.LastSeq != uint64(len(want)) || st.Delivered != 0 {
		t.Fatalf("Stats = %+v", st)
	}
	if got := metricValue(t, reg, "prometheus_deephaven_bridge_journal_records_appended_total"); got != float64(len(want)) {
		t.Errorf("records appended = %v, want %d", got, len(want))
	}
	if got := metricValue(t, reg, "prometheus_deephaven_bridge_journal_undelivered_records"); got != float64(len(want)) {
		t.Errorf("undelivered = %v, want %d", got, len(want))
	}

	got := replayAll(t, j, 0)
	if len(got) != len(want) {
		t.Fatalf("replayed %d records, want %d", len(got), len(want))
	}
	for i, r := range got {
		if r.seq != uint64(i+1) || r.data != want[i] || !r.t.Equal(times[i]) {
			t.Fatalf("record %d = %+v, want seq %d %q at %v", i, r, i+1, want[i], times[i])
		}
	}
	if got := replayAll(t, j, 17); len(got) != len(want)-16 || got[0].seq != 17 {
		t.Fatalf("Replay(17) starts at %+v, %d records", got[0], len(got))
	}
	if got := replayAll(t, j, st.LastSeq+1); len(got) != 0 {
		t.Fatalf("Replay past the end returned %d records", len(got))
	}

	// Segments are named after their first record and respect SegmentBytes.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var segs int
	for _, e := range entries {
		first, ok := parseSegmentName(e.Name())
		if !ok {
			continue
		}
		segs++
		info, _ := e.Info()
		if info.Size() > 256 {
			t.Errorf("segment %s has %d bytes", e.Name(), info.Size())
		}
		if info.Size() > 0 {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			if seq := uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 |
				uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15]); seq != first {
				t.Errorf("segment %s starts with seq %d", e.Name(), seq)
			}
		}
	}
	if segs != st.Segments {
		t.Errorf("%d segment files, Stats says %d", segs, st.Segments)
	}
}

func TestGroupCommit(t *testing.T) {
	const goroutines, appends = 20, 10
	// Hold each fsync a little so that appends pile up behind it, as they
	// do behind a real disk.
	j, _ := open(t, t.TempDir(), Options{
		SegmentBytes: 1 << 20,
		beforeSync:   func() { time.Sleep(time.Millisecond) },
	})

	type result struct {
		g, i, n int
		last    uint64
	}
	results := make(chan result, goroutines*appends)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range appends {
				recs := make([][]byte, 1+(g+i)%3)
				for k := range recs {
					recs[k] = fmt.Appendf(nil, "%d/%d/%d", g, i, k)
				}
				last, err := j.Append(context.Background(), recs)
				if err != nil {
					t.Error(err)
					return
				}
				results <- result{g, i, len(recs), last}
			}
		})
	}
	wg.Wait()
	close(results)

	total := 0
	var all []result
	for r := range results {
		total += r.n
		all = append(all, r)
	}
	got := replayAll(t, j, 0)
	if len(got) != total {
		t.Fatalf("replayed %d records, want %d", len(got), total)
	}
	bySeq := map[uint64]string{}
	seen := map[string]bool{}
	for i, r := range got {
		if r.seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, r.seq)
		}
		if seen[r.data] {
			t.Fatalf("record %q twice", r.data)
		}
		seen[r.data] = true
		bySeq[r.seq] = r.data
	}
	// Each Append's records are consecutive and end at the seq it returned;
	// a goroutine's later Appends get higher seqs.
	lastOf := map[int]uint64{}
	for _, r := range all {
		for k := range r.n {
			seq := r.last - uint64(r.n-1-k)
			if want := fmt.Sprintf("%d/%d/%d", r.g, r.i, k); bySeq[seq] != want {
				t.Fatalf("seq %d = %q, want %q", seq, bySeq[seq], want)
			}
		}
		if r.last <= lastOf[r.g] {
			t.Fatalf("goroutine %d: append %d got seq %d after %d", r.g, r.i, r.last, lastOf[r.g])
		}
		lastOf[r.g] = r.last
	}
	if n := j.fsyncs.Load(); n >= goroutines*appends {
		t.Errorf("%d fsyncs for %d appends: not group-committed", n, goroutines*appends)
	} else {
		t.Logf("%d fsyncs for %d appends", n, goroutines*appends)
	}
}

func TestMarkDelivered(t *testing.T) {
	dir := t.TempDir()
	j, reg := open(t, dir, Options{SegmentBytes: 4 * recSize})
	appendSeqs(t, j, 1, 10)

	if err := j.MarkDelivered(6); err != nil {
		t.Fatal(err)
	}
	if err := j.MarkDelivered(3); err != nil { // lower: no-op
		t.Fatal(err)
	}
	if err := j.MarkDelivered(11); err == nil {
		t.Fatal("MarkDelivered beyond the last record succeeded")
	}
	if got := j.Delivered(); got != 6 {
		t.Fatalf("Delivered = %d, want 6", got)
	}
	if got := metricValue(t, reg, "prometheus_deephaven_bridge_journal_undelivered_records"); got != 4 {
		t.Errorf("undelivered = %v, want 4", got)
	}
	checkRecords(t, j, j.Delivered()+1, 7, 8, 9, 10)
	// Delivered records stay in the history.
	checkRecords(t, j, 0, seqRange(1, 10)...)

	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, reg = open(t, dir, Options{SegmentBytes: 4 * recSize})
	if got := j.Delivered(); got != 6 {
		t.Fatalf("Delivered after reopen = %d, want 6", got)
	}
	checkRecords(t, j, j.Delivered()+1, 7, 8, 9, 10)
	if got := metricValue(t, reg, "prometheus_deephaven_bridge_journal_corruptions_total"); got != 0 {
		t.Errorf("corruptions = %v, want 0", got)
	}
}

func TestRetentionBySize(t *testing.T) {
	ctx := context.Background()
	j, reg := open(t, t.TempDir(), Options{SegmentBytes: 4 * recSize, MaxBytes: 12 * recSize})

	appendSeqs(t, j, 1, 12)
	if _, err := j.Append(ctx, [][]byte{payload(13)}); !errors.Is(err, ErrFull) {
		t.Fatalf("Append into a journal full of undelivered records: %v, want ErrFull", err)
	}
	if got := metricValue(t, reg, "prometheus_deephaven_bridge_journal_append_failures_total"); got != 1 {
		t.Errorf("append failures = %v, want 1", got)
	}
	checkRecords(t, j, 0, seqRange(1, 12)...)

	// Delivered records are kept as long as their room is not needed.
	if err := j.MarkDelivered(6); err != nil {
		t.Fatal(err)
	}
	if st := j.Stats(); st.Segments != 3 || st.FirstSeq != 1 {
		t.Fatalf("after MarkDelivered: %+v, want all 3 segments kept", st)
	}
	// Now the first segment (1-4) may go to make room.
	appendSeqs(t, j, 13, 16)
	if st := j.Stats(); st.Segments != 3 || st.FirstSeq != 5 || st.Bytes != 12*recSize {
		t.Fatalf("after appends: %+v", st)
	}
	// Segment 5-8 holds undelivered 7 and 8: it stays, the journal is full again.
	if _, err := j.Append(ctx, [][]byte{payload(17)}); !errors.Is(err, ErrFull) {
		t.Fatalf("Append: %v, want ErrFull", err)
	}
	checkRecords(t, j, 0, seqRange(5, 16)...)
	checkRecords(t, j, j.Delivered()+1, seqRange(7, 16)...)
	if got := metricValue(t, reg, "prometheus_deephaven_bridge_journal_bytes"); got != 12*recSize {
		t.Errorf("bytes gauge = %v", got)
	}
}

// With one segment as large as the journal, the active segment itself is
// what holds the room; once delivered it must still be freed.
func TestErrFullUntilDelivered(t *testing.T) {
	ctx := context.Background()
	j, _ := open(t, t.TempDir(), Options{SegmentBytes: 4 * recSize, MaxBytes: 4 * recSize})
	appendSeqs(t, j, 1, 4)
	if _, err := j.Append(ctx, [][]byte{payload(5)}); !errors.Is(err, ErrFull) {
		t.Fatalf("Append: %v, want ErrFull", err)
	}
	if err := j.MarkDelivered(4); err != nil {
		t.Fatal(err)
	}
	appendSeqs(t, j, 5, 5)
	if st := j.Stats(); st.Segments != 1 || st.FirstSeq != 5 || st.LastSeq != 5 {
		t.Fatalf("Stats = %+v", st)
	}
	checkRecords(t, j, 0, 5)
}

func TestRetentionByAge(t *testing.T) {
	clk := newClock()
	j, _ := open(t, t.TempDir(), Options{SegmentBytes: 4 * recSize, MaxAge: time.Hour, Now: clk.Now})

	appendSeqs(t, j, 1, 8) // segments 1-4, 5-8
	clk.Advance(30 * time.Minute)
	appendSeqs(t, j, 9, 12) // segment 9-12, active
	clk.Advance(45 * time.Minute)

	// 1-8 are expired, but undelivered or partly delivered segments stay.
	if err := j.MarkDelivered(2); err != nil {
		t.Fatal(err)
	}
	if st := j.Stats(); st.Segments != 3 || st.FirstSeq != 1 {
		t.Fatalf("after MarkDelivered(2): %+v", st)
	}
	// Delivered and expired: gone. Delivered, not expired: kept.
	if err := j.MarkDelivered(12); err != nil {
		t.Fatal(err)
	}
	if st := j.Stats(); st.Segments != 1 || st.FirstSeq != 9 {
		t.Fatalf("after MarkDelivered(12): %+v", st)
	}

	// Undelivered records are kept however old they get.
	appendSeqs(t, j, 13, 20) // segments 13-16, 17-20; 9-12 is not expired yet
	clk.Advance(3 * time.Hour)
	appendSeqs(t, j, 21, 21) // rotates; retention runs after the append
	if st := j.Stats(); st.FirstSeq != 13 {
		t.Fatalf("after expiry: %+v, want 9-12 gone and 13- kept", st)
	}
	checkRecords(t, j, j.Delivered()+1, seqRange(13, 21)...)
}

func TestReopenAfterClose(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	opts := Options{SegmentBytes: 4 * recSize}
	j, err := Open(dir, opts, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	appendSeqs(t, j, 1, 10)
	if err := j.MarkDelivered(5); err != nil {
		t.Fatal(err)
	}
	before := j.Stats()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := j.Append(context.Background(), [][]byte{payload(11)}); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	if err := j.MarkDelivered(6); !errors.Is(err, ErrClosed) {
		t.Errorf("MarkDelivered after Close: %v", err)
	}
	if err := j.Replay(0, func(uint64, time.Time, []byte) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Replay after Close: %v", err)
	}

	// Same registry: Close unregistered the metrics.
	j, err = Open(dir, opts, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if after := j.Stats(); after != before {
		t.Fatalf("Stats after reopen = %+v, want %+v", after, before)
	}
	checkRecords(t, j, 0, seqRange(1, 10)...)
	appendSeqs(t, j, 11, 11)
	if got := metricValue(t, reg, "prometheus_deephaven_bridge_journal_corruptions_total"); got != 0 {
		t.Errorf("corruptions = %v", got)
	}
}

func TestAppendErrors(t *testing.T) {
	j, reg := open(t, t.TempDir(), Options{MaxBytes: 1 << 10})
	ctx := context.Background()
	if last, err := j.Append(ctx, nil); last != 0 || err != nil {
		t.Errorf("empty Append = %d, %v", last, err)
	}
	if _, err := j.Append(ctx, [][]byte{make([]byte, 2<<10)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Append over MaxBytes: %v, want ErrTooLarge", err)
	}
	if _, err := j.Append(ctx, [][]byte{make([]byte, MaxRecordSize+1)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Append over MaxRecordSize: %v, want ErrTooLarge", err)
	}
	// A cancelled Append may or may not be written; it is not a failure
	// of the journal.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	j.Append(cctx, [][]byte{[]byte("x")})
	if got := metricValue(t, reg, "prometheus_deephaven_bridge_journal_append_failures_total"); got != 2 {
		t.Errorf("append failures = %v, want 2", got)
	}
}

func TestReplayStopsAtCallbackError(t *testing.T) {
	j, _ := open(t, t.TempDir(), Options{SegmentBytes: 4 * recSize})
	appendSeqs(t, j, 1, 10)
	stop := errors.New("stop")
	var n int
	err := j.Replay(0, func(seq uint64, _ time.Time, _ []byte) error {
		n++
		if seq == 6 {
			return stop
		}
		return nil
	})
	if err != stop || n != 6 {
		t.Fatalf("Replay = %v after %d records, want stop after 6", err, n)
	}
}

// Replay, Append, MarkDelivered and retention run at the same time; Replay
// must see intact records in order and never fail on a deleted segment
// (which it skips).
func TestReplayDuringRetention(t *testing.T) {
	j, _ := open(t, t.TempDir(), Options{SegmentBytes: 4 * recSize, MaxBytes: 16 * recSize})
	appendSeqs(t, j, 1, 4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for seq := uint64(5); seq <= 120; seq++ {
			if _, err := j.Append(context.Background(), [][]byte{payload(seq)}); err != nil {
				t.Error(err)
				return
			}
			if err := j.MarkDelivered(seq - 2); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		var prev uint64
		err := j.Replay(0, func(seq uint64, _ time.Time, rec []byte) error {
			if seq <= prev {
				return fmt.Errorf("seq %d after %d", seq, prev)
			}
			if string(rec) != string(payload(seq)) {
				return fmt.Errorf("record %d holds %q", seq, rec)
			}
			prev = seq
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// After a write that fails and cannot be undone, Append keeps failing until
// the journal is reopened; reading and marking keep working, and nothing
// acknowledged is lost.
func TestIOErrorIsSticky(t *testing.T) {
	dir := t.TempDir()
	j, reg := open(t, dir, Options{})
	appendSeqs(t, j, 1, 3)
	// The writer is idle: its last answer came before this. Closing the file
	// under it makes both the write and its undo fail.
	j.w.f.Close()
	if _, err := j.Append(context.Background(), [][]byte{payload(4)}); err == nil {
		t.Fatal("Append to a closed segment succeeded")
	}
	if _, err := j.Append(context.Background(), [][]byte{payload(4)}); err == nil {
		t.Fatal("Append after a failed write succeeded")
	}
	if got := metricValue(t, reg, "prometheus_deephaven_bridge_journal_append_failures_total"); got != 2 {
		t.Errorf("append failures = %v, want 2", got)
	}
	checkRecords(t, j, 0, 1, 2, 3)
	if err := j.MarkDelivered(3); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	j, _ = open(t, dir, Options{})
	checkRecords(t, j, 0, 1, 2, 3)
	appendSeqs(t, j, 4, 4)
	if got := j.Delivered(); got != 3 {
		t.Errorf("Delivered = %d, want 3", got)
	}
}

// Rewind makes the whole retained history undelivered, durably: a process
// that dies during the resend reopens with the rewound watermark, and
// retention keeps what is to be resent even when it is expired.
func TestRewindIsDurableAndHoldsRetention(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	opts := Options{SegmentBytes: 4 * recSize, MaxAge: time.Hour, Now: clk.Now}
	j, _ := open(t, dir, opts)
	appendSeqs(t, j, 1, 8)
	if err := j.MarkDelivered(8); err != nil {
		t.Fatal(err)
	}
	// Segments 1-4 and 5-8 are delivered and expire: retention drops them.
	clk.Advance(2 * time.Hour)
	appendSeqs(t, j, 9, 21)
	if err := j.MarkDelivered(20); err != nil {
		t.Fatal(err)
	}
	st := j.Stats()
	if st.FirstSeq != 9 || st.Delivered != 20 {
		t.Fatalf("before rewind: %+v, want FirstSeq 9, Delivered 20", st)
	}
	to, err := j.Rewind()
	if err != nil || to != 8 || j.Delivered() != 8 {
		t.Fatalf("Rewind = %d, %v; Delivered %d; want 8", to, err, j.Delivered())
	}
	// Expired but undelivered again: retention must keep them.
	clk.Advance(2 * time.Hour)
	appendSeqs(t, j, 22, 22)
	checkRecords(t, j, j.Delivered()+1, seqRange(9, 22)...)

	// The resend delivers 9..12, then the process dies.
	if err := j.MarkDelivered(12); err != nil {
		t.Fatal(err)
	}
	id := j.ID()
	j.Close()
	j2, _ := open(t, dir, opts)
	if j2.Delivered() != 12 {
		t.Fatalf("after reopen Delivered = %d, want 12 (the resend resumes)", j2.Delivered())
	}
	if j2.ID() != id || !validID(id) {
		t.Fatalf("ID after reopen = %q, want %q", j2.ID(), id)
	}
	checkRecords(t, j2, j2.Delivered()+1, seqRange(13, 22)...)

	// Delivered and expired again, retention drops all but the active
	// segment (21-22); a rewind goes back to before it, and a repeated one
	// does not move.
	if err := j2.MarkDelivered(22); err != nil {
		t.Fatal(err)
	}
	if to, err := j2.Rewind(); err != nil || to != 20 {
		t.Fatalf("second Rewind = %d, %v, want 20", to, err)
	}
	if to, err := j2.Rewind(); err != nil || to != 20 {
		t.Fatalf("repeated Rewind = %d, %v, want 20", to, err)
	}
}

// An empty journal has nothing to rewind; every directory gets its own ID,
// and a damaged ID file is replaced.
func TestRewindEmptyAndIDs(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	j1, _ := open(t, d1, Options{})
	j2, _ := open(t, d2, Options{})
	if to, err := j1.Rewind(); err != nil || to != 0 {
		t.Fatalf("Rewind of an empty journal = %d, %v", to, err)
	}
	if j1.ID() == j2.ID() || !validID(j1.ID()) || !validID(j2.ID()) {
		t.Fatalf("IDs %q and %q", j1.ID(), j2.ID())
	}
	j1.Close()
	if err := os.WriteFile(filepath.Join(d1, idFile), []byte("not an id\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	j3, _ := open(t, d1, Options{})
	if !validID(j3.ID()) || j3.ID() == j1.ID() {
		t.Fatalf("ID after damage = %q", j3.ID())
	}
}

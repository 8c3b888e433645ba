package shipper

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/journal"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// fakeDeephaven is a key-backed table that can be switched off.
type fakeDeephaven struct {
	mu    sync.Mutex
	down  bool
	table map[rows.AlertKey]rows.AlertRow
	calls int
}

func (f *fakeDeephaven) add(ctx context.Context, rs []rows.AlertRow) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.down {
		return errors.New("deephaven unavailable")
	}
	for _, r := range rs {
		f.table[r.Key()] = r
	}
	return nil
}

func (f *fakeDeephaven) set(down bool) { f.mu.Lock(); f.down = down; f.mu.Unlock() }
func (f *fakeDeephaven) size() int     { f.mu.Lock(); defer f.mu.Unlock(); return len(f.table) }
func (f *fakeDeephaven) wipe() {
	f.mu.Lock()
	f.table = map[rows.AlertKey]rows.AlertRow{}
	f.mu.Unlock()
}

func row(i int) rows.AlertRow {
	at := time.Date(2026, 11, 30, 0, 0, i, 0, time.UTC)
	return rows.AlertRow{PrometheusDateTime: at, StartsAt: at, Status: "firing", Fingerprint: fmt.Sprintf("%016x", i), AlertName: "A", Labels: `{a="b"}`}
}

func key(i int) rows.AlertKey { r := row(i); return r.Key() }

func setup(t *testing.T, dir string, f *fakeDeephaven) (*Shipper, *journal.Journal, func()) {
	t.Helper()
	j, err := journal.Open(dir, journal.Options{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := New(j, f.add, f.add, Options{MaxRows: 7, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	return s, j, func() { cancel(); <-done; j.Close() }
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !f(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestAcknowledgedWhileDeephavenIsDownThenDelivered(t *testing.T) {
	f := &fakeDeephaven{table: map[rows.AlertKey]rows.AlertRow{}, down: true}
	s, _, stop := setup(t, t.TempDir(), f)
	defer stop()
	for i := 0; i < 50; i++ {
		if err := s.WriteAlerts(context.Background(), []rows.AlertRow{row(i)}); err != nil {
			t.Fatalf("write %d while Deephaven is down: %v", i, err)
		}
	}
	if f.size() != 0 {
		t.Fatal("rows reached a Deephaven that is down")
	}
	f.set(false)
	waitFor(t, "all 50 rows delivered", func() bool { return f.size() == 50 && s.Pending() == 0 })
	got := f.table[key(3)]
	if got.Labels != `{a="b"}` || !got.StartsAt.Equal(row(3).StartsAt) {
		t.Errorf("row came back as %+v", got)
	}
}

func TestRestartDeliversWhatWasLeft(t *testing.T) {
	dir := t.TempDir()
	f := &fakeDeephaven{table: map[rows.AlertKey]rows.AlertRow{}, down: true}
	s, _, stop := setup(t, dir, f)
	for i := 0; i < 20; i++ {
		if err := s.WriteAlerts(context.Background(), []rows.AlertRow{row(i)}); err != nil {
			t.Fatal(err)
		}
	}
	stop() // the bridge stops (or crashes) with 20 rows undelivered
	f.set(false)
	s2, _, stop2 := setup(t, dir, f)
	defer stop2()
	waitFor(t, "rows journaled before the restart delivered", func() bool { return f.size() == 20 && s2.Pending() == 0 })
}

func TestHistoryReloadAfterDeephavenLostItsTables(t *testing.T) {
	f := &fakeDeephaven{table: map[rows.AlertKey]rows.AlertRow{}}
	s, _, stop := setup(t, t.TempDir(), f)
	defer stop()
	for i := 0; i < 30; i++ {
		if err := s.WriteAlerts(context.Background(), []rows.AlertRow{row(i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "delivery", func() bool { return f.size() == 30 })
	f.wipe() // Deephaven restarted: in-memory tables are empty
	s.ReloadHistory()
	waitFor(t, "history reloaded", func() bool { return f.size() == 30 })
	// Reloading twice adds nothing: the table is key-backed.
	s.ReloadHistory()
	time.Sleep(50 * time.Millisecond)
	if f.size() != 30 {
		t.Fatalf("%d rows after a second reload, want 30", f.size())
	}
}

func TestFullJournalFallsBackToDirectWrite(t *testing.T) {
	f := &fakeDeephaven{table: map[rows.AlertKey]rows.AlertRow{}, down: true}
	j, err := journal.Open(t.TempDir(), journal.Options{MaxBytes: 2048, SegmentBytes: 512}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	s := New(j, f.add, f.add, Options{}, nil, nil)
	var full error
	for i := 0; i < 100 && full == nil; i++ {
		full = s.WriteAlerts(context.Background(), []rows.AlertRow{row(i)})
	}
	if full == nil {
		t.Fatal("a 2 KiB journal never filled")
	}
	// Deephaven down and journal full: the caller must answer 503.
	f.set(false)
	if err := s.WriteAlerts(context.Background(), []rows.AlertRow{row(1000)}); err != nil {
		t.Fatalf("journal full but Deephaven up: %v, want a direct write", err)
	}
	if _, ok := f.table[key(1000)]; !ok {
		t.Fatal("direct write did not reach Deephaven")
	}
}

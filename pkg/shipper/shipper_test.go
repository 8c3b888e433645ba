package shipper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
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
	go func() { s.Run(ctx, context.Background()); close(done) }()
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
		if err := s.Write(context.Background(), []rows.AlertRow{row(i)}); err != nil {
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
		if err := s.Write(context.Background(), []rows.AlertRow{row(i)}); err != nil {
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
		if err := s.Write(context.Background(), []rows.AlertRow{row(i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "delivery", func() bool { return f.size() == 30 })
	f.wipe() // Deephaven restarted: in-memory tables are empty
	if err := s.ResendHistory(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "history reloaded", func() bool { return f.size() == 30 })
	// Reloading twice adds nothing: the table is key-backed.
	if err := s.ResendHistory(); err != nil {
		t.Fatal(err)
	}
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
		full = s.Write(context.Background(), []rows.AlertRow{row(i)})
	}
	if full == nil {
		t.Fatal("a 2 KiB journal never filled")
	}
	// Deephaven down and journal full: the caller must answer 503.
	f.set(false)
	if err := s.Write(context.Background(), []rows.AlertRow{row(1000)}); err != nil {
		t.Fatalf("journal full but Deephaven up: %v, want a direct write", err)
	}
	if _, ok := f.table[key(1000)]; !ok {
		t.Fatal("direct write did not reach Deephaven")
	}
}

// The data loss: Deephaven comes back empty, the resend starts, the
// bridge dies after part of it. The restarted bridge must send the rest,
// although Deephaven is no longer empty.
func TestResendCutShortByACrashResumes(t *testing.T) {
	dir := t.TempDir()
	f := &fakeDeephaven{table: map[rows.AlertKey]rows.AlertRow{}}
	s, _, stop := setup(t, dir, f)
	for i := 0; i < 40; i++ {
		if err := s.Write(context.Background(), []rows.AlertRow{row(i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "delivery", func() bool { return f.size() == 40 && s.Pending() == 0 })
	stop()

	// Deephaven restarts empty; a new shipper (on the same journal) starts
	// the resend, and dies after two batches of 7.
	f.wipe()
	var mu sync.Mutex
	batches := 0
	crash := make(chan struct{})
	dying := func(ctx context.Context, rs []rows.AlertRow) error {
		mu.Lock()
		defer mu.Unlock()
		if batches == 2 {
			select {
			case <-crash:
			default:
				close(crash)
			}
			return errors.New("the process is gone")
		}
		batches++
		return f.add(ctx, rs)
	}
	j, err := journal.Open(dir, journal.Options{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2 := New(j, dying, dying, Options{MaxRows: 7, MinBackoff: time.Hour}, nil, nil)
	if err := s2.ResendHistory(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s2.Run(ctx, context.Background()); close(done) }()
	<-crash
	cancel()
	<-done
	j.Close()
	if f.size() != 14 {
		t.Fatalf("%d rows before the crash, want 14", f.size())
	}

	// The restarted bridge finds Deephaven not empty (and still holding
	// its checkpoint), so it starts no new resend: the rest must come
	// from the watermark alone.
	s3, _, stop3 := setup(t, dir, f)
	defer stop3()
	waitFor(t, "the rest of the resend", func() bool { return f.size() == 40 && s3.Pending() == 0 })
}

// A batch that was on its way when a resend began may have landed in a
// Deephaven that lost everything before it: it must not move the watermark
// past the records the resend has to send.
func TestDeliveryInFlightDuringResendDoesNotMoveTheWatermark(t *testing.T) {
	f := &fakeDeephaven{table: map[rows.AlertKey]rows.AlertRow{}}
	j, err := journal.Open(t.TempDir(), journal.Options{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	blocking := func(ctx context.Context, rs []rows.AlertRow) error {
		if len(rs) > 0 && rs[0].Fingerprint == row(10).Fingerprint {
			once.Do(func() { close(entered); <-release })
		}
		return f.add(ctx, rs)
	}
	s := New(j, blocking, blocking, Options{MaxRows: 100, MinBackoff: time.Millisecond}, nil, nil)
	for i := 0; i < 10; i++ {
		if err := s.Write(context.Background(), []rows.AlertRow{row(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.deliverAll(context.Background(), context.Background()); err != nil || j.Delivered() != 10 {
		t.Fatalf("first delivery: %v, watermark %d", err, j.Delivered())
	}
	if err := s.Write(context.Background(), []rows.AlertRow{row(10)}); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.deliverAll(context.Background(), context.Background()) }()
	<-entered
	f.wipe() // Deephaven restarted while row 10 was on its way
	if err := s.ResendHistory(); err != nil {
		t.Fatal(err)
	}
	if j.Delivered() != 0 {
		t.Fatalf("watermark after ResendHistory = %d, want 0", j.Delivered())
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if f.size() != 11 || j.Delivered() != 11 {
		t.Fatalf("after the resend: %d rows, watermark %d; want 11 and 11", f.size(), j.Delivered())
	}
}

// With several deliveries under way, the watermark only ever covers a
// prefix of the journal that was delivered: a later batch that is done
// before an earlier one, or after an earlier one failed, does not move it.
func TestPipelinedDeliveryMarksOnlyTheDeliveredPrefix(t *testing.T) {
	f := &fakeDeephaven{table: map[rows.AlertKey]rows.AlertRow{}}
	j, err := journal.Open(t.TempDir(), journal.Options{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var mu sync.Mutex
	failed := false
	maxWatermarkSeen := uint64(0)
	deliver := func(ctx context.Context, rs []rows.AlertRow) error {
		// Later batches finish first.
		first := rs[0].Fingerprint
		if first == row(0).Fingerprint {
			time.Sleep(30 * time.Millisecond)
		}
		mu.Lock()
		if first == row(10).Fingerprint && !failed {
			failed = true
			mu.Unlock()
			return errors.New("deephaven unavailable")
		}
		mu.Unlock()
		if err := f.add(ctx, rs); err != nil {
			return err
		}
		mu.Lock()
		// Every record below the watermark must be in the table.
		w := j.Delivered()
		maxWatermarkSeen = max(maxWatermarkSeen, w)
		for i := 0; i < int(w); i++ {
			f.mu.Lock()
			_, ok := f.table[key(i)]
			f.mu.Unlock()
			if !ok {
				t.Errorf("watermark %d but row %d is not delivered", w, i)
			}
		}
		mu.Unlock()
		return nil
	}
	s := New(j, deliver, deliver, Options{MaxRows: 5, InFlight: 4, MinBackoff: time.Millisecond}, nil, nil)
	for i := 0; i < 40; i++ {
		if err := s.Write(context.Background(), []rows.AlertRow{row(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.deliverAll(context.Background(), context.Background()); err == nil {
		t.Fatal("the failed batch did not fail the round")
	}
	if w := j.Delivered(); w > 10 {
		t.Fatalf("watermark %d after batch 10..14 failed, want at most 10", w)
	}
	if err := s.deliverAll(context.Background(), context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.size() != 40 || j.Delivered() != 40 {
		t.Fatalf("%d rows, watermark %d; want 40 and 40", f.size(), j.Delivered())
	}
}

// Retention asks how old the oldest undelivered record is, so that it does
// not move the live window past rows still on their way.
func TestOldestPending(t *testing.T) {
	f := &fakeDeephaven{table: map[rows.AlertKey]rows.AlertRow{}, down: true}
	s, _, stop := setup(t, t.TempDir(), f)
	defer stop()
	if _, ok, err := s.OldestPending(); ok || err != nil {
		t.Fatalf("empty journal: pending %v, err %v", ok, err)
	}
	before := time.Now()
	for i := 0; i < 3; i++ {
		if err := s.Write(context.Background(), []rows.AlertRow{row(i)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	at, ok, err := s.OldestPending()
	if err != nil || !ok || at.Before(before) || at.After(before.Add(time.Second)) {
		t.Fatalf("oldest pending at %v (%v, %v), written just after %v", at, ok, err, before)
	}
	f.set(false)
	waitFor(t, "delivery", func() bool { return s.Pending() == 0 })
	if _, ok, _ := s.OldestPending(); ok {
		t.Fatal("pending after everything was delivered")
	}
}

// Notifications are journaled like alert rows: acknowledged while
// Deephaven is down, delivered when it is back, in the same order.
func TestNotificationsJournaled(t *testing.T) {
	f := &fakeDeephaven{table: map[rows.AlertKey]rows.AlertRow{}, down: true}
	var (
		mu    sync.Mutex
		notes []rows.NotificationRow
	)
	deliverNotes := func(ctx context.Context, rs []rows.NotificationRow) error {
		f.mu.Lock()
		down := f.down
		f.mu.Unlock()
		if down {
			return errors.New("deephaven unavailable")
		}
		mu.Lock()
		notes = append(notes, rs...)
		mu.Unlock()
		return nil
	}
	j, err := journal.Open(t.TempDir(), journal.Options{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	s := New(j, f.add, f.add, Options{MaxRows: 7, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}, nil, nil)
	s.SetNotifications(deliverNotes, deliverNotes)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, context.Background()); close(done) }()
	defer func() { cancel(); <-done }()
	for i := 0; i < 10; i++ {
		r := row(i)
		if err := s.Write(ctx, []rows.AlertRow{r}); err != nil {
			t.Fatal(err)
		}
		n := rows.NotificationRow{Fingerprint: r.Fingerprint, StartsAt: r.StartsAt, Status: "firing", ReceivedAt: r.StartsAt, Receiver: "x"}
		if err := s.Notes().Write(ctx, []rows.NotificationRow{n}); err != nil {
			t.Fatal(err)
		}
	}
	f.set(false)
	waitFor(t, "rows and notifications delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return f.size() == 10 && len(notes) == 10 && s.Pending() == 0
	})
	for i, n := range notes {
		if n.Fingerprint != row(i).Fingerprint || n.Receiver != "x" {
			t.Fatalf("notification %d = %+v", i, n)
		}
	}
}

// Flush at shutdown with records pending and the drain deadline passed
// returns an error at once; it once spun forever, and the bridge never
// exited after SIGTERM.
func TestFlushWithEndedContextReturns(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	f := &fakeDeephaven{table: map[rows.AlertKey]rows.AlertRow{}, down: true}
	s := New(j, f.add, f.add, Options{MaxRows: 7}, nil, nil)
	for i := 0; i < 20; i++ {
		if err := s.Write(context.Background(), []rows.AlertRow{row(i)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- s.Flush(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Flush with an ended context = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Flush with an ended context did not return")
	}
	if s.Pending() != 20 {
		t.Errorf("pending = %d, want 20", s.Pending())
	}
}

// RecentNotes finds the notifications journaled since a time, delivered or
// not, across a reopen, and nothing older or of another kind.
func TestRecentNotesAfterReopen(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{SegmentBytes: 512}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := New(j, nil, nil, Options{}, nil, nil)
	ctx := context.Background()
	note := func(fp string) rows.NotificationRow {
		return rows.NotificationRow{Fingerprint: fp, Status: "firing", Receiver: "team", ReceivedAt: time.Now().UTC()}
	}
	if err := s.Notes().Write(ctx, []rows.NotificationRow{note("old1"), note("old2")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	since := time.Now()
	if err := s.Write(ctx, []rows.AlertRow{row(1), row(2)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Notes().Write(ctx, []rows.NotificationRow{note("new1"), note("new2"), note("new3")}); err != nil {
		t.Fatal(err)
	}
	j.Close()

	j, err = journal.Open(dir, journal.Options{SegmentBytes: 512}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	got, err := New(j, nil, nil, Options{}, nil, nil).RecentNotes(since)
	if err != nil {
		t.Fatal(err)
	}
	var fps []string
	for _, r := range got {
		fps = append(fps, r.Fingerprint)
	}
	if fmt.Sprint(fps) != "[new1 new2 new3]" {
		t.Errorf("RecentNotes = %v, want [new1 new2 new3]", fps)
	}
}

// noteLog is a fake notification log: it appends, so a row delivered twice
// is there twice.
type noteLog struct {
	mu   sync.Mutex
	rows map[string]int
}

func (l *noteLog) add(_ context.Context, rs []rows.NotificationRow) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range rs {
		l.rows[r.Fingerprint]++
	}
	return nil
}

func (l *noteLog) counts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.rows)
}

func journalNotes(t *testing.T, s *Shipper, fps ...string) {
	t.Helper()
	for _, fp := range fps {
		r := rows.NotificationRow{Fingerprint: fp, Status: "firing", Receiver: "team", ReceivedAt: time.Now().UTC()}
		if err := s.Notes().Write(context.Background(), []rows.NotificationRow{r}); err != nil {
			t.Fatal(err)
		}
	}
}

// A failed batch holds the watermark back over a later batch that was
// delivered; the next round sends both again, and the notifications of
// the delivered one are not logged twice.
func TestRedeliveryAfterAFailedBatchSkipsDeliveredNotes(t *testing.T) {
	j, err := journal.Open(t.TempDir(), journal.Options{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	log := &noteLog{rows: map[string]int{}}
	// The first batch fails only once the second was delivered.
	secondIn := make(chan struct{})
	var secondOnce sync.Once
	failed := false
	deliver := func(ctx context.Context, rs []rows.NotificationRow) error {
		if rs[0].Fingerprint == "n1" && !failed {
			failed = true
			select {
			case <-secondIn:
			case <-time.After(10 * time.Second):
				t.Error("the second batch was not delivered while the first was on its way")
			}
			return errors.New("deephaven unavailable")
		}
		err := log.add(ctx, rs)
		if rs[0].Fingerprint == "n3" {
			secondOnce.Do(func() { close(secondIn) })
		}
		return err
	}
	s := New(j, nil, nil, Options{MaxRows: 2, InFlight: 2, MinBackoff: time.Millisecond}, nil, nil)
	s.SetNotifications(deliver, deliver)
	journalNotes(t, s, "n1", "n2", "n3", "n4")
	if err := s.deliverAll(context.Background(), context.Background()); err == nil {
		t.Fatal("the first round did not fail")
	}
	if err := s.deliverAll(context.Background(), context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"n1": 1, "n2": 1, "n3": 1, "n4": 1}
	if got := log.counts(); !maps.Equal(got, want) {
		t.Errorf("notification log = %v, want each once", got)
	}
	if j.Delivered() != 4 {
		t.Errorf("watermark = %d, want 4", j.Delivered())
	}
}

// A process killed between delivering notifications and moving the
// watermark leaves them undelivered in the journal. The next process asks
// Deephaven before its first delivery, skips what it holds, and delivers
// nothing until it has an answer.
func TestRestartSkipsNotesDeephavenHolds(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	journalNotes(t, New(j, nil, nil, Options{}, nil, nil), "n1", "n2", "n3")
	held := []rows.NotificationRow{}
	j.Replay(1, func(_ uint64, _ time.Time, data []byte) error {
		var r record
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatal(err)
		}
		if r.Notification.Fingerprint != "n3" {
			held = append(held, *r.Notification) // delivered, not marked
		}
		return nil
	})
	j.Close()

	j, err = journal.Open(dir, journal.Options{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	log := &noteLog{rows: map[string]int{"n1": 1, "n2": 1}}
	s := New(j, nil, nil, Options{MinBackoff: time.Millisecond}, nil, nil)
	s.SetNotifications(log.add, log.add)
	asked := 0
	s.SetNotesHeld(func(_ context.Context, since time.Time) ([]rows.NotificationRow, error) {
		if asked++; asked == 1 {
			return nil, errors.New("tables not ready")
		}
		for _, r := range held {
			if r.ReceivedAt.Before(since) {
				t.Errorf("asked from %v, after the row received at %v", since, r.ReceivedAt)
			}
		}
		return held, nil
	})
	if err := s.deliverAll(context.Background(), context.Background()); err == nil || j.Delivered() != 0 || log.counts()["n3"] != 0 {
		t.Fatalf("first round without an answer: %v, watermark %d, log %v; want an error and nothing delivered", err, j.Delivered(), log.counts())
	}
	if err := s.deliverAll(context.Background(), context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"n1": 1, "n2": 1, "n3": 1}
	if got := log.counts(); !maps.Equal(got, want) {
		t.Errorf("notification log = %v, want each once", got)
	}
	if j.Delivered() != 3 {
		t.Errorf("watermark = %d, want 3", j.Delivered())
	}
}

// At shutdown a delivery under way finishes (under the drain context) and
// moves the watermark, so the last Flush does not send its notifications
// again. Cut short, it could still have landed.
func TestShutdownLetsDeliveriesUnderWayFinish(t *testing.T) {
	j, err := journal.Open(t.TempDir(), journal.Options{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	log := &noteLog{rows: map[string]int{}}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	// Like a sink whose caller gave up: the rows land, the caller hears
	// of its context's end.
	deliver := func(ctx context.Context, rs []rows.NotificationRow) error {
		once.Do(func() { close(entered); <-release })
		log.add(ctx, rs)
		return ctx.Err()
	}
	s := New(j, nil, nil, Options{MinBackoff: time.Millisecond}, nil, nil)
	s.SetNotifications(deliver, deliver)
	journalNotes(t, s, "n1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, context.Background()); close(done) }()
	<-entered
	cancel() // shutdown begins with the delivery on its way
	close(release)
	<-done
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := log.counts(); got["n1"] != 1 || j.Delivered() != 1 {
		t.Errorf("after shutdown: log %v, watermark %d; want n1 once, watermark 1", got, j.Delivered())
	}
}

// Deephaven restarts empty while a delivery waits for it: the delivery
// lands in the new server after the resend began. The resend asks
// Deephaven what it holds once that delivery ended, and does not log its
// notifications twice.
func TestResendAsksDeephavenAfterDeliveriesUnderWay(t *testing.T) {
	j, err := journal.Open(t.TempDir(), journal.Options{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	dh := &noteLog{rows: map[string]int{}}
	var landed []rows.NotificationRow // what dh holds, for notesHeld
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	deliver := func(ctx context.Context, rs []rows.NotificationRow) error {
		if rs[0].Fingerprint == "n2" {
			once.Do(func() { close(entered); <-release })
		}
		dh.mu.Lock()
		landed = append(landed, rs...)
		dh.mu.Unlock()
		return dh.add(ctx, rs)
	}
	s := New(j, nil, nil, Options{MaxRows: 1, MinBackoff: time.Millisecond}, nil, nil)
	s.SetNotifications(deliver, deliver)
	s.SetNotesHeld(func(context.Context, time.Time) ([]rows.NotificationRow, error) {
		dh.mu.Lock()
		defer dh.mu.Unlock()
		return slices.Clone(landed), nil
	})
	journalNotes(t, s, "n1", "n2", "n3")
	errc := make(chan error, 1)
	go func() { errc <- s.deliverAll(context.Background(), context.Background()) }()
	<-entered // n1 landed; n2 waits for Deephaven, which restarts empty
	dh.mu.Lock()
	clear(dh.rows)
	landed = nil
	dh.mu.Unlock()
	if err := s.ResendHistory(); err != nil {
		t.Fatal(err)
	}
	close(release) // n2 lands in the new server
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := s.deliverAll(context.Background(), context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"n1": 1, "n2": 1, "n3": 1}
	if got := dh.counts(); !maps.Equal(got, want) {
		t.Errorf("notification log after the resend = %v, want each once", got)
	}
}

// Journals written by earlier versions still deliver: alert rows, and
// notifications written with an empty alert row's fields beside them (the
// alert row was embedded by value, and encoding/json wrote it). New
// notification records carry no alert fields.
func TestOldRecordsStillDeliver(t *testing.T) {
	type oldRecord struct {
		rows.AlertRow
		Notification *rows.NotificationRow `json:",omitempty"`
	}
	ctx := context.Background()
	j, err := journal.Open(t.TempDir(), journal.Options{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	a := row(1)
	v := 0.5
	a.AlertValue, a.Annotations = &v, `{summary="a \"quoted\" <b>"}`
	n := rows.NotificationRow{Fingerprint: "n1", StartsAt: a.StartsAt, Status: "firing", ReceivedAt: a.StartsAt, Receiver: "r"}
	ab, err := json.Marshal(&a)
	if err != nil {
		t.Fatal(err)
	}
	nb, err := json.Marshal(&oldRecord{Notification: &n})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(ctx, [][]byte{ab, nb}); err != nil {
		t.Fatal(err)
	}
	f := &fakeDeephaven{table: map[rows.AlertKey]rows.AlertRow{}}
	log := &noteLog{rows: map[string]int{}}
	s := New(j, f.add, f.add, Options{MinBackoff: time.Millisecond}, nil, nil)
	s.SetNotifications(log.add, log.add)
	if err := s.deliverAll(ctx, ctx); err != nil {
		t.Fatal(err)
	}
	got, ok := f.table[a.Key()]
	if f.size() != 1 || !ok || *got.AlertValue != v || got.Annotations != a.Annotations || !got.StartsAt.Equal(a.StartsAt) {
		t.Errorf("alert rows delivered: %v, want only %v", f.table, a)
	}
	if c := log.counts(); !maps.Equal(c, map[string]int{"n1": 1}) {
		t.Errorf("notifications delivered: %v, want n1 once", c)
	}

	if err := s.Notes().Write(ctx, []rows.NotificationRow{{Fingerprint: "n2", StartsAt: a.StartsAt, ReceivedAt: a.StartsAt}}); err != nil {
		t.Fatal(err)
	}
	var last []byte
	j.Replay(1, func(_ uint64, _ time.Time, data []byte) error { last = data; return nil })
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(last, &fields); err != nil || len(fields) != 1 || fields["Notification"] == nil {
		t.Errorf("new notification record %s: want only a Notification field (%v)", last, err)
	}
}

// Alert values JSON has no number for (a Grafana error ratio of 0/0 is
// NaN) are journaled and delivered as they came, beside ordinary ones.
func TestNonFiniteAlertValuesAreJournaled(t *testing.T) {
	f := &fakeDeephaven{table: map[rows.AlertKey]rows.AlertRow{}}
	s, _, stop := setup(t, t.TempDir(), f)
	defer stop()
	values := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0.25, math.MaxFloat64}
	var rs []rows.AlertRow
	for i, v := range values {
		r := row(i)
		r.AlertValue = &v
		rs = append(rs, r)
	}
	noValue := row(len(values))
	rs = append(rs, noValue)
	if err := s.Write(context.Background(), rs); err != nil {
		t.Fatalf("journal alert rows with NaN and infinite values: %v", err)
	}
	waitFor(t, "delivery", func() bool { return f.size() == len(rs) })
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, want := range values {
		got := f.table[key(i)].AlertValue
		if got == nil || !(*got == want || math.IsNaN(*got) && math.IsNaN(want)) {
			t.Errorf("row %d: AlertValue %v, want %v", i, got, want)
		}
	}
	if got := f.table[noValue.Key()].AlertValue; got != nil {
		t.Errorf("row without a value delivered with %v", *got)
	}
}

// A record whose NonFiniteValue is not NaN or an infinity was not written
// by this bridge: it is refused, not delivered with a made-up value.
func TestDecodeRecordRefusesAFiniteNonFiniteValue(t *testing.T) {
	if _, err := decodeRecord([]byte(`{"Fingerprint":"a","NonFiniteValue":"1.5"}`)); err == nil {
		t.Error("decodeRecord took NonFiniteValue 1.5")
	}
	r, err := decodeRecord([]byte(`{"Fingerprint":"a","NonFiniteValue":"-Inf"}`))
	if err != nil || r.AlertValue == nil || !math.IsInf(*r.AlertValue, -1) {
		t.Errorf("decodeRecord(-Inf) = %+v, %v", r.AlertRow, err)
	}
}

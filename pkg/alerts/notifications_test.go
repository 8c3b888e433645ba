package alerts

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/sink"
)

// record is what the handler does with a request's notifications: write
// the pending ones, and mark them written once they are.
func record(l *NotificationLog, w sink.Writer[rows.NotificationRow], rs []rows.AlertRow, at time.Time) error {
	notes := l.Pending(rs, at)
	if len(notes.Rows) == 0 {
		return nil
	}
	if err := w.Write(context.Background(), notes.Rows); err != nil {
		return err
	}
	l.Written(notes)
	return nil
}

// The hand count of the episodes test, at the log: a firing notification,
// its HA duplicate and a retry within the window count once, a repeat
// after it counts again, a failed write is retried.
func TestNotificationLogWindow(t *testing.T) {
	var got []rows.NotificationRow
	fail := false
	w := sink.WriterFunc[rows.NotificationRow](func(_ context.Context, rs []rows.NotificationRow) error {
		if fail {
			return errors.New("down")
		}
		got = append(got, rs...)
		return nil
	})
	l := NewNotificationLog(time.Minute)
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	alert := func(status string) []rows.AlertRow {
		return []rows.AlertRow{{Fingerprint: "fa", StartsAt: t0, Status: status, Receiver: "team", AlertName: "Disk", Source: rows.SourceAlertmanager}}
	}
	steps := []struct {
		status string
		at     time.Duration
		fail   bool
		want   int
	}{
		{"firing", 0, false, 1},                            // fires
		{"firing", 15 * time.Second, false, 1},             // the HA replica's copy
		{"firing", 4 * time.Hour, true, 1},                 // a repeat whose write fails...
		{"firing", 4*time.Hour + time.Second, false, 2},    // ...and its retry
		{"firing", 4*time.Hour + 20*time.Second, false, 2}, // the HA copy of the repeat
		{"resolved", 5 * time.Hour, false, 3},              // resolves
	}
	for i, s := range steps {
		fail = s.fail
		err := record(l, w, alert(s.status), t0.Add(s.at))
		if (err != nil) != s.fail {
			t.Fatalf("step %d: err %v", i, err)
		}
		if len(got) != s.want {
			t.Fatalf("step %d: %d notifications logged, want %d", i, len(got), s.want)
		}
	}
	// Two alerts of one request are two notifications; the same alert twice
	// in one request is one.
	two := append(alert("firing"), rows.AlertRow{Fingerprint: "fb", StartsAt: t0, Status: "firing", Receiver: "team"})
	two = append(two, two[1])
	if err := record(l, w, two, t0.Add(9*time.Hour)); err != nil || len(got) != 5 {
		t.Fatalf("request with two alerts: %d logged, err %v", len(got), err)
	}
}

// In a storm the log remembers at most maxNotesRemembered notifications:
// memory does not grow with the alert rate; the oldest are forgotten first.
func TestNotificationLogIsBounded(t *testing.T) {
	written := 0
	w := sink.WriterFunc[rows.NotificationRow](func(_ context.Context, rs []rows.NotificationRow) error {
		written += len(rs)
		return nil
	})
	l := NewNotificationLog(time.Hour)
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	batch := make([]rows.AlertRow, 1000)
	n := 0
	for range maxNotesRemembered/len(batch) + 10 {
		for i := range batch {
			batch[i] = rows.AlertRow{Fingerprint: fmt.Sprintf("%016x", n), StartsAt: t0, Status: "firing", Receiver: "r"}
			n++
		}
		if err := record(l, w, batch, t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if len(l.seen) > maxNotesRemembered || len(l.order)-l.head > maxNotesRemembered {
		t.Fatalf("%d remembered (%d in order), want at most %d", len(l.seen), len(l.order)-l.head, maxNotesRemembered)
	}
	// The newest is still a duplicate; the oldest was forgotten.
	before := written
	last := batch[len(batch)-1:]
	first := []rows.AlertRow{{Fingerprint: fmt.Sprintf("%016x", 0), StartsAt: t0, Status: "firing", Receiver: "r"}}
	if err := record(l, w, last, t0.Add(2*time.Second)); err != nil || written != before {
		t.Fatalf("newest notification written again (err %v)", err)
	}
	if err := record(l, w, first, t0.Add(2*time.Second)); err != nil || written != before+1 {
		t.Fatalf("oldest notification not forgotten: %d written, want %d (err %v)", written, before+1, err)
	}
}

// A log that awaits its recall holds requests back until it knows what
// the last process wrote: a retry of a notification written just before
// a crash is not written again, one out of the window is, and so is a
// different status of the same alert.
func TestNotificationLogRecall(t *testing.T) {
	l := NewNotificationLog(time.Minute)
	l.AwaitRecall()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := l.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait before Recall: %v, want the context's deadline", err)
	}

	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	t0 := now.Add(-time.Hour)
	note := func(fp, status string, at time.Time) rows.NotificationRow {
		return rows.NotificationRow{Fingerprint: fp, StartsAt: t0, Status: status, Receiver: "team", ReceivedAt: at}
	}
	l.Recall([]rows.NotificationRow{
		note("recent", "firing", now.Add(-10*time.Second)),
		note("old", "firing", now.Add(-2*time.Minute)),
	}, now)
	if err := l.Wait(context.Background()); err != nil {
		t.Fatalf("Wait after Recall: %v", err)
	}
	alert := func(fp, status string) rows.AlertRow {
		return rows.AlertRow{Fingerprint: fp, StartsAt: t0, Status: status, Receiver: "team"}
	}
	got := l.Pending([]rows.AlertRow{alert("recent", "firing"), alert("old", "firing"), alert("recent", "resolved")}, now)
	var pending []string
	for _, r := range got.Rows {
		pending = append(pending, r.Fingerprint+"/"+r.Status)
	}
	if want := []string{"old/firing", "recent/resolved"}; fmt.Sprint(pending) != fmt.Sprint(want) {
		t.Errorf("pending after the recall = %v, want %v", pending, want)
	}
	// The recalled entry leaves with the window like any other.
	if got := l.Pending([]rows.AlertRow{alert("recent", "firing")}, now.Add(55*time.Second)); len(got.Rows) != 1 {
		t.Errorf("pending once the recalled notification left the window = %v, want it", got.Rows)
	}
	// A second recall keeps what the log holds and does not block.
	l.Recall(nil, now)
	if err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

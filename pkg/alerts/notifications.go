package alerts

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// DefaultNotificationWindow is how long a notification of an alert counts
// as the same notification (see NotificationLog). An HA replica of
// Alertmanager sends its copy only after waiting for its peers' (15s per
// position by default), and a sender retries a failed request within
// seconds; repeats come every repeat_interval, which is minutes or hours.
const DefaultNotificationWindow = time.Minute

// maxNotesRemembered bounds the notifications remembered for the window.
// In an alert storm the window holds rate × window keys (600,000 at
// 10,000 alerts/s); past the bound the oldest are forgotten, so a
// duplicate of one of them arriving later is written twice rather than the
// bridge's memory growing with the rate.
const maxNotesRemembered = 100000

// noteKey identifies a notification of an alert: the alert episode, its
// status, and the receiver it went to.
type noteKey struct {
	fingerprint string
	startsAt    int64
	status      string
	receiver    string
}

// NotificationLog decides which notifications of a request become rows
// of prometheus_alert_notifications, which the episodes count: a row per
// alert per notification, except that the same notification arriving again
// within the window (from another HA replica, or a retry of a request that
// failed) is written once. The handler writes the rows with the request's
// alerts, and tells the log what was written.
//
// Its methods are safe for concurrent use.
type NotificationLog struct {
	window time.Duration

	mu sync.Mutex
	// recalled is closed once the log knows what was written before this
	// process started (see AwaitRecall).
	recalled chan struct{}
	seen     map[noteKey]time.Time // when each was written
	// order holds seen's keys oldest first (from head on), so both the
	// window and the bound forget from the front.
	order []noteEntry
	head  int
	churn int // keys deleted from seen since it was last rebuilt
}

type noteEntry struct {
	key noteKey
	at  time.Time
}

// Notes are the notification rows of one request still to be written.
type Notes struct {
	Rows []rows.NotificationRow
	keys []noteKey
	at   time.Time
}

// NewNotificationLog returns a log; a window ≤ 0 gets the default.
func NewNotificationLog(window time.Duration) *NotificationLog {
	if window <= 0 {
		window = DefaultNotificationWindow
	}
	l := &NotificationLog{window: window, seen: map[noteKey]time.Time{}, recalled: make(chan struct{})}
	close(l.recalled) // nothing to recall until AwaitRecall
	return l
}

// Window is how long a notification counts as the same one.
func (n *NotificationLog) Window() time.Duration { return n.window }

// AwaitRecall makes Wait block until the first Recall. Call it before the
// first request: a sender that retries a notification the last process
// logged but died before answering must find it in the window.
func (n *NotificationLog) AwaitRecall() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.recalled = make(chan struct{})
}

// Recall remembers notifications written before this process started (read
// back from Deephaven or the journal) as written at their ReceivedAt; those
// out of the window at now are left out. It then lets Wait return. It may be
// called again; what the log already holds is kept.
func (n *NotificationLog) Recall(rs []rows.NotificationRow, now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var old []noteEntry
	for i := range rs {
		r := &rs[i]
		if now.Sub(r.ReceivedAt) >= n.window {
			continue
		}
		k := noteKey{r.Fingerprint, r.StartsAt.UnixNano(), r.Status, r.Receiver}
		if at, ok := n.seen[k]; ok && !at.Before(r.ReceivedAt) {
			continue
		}
		n.seen[k] = r.ReceivedAt
		old = append(old, noteEntry{k, r.ReceivedAt})
	}
	if len(old) > 0 {
		// order stays oldest first: merge the recalled entries in.
		old = append(old, n.order[n.head:]...)
		slices.SortStableFunc(old, func(a, b noteEntry) int { return a.at.Compare(b.at) })
		n.order, n.head = old, 0
		n.forget(func(noteEntry) bool { return len(n.order)-n.head > maxNotesRemembered })
	}
	select {
	case <-n.recalled:
	default:
		close(n.recalled)
	}
}

// Wait returns once the log holds what was written before this process
// started, or with ctx's error.
func (n *NotificationLog) Wait(ctx context.Context) error {
	n.mu.Lock()
	ch := n.recalled
	n.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Pending returns the notifications of rs (the rows of one request,
// repeats included), received at the same time, that are not written yet.
// Only Written marks them, so a retry of a failed write writes them.
func (n *NotificationLog) Pending(rs []rows.AlertRow, receivedAt time.Time) Notes {
	notes := Notes{Rows: make([]rows.NotificationRow, 0, len(rs)), keys: make([]noteKey, 0, len(rs)), at: receivedAt}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.forget(func(e noteEntry) bool { return receivedAt.Sub(e.at) >= n.window })
	inRequest := map[noteKey]bool{}
	for i := range rs {
		r := &rs[i]
		k := noteKey{r.Fingerprint, r.StartsAt.UnixNano(), r.Status, r.Receiver}
		if at, ok := n.seen[k]; (ok && receivedAt.Sub(at) < n.window) || inRequest[k] {
			continue
		}
		inRequest[k] = true
		notes.keys = append(notes.keys, k)
		notes.Rows = append(notes.Rows, rows.NotificationRow{
			Fingerprint: r.Fingerprint, StartsAt: r.StartsAt, Status: r.Status, AlertName: r.AlertName,
			ReceivedAt: receivedAt, Source: r.Source, Receiver: r.Receiver,
		})
	}
	return notes
}

// Written marks notes as written.
func (n *NotificationLog) Written(notes Notes) {
	if len(notes.keys) == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, k := range notes.keys {
		n.seen[k] = notes.at
		n.order = append(n.order, noteEntry{k, notes.at})
	}
	n.forget(func(noteEntry) bool { return len(n.order)-n.head > maxNotesRemembered })
}

// forget drops the oldest entries while old says so. An entry whose key
// was written again since is only dropped from order. Called with mu held.
func (n *NotificationLog) forget(old func(noteEntry) bool) {
	for n.head < len(n.order) && old(n.order[n.head]) {
		e := n.order[n.head]
		if at, ok := n.seen[e.key]; ok && at.Equal(e.at) {
			delete(n.seen, e.key)
			n.churn++
		}
		n.order[n.head] = noteEntry{}
		n.head++
	}
	if n.churn > rebuildAfter*max(maxNotesRemembered, len(n.seen)) {
		n.seen = rebuilt(n.seen)
		n.churn = 0
	}
	// Reuse the slice's front once half of it is spent.
	if n.head > 1024 && n.head > len(n.order)/2 {
		n.order = append(n.order[:0], n.order[n.head:]...)
		n.head = 0
	}
}

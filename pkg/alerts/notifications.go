package alerts

import (
	"cmp"
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
	ids      keyHasher
	seen     map[keyID]int64 // when each was written, in Unix nanoseconds
	// order holds seen's keys oldest first (from head on), so both the
	// window and the bound forget from the front.
	order []noteEntry
	head  int
	churn int // keys deleted from seen since it was last rebuilt
}

// noteEntry has no pointers, like seen, for the garbage collector's sake
// (see keyID).
type noteEntry struct {
	id keyID
	at int64 // Unix nanoseconds
}

// Notes are the notification rows of one request still to be written.
type Notes struct {
	Rows []rows.NotificationRow
	ids  []keyID
	at   time.Time
}

// NewNotificationLog returns a log; a window ≤ 0 gets the default.
func NewNotificationLog(window time.Duration) *NotificationLog {
	if window <= 0 {
		window = DefaultNotificationWindow
	}
	l := &NotificationLog{window: window, ids: newKeyHasher(), seen: map[keyID]int64{}, recalled: make(chan struct{})}
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
		id, at := hashKey(n.ids, noteKey{r.Fingerprint, r.StartsAt.UnixNano(), r.Status, r.Receiver}), r.ReceivedAt.UnixNano()
		if was, ok := n.seen[id]; ok && was >= at {
			continue
		}
		n.seen[id] = at
		old = append(old, noteEntry{id, at})
	}
	if len(old) > 0 {
		// order stays oldest first: merge the recalled entries in.
		old = append(old, n.order[n.head:]...)
		slices.SortStableFunc(old, func(a, b noteEntry) int { return cmp.Compare(a.at, b.at) })
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
	notes := Notes{Rows: make([]rows.NotificationRow, 0, len(rs)), ids: make([]keyID, 0, len(rs)), at: receivedAt}
	ids := make([]keyID, len(rs))
	for i := range rs {
		r := &rs[i]
		ids[i] = hashKey(n.ids, noteKey{r.Fingerprint, r.StartsAt.UnixNano(), r.Status, r.Receiver})
	}
	now, window := receivedAt.UnixNano(), n.window.Nanoseconds()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.forget(func(e noteEntry) bool { return now-e.at >= window })
	inRequest := make(map[keyID]bool, len(rs))
	for i := range rs {
		r, id := &rs[i], ids[i]
		if at, ok := n.seen[id]; (ok && now-at < window) || inRequest[id] {
			continue
		}
		inRequest[id] = true
		notes.ids = append(notes.ids, id)
		notes.Rows = append(notes.Rows, rows.NotificationRow{
			Fingerprint: r.Fingerprint, StartsAt: r.StartsAt, Status: r.Status, AlertName: r.AlertName,
			ReceivedAt: receivedAt, Source: r.Source, Receiver: r.Receiver,
		})
	}
	return notes
}

// Written marks notes as written.
func (n *NotificationLog) Written(notes Notes) {
	if len(notes.ids) == 0 {
		return
	}
	at := notes.at.UnixNano()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, id := range notes.ids {
		n.seen[id] = at
		n.order = append(n.order, noteEntry{id, at})
	}
	n.forget(func(noteEntry) bool { return len(n.order)-n.head > maxNotesRemembered })
}

// forget drops the oldest entries while old says so. An entry whose key
// was written again since is only dropped from order. Called with mu held.
func (n *NotificationLog) forget(old func(noteEntry) bool) {
	for n.head < len(n.order) && old(n.order[n.head]) {
		e := n.order[n.head]
		if at, ok := n.seen[e.id]; ok && at == e.at {
			delete(n.seen, e.id)
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

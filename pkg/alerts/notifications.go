package alerts

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/sink"
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

// NotificationLog writes a row per alert per notification into
// prometheus_alert_notifications, which the episodes count. The same
// notification arriving again within the window (from another HA replica,
// or a retry of a request that failed) is written once.
//
// Its methods are safe for concurrent use.
type NotificationLog struct {
	w      sink.Writer[rows.NotificationRow]
	window time.Duration

	mu   sync.Mutex
	seen map[noteKey]time.Time // when each was written
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

// NewNotificationLog returns a log writing to w; a window ≤ 0 gets the
// default.
func NewNotificationLog(w sink.Writer[rows.NotificationRow], window time.Duration) *NotificationLog {
	if window <= 0 {
		window = DefaultNotificationWindow
	}
	return &NotificationLog{w: w, window: window, seen: map[noteKey]time.Time{}}
}

// Record writes the notifications of rs (the rows of one request, repeats
// included), received at the same time. Only a successful write marks them
// as written, so a retry of a failed one is written.
func (n *NotificationLog) Record(ctx context.Context, rs []rows.AlertRow, receivedAt time.Time) error {
	notes := make([]rows.NotificationRow, 0, len(rs))
	keys := make([]noteKey, 0, len(rs))
	n.mu.Lock()
	n.forget(func(e noteEntry) bool { return receivedAt.Sub(e.at) >= n.window })
	inRequest := map[noteKey]bool{}
	for i := range rs {
		r := &rs[i]
		k := noteKey{r.Fingerprint, r.StartsAt.UnixNano(), r.Status, r.Receiver}
		if at, ok := n.seen[k]; (ok && receivedAt.Sub(at) < n.window) || inRequest[k] {
			continue
		}
		inRequest[k] = true
		keys = append(keys, k)
		notes = append(notes, rows.NotificationRow{
			Fingerprint: r.Fingerprint, StartsAt: r.StartsAt, Status: r.Status, AlertName: r.AlertName,
			ReceivedAt: receivedAt, Source: r.Source, Receiver: r.Receiver,
		})
	}
	n.mu.Unlock()
	if len(notes) == 0 {
		return nil
	}
	if err := n.w.Write(ctx, notes); err != nil {
		return err
	}
	n.mu.Lock()
	for _, k := range keys {
		n.seen[k] = receivedAt
		n.order = append(n.order, noteEntry{k, receivedAt})
	}
	n.forget(func(noteEntry) bool { return len(n.order)-n.head > maxNotesRemembered })
	n.mu.Unlock()
	return nil
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

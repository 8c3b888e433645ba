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
	// sweep is when seen is next cleared of keys older than the window.
	sweep time.Time
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
	if receivedAt.After(n.sweep) {
		for k, at := range n.seen {
			if receivedAt.Sub(at) >= n.window {
				delete(n.seen, k)
			}
		}
		n.sweep = receivedAt.Add(n.window)
	}
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
	}
	n.mu.Unlock()
	return nil
}

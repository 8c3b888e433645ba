package app

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/config"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/history"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/retention"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/tables"
)

// buildRetention opens the history and makes the keeper of the live
// window that writes to it. The caller closes b.history.
func (b *bridge) buildRetention(cfg *config.Config) error {
	if cfg.History.Dir != "" && cfg.Retention.Live > 0 {
		var err error
		b.history, err = history.Open(cfg.History.Dir, history.Options{MaxAge: time.Duration(cfg.History.MaxAge)},
			b.logger.With("component", "history"), b.reg)
		if err != nil {
			return fmt.Errorf("history.dir: %w", err)
		}
	}
	b.keep = retention.New(b.dh.current, b.history, retention.Options{
		Live:     time.Duration(cfg.Retention.Live),
		Interval: cfg.Retention.EffectiveInterval(),
		Hold:     b.holdRetention,
	}, b.logger.With("component", "retention"), b.reg)
	return nil
}

// holdRetention keeps the alerts and notification tables' live window from moving past
// journaled rows not yet delivered: they would go into the live table after
// their time had left it, and then be taken for rows already in the
// history. The margin covers the time between a row's receipt and its
// append to the journal.
func (b *bridge) holdRetention(in tables.Input) bool {
	if (in != tables.Alerts && in != tables.Notifications) || b.ship == nil {
		return false
	}
	at, pending, err := b.ship.OldestPending()
	if err != nil {
		b.logger.Warn("Cannot tell how old the undelivered alerts are; the alerts table keeps its rows this time", "err", err)
		return true
	}
	return pending && at.Before(time.Now().Add(-time.Duration(b.cfg.Retention.Live)+time.Minute))
}

// deliverJournaled delivers journaled alert rows, except those older than
// the alerts history's cursor: those were in Deephaven before and are in
// the history now (a resend after Deephaven restarted would double them).
func (b *bridge) deliverJournaled(ctx context.Context, rs []rows.AlertRow) error {
	floor := b.alertsFloor.Load()
	if floor > 0 {
		kept := make([]rows.AlertRow, 0, len(rs))
		for _, r := range rs {
			if r.AlertIngestDateTime.UnixNano() >= floor {
				kept = append(kept, r)
			}
		}
		if len(kept) == 0 {
			return nil
		}
		rs = kept
	}
	return b.dh.alerts.Write(ctx, rs)
}

// deliverJournaledNotes does for journaled notifications what
// deliverJournaled does for alert rows.
func (b *bridge) deliverJournaledNotes(ctx context.Context, rs []rows.NotificationRow) error {
	floor := b.notesFloor.Load()
	if floor > 0 {
		kept := make([]rows.NotificationRow, 0, len(rs))
		for _, r := range rs {
			if r.ReceivedAt.UnixNano() >= floor {
				kept = append(kept, r)
			}
		}
		if len(kept) == 0 {
			return nil
		}
		rs = kept
	}
	return b.dh.notes.Write(ctx, rs)
}

// writerName is retention.writer, or the host name and the web listen
// port: distinct for bridges on different hosts or ports, and the same
// across restarts, so a restarted bridge reuses its slots. Without a fixed
// port (tests listen on port 0) it is the host and id.
func writerName(cfg *config.Config, flags *web.FlagConfig, id string) string {
	if cfg.Retention.Writer != "" {
		return cfg.Retention.Writer
	}
	host, _ := os.Hostname()
	port := ""
	if flags != nil && flags.WebListenAddresses != nil && len(*flags.WebListenAddresses) > 0 {
		if _, p, err := net.SplitHostPort((*flags.WebListenAddresses)[0]); err == nil {
			port = p
		}
	}
	if port == "" || port == "0" {
		return host + "/" + id
	}
	return host + ":" + port
}

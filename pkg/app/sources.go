package app

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	commoncfg "github.com/prometheus/common/config"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/alerts"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/amsync"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/config"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/poller"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/remotewrite"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rules"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/sink"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/source"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/tables"
)

// buildSources makes every source of cfg, each writing to its tables'
// writers, in the order they start.
func (b *bridge) buildSources(cfg *config.Config) error {
	// Without a journal an alert is acknowledged once it is in Deephaven;
	// with one, once it is fsynced in the journal.
	var alertRows sink.Writer[rows.AlertRow] = b.out.alerts
	// Notifications are journaled with the alerts when the journal is on,
	// so that a request is acknowledged while Deephaven is down.
	requestRows := b.out.alertsAndNotes
	if b.ship != nil {
		alertRows = b.ship
		requestRows = sink.Parallel[rows.AlertRow, rows.NotificationRow](b.ship, b.ship.Notes())
	}
	promAPI, err := prometheusAPI(cfg)
	if err != nil {
		return err
	}
	b.poll = poller.New(promAPI, b.out.metrics, b.logger.With("component", "poller"), b.reg, poller.WithBackfill(time.Duration(cfg.Prometheus.BackfillMax)), poller.WithHistoryForNewQueries())
	b.poll.SetQueries(poller.ConfigSet, poller.ConfiguredQueries(cfg))

	ruleSettings, err := rules.SettingsFromConfig(cfg)
	if err != nil {
		return err
	}
	b.rules = rules.New(promAPI, b.poll, b.out.rules, ruleSettings, b.logger.With("component", "rules"), b.reg)

	alertOpts, err := alerts.OptionsFromConfig(cfg)
	if err != nil {
		return err
	}
	// Alerts that name no configured query join their rule's value
	// expression, found by rule discovery.
	alertOpts.Resolver = b.rules
	b.hook = alerts.NewHandler(requestRows, alertOpts, b.logger.With("component", "webhook"), b.reg)
	b.noteLog = alerts.NewNotificationLog(time.Duration(cfg.Alerts.NotificationWindow))
	if err := b.recallFromJournal(cfg); err != nil {
		return err
	}
	if b.ship == nil && b.dh != nil {
		// Without a journal only Deephaven knows: requests wait for the
		// tables (they could not be written before anyway).
		b.noteLog.AwaitRecall()
	}
	b.hook.SetNotificationLog(b.noteLog)

	// Alertmanager's own view: silenced and inhibited alerts, and alerts
	// missed while the bridge was down.
	present := b.presentAlerts
	if b.dh == nil {
		present = noAlertsPresent
	}
	sync := amsync.New(promAPI, nil, b.out.states, alertRows, b.apiRows, present,
		amsync.SettingsFromConfig(cfg), b.logger.With("component", "alertmanager-sync"), b.reg)

	rwOpts, err := remotewrite.OptionsFromConfig(cfg)
	if err != nil {
		return err
	}
	// Always built, so that a reload can turn it on or off (it answers 404
	// while disabled).
	remoteWrite := remotewrite.NewHandler(b.out.samples, rwOpts, b.logger.With("component", "remote_write"), b.reg)

	b.sources = []source.Source{
		b.hook,
		remoteWrite,
		b.rules,
		// The poller starts once the tables are ready: its rows could not
		// land before, and the newest samples already in Deephaven tell it
		// where to resume (onTablesReady; the gap since is backfilled).
		afterReady(b.poll, b.out.readyCh),
		afterReady(sync, b.out.readyCh),
	}
	if b.keep != nil {
		b.sources = append(b.sources, afterReady(b.keep, b.out.readyCh))
	}
	return nil
}

// recallFromJournal gives the notification log what the journal holds of
// the last window, before the first request.
func (b *bridge) recallFromJournal(cfg *config.Config) error {
	if b.ship == nil {
		return nil
	}
	now := time.Now()
	rs, err := b.ship.RecentNotes(now.Add(-time.Duration(cfg.Alerts.NotificationWindow)))
	if err != nil {
		return fmt.Errorf("recall the notifications journaled before the start: %w", err)
	}
	b.noteLog.Recall(rs, now)
	return nil
}

// recallFromDeephaven gives the notification log what Deephaven holds of
// the last window: the rows of the last process (without a journal, the
// only record of them) or written past a full journal. A failure is
// logged; the log then goes on without them rather than refuse requests.
func (b *bridge) recallFromDeephaven(ctx context.Context, t *tables.Tables) {
	now := time.Now()
	rs, err := t.RecentNotifications(ctx, now.Add(-b.noteLog.Window()))
	if err != nil {
		b.logger.Warn("Cannot read back the notifications logged in the last window; a sender's retry of one may be logged twice", "err", err)
	}
	b.noteLog.Recall(rs, now)
}

// apiRows maps alerts read from Alertmanager's API as the webhook maps a
// notification's (all of them are firing: Alertmanager's API holds no
// resolved alerts).
func (b *bridge) apiRows(ctx context.Context, as []amsync.Alert, at time.Time) []rows.AlertRow {
	out := make([]rows.AlertRow, 0, len(as))
	for _, a := range as {
		receiver := ""
		if len(a.Receivers) > 0 {
			receiver = a.Receivers[0].Name
		}
		out = append(out, b.hook.APIRows(ctx, []alerts.Alert{{
			Status: alerts.StatusFiring, Labels: a.Labels, Annotations: a.Annotations,
			StartsAt: a.StartsAt.UTC(), GeneratorURL: a.GeneratorURL, Fingerprint: a.Fingerprint,
		}}, receiver, at)...)
	}
	return out
}

// presentAlerts reports which alert keys Deephaven's alerts table holds.
func (b *bridge) presentAlerts(ctx context.Context, keys []rows.AlertKey) (map[rows.AlertKey]bool, error) {
	t := b.dh.current()
	if t == nil {
		return nil, tables.ErrNotReady
	}
	return t.PresentAlerts(ctx, keys)
}

// afterReady delays a source's Run until ready is closed.
func afterReady(s source.Source, ready <-chan struct{}) source.Source {
	return &gatedSource{Source: s, ready: ready}
}

type gatedSource struct {
	source.Source
	ready <-chan struct{}
}

func (g *gatedSource) Run(ctx context.Context) error {
	select {
	case <-g.ready:
	case <-ctx.Done():
		return nil
	}
	return g.Source.Run(ctx)
}

// Reload passes on to the source, when it is a Reloader.
func (g *gatedSource) Reload(cfg *config.Config) (func(), error) {
	if r, ok := g.Source.(source.Reloader); ok {
		return r.Reload(cfg)
	}
	return func() {}, nil
}

func prometheusAPI(cfg *config.Config) (v1.API, error) {
	hc := commoncfg.DefaultHTTPClientConfig
	if ba := cfg.Prometheus.BasicAuth; ba != nil {
		hc.BasicAuth = &commoncfg.BasicAuth{Username: ba.Username, PasswordFile: ba.PasswordFile}
	}
	if cfg.Prometheus.BearerTokenFile != "" {
		hc.Authorization = &commoncfg.Authorization{Type: "Bearer", CredentialsFile: cfg.Prometheus.BearerTokenFile}
	}
	rt, err := commoncfg.NewRoundTripperFromConfig(hc, "prometheus-deephaven-bridge")
	if err != nil {
		return nil, fmt.Errorf("prometheus: HTTP client: %w", err)
	}
	client, err := api.NewClient(api.Config{Address: cfg.Prometheus.URL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus.url: %w", err)
	}
	return v1.NewAPI(client), nil
}

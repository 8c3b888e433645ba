// Package amsync reads the alerts Alertmanager holds — active, silenced,
// inhibited and unprocessed — from its API (GET /api/v2/alerts) at start
// and every sync interval. A webhook never carries a silenced or inhibited
// alert, and carries nothing while the bridge is down; this source fills
// those holes:
//
//   - prometheus_alert_state holds each alert's current state, with the
//     silences and alerts that suppress it; an alert Alertmanager no longer
//     holds gets the state "gone";
//   - an alert that never came by webhook (a suppressed one, or one missed
//     while the bridge was down) enters prometheus_alerts with Source
//     "alertmanager-api".
//
// The replicas of an Alertmanager cluster (an HA pair) are one source: the
// alerts of all of them are merged by fingerprint, newest update first, and
// the sync works while any replica answers. Without configured URLs the
// active Alertmanagers that Prometheus reports (/api/v1/alertmanagers) are
// used.
package amsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/common/model"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/config"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/sink"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/source"
)

var (
	_ source.Source   = (*Syncer)(nil)
	_ source.Reloader = (*Syncer)(nil)
)

// Settings are what the configuration says about the sync.
type Settings struct {
	Enabled bool
	// URLs are the replicas of one Alertmanager cluster; empty asks
	// Prometheus for its active Alertmanagers.
	URLs     []string
	Interval time.Duration
	Timeout  time.Duration // bounds one sync
}

// SettingsFromConfig returns the sync settings of cfg.
func SettingsFromConfig(cfg *config.Config) Settings {
	return Settings{
		Enabled:  cfg.Alertmanager.Enabled,
		URLs:     slices.Clone(cfg.Alertmanager.URLs),
		Interval: time.Duration(cfg.Alertmanager.SyncInterval),
		Timeout:  time.Duration(cfg.Alertmanager.Timeout),
	}
}

// Rows turns Alertmanager's alerts into rows of prometheus_alerts as the
// webhook would (so that they join their metrics alike).
type Rows func(ctx context.Context, alerts []Alert, syncedAt time.Time) []rows.AlertRow

// Present reports which alert keys prometheus_alerts already holds (written
// by the webhook or by an earlier sync).
type Present func(ctx context.Context, keys []rows.AlertKey) (map[rows.AlertKey]bool, error)

// Syncer is the Alertmanager API source. Make it with New.
type Syncer struct {
	prom    v1.API // for the active Alertmanagers; may be nil
	hc      *http.Client
	states  sink.Writer[rows.AlertStateRow]
	alerts  sink.Writer[rows.AlertRow]
	toRows  Rows
	present Present
	logger  *slog.Logger
	now     func() time.Time

	settings atomic.Pointer[Settings]
	wake     chan struct{}

	mu      sync.Mutex
	held    map[string]rows.AlertStateRow // the alerts of the last sync, by fingerprint
	written map[rows.AlertKey]bool        // keys this syncer wrote to prometheus_alerts

	syncs     *prometheus.CounterVec
	byState   *prometheus.GaugeVec
	fromAPI   prometheus.Counter
	replicaUp *prometheus.GaugeVec
}

// New returns a Syncer. prom may be nil when URLs are configured.
func New(prom v1.API, hc *http.Client, states sink.Writer[rows.AlertStateRow], alerts sink.Writer[rows.AlertRow],
	toRows Rows, present Present, s Settings, logger *slog.Logger, reg prometheus.Registerer) *Syncer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	f := promauto.With(reg)
	y := &Syncer{
		prom: prom, hc: hc, states: states, alerts: alerts, toRows: toRows, present: present,
		logger: logger, now: time.Now, wake: make(chan struct{}, 1),
		held: map[string]rows.AlertStateRow{}, written: map[rows.AlertKey]bool{},
		syncs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_alertmanager_syncs_total",
			Help: "Reads of Alertmanager's alerts, by result.",
		}, []string{"result"}),
		byState: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "prometheus_deephaven_bridge_alertmanager_alerts",
			Help: "Alerts Alertmanager held at the last sync, by state.",
		}, []string{"state"}),
		fromAPI: f.NewCounter(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_alertmanager_alerts_written_total",
			Help: "Alerts written to the alerts table from Alertmanager's API because no webhook had brought them.",
		}),
		replicaUp: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "prometheus_deephaven_bridge_alertmanager_up",
			Help: "1 if the last read of this Alertmanager replica worked, else 0.",
		}, []string{"url"}),
	}
	for _, r := range []string{"ok", "error"} {
		y.syncs.WithLabelValues(r)
	}
	y.settings.Store(&s)
	return y
}

// Name identifies the source.
func (y *Syncer) Name() string { return "alertmanager-sync" }

// Reload prepares new settings; applying them syncs at once.
func (y *Syncer) Reload(cfg *config.Config) (func(), error) {
	s := SettingsFromConfig(cfg)
	return func() {
		y.settings.Store(&s)
		select {
		case y.wake <- struct{}{}:
		default:
		}
	}, nil
}

// Run syncs at once and every interval until ctx ends. A failed sync keeps
// the state of the last one and is logged once per change of error.
func (y *Syncer) Run(ctx context.Context) error {
	var lastErr string
	for {
		s := y.settings.Load()
		if s.Enabled {
			sctx, cancel := context.WithTimeout(ctx, s.Timeout)
			err := y.Sync(sctx)
			cancel()
			switch {
			case ctx.Err() != nil:
				return nil
			case err != nil:
				y.syncs.WithLabelValues("error").Inc()
				if err.Error() != lastErr {
					y.logger.Warn("Reading Alertmanager's alerts failed; keeping the last state", "err", err)
					lastErr = err.Error()
				}
			default:
				y.syncs.WithLabelValues("ok").Inc()
				if lastErr != "" {
					y.logger.Info("Reading Alertmanager's alerts works again")
				}
				lastErr = ""
			}
		}
		t := time.NewTimer(s.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-y.wake:
			t.Stop()
		}
	}
}

// Sync reads the alerts once and writes what changed: every held alert's
// state row, a "gone" row for each alert no longer held, and a row in the
// alerts table for each alert no webhook brought.
func (y *Syncer) Sync(ctx context.Context) error {
	s := y.settings.Load()
	urls, err := y.urls(ctx, s)
	if err != nil {
		return err
	}
	if len(urls) == 0 {
		return errors.New("no Alertmanager to read: set alertmanager.urls, or Prometheus reports none")
	}
	merged, reporter, err := y.fetchAll(ctx, urls)
	if err != nil {
		return err
	}
	now := y.now().UTC()

	states := make([]rows.AlertStateRow, 0, len(merged))
	counts := map[string]int{}
	held := make(map[string]rows.AlertStateRow, len(merged))
	for fp, a := range merged {
		st := stateRow(a, reporter[fp], now)
		states = append(states, st)
		held[fp] = st
		counts[st.State]++
	}
	y.mu.Lock()
	for fp, old := range y.held {
		if _, ok := held[fp]; !ok {
			old.State, old.SyncedAt = rows.StateGone, now
			states = append(states, old)
		}
	}
	y.mu.Unlock()
	for _, st := range []string{rows.StateActive, rows.StateSuppressed, rows.StateUnprocessed} {
		y.byState.WithLabelValues(st).Set(float64(counts[st]))
	}
	if len(states) > 0 {
		if err := y.states.Write(ctx, states); err != nil {
			return fmt.Errorf("alertmanager sync: write %d state rows: %w", len(states), err)
		}
	}
	y.mu.Lock()
	y.held = held
	for k := range y.written {
		// Forget keys of alerts Alertmanager no longer holds.
		if _, ok := held[k.Fingerprint]; !ok {
			delete(y.written, k)
		}
	}
	y.mu.Unlock()
	return y.writeUnseen(ctx, merged, s, now)
}

// writeUnseen writes to the alerts table the alerts that no webhook
// brought: suppressed ones, and active ones older than two sync intervals
// (younger ones may still be on their way by webhook).
func (y *Syncer) writeUnseen(ctx context.Context, merged map[string]Alert, s *Settings, now time.Time) error {
	var cands []Alert
	y.mu.Lock()
	for _, a := range merged {
		key := rows.AlertKey{Fingerprint: a.Fingerprint, Status: "firing", PrometheusDateTime: a.StartsAt.UnixNano()}
		if y.written[key] || a.Status.State == rows.StateUnprocessed {
			continue
		}
		if a.Status.State == rows.StateSuppressed || now.Sub(a.StartsAt) > 2*s.Interval {
			cands = append(cands, a)
		}
	}
	y.mu.Unlock()
	if len(cands) == 0 {
		return nil
	}
	rs := y.toRows(ctx, cands, now)
	keys := make([]rows.AlertKey, len(rs))
	for i := range rs {
		keys[i] = rs[i].Key()
	}
	present, err := y.present(ctx, keys)
	if err != nil {
		return fmt.Errorf("alertmanager sync: look up alerts in the table: %w", err)
	}
	var unseen []rows.AlertRow
	for i := range rs {
		if !present[keys[i]] {
			unseen = append(unseen, rs[i])
		}
	}
	if len(unseen) > 0 {
		if err := y.alerts.Write(ctx, unseen); err != nil {
			return fmt.Errorf("alertmanager sync: write %d alerts: %w", len(unseen), err)
		}
		y.fromAPI.Add(float64(len(unseen)))
		y.logger.Info("Wrote alerts that no webhook brought", "alerts", len(unseen))
	}
	y.mu.Lock()
	for _, k := range keys {
		y.written[k] = true
	}
	y.mu.Unlock()
	return nil
}

// urls returns the Alertmanagers to read: the configured ones, or those
// Prometheus sends its alerts to.
func (y *Syncer) urls(ctx context.Context, s *Settings) ([]string, error) {
	if len(s.URLs) > 0 || y.prom == nil {
		return s.URLs, nil
	}
	res, err := y.prom.AlertManagers(ctx)
	if err != nil {
		return nil, fmt.Errorf("alertmanager sync: ask Prometheus for its Alertmanagers (or set alertmanager.urls): %w", err)
	}
	var out []string
	for _, am := range res.Active {
		// Prometheus lists the push endpoint, .../api/v2/alerts.
		u, err := url.Parse(am.URL)
		if err != nil {
			continue
		}
		u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/api/v2/alerts"), "/api/v1/alerts")
		u.RawQuery = ""
		out = append(out, u.String())
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// fetchAll reads every replica and merges their alerts by fingerprint, the
// most recently updated first; it fails only when no replica answers.
func (y *Syncer) fetchAll(ctx context.Context, urls []string) (map[string]Alert, map[string]string, error) {
	type result struct {
		url    string
		alerts []Alert
		err    error
	}
	results := make(chan result, len(urls))
	for _, u := range urls {
		go func() {
			a, err := fetch(ctx, y.hc, u)
			results <- result{u, a, err}
		}()
	}
	merged := map[string]Alert{}
	reporter := map[string]string{}
	var errs []error
	for range urls {
		r := <-results
		if r.err != nil {
			y.replicaUp.WithLabelValues(r.url).Set(0)
			errs = append(errs, r.err)
			continue
		}
		y.replicaUp.WithLabelValues(r.url).Set(1)
		for _, a := range r.alerts {
			if a.Fingerprint == "" {
				continue
			}
			if old, ok := merged[a.Fingerprint]; !ok || a.UpdatedAt.After(old.UpdatedAt) {
				merged[a.Fingerprint] = a
				reporter[a.Fingerprint] = r.url
			}
		}
	}
	if len(errs) == len(urls) {
		return nil, nil, errors.Join(errs...)
	}
	if len(errs) > 0 {
		y.logger.Debug("An Alertmanager replica did not answer; using the others", "err", errors.Join(errs...))
	}
	return merged, reporter, nil
}

// stateRow is the prometheus_alert_state row of an alert.
func stateRow(a Alert, reporter string, now time.Time) rows.AlertStateRow {
	receivers := make([]string, len(a.Receivers))
	for i, r := range a.Receivers {
		receivers[i] = r.Name
	}
	state := a.Status.State
	if state == "" {
		state = rows.StateUnprocessed
	}
	return rows.AlertStateRow{
		Fingerprint:  a.Fingerprint,
		AlertName:    a.Labels["alertname"],
		Severity:     a.Labels["severity"],
		State:        state,
		SilencedBy:   strings.Join(a.Status.SilencedBy, ","),
		InhibitedBy:  strings.Join(a.Status.InhibitedBy, ","),
		Receivers:    strings.Join(receivers, ","),
		StartsAt:     a.StartsAt.UTC(),
		EndsAt:       a.EndsAt.UTC(),
		UpdatedAt:    a.UpdatedAt.UTC(),
		Labels:       labelText(a.Labels),
		Annotations:  labelText(a.Annotations),
		GeneratorURL: a.GeneratorURL,
		Alertmanager: reporter,
		SyncedAt:     now,
	}
}

func labelText(m map[string]string) string {
	ls := make(model.LabelSet, len(m))
	for k, v := range m {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.String()
}

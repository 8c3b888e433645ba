// Package tables keeps the bridge's three Deephaven tables in place: the
// alerts and metrics input tables and their server-side as-of join. Against
// a plain server it creates what is missing; against a server started with
// this repo's app.d/ it finds the tables there and checks their schemas.
// Rows land here: AddAlerts and AddMetrics are the last step before
// Deephaven.
package tables

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// Names are the global names of the three tables.
type Names struct {
	Alerts, Metrics, Joined string
}

// DefaultNames are the names the IDE shows unless configured otherwise.
var DefaultNames = Names{Alerts: rows.DefaultAlertsTable, Metrics: rows.DefaultMetricsTable, Joined: rows.DefaultJoinedTable}

// Tables writes rows into the bridge's tables.
//
// All methods are safe for concurrent use. Ensure may run at any time (at
// start, after a new session, after a write found a table missing); writes
// wait for a running Ensure. After a failed Ensure, Ready reports false and
// writes fail until an Ensure succeeds.
type Tables struct {
	client *deephaven.Client
	names  Names
	logger *slog.Logger
	mem    memory.Allocator

	// gate lets writes run together and Ensure alone: Ensure waits for
	// writes in flight and holds new ones back, so no row can land in a
	// freshly created table before OnReady has looked at it.
	gate    sync.RWMutex
	alerts  atomic.Pointer[deephaven.InputTable]
	metrics atomic.Pointer[deephaven.InputTable]
	ready   atomic.Bool
	created atomic.Int64

	// onReady runs at the end of every successful Ensure, before writes are
	// let through again.
	onReady func(ctx context.Context)
	// timeout bounds each write, so a hung connection cannot hold the
	// gate (and with it Ensure) for ever.
	timeout time.Duration
}

// SetCallTimeout bounds each write to Deephaven (default 30s).
func (t *Tables) SetCallTimeout(d time.Duration) { t.timeout = d }

// OnReady sets a function to run at the end of every successful Ensure,
// before writes are accepted again, whichever caller ran Ensure (start,
// reconnect, a write that found a table gone). The bridge uses it to notice
// that Deephaven came back without its rows before any new row lands.
// Call it before the first Ensure.
func (t *Tables) OnReady(f func(ctx context.Context)) { t.onReady = f }

// New returns Tables for client; call Ensure before writing.
func New(client *deephaven.Client, names Names, logger *slog.Logger) *Tables {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Tables{client: client, names: names, logger: logger, mem: memory.DefaultAllocator, timeout: 30 * time.Second}
}

// Names returns the table names.
func (t *Tables) Names() Names { return t.names }

// Ready reports whether the last Ensure succeeded.
func (t *Tables) Ready() bool { return t.ready.Load() }

// Created returns how many times Ensure created the alerts input table: it
// grows when the server came back without the bridge's tables.
func (t *Tables) Created() int64 { return t.created.Load() }

// Ensure makes sure the input tables exist with the expected schemas and
// the join is published. Existing tables with another schema are an error
// naming the column; nothing is replaced then.
func (t *Tables) Ensure(ctx context.Context) error {
	t.gate.Lock()
	defer t.gate.Unlock()
	t.ready.Store(false)
	err := t.ensure(ctx)
	if err == nil && t.onReady != nil {
		t.onReady(ctx)
	}
	t.ready.Store(err == nil)
	return err
}

func (t *Tables) ensure(ctx context.Context) error {
	alerts, createdA, err := t.client.EnsureInputTable(ctx, t.names.Alerts, rows.AlertSchema, rows.AlertKeys...)
	if err != nil {
		return fmt.Errorf("tables: prepare %s: %w", t.names.Alerts, err)
	}
	metrics, createdM, err := t.client.EnsureInputTable(ctx, t.names.Metrics, rows.MetricSchema)
	if err != nil {
		return fmt.Errorf("tables: prepare %s: %w", t.names.Metrics, err)
	}
	if createdA {
		t.created.Add(1)
	}
	// A join over replaced input tables would keep ticking on the old ones,
	// so it is rebuilt whenever an input table was created.
	_, err = t.client.TableSchema(ctx, t.names.Joined)
	switch {
	case err == nil && !createdA && !createdM:
	case err == nil || deephaven.IsNotFound(err):
		if err := t.publishJoin(ctx, alerts, metrics); err != nil {
			return err
		}
	default:
		return fmt.Errorf("tables: look up %s: %w", t.names.Joined, err)
	}
	t.alerts.Store(alerts)
	t.metrics.Store(metrics)
	t.logger.Info("Deephaven tables ready", "alerts", t.names.Alerts, "alerts_created", createdA,
		"metrics", t.names.Metrics, "metrics_created", createdM, "joined", t.names.Joined)
	return nil
}

func (t *Tables) publishJoin(ctx context.Context, alerts, metrics *deephaven.InputTable) error {
	j, err := t.client.AsOfJoin(ctx, alerts.Table(), metrics.Table(), rows.Join.ExactMatch, rows.Join.AsOf, rows.Join.Add)
	if err != nil {
		return fmt.Errorf("tables: join %s onto %s: %w", t.names.Metrics, t.names.Alerts, err)
	}
	defer j.Release(ctx)
	if err := t.client.Publish(ctx, j, t.names.Joined); err != nil {
		return fmt.Errorf("tables: publish %s: %w", t.names.Joined, err)
	}
	return nil
}

// AlertRows returns how many rows the alerts table holds now. Zero after a
// server restart says the bridge's history is gone from Deephaven.
func (t *Tables) AlertRows(ctx context.Context) (int64, error) {
	tb, err := t.client.OpenTable(ctx, t.names.Alerts)
	if err != nil {
		return 0, fmt.Errorf("tables: count %s: %w", t.names.Alerts, err)
	}
	defer tb.Release(ctx)
	return tb.Size(), nil
}

// NewestMetricTimes returns, per PrometheusQuery, the newest
// PrometheusDateTime among the last tail rows of the metrics table: where the
// poller resumes after a restart. The table is append-only and each query
// writes in time order, so the newest rows of every query that wrote
// recently are at its end; a query absent from the tail gets no entry.
// Only fixed column names are sent to the server, never data.
func (t *Tables) NewestMetricTimes(ctx context.Context, tail int64) (map[string]time.Time, error) {
	base, err := t.client.OpenTable(ctx, t.names.Metrics)
	if err != nil {
		return nil, fmt.Errorf("tables: read %s: %w", t.names.Metrics, err)
	}
	defer base.Release(ctx)
	last, err := base.Tail(ctx, tail)
	if err != nil {
		return nil, fmt.Errorf("tables: read %s: %w", t.names.Metrics, err)
	}
	defer last.Release(ctx)
	cols, err := last.View(ctx, "PrometheusQuery", "PrometheusDateTime")
	if err != nil {
		return nil, fmt.Errorf("tables: read %s: %w", t.names.Metrics, err)
	}
	defer cols.Release(ctx)
	tab, err := t.client.Snapshot(ctx, cols)
	if err != nil {
		return nil, fmt.Errorf("tables: read %s: %w", t.names.Metrics, err)
	}
	defer tab.Release()
	out := map[string]time.Time{}
	tr := array.NewTableReader(tab, 0)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		q, ok1 := rec.Column(0).(*array.String)
		ts, ok2 := rec.Column(1).(*array.Timestamp)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("tables: %s has unexpected column types", t.names.Metrics)
		}
		for i := 0; i < q.Len(); i++ {
			if q.IsNull(i) || ts.IsNull(i) {
				continue
			}
			at := time.Unix(0, int64(ts.Value(i))).UTC()
			if at.After(out[q.Value(i)]) {
				out[q.Value(i)] = at
			}
		}
	}
	return out, nil
}

// ErrNotReady is returned by writes before a successful Ensure.
var ErrNotReady = errors.New("tables: Deephaven tables are not ready")

// AddAlerts writes alert rows into the alerts table.
func (t *Tables) AddAlerts(ctx context.Context, rs []rows.AlertRow) error {
	rec := rows.AlertRecord(t.mem, rs)
	defer rec.Release()
	return t.repairing(ctx, t.add(ctx, &t.alerts, rec))
}

// AddMetrics writes metric rows into the metrics table.
func (t *Tables) AddMetrics(ctx context.Context, rs []rows.MetricRow) error {
	rec := rows.MetricRecord(t.mem, rs)
	defer rec.Release()
	return t.repairing(ctx, t.add(ctx, &t.metrics, rec))
}

// add writes one record while holding the gate open for writes.
func (t *Tables) add(ctx context.Context, table *atomic.Pointer[deephaven.InputTable], rec arrow.RecordBatch) error {
	t.gate.RLock()
	defer t.gate.RUnlock()
	it := table.Load()
	if it == nil || !t.ready.Load() {
		return ErrNotReady
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	return it.Add(ctx, rec)
}

// repairing notices a table that vanished (the server restarted without
// it) and marks the tables for a new Ensure; the caller retries.
func (t *Tables) repairing(ctx context.Context, err error) error {
	if err != nil && deephaven.IsNotFound(err) {
		t.ready.Store(false)
		t.logger.Warn("A Deephaven table is gone; re-creating the tables", "err", err)
		if eerr := t.Ensure(ctx); eerr != nil {
			return errors.Join(err, eerr)
		}
		return fmt.Errorf("%w (tables re-created; retry)", err)
	}
	return err
}

// Retryable reports whether a failed write may succeed when tried again.
func Retryable(err error) bool {
	return errors.Is(err, ErrNotReady) || deephaven.Retryable(err) || deephaven.IsNotFound(err)
}

// Package tables keeps the bridge's Deephaven tables in place: the input
// tables rows land in, and the tables Deephaven derives from them on the
// server (the as-of join of alerts onto metrics, and more). Against a plain
// server it creates what is missing; against a server started with this
// repo's app.d/ it finds the tables there and checks their schemas.
//
// The tables are declarations (see inputs and derived in decl.go): a new
// table is a new entry, built by the same code, and app.d mode is checked
// against the same list. Rows land here: Add is the last step before
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

// Names are the global names of the tables.
type Names struct {
	Alerts, Metrics, Joined, Rules, State, Notifications, Episodes, Checkpoints string
	// Samples holds the samples received by remote write.
	Samples string
}

// DefaultNames are the names the IDE shows unless configured otherwise.
var DefaultNames = Names{
	Alerts: rows.DefaultAlertsTable, Metrics: rows.DefaultMetricsTable, Joined: rows.DefaultJoinedTable,
	Rules: rows.DefaultRulesTable, State: rows.DefaultStateTable, Notifications: rows.DefaultNotificationsTable,
	Episodes: rows.DefaultEpisodesTable, Checkpoints: rows.DefaultCheckpointsTable,
	Samples: rows.DefaultSamplesTable,
}

// WithSuffix returns the names with "_" and sfx appended to each: tables of
// their own for one test or benchmark run on a shared server.
func (n Names) WithSuffix(sfx string) Names {
	for _, name := range []*string{&n.Alerts, &n.Metrics, &n.Joined, &n.Rules, &n.State, &n.Notifications, &n.Episodes, &n.Checkpoints, &n.Samples} {
		*name += "_" + sfx
	}
	return n
}

// Tables writes rows into the bridge's tables.
//
// All methods are safe for concurrent use. Ensure may run at any time (at
// start, after a new session, after a write found a table missing); writes
// wait for a running Ensure. After a failed Ensure, Ready reports false and
// the next write runs Ensure again.
type Tables struct {
	client *deephaven.Client
	names  Names
	logger *slog.Logger
	mem    memory.Allocator

	// gate lets writes run together and Ensure alone: Ensure waits for
	// writes in flight and holds new ones back, so no row can land in a
	// freshly created table before OnReady has looked at it.
	gate  sync.RWMutex
	input [numInputs]atomic.Pointer[deephaven.InputTable]
	ready atomic.Bool
	// created counts how often Ensure created the alerts table.
	created atomic.Int64
	// ensuring is held by the write that runs Ensure after a failed one,
	// so that a burst of writes does not queue up Ensures.
	ensuring sync.Mutex

	// onReady runs at the end of every successful Ensure, before writes are
	// let through again; its error fails the Ensure.
	onReady func(ctx context.Context) error
	// timeout bounds each write, so a hung connection cannot hold the
	// gate (and with it Ensure) for ever.
	timeout time.Duration
	// inFlight is how many uploads to one table may run at once.
	inFlight int
	// writer is this bridge's Writer in slotted tables; slots hands out
	// its places there (nil for other tables).
	writer int64
	slots  [numInputs]*slotSpace
}

// New returns Tables for client; call Ensure before writing.
func New(client *deephaven.Client, names Names, logger *slog.Logger) *Tables {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t := &Tables{client: client, names: names, logger: logger, mem: memory.DefaultAllocator, timeout: 30 * time.Second}
	for _, in := range inputs {
		if in.spec.Slotted {
			t.slots[in.id] = newSlotSpace()
		}
	}
	t.SetWriter("")
	return t
}

// SetWriter names this bridge among those writing into the same slotted
// tables (retention.writer); see WriterID. Call it before the first Ensure.
func (t *Tables) SetWriter(name string) { t.writer = WriterID(name) }

// SetCallTimeout bounds each write to Deephaven (default 30s).
func (t *Tables) SetCallTimeout(d time.Duration) { t.timeout = d }

// SetUploadsInFlight lets up to n uploads to each table run at once
// (default 1; see deephaven.InputTable.SetMaxInFlight for what that means
// for rows with the same key). Call it before the first Ensure.
func (t *Tables) SetUploadsInFlight(n int) { t.inFlight = n }

// OnReady sets a function to run at the end of every successful Ensure,
// before writes are accepted again, whichever caller ran Ensure (start,
// reconnect, a write that found a table gone or the tables not ready). The
// bridge uses it to notice that Deephaven came back without its rows before
// any new row lands. An error from f fails the Ensure, and the next write
// tries again. Call it before the first Ensure.
func (t *Tables) OnReady(f func(ctx context.Context) error) { t.onReady = f }

// Names returns the table names.
func (t *Tables) Names() Names { return t.names }

// Ready reports whether the last Ensure succeeded.
func (t *Tables) Ready() bool { return t.ready.Load() }

// Created returns how many times Ensure created the alerts input table: it
// grows when the server came back without the bridge's tables.
func (t *Tables) Created() int64 { return t.created.Load() }

// Ensure makes sure the input tables exist with the expected schemas and
// the derived tables are published. Existing tables with another schema are
// an error naming the column; nothing is replaced then.
func (t *Tables) Ensure(ctx context.Context) error {
	t.gate.Lock()
	defer t.gate.Unlock()
	t.ready.Store(false)
	for _, sp := range t.slots {
		if sp != nil {
			sp.unknown()
		}
	}
	err := t.ensure(ctx)
	if err == nil && t.onReady != nil {
		err = t.onReady(ctx)
	}
	t.ready.Store(err == nil)
	return err
}

func (t *Tables) ensure(ctx context.Context) error {
	var its [numInputs]*deephaven.InputTable
	var created [numInputs]bool
	var attrs []any
	for _, in := range inputs {
		name := in.name(t.names)
		it, c, err := t.client.EnsureInputTable(ctx, name, in.spec.Schema(), in.spec.Keys...)
		if err != nil {
			return fmt.Errorf("tables: prepare %s: %w", name, err)
		}
		it.SetMaxInFlight(t.inFlight)
		its[in.id], created[in.id] = it, c
		attrs = append(attrs, name, map[bool]string{true: "created", false: "found"}[c])
	}
	if created[Alerts] {
		t.created.Add(1)
	}
	for _, d := range derived {
		name := d.name(t.names)
		// A derived table over replaced input tables would keep ticking on
		// the old ones, so it is rebuilt whenever one of them was created.
		rebuild := false
		for _, id := range d.inputs {
			rebuild = rebuild || created[id]
		}
		_, err := t.client.TableSchema(ctx, name)
		switch {
		case err == nil && !rebuild:
			attrs = append(attrs, name, "found")
			continue
		case err == nil || deephaven.IsNotFound(err):
		default:
			return fmt.Errorf("tables: look up %s: %w", name, err)
		}
		if err := t.publish(ctx, d, its); err != nil {
			return err
		}
		attrs = append(attrs, name, "published")
	}
	for id, sp := range t.slots {
		if sp == nil {
			continue
		}
		used := map[int64]bool{}
		if !created[id] {
			var err error
			if used, err = t.usedChunks(ctx, its[id].Table()); err != nil {
				return fmt.Errorf("tables: read which slots of %s hold rows: %w", its[id].Name(), err)
			}
		}
		sp.reset(used)
	}
	for id, it := range its {
		t.input[id].Store(it)
	}
	t.logger.Info("Deephaven tables ready", attrs...)
	return nil
}

// publish builds a derived table from the input tables and publishes it.
func (t *Tables) publish(ctx context.Context, d derivedDecl, its [numInputs]*deephaven.InputTable) error {
	name := d.name(t.names)
	tb, err := d.build(ctx, t.client, func(id Input) *deephaven.Table { return its[id].Table() })
	if err != nil {
		return fmt.Errorf("tables: build %s: %w", name, err)
	}
	defer tb.Release(ctx)
	if err := t.client.Publish(ctx, tb, name); err != nil {
		return fmt.Errorf("tables: publish %s: %w", name, err)
	}
	return nil
}

// HoldsCheckpoint reports whether Deephaven holds the checkpoint row of
// bridge for the alerts table: whether it still holds what that bridge
// wrote into the alerts table before (the row lives in the server's memory
// like the rows it vouches for). Call it from OnReady, before writes flow.
func (t *Tables) HoldsCheckpoint(ctx context.Context, bridge string) (bool, error) {
	it := t.input[Checkpoints].Load()
	if it == nil {
		return false, ErrNotReady
	}
	// The table is small (a row per bridge and alerts table): it is read
	// whole and searched here, so no filter is built from a value.
	view, err := it.Table().View(ctx, "Bridge", "AlertsTable")
	if err != nil {
		return false, fmt.Errorf("tables: read %s: %w", t.names.Checkpoints, err)
	}
	defer view.Release(ctx)
	found := false
	err = t.eachBatch(ctx, view, t.names.Checkpoints, func(rec arrow.RecordBatch) bool {
		bc, ok1 := rec.Column(0).(*array.String)
		ac, ok2 := rec.Column(1).(*array.String)
		if !ok1 || !ok2 {
			return false
		}
		for i := 0; i < bc.Len(); i++ {
			found = found || bc.Value(i) == bridge && ac.Value(i) == t.names.Alerts
		}
		return true
	})
	return found && err == nil, err
}

// SetCheckpoint writes the checkpoint row of a bridge for the alerts table
// (AlertsTable is set here). Write it only once Deephaven holds, or is
// certain to be sent, everything the bridge must keep there.
func (t *Tables) SetCheckpoint(ctx context.Context, row rows.CheckpointRow) error {
	it := t.input[Checkpoints].Load()
	if it == nil {
		return ErrNotReady
	}
	row.AlertsTable = t.names.Alerts
	rec := rows.CheckpointRecord(t.mem, []rows.CheckpointRow{row})
	defer rec.Release()
	if err := it.Add(ctx, rec); err != nil {
		return fmt.Errorf("tables: write checkpoint: %w", err)
	}
	return nil
}

// AlertRows returns how many rows the alerts table holds now.
func (t *Tables) AlertRows(ctx context.Context) (int64, error) {
	tb, err := t.client.OpenTable(ctx, t.names.Alerts)
	if err != nil {
		return 0, fmt.Errorf("tables: count %s: %w", t.names.Alerts, err)
	}
	defer tb.Release(ctx)
	return tb.Size(), nil
}

// NewestMetricTimes returns, per PrometheusQuery, the newest
// PrometheusDateTime in the metrics table: how far each query's data is
// complete, so where the poller resumes. The server computes it (a max
// aggregation by query), so its cost does not grow with what the client
// reads. Only fixed column names are sent to the server, never data.
func (t *Tables) NewestMetricTimes(ctx context.Context) (map[string]time.Time, error) {
	agg, err := t.client.NamedTable(t.names.Metrics).AggBy(ctx, []deephaven.Agg{deephaven.AggMax("PrometheusDateTime")}, "PrometheusQuery")
	if err != nil {
		return nil, fmt.Errorf("tables: read %s: %w", t.names.Metrics, err)
	}
	defer agg.Release(ctx)
	out := map[string]time.Time{}
	err = t.eachBatch(ctx, agg, t.names.Metrics, func(rec arrow.RecordBatch) bool {
		q, ok1 := rec.Column(0).(*array.String)
		ts, ok2 := rec.Column(1).(*array.Timestamp)
		if !ok1 || !ok2 {
			return false
		}
		for i := 0; i < q.Len(); i++ {
			if q.IsNull(i) || ts.IsNull(i) {
				continue
			}
			out[q.Value(i)] = time.Unix(0, int64(ts.Value(i))).UTC()
		}
		return true
	})
	return out, err
}

// eachBatch snapshots tbl (a view of the table called name) and calls f on
// each of its record batches; f reports false when the columns are not of
// the types it expects.
func (t *Tables) eachBatch(ctx context.Context, tbl *deephaven.Table, name string, f func(arrow.RecordBatch) bool) error {
	tab, err := t.client.Snapshot(ctx, tbl)
	if err != nil {
		return fmt.Errorf("tables: read %s: %w", name, err)
	}
	defer tab.Release()
	tr := array.NewTableReader(tab, 0)
	defer tr.Release()
	for tr.Next() {
		if !f(tr.RecordBatch()) {
			return fmt.Errorf("tables: %s has unexpected column types", name)
		}
	}
	return nil
}

// RecentNotifications reads the notification log's rows received at or
// after since, whoever wrote them, with the columns that identify a
// notification (Fingerprint, StartsAt, Status, Receiver, ReceivedAt).
func (t *Tables) RecentNotifications(ctx context.Context, since time.Time) ([]rows.NotificationRow, error) {
	name := t.names.Notifications
	recent, err := t.client.NamedTable(name).Where(ctx, fmt.Sprintf("ReceivedAt >= '%s'", since.UTC().Format(time.RFC3339Nano)))
	if err != nil {
		return nil, fmt.Errorf("tables: read %s: %w", name, err)
	}
	defer recent.Release(ctx)
	cols := []string{"Fingerprint", "StartsAt", "Status", "Receiver", "ReceivedAt"}
	view, err := recent.View(ctx, cols...)
	if err != nil {
		return nil, fmt.Errorf("tables: read %s: %w", name, err)
	}
	defer view.Release(ctx)
	var out []rows.NotificationRow
	err = t.eachBatch(ctx, view, name, func(rec arrow.RecordBatch) bool {
		fp, ok1 := rec.Column(0).(*array.String)
		starts, ok2 := rec.Column(1).(*array.Timestamp)
		status, ok3 := rec.Column(2).(*array.String)
		receiver, ok4 := rec.Column(3).(*array.String)
		at, ok5 := rec.Column(4).(*array.Timestamp)
		if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
			return false
		}
		for i := 0; i < fp.Len(); i++ {
			if fp.IsNull(i) || starts.IsNull(i) || at.IsNull(i) {
				continue
			}
			out = append(out, rows.NotificationRow{
				Fingerprint: fp.Value(i), StartsAt: time.Unix(0, int64(starts.Value(i))).UTC(),
				Status: status.Value(i), Receiver: receiver.Value(i), ReceivedAt: time.Unix(0, int64(at.Value(i))).UTC(),
			})
		}
		return true
	})
	return out, err
}

// ErrNotReady is returned by writes before a successful Ensure.
var ErrNotReady = errors.New("tables: Deephaven tables are not ready")

// AddAlerts writes alert rows into the alerts table.
func (t *Tables) AddAlerts(ctx context.Context, rs []rows.AlertRow) error {
	rec := rows.AlertRecord(t.mem, rs)
	defer rec.Release()
	return t.Add(ctx, Alerts, rec)
}

// AddMetrics writes metric rows into the metrics table.
func (t *Tables) AddMetrics(ctx context.Context, rs []rows.MetricRow) error {
	places, done, err := t.place(ctx, Metrics, len(rs))
	if err != nil {
		return err
	}
	defer done()
	rec := rows.MetricRecord(t.mem, rs, places)
	defer rec.Release()
	return t.Add(ctx, Metrics, rec)
}

// place hands out n slots in a slotted table; done must be called once
// the upload that carries them ended.
func (t *Tables) place(ctx context.Context, in Input, n int) (rows.Places, func(), error) {
	slots, done, ok := t.slots[in].take(n)
	if !ok {
		if err := t.prepareAgain(ctx, &t.input[in]); err != nil {
			return rows.Places{}, nil, err
		}
		if slots, done, ok = t.slots[in].take(n); !ok {
			return rows.Places{}, nil, ErrNotReady
		}
	}
	return rows.Places{Writer: t.writer, Slots: slots}, done, nil
}

// AddStates writes alert state rows into the state table.
func (t *Tables) AddStates(ctx context.Context, rs []rows.AlertStateRow) error {
	rec := rows.StateRecord(t.mem, rs)
	defer rec.Release()
	return t.Add(ctx, State, rec)
}

// AddNotifications writes notification rows into the notification log.
func (t *Tables) AddNotifications(ctx context.Context, rs []rows.NotificationRow) error {
	places, done, err := t.place(ctx, Notifications, len(rs))
	if err != nil {
		return err
	}
	defer done()
	rec := rows.NotificationRecord(t.mem, rs, places)
	defer rec.Release()
	return t.Add(ctx, Notifications, rec)
}

// AddRules writes rule rows into the rules table.
func (t *Tables) AddRules(ctx context.Context, rs []rows.RuleRow) error {
	rec := rows.RuleRecord(t.mem, rs)
	defer rec.Release()
	return t.Add(ctx, Rules, rec)
}

// Add writes one record into an input table, while holding the gate open
// for writes. Tables that are not ready (a failed Ensure, e.g. on a server
// still starting) are prepared again by one of the writes; the others fail
// with ErrNotReady and retry. A table that vanished (the server restarted
// without it) makes the tables prepared again, and the write fails so that
// its caller retries.
func (t *Tables) Add(ctx context.Context, table Input, rec arrow.RecordBatch) error {
	return t.repairing(ctx, t.add(ctx, &t.input[table], rec))
}

func (t *Tables) add(ctx context.Context, table *atomic.Pointer[deephaven.InputTable], rec arrow.RecordBatch) error {
	if err := t.prepareAgain(ctx, table); err != nil {
		return err
	}
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

// prepareAgain runs Ensure when the last one failed, unless another write
// already does.
func (t *Tables) prepareAgain(ctx context.Context, table *atomic.Pointer[deephaven.InputTable]) error {
	if !t.ready.Load() && table.Load() != nil && t.ensuring.TryLock() {
		err := t.Ensure(ctx)
		t.ensuring.Unlock()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNotReady, err)
		}
	}
	return nil
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

// PresentAlerts reports which of keys the alerts table holds. The keys go
// to the server as a table and are matched there (a where-in), so no
// filter text is built from their values.
func (t *Tables) PresentAlerts(ctx context.Context, keys []rows.AlertKey) (map[rows.AlertKey]bool, error) {
	out := map[rows.AlertKey]bool{}
	if len(keys) == 0 {
		return out, nil
	}
	it := t.input[Alerts].Load()
	if it == nil || !t.ready.Load() {
		return nil, ErrNotReady
	}
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "Fingerprint", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "Status", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "PrometheusDateTime", Type: &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(t.mem, sc)
	defer b.Release()
	for _, k := range keys {
		b.Field(0).(*array.StringBuilder).Append(k.Fingerprint)
		b.Field(1).(*array.StringBuilder).Append(k.Status)
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(k.PrometheusDateTime))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	probe, err := t.client.Import(ctx, sc, rec)
	if err != nil {
		return nil, fmt.Errorf("tables: upload alert keys: %w", err)
	}
	defer probe.Release(context.WithoutCancel(ctx))
	found, err := t.client.WhereIn(ctx, it.Table(), probe, false, rows.AlertKeys...)
	if err != nil {
		return nil, fmt.Errorf("tables: look up alert keys: %w", err)
	}
	defer found.Release(context.WithoutCancel(ctx))
	view, err := found.View(ctx, rows.AlertKeys...)
	if err != nil {
		return nil, fmt.Errorf("tables: look up alert keys: %w", err)
	}
	defer view.Release(context.WithoutCancel(ctx))
	err = t.client.Read(ctx, view, func(_ *arrow.Schema, rec arrow.RecordBatch) error {
		if rec == nil {
			return nil
		}
		fp, ok1 := rec.Column(0).(*array.String)
		st, ok2 := rec.Column(1).(*array.String)
		at, ok3 := rec.Column(2).(*array.Timestamp)
		if !ok1 || !ok2 || !ok3 {
			return fmt.Errorf("tables: %s has unexpected key column types", t.names.Alerts)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			out[rows.AlertKey{Fingerprint: fp.Value(i), Status: st.Value(i), PrometheusDateTime: int64(at.Value(i))}] = true
		}
		return nil
	})
	return out, err
}

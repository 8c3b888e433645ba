// Package retention bounds the live tables in Deephaven: every interval, the
// rows of each aged table (pkg/tables.Aged) older than the live window leave
// it, and are written to the history (pkg/history) on their way out.
//
// A step, per table: freeze the expired rows on the server, stream them into
// a pending Parquet export, delete exactly the frozen rows, commit the
// export. A crash at any point leaves either the rows in Deephaven (the
// export is aborted, the next step exports them again) or the rows in a
// pending export that Recover commits or aborts after asking Deephaven
// whether it still holds them. So a row is in the live table or in the
// history, and after a crash it is never in both for longer than it takes
// to start again, nor in neither.
//
// The history's cursor (the newest committed cutoff of a table) is where the
// live window starts after Deephaven restarted empty: sources refill it from
// there (the journal's resend, the poller's backfill), never before, so that
// nothing is doubled between the live tables and the history.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/history"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/tables"
)

// Keeper runs the retention steps. Make it with New; Run it as a source
// would be run. Step, Recover and Cursor may be called concurrently with
// Run; steps never overlap.
type Keeper struct {
	tables   func() *tables.Tables // the current tables, nil before they are ready
	history  *history.Store        // nil drops expired rows
	live     time.Duration
	interval time.Duration
	// hold, when it returns true for a table, skips its step: the journal
	// still has rows to deliver to it that may be older than the cutoff.
	hold   func(table tables.Input) bool
	logger *slog.Logger
	now    func() time.Time

	step chan struct{} // one token: steps never overlap

	moved    *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	failures *prometheus.CounterVec
	lastStep *prometheus.GaugeVec
	duration *prometheus.HistogramVec
}

// Options configure a Keeper.
type Options struct {
	Live     time.Duration // rows older than this leave the live tables
	Interval time.Duration // how often
	// Hold skips a table's step while it returns true (see Keeper.hold).
	Hold func(tables.Input) bool
}

// New returns a Keeper; history may be nil (rows that leave are dropped).
func New(current func() *tables.Tables, hist *history.Store, opts Options, logger *slog.Logger, reg prometheus.Registerer) *Keeper {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Hold == nil {
		opts.Hold = func(tables.Input) bool { return false }
	}
	f := promauto.With(reg)
	k := &Keeper{
		tables: current, history: hist, live: opts.Live, interval: opts.Interval, hold: opts.Hold,
		logger: logger, now: time.Now, step: make(chan struct{}, 1),
		moved: f.NewCounterVec(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_retention_rows_moved_total",
			Help: "Rows that left the live tables into the history, by table.",
		}, []string{"table"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_retention_rows_dropped_total",
			Help: "Rows that left the live tables while the history is off, by table.",
		}, []string{"table"}),
		failures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_retention_step_failures_total",
			Help: "Retention steps that failed (and are tried again next interval), by table.",
		}, []string{"table"}),
		lastStep: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "prometheus_deephaven_bridge_retention_last_success_timestamp_seconds",
			Help: "When a retention step of the table last succeeded.",
		}, []string{"table"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "prometheus_deephaven_bridge_retention_step_duration_seconds",
			Help:    "Time of a retention step of one table: freeze, export, delete, commit.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 8),
		}, []string{"table"}),
	}
	k.step <- struct{}{}
	return k
}

// Name identifies the Keeper among the bridge's sources.
func (k *Keeper) Name() string { return "retention" }

// Run steps every interval until ctx ends.
func (k *Keeper) Run(ctx context.Context) error {
	if k.live <= 0 {
		return nil
	}
	t := time.NewTicker(k.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := k.Step(ctx); err != nil && ctx.Err() == nil {
			k.logger.Warn("Retention step failed; trying again next interval", "err", err)
		}
	}
}

// Step moves the expired rows of every aged table out, and prunes the
// history. It is a no-op before the tables are ready.
func (k *Keeper) Step(ctx context.Context) error {
	select {
	case <-k.step:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { k.step <- struct{}{} }()
	t := k.tables()
	if t == nil || !t.Ready() {
		return nil
	}
	var errs []error
	cutoff := k.now().Add(-k.live)
	for _, a := range t.Aged() {
		if k.hold(a.Input) {
			k.logger.Debug("Retention waits for the journal to deliver", "table", a.Name)
			continue
		}
		start := time.Now()
		if err := k.expire(ctx, t, a, cutoff); err != nil {
			k.failures.WithLabelValues(a.Name).Inc()
			errs = append(errs, err)
			continue
		}
		k.duration.WithLabelValues(a.Name).Observe(time.Since(start).Seconds())
		k.lastStep.WithLabelValues(a.Name).SetToCurrentTime()
	}
	if k.history != nil {
		if err := k.history.Prune(ctx, k.now()); err != nil {
			errs = append(errs, fmt.Errorf("retention: prune history: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (k *Keeper) expire(ctx context.Context, t *tables.Tables, a tables.Aged, cutoff time.Time) error {
	var exp *history.Export
	keep := func(ctx context.Context, n int64, read tables.ReadFunc) error {
		if k.history == nil {
			return nil
		}
		var err error
		exp, err = k.exportRows(ctx, a, cutoff, read)
		return err
	}
	n, err := t.Expire(ctx, a.Input, cutoff, keep)
	if exp == nil {
		if n > 0 { // deleted, even if an error came after
			k.dropped.WithLabelValues(a.Name).Add(float64(n))
		}
		if err != nil {
			return fmt.Errorf("retention: %s: %w", a.Name, err)
		}
		return nil
	}
	if err != nil && !errors.Is(err, tables.ErrAfterDelete) {
		// The delete may or may not have happened (a call can fail after
		// the server applied it): settle the export as after a crash.
		if serr := k.settle(ctx, t, a, exp); serr != nil {
			return fmt.Errorf("retention: %s: %w; and then: %w", a.Name, err, serr)
		}
		return fmt.Errorf("retention: %s: %w", a.Name, err)
	}
	// The rows have left the live table: finish the commit (a rename and an
	// fsync) even if ctx ended meanwhile, so that a shutdown does not leave
	// them out of the history until the next start.
	if cerr := exp.Commit(context.WithoutCancel(ctx)); cerr != nil {
		return fmt.Errorf("retention: %s: commit the export of %d rows (it is settled at the next start): %w", a.Name, n, cerr)
	}
	k.moved.WithLabelValues(a.Name).Add(float64(n))
	if err != nil {
		return fmt.Errorf("retention: %s: %w", a.Name, err)
	}
	k.logger.Debug("Rows left the live table for the history", "table", a.Name, "rows", n, "cutoff", cutoff)
	return nil
}

// exportRows writes the frozen rows into a prepared export.
func (k *Keeper) exportRows(ctx context.Context, a tables.Aged, cutoff time.Time, read tables.ReadFunc) (*history.Export, error) {
	exp, err := k.history.Begin(ctx, a.Name, cutoff, a.Time)
	if err != nil {
		return nil, err
	}
	err = read(func(_ *arrow.Schema, rec arrow.RecordBatch) error {
		if rec == nil {
			return nil
		}
		return exp.Write(ctx, rec)
	})
	if err == nil {
		_, err = exp.Prepare(ctx)
	}
	if err != nil {
		if aerr := exp.Abort(); aerr != nil {
			k.logger.Warn("Removing an unfinished export failed", "table", a.Name, "err", aerr)
		}
		return nil, err
	}
	return exp, nil
}

// settle commits an export whose rows Deephaven no longer holds, and
// aborts one whose rows it still holds. Its first and last rows stand for
// all: an export's rows are deleted together or not at all.
func (k *Keeper) settle(ctx context.Context, t *tables.Tables, a tables.Aged, exp *history.Export) error {
	probe, err := probeRows(ctx, exp)
	if err != nil && ctx.Err() != nil {
		// Stopped, not unreadable: the next start settles it.
		return fmt.Errorf("read back the export: %w", err)
	}
	if err != nil {
		// An export that cannot be read back is no history: drop it, the
		// rows are exported again if Deephaven still holds them.
		k.logger.Warn("Dropping an export that cannot be read back", "table", a.Name, "err", err)
		return exp.Abort()
	}
	if len(probe) == 0 {
		return exp.Commit(ctx)
	}
	defer func() {
		for _, r := range probe {
			r.Release()
		}
	}()
	held, err := t.Holds(ctx, a.Input, probe...)
	if err != nil {
		return fmt.Errorf("ask whether Deephaven still holds the exported rows: %w", err)
	}
	if held {
		return exp.Abort()
	}
	return exp.Commit(ctx)
}

// probeRows returns the first and the last row of an export.
func probeRows(ctx context.Context, exp *history.Export) ([]arrow.RecordBatch, error) {
	var first, last arrow.RecordBatch
	err := exp.Read(ctx, func(rec arrow.RecordBatch) error {
		if rec.NumRows() == 0 {
			return nil
		}
		if first == nil {
			first = rec.NewSlice(0, 1)
		}
		if last != nil {
			last.Release()
		}
		last = rec.NewSlice(rec.NumRows()-1, rec.NumRows())
		return nil
	})
	var out []arrow.RecordBatch
	for _, r := range []arrow.RecordBatch{first, last} {
		if r != nil {
			out = append(out, r)
		}
	}
	if err != nil {
		for _, r := range out {
			r.Release()
		}
		return nil, err
	}
	return out, nil
}

// Recover settles the exports a crash left pending. Call it once the
// tables are ready and before rows flow (from the tables' OnReady), and
// before reading Cursor.
func (k *Keeper) Recover(ctx context.Context, t *tables.Tables) error {
	if k.history == nil {
		return nil
	}
	aged := map[string]tables.Aged{}
	for _, a := range t.Aged() {
		aged[a.Name] = a
	}
	for _, exp := range k.history.Pending() {
		a, ok := aged[exp.Table()]
		if !ok {
			k.logger.Warn("A pending export belongs to no table this bridge writes; it stays", "table", exp.Table())
			continue
		}
		if err := k.settle(ctx, t, a, exp); err != nil {
			return fmt.Errorf("retention: settle a pending export of %s: %w", a.Name, err)
		}
		k.logger.Info("Settled an export left by a crash", "table", a.Name, "cutoff", exp.Cutoff())
	}
	return nil
}

// Cursor returns where the live window of table starts for refills: rows
// before it are in the history. The zero time when there is no history.
func (k *Keeper) Cursor(table string) (time.Time, error) {
	if k.history == nil || k.live <= 0 {
		return time.Time{}, nil
	}
	c, ok, err := k.history.Cursor(table)
	if err != nil || !ok {
		return time.Time{}, err
	}
	return c, nil
}

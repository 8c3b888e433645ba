package app

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/config"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/sink"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/tables"
)

// deephavenSink is the direct way into Deephaven: a batcher per table (the
// alerts and the notification log share one, sink.Pair) in
// front of pkg/tables, over one client connection that it makes, keeps and
// closes. Its writers are where the sources' rows wait.
type deephavenSink struct {
	cfg     *config.Config // as at start: address, auth and tables need a restart
	auth    deephaven.Auth
	tls     *tls.Config
	logger  *slog.Logger
	onReady func(ctx context.Context, t *tables.Tables) error

	client atomic.Pointer[deephaven.Client]
	tables atomic.Pointer[tables.Tables]

	// alertsAndNotes batches the alerts and the notification log together
	// (a webhook request writes both); alerts and notes write one of them
	// through the same batches.
	alertsAndNotes *sink.Pair[rows.AlertRow, rows.NotificationRow]
	alerts         sink.Writer[rows.AlertRow]
	notes          sink.Writer[rows.NotificationRow]
	metrics        *sink.Batcher[rows.MetricRow]
	rules          *sink.Batcher[rows.RuleRow]
	states         *sink.Batcher[rows.AlertStateRow]
	// writer names this bridge in the slotted tables (retention.writer).
	writer  string
	samples *sink.Batcher[rows.SampleRow] // append-only: no key

	// readyCh is closed once the tables were ready for the first time.
	readyCh chan struct{}
}

func newDeephavenSink(cfg *config.Config, writer string, getenv func(string) string, onReady func(context.Context, *tables.Tables) error, logger *slog.Logger, reg prometheus.Registerer) (*deephavenSink, error) {
	auth, err := deephavenAuth(cfg, getenv)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := deephavenTLS(cfg.Deephaven.TLS)
	if err != nil {
		return nil, err
	}
	d := &deephavenSink{cfg: cfg, writer: writer, auth: auth, tls: tlsCfg, logger: logger, onReady: onReady, readyCh: make(chan struct{})}
	sm := sink.NewMetrics(reg)
	opts := func(table string) sink.Options {
		return sink.Options{
			Table: table, MaxRows: cfg.Deephaven.BatchMaxRows, MaxDelay: time.Duration(cfg.Deephaven.BatchMaxDelay),
			Retryable: tables.Retryable, MaxInFlight: cfg.Deephaven.UploadsInFlight,
		}
	}
	seed := maphash.MakeSeed()
	d.alertsAndNotes = sink.NewPair(d.uploadAlerts, d.uploadNotes, cfg.Tables.Alerts, cfg.Tables.Notifications, opts(""), logger, sm)
	d.alertsAndNotes.SetKey(func(r rows.AlertRow) uint64 { return r.Key().Hash(seed) })
	d.alerts, d.notes = d.alertsAndNotes.First(), d.alertsAndNotes.Second()
	d.metrics = sink.New(d.uploadMetrics, opts(cfg.Tables.Metrics), logger, sm)
	d.rules = sink.New(d.uploadRules, opts(cfg.Tables.Rules), logger, sm)
	d.rules.SetKey(func(r rows.RuleRow) uint64 { return r.KeyHash(seed) })
	d.states = sink.New(d.uploadStates, opts(cfg.Tables.State), logger, sm)
	d.states.SetKey(func(r rows.AlertStateRow) uint64 { return maphash.String(seed, r.Fingerprint) })
	// A remote write request brings up to 2000 rows (Prometheus's
	// max_samples_per_send), so with the default every request would start
	// an upload of its own beside those in flight; gathering requests into
	// uploads of half a batch halves Deephaven's CPU per row (bridge-bench).
	so := opts(cfg.Tables.Samples)
	so.PipelineMinRows = min(cfg.Deephaven.BatchMaxRows/2, 5000)
	d.samples = sink.New(d.uploadSamples, so, logger, sm)
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prometheus_deephaven_bridge_deephaven_session_up",
			Help: "1 while the Deephaven session is connected, else 0.",
		}, func() float64 {
			if c := d.client.Load(); c != nil && c.Status().State == deephaven.Connected {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prometheus_deephaven_bridge_deephaven_sessions",
			Help: "Deephaven sessions made by this process (grows on reconnect).",
		}, func() float64 {
			if c := d.client.Load(); c != nil {
				return float64(c.Status().Session)
			}
			return 0
		}),
	)
	return d, nil
}

// run connects and prepares the tables, then keeps the connection until ctx
// ends, and closes it. A schema mismatch is fatal: the bridge will not
// write into tables it does not understand.
func (d *deephavenSink) run(ctx context.Context) error {
	defer func() {
		if c := d.client.Load(); c != nil {
			if err := c.Close(); err != nil {
				d.logger.Debug("Close Deephaven session", "err", err)
			}
		}
	}()
	if err := d.connect(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func (d *deephavenSink) connect(ctx context.Context) error {
	cfg := d.cfg
	dopts := []deephaven.Option{deephaven.WithAuth(d.auth), deephaven.WithLogger(d.logger.With("component", "deephaven"))}
	if d.tls != nil {
		dopts = append(dopts, deephaven.WithTLS(d.tls))
	}
	var c *deephaven.Client
	err := retry(ctx, d.logger, "Cannot reach Deephaven; retrying", func() error {
		dctx, cancel := context.WithTimeout(ctx, time.Duration(cfg.Deephaven.Timeout))
		defer cancel()
		var err error
		c, err = deephaven.Dial(dctx, cfg.Deephaven.Address, dopts...)
		return err
	})
	if err != nil || ctx.Err() != nil {
		return err
	}
	d.client.Store(c)
	t := tables.New(c, tableNames(cfg.Tables), d.logger.With("component", "tables"))
	t.SetWriter(d.writer)
	t.SetCallTimeout(time.Duration(cfg.Deephaven.Timeout))
	t.SetUploadsInFlight(cfg.Deephaven.UploadsInFlight)
	t.OnReady(func(ctx context.Context) error { return d.onReady(ctx, t) })
	c.OnNewSession(func(ctx context.Context) {
		if err := t.Ensure(ctx); err != nil {
			d.logger.Error("Preparing Deephaven tables after reconnect failed; the next write tries again", "err", err)
		}
	})
	err = retry(ctx, d.logger, "Preparing Deephaven tables failed; retrying", func() error {
		err := t.Ensure(ctx)
		var se *deephaven.SchemaError
		if errors.As(err, &se) {
			return permanent{err}
		}
		return err
	})
	if err != nil || ctx.Err() != nil {
		return err
	}
	d.tables.Store(t)
	close(d.readyCh)
	return nil
}

// tableNames are the configured names of every table pkg/tables prepares.
func tableNames(t config.TablesConfig) tables.Names {
	return tables.Names{
		Alerts: t.Alerts, Metrics: t.Metrics, Joined: t.Joined, Rules: t.Rules,
		State: t.State, Notifications: t.Notifications, Episodes: t.Episodes, Checkpoints: t.Checkpoints,
		Samples: t.Samples,
	}
}

func (d *deephavenSink) uploadAlerts(ctx context.Context, rs []rows.AlertRow) error {
	t := d.tables.Load()
	if t == nil {
		return tables.ErrNotReady
	}
	return t.AddAlerts(ctx, rs)
}

func (d *deephavenSink) uploadMetrics(ctx context.Context, rs []rows.MetricRow) error {
	t := d.tables.Load()
	if t == nil {
		return tables.ErrNotReady
	}
	return t.AddMetrics(ctx, rs)
}

func (d *deephavenSink) uploadStates(ctx context.Context, rs []rows.AlertStateRow) error {
	t := d.tables.Load()
	if t == nil {
		return tables.ErrNotReady
	}
	return t.AddStates(ctx, rs)
}

func (d *deephavenSink) uploadNotes(ctx context.Context, rs []rows.NotificationRow) error {
	t := d.tables.Load()
	if t == nil {
		return tables.ErrNotReady
	}
	return t.AddNotifications(ctx, rs)
}

// current returns the tables once they were prepared, else nil.
func (d *deephavenSink) current() *tables.Tables { return d.tables.Load() }

// notesHeld reads the notification rows Deephaven holds that were received
// since a time (the journal's shipper asks, see shipper.SetNotesHeld).
func (d *deephavenSink) notesHeld(ctx context.Context, since time.Time) ([]rows.NotificationRow, error) {
	t := d.current()
	if t == nil || !t.Ready() {
		return nil, tables.ErrNotReady
	}
	return t.RecentNotifications(ctx, since)
}

// batchers lists the sink's batchers with their names, for the lifecycle.
func (d *deephavenSink) batchers() []namedRun {
	return []namedRun{
		{"alerts and notifications sink", d.alertsAndNotes.Run}, {"metrics sink", d.metrics.Run}, {"rules sink", d.rules.Run},
		{"alert state sink", d.states.Run}, {"samples sink", d.samples.Run},
	}
}

// namedRun is a batcher's Run under a name.
type namedRun struct {
	name string
	run  func(ctx, drainCtx context.Context)
}

func (d *deephavenSink) uploadRules(ctx context.Context, rs []rows.RuleRow) error {
	t := d.tables.Load()
	if t == nil {
		return tables.ErrNotReady
	}
	return t.AddRules(ctx, rs)
}

func (d *deephavenSink) uploadSamples(ctx context.Context, rs []rows.SampleRow) error {
	t := d.tables.Load()
	if t == nil {
		return tables.ErrNotReady
	}
	return t.AddSamples(ctx, rs)
}

// ready reports why rows cannot be written to Deephaven now, or nil.
func (d *deephavenSink) ready() error {
	c := d.client.Load()
	if c == nil {
		return errors.New("not connected to Deephaven yet")
	}
	if st := c.Status(); st.State != deephaven.Connected {
		return fmt.Errorf("Deephaven session is %s: %v", st.State, st.LastError)
	}
	t := d.tables.Load()
	if t == nil || !t.Ready() {
		return errors.New("Deephaven tables are not ready")
	}
	return nil
}

// onTablesReady runs whenever the tables were (re)prepared, before any row
// may be written to them. It asks Deephaven whether it still holds what
// this bridge wrote before (the bridge's checkpoint row, which lives and
// dies with the server's memory like the rows). If not (the bridge's first
// start against this server, or the server restarted), every source
// restores what it can before the checkpoint is written: the journal's
// history is resent (made durable first, see pkg/shipper), the webhook
// forgets which alerts it wrote so repeats get through, and the poller
// backfills what the metrics table lacks.
func (b *bridge) onTablesReady(ctx context.Context, t *tables.Tables) error {
	// Exports a crash left half done are settled first: the history's
	// cursors, which bound every refill below, depend on them.
	if err := b.keep.Recover(ctx, t); err != nil {
		return err
	}
	alertsFrom, err := b.keep.Cursor(t.Names().Alerts)
	if err != nil {
		return err
	}
	b.alertsFloor.Store(alertsFrom.UnixNano())
	notesFrom, err := b.keep.Cursor(t.Names().Notifications)
	if err != nil {
		return err
	}
	b.notesFloor.Store(notesFrom.UnixNano())
	metricsFrom, err := b.keep.Cursor(t.Names().Metrics)
	if err != nil {
		return err
	}
	held, err := t.HoldsCheckpoint(ctx, b.id)
	if err != nil {
		// When in doubt, restore: the key-backed alerts table absorbs a
		// resend, a lost history would stay lost.
		b.logger.Warn("Cannot read the bridge's checkpoint in Deephaven; restoring as if Deephaven lost the bridge's rows", "err", err)
	}
	if !held {
		if b.ship != nil {
			if err := b.ship.ResendHistory(); err != nil {
				return err
			}
		}
		b.hook.ForgetWritten()
	}
	b.recallFromDeephaven(ctx, t)
	// The poller learns what the metrics table holds at every preparation:
	// at start it knows nothing, after a server restart it knows too much.
	points, err := t.NewestMetricTimes(ctx)
	if err != nil {
		b.logger.Warn("Cannot read where the metrics stopped; the time the bridge or Deephaven was down is not backfilled", "err", err)
	} else {
		b.poll.Resync(points, metricsFrom)
	}
	if !held {
		host, _ := os.Hostname()
		cp := rows.CheckpointRow{Bridge: b.id, Host: host, Since: time.Now().UTC()}
		if b.journal != nil {
			cp.Journal = b.journal.Dir()
		}
		if err := t.SetCheckpoint(ctx, cp); err != nil {
			return err
		}
		b.logger.Info("Deephaven did not hold this bridge's earlier rows (first start against it, or it restarted); restoring them",
			"bridge", b.id, "journal", b.journal != nil)
	}
	if b.ship != nil {
		b.ship.Wake()
	}
	return nil
}

// processID names a bridge without a journal in the checkpoint table: a
// new one per process, since nothing of such a bridge outlives it.
func processID() string {
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return fmt.Sprintf("process-%d-%d", os.Getpid(), time.Now().UnixNano())
	}
	return hex.EncodeToString(raw[:])
}

// permanent marks an error that retry must not retry.
type permanent struct{ error }

// retry calls f until it succeeds, returns a permanent error, or ctx ends
// (then it returns nil: stopping is not a failure). Waits grow from 200ms to
// 15s; a failure is logged when its text changes, not on every try.
func retry(ctx context.Context, logger *slog.Logger, msg string, f func() error) error {
	var backoff time.Duration
	var lastErr string
	for {
		err := f()
		if err == nil {
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return p.error
		}
		if ctx.Err() != nil {
			return nil
		}
		if err.Error() != lastErr {
			logger.Warn(msg, "err", err)
			lastErr = err.Error()
		}
		backoff = min(max(backoff*2, 200*time.Millisecond), 15*time.Second)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
	}
}

func deephavenAuth(cfg *config.Config, getenv func(string) string) (deephaven.Auth, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if cfg.Deephaven.Auth.Type != config.AuthPSK {
		return deephaven.Anonymous(), nil
	}
	key, err := cfg.ResolvePSK(getenv)
	if err != nil {
		return deephaven.Auth{}, err
	}
	return deephaven.PreSharedKey(key), nil
}

func deephavenTLS(t config.TLSConfig) (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // the user asked for it
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("deephaven.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("deephaven.tls.ca_file: no certificates in %s", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("deephaven.tls.cert_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

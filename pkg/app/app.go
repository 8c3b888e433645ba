// Package app runs the bridge: it builds every component from the
// configuration, serves HTTP, routes reloads and stops everything in order.
// It is the only package that knows all the others; cmd/ only parses flags
// and signals and calls Run, so tests can run the whole daemon in-process.
//
// Data flows one way:
//
//	webhook (alerts.Handler) ─► [shipper.Shipper ─► journal, when journal.dir is set] ─┐
//	                                                                                    ├─► sink.Batcher (one per table) ─► tables.Tables ─► Deephaven
//	poller (poller.Poller) ─────────────────────────────────────────────────────────────┘
package app

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v3"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/alerts"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/config"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/journal"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/poller"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/shipper"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/sink"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/tables"
)

// Environment variables that override the configuration file, for containers.
const (
	EnvDeephavenAddress = "BRIDGE_DEEPHAVEN_ADDRESS"
	EnvDeephavenPSK     = "BRIDGE_DEEPHAVEN_PSK"
	EnvPrometheusURL    = "BRIDGE_PROMETHEUS_URL"
	EnvJournalDir       = "BRIDGE_JOURNAL_DIR"
)

// Options are what main passes to Run.
type Options struct {
	ConfigFile string
	Web        *web.FlagConfig // listen addresses and --web.config.file
	Logger     *slog.Logger
	// Reload delivers reload requests (SIGHUP); the result goes back on the
	// request's channel if it is not nil.
	Reload <-chan chan error
	// Getenv reads environment overrides (default os.Getenv).
	Getenv func(string) string
	// ShutdownTimeout bounds the drain at shutdown (default 10s).
	ShutdownTimeout time.Duration
	// Registry collects the bridge's metrics (default: a new registry).
	Registry *prometheus.Registry
}

// LoadConfig reads the configuration file and applies environment overrides.
func LoadConfig(path string, getenv func(string) string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv(EnvDeephavenAddress); v != "" {
		cfg.Deephaven.Address = v
	}
	if v := getenv(EnvPrometheusURL); v != "" {
		cfg.Prometheus.URL = v
	}
	if v := getenv(EnvJournalDir); v != "" {
		cfg.Journal.Dir = v
	}
	if getenv(EnvDeephavenPSK) != "" {
		cfg.Deephaven.Auth = config.AuthConfig{Type: config.AuthPSK, KeyEnv: EnvDeephavenPSK}
	}
	return cfg, nil
}

// CheckConfig validates what Run would refuse at start: the configuration
// file with its environment overrides, the web configuration file (TLS and
// basic auth) and the combination of the two. main's --config.check uses it.
func CheckConfig(path string, flags *web.FlagConfig, getenv func(string) string) error {
	cfg, err := LoadConfig(path, getenv)
	if err != nil {
		return err
	}
	if flags != nil && flags.WebConfigFile != nil && *flags.WebConfigFile != "" {
		if err := web.Validate(*flags.WebConfigFile); err != nil {
			return fmt.Errorf("--web.config.file %s: %w", *flags.WebConfigFile, err)
		}
	}
	return checkWebhookAuth(cfg, flags)
}

// bridge holds the running components.
type bridge struct {
	opts   Options
	logger *slog.Logger
	reg    *prometheus.Registry

	cfgMu sync.Mutex
	cfg   *config.Config

	client  atomic.Pointer[deephaven.Client]
	tables  atomic.Pointer[tables.Tables]
	alertsB *sink.Batcher[rows.AlertRow]
	metricB *sink.Batcher[rows.MetricRow]
	hook    *alerts.Handler
	poll    *poller.Poller
	journal *journal.Journal // nil when journal.dir is unset
	ship    *shipper.Shipper // delivers journaled alerts; nil without a journal
	// id names this bridge in Deephaven's checkpoint table: the journal's
	// ID, or one made for this process when there is no journal.
	id string

	reloadOK, reloadTime prometheus.Gauge
}

// Run runs the bridge until ctx ends, then shuts down in order: HTTP
// intake, poller, the batchers' last uploads, the Deephaven session. It
// returns an error when the configuration is invalid, when Deephaven holds
// tables with another schema, or when the HTTP server cannot listen.
func Run(ctx context.Context, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	cfg, err := LoadConfig(opts.ConfigFile, opts.Getenv)
	if err != nil {
		return err
	}
	if err := checkWebhookAuth(cfg, opts.Web); err != nil {
		return err
	}
	b := &bridge{opts: opts, logger: opts.Logger, cfg: cfg, reg: opts.Registry, id: processID()}
	if b.reg == nil {
		b.reg = prometheus.NewRegistry()
	}
	b.registerMetrics()

	auth, err := deephavenAuth(cfg, opts.Getenv)
	if err != nil {
		return err
	}
	tlsCfg, err := deephavenTLS(cfg.Deephaven.TLS)
	if err != nil {
		return err
	}

	sm := sink.NewMetrics(b.reg)
	b.alertsB = sink.New(b.uploadAlerts, sink.Options{Table: cfg.Tables.Alerts, MaxRows: cfg.Deephaven.BatchMaxRows, MaxDelay: time.Duration(cfg.Deephaven.BatchMaxDelay), Retryable: tables.Retryable}, b.logger, sm)
	b.metricB = sink.New(b.uploadMetrics, sink.Options{Table: cfg.Tables.Metrics, MaxRows: cfg.Deephaven.BatchMaxRows, MaxDelay: time.Duration(cfg.Deephaven.BatchMaxDelay), Retryable: tables.Retryable}, b.logger, sm)

	alertOpts, err := alertOptions(cfg)
	if err != nil {
		return err
	}
	// Without a journal an alert is acknowledged once it is in Deephaven;
	// with one, once it is fsynced in the journal.
	var hookSink alerts.Sink = alertSink{b.alertsB}
	if cfg.Journal.Dir != "" {
		b.journal, err = journal.Open(cfg.Journal.Dir, journal.Options{MaxBytes: cfg.Journal.MaxBytes, MaxAge: time.Duration(cfg.Journal.MaxAge), SegmentBytes: cfg.Journal.SegmentBytes}, b.logger.With("component", "journal"), b.reg)
		if err != nil {
			return fmt.Errorf("journal.dir: %w", err)
		}
		defer b.journal.Close()
		b.id = b.journal.ID()
		b.ship = shipper.New(b.journal, b.alertsB.Write, b.alertsB.Write, shipper.Options{MaxRows: cfg.Deephaven.BatchMaxRows}, b.logger.With("component", "shipper"), b.reg)
		hookSink = b.ship
		st := b.journal.Stats()
		b.logger.Info("Alert journal open", "dir", cfg.Journal.Dir, "records", st.LastSeq-st.FirstSeq+min(st.FirstSeq, 1), "undelivered", b.ship.Pending())
	}
	b.hook = alerts.NewHandler(hookSink, alertOpts, b.logger.With("component", "webhook"), b.reg)

	promAPI, err := prometheusAPI(cfg)
	if err != nil {
		return err
	}
	b.poll = poller.New(promAPI, metricSink{b.metricB}, b.logger.With("component", "poller"), b.reg, poller.WithBackfill(time.Duration(cfg.Prometheus.BackfillMax)))
	b.poll.Update(queries(cfg))

	// Everything below runs until ctx ends; fatal errors end it early.
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var wg sync.WaitGroup
	batchCtx, stopBatches := context.WithCancel(context.Background())
	drainCtx, stopDrain := context.WithCancel(context.Background())
	defer stopDrain()
	wg.Add(2)
	go func() { defer wg.Done(); b.alertsB.Run(batchCtx, drainCtx) }()
	go func() { defer wg.Done(); b.metricB.Run(batchCtx, drainCtx) }()

	connectDone := make(chan struct{})
	go func() {
		defer close(connectDone)
		if err := b.connect(runCtx, cfg, auth, tlsCfg); err != nil {
			cancel(err)
		}
	}()

	// The poller starts once the tables are ready: its rows could not land
	// before, and the newest samples already in Deephaven tell it where to
	// resume (onTablesReady; the gap since is backfilled from Prometheus).
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		select {
		case <-connectDone:
		case <-runCtx.Done():
			return
		}
		if b.tables.Load() == nil {
			return
		}
		b.poll.Run(runCtx)
	}()

	shipDone := make(chan struct{})
	go func() {
		defer close(shipDone)
		if b.ship != nil {
			b.ship.Run(runCtx)
		}
	}()

	srv := &http.Server{Handler: b.routes(), ReadHeaderTimeout: 10 * time.Second}
	srvErr := make(chan error, 1)
	go func() {
		srvErr <- web.ListenAndServe(srv, opts.Web, b.logger)
	}()
	go b.reloadLoop(runCtx)

	var runErr error
	select {
	case <-runCtx.Done():
		runErr = context.Cause(runCtx)
		if errors.Is(runErr, context.Canceled) && ctx.Err() != nil {
			runErr = nil // a normal stop
		}
	case err := <-srvErr:
		runErr = fmt.Errorf("serve HTTP: %w", err)
		cancel(runErr)
	}

	// Shutdown, under one deadline, in reverse order of the data flow.
	b.logger.Info("Shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), opts.ShutdownTimeout)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		b.logger.Warn("HTTP shutdown", "err", err)
	}
	cancel(nil)
	<-pollDone
	<-shipDone
	if b.ship != nil {
		// Journaled rows are safe on disk either way; one bounded attempt
		// saves the next start some work.
		if err := b.ship.Flush(sctx); err != nil {
			b.logger.Info("Journaled alerts not yet delivered at shutdown; they will be sent after the next start", "pending", b.ship.Pending(), "err", err)
		}
	}
	// The batchers make one last attempt with what they hold, bounded by
	// the shutdown deadline.
	go func() { <-sctx.Done(); stopDrain() }()
	stopBatches()
	wg.Wait()
	<-connectDone
	if c := b.client.Load(); c != nil {
		if err := c.Close(); err != nil {
			b.logger.Debug("Close Deephaven session", "err", err)
		}
	}
	b.logger.Info("Stopped")
	return runErr
}

// connect dials Deephaven (retrying until it answers) and prepares the
// tables. A schema mismatch is fatal: the bridge will not write into tables
// it does not understand.
func (b *bridge) connect(ctx context.Context, cfg *config.Config, auth deephaven.Auth, tlsCfg *tls.Config) error {
	dopts := []deephaven.Option{deephaven.WithAuth(auth), deephaven.WithLogger(b.logger.With("component", "deephaven"))}
	if tlsCfg != nil {
		dopts = append(dopts, deephaven.WithTLS(tlsCfg))
	}
	var c *deephaven.Client
	err := b.retry(ctx, "Cannot reach Deephaven; retrying", func() error {
		dctx, cancel := context.WithTimeout(ctx, time.Duration(cfg.Deephaven.Timeout))
		defer cancel()
		var err error
		c, err = deephaven.Dial(dctx, cfg.Deephaven.Address, dopts...)
		return err
	})
	if err != nil || ctx.Err() != nil {
		return err
	}
	b.client.Store(c)
	t := tables.New(c, tables.Names{Alerts: cfg.Tables.Alerts, Metrics: cfg.Tables.Metrics, Joined: cfg.Tables.Joined, Checkpoints: cfg.Tables.Checkpoints}, b.logger.With("component", "tables"))
	t.SetCallTimeout(time.Duration(cfg.Deephaven.Timeout))
	t.OnReady(func(ctx context.Context) error { return b.onTablesReady(ctx, t) })
	c.OnNewSession(func(ctx context.Context) {
		if err := t.Ensure(ctx); err != nil {
			b.logger.Error("Preparing Deephaven tables after reconnect failed", "err", err)
		}
	})
	err = b.retry(ctx, "Preparing Deephaven tables failed; retrying", func() error {
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
	b.tables.Store(t)
	return nil
}

// permanent marks an error that retry must not retry.
type permanent struct{ error }

// retry calls f until it succeeds, returns a permanent error, or ctx ends
// (then it returns nil: stopping is not a failure). Waits grow from 200ms to
// 15s; a failure is logged when its text changes, not on every try.
func (b *bridge) retry(ctx context.Context, msg string, f func() error) error {
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
			b.logger.Warn(msg, "err", err)
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
	// The poller learns what the metrics table holds at every preparation:
	// at start it knows nothing, after a server restart it knows too much.
	points, err := t.NewestMetricTimes(ctx)
	if err != nil {
		b.logger.Warn("Cannot read where the metrics stopped; the time the bridge or Deephaven was down is not backfilled", "err", err)
	} else {
		b.poll.Resync(points)
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

// checkWebhookAuth refuses a configuration that nobody could post to:
// basic auth in the web configuration file and a bearer token both required,
// while Alertmanager's http_config sends a single Authorization header.
func checkWebhookAuth(cfg *config.Config, flags *web.FlagConfig) error {
	if cfg.Alerts.BearerTokenFile == "" || flags == nil || flags.WebConfigFile == nil || *flags.WebConfigFile == "" {
		return nil
	}
	path := *flags.WebConfigFile
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--web.config.file: %w", err)
	}
	var wc web.Config
	if err := yaml.Unmarshal(data, &wc); err != nil {
		return fmt.Errorf("--web.config.file %s: %w", path, err)
	}
	if len(wc.Users) > 0 {
		return fmt.Errorf("--web.config.file %s sets basic_auth_users and alerts.bearer_token_file is set: "+
			"a webhook request would need both a basic-auth and a bearer Authorization header, which no sender "+
			"(Alertmanager's http_config sends one) can do; keep one of the two", path)
	}
	return nil
}

func (b *bridge) uploadAlerts(ctx context.Context, rs []rows.AlertRow) error {
	t := b.tables.Load()
	if t == nil {
		return tables.ErrNotReady
	}
	return t.AddAlerts(ctx, rs)
}

func (b *bridge) uploadMetrics(ctx context.Context, rs []rows.MetricRow) error {
	t := b.tables.Load()
	if t == nil {
		return tables.ErrNotReady
	}
	return t.AddMetrics(ctx, rs)
}

// ready reports why the bridge cannot take rows now, or nil.
func (b *bridge) ready() error {
	c := b.client.Load()
	if c == nil {
		return errors.New("not connected to Deephaven yet")
	}
	if st := c.Status(); st.State != deephaven.Connected {
		return fmt.Errorf("Deephaven session is %s: %v", st.State, st.LastError)
	}
	t := b.tables.Load()
	if t == nil || !t.Ready() {
		return errors.New("Deephaven tables are not ready")
	}
	return nil
}

func (b *bridge) registerMetrics() {
	b.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("prometheus_deephaven_bridge"),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prometheus_deephaven_bridge_deephaven_session_up",
			Help: "1 while the Deephaven session is connected, else 0.",
		}, func() float64 {
			if c := b.client.Load(); c != nil && c.Status().State == deephaven.Connected {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prometheus_deephaven_bridge_deephaven_sessions",
			Help: "Deephaven sessions made by this process (grows on reconnect).",
		}, func() float64 {
			if c := b.client.Load(); c != nil {
				return float64(c.Status().Session)
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prometheus_deephaven_bridge_ready",
			Help: "1 while the bridge can write rows to Deephaven, else 0.",
		}, func() float64 {
			if b.ready() == nil {
				return 1
			}
			return 0
		}),
	)
	b.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "prometheus_deephaven_bridge_config_last_reload_successful",
		Help: "Whether the last configuration reload attempt was successful.",
	})
	b.reloadTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "prometheus_deephaven_bridge_config_last_reload_success_timestamp_seconds",
		Help: "Timestamp of the last successful configuration reload.",
	})
	b.reg.MustRegister(b.reloadOK, b.reloadTime)
	b.reloadOK.Set(1)
	b.reloadTime.SetToCurrentTime()
}

func (b *bridge) routes() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	b.hook.Register(r)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(b.reg, promhttp.HandlerOpts{Registry: b.reg})))
	health := func(c *gin.Context) { c.String(http.StatusOK, "Healthy.\n") }
	r.GET("/-/healthy", health)
	r.HEAD("/-/healthy", health)
	ready := func(c *gin.Context) {
		if err := b.ready(); err != nil {
			c.String(http.StatusServiceUnavailable, "Not ready: %v\n", err)
			return
		}
		c.String(http.StatusOK, "Ready.\n")
	}
	r.GET("/-/ready", ready)
	r.HEAD("/-/ready", ready)
	reload := func(c *gin.Context) {
		if err := b.reload(); err != nil {
			c.String(http.StatusInternalServerError, "failed to reload config: %v\n", err)
			return
		}
		c.String(http.StatusOK, "Reloaded.\n")
	}
	r.POST("/-/reload", reload)
	r.PUT("/-/reload", reload)
	return r
}

func (b *bridge) reloadLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case done := <-b.opts.Reload:
			err := b.reload()
			if done != nil {
				done <- err
			}
		}
	}
}

// reload re-reads the configuration; a valid file takes effect at once
// (queries, webhook options), an invalid one leaves the old one running.
// Settings that need a new connection or new tables are reported, not applied.
func (b *bridge) reload() error {
	b.cfgMu.Lock()
	defer b.cfgMu.Unlock()
	cfg, err := LoadConfig(b.opts.ConfigFile, b.opts.Getenv)
	if err == nil {
		err = checkWebhookAuth(cfg, b.opts.Web)
	}
	if err == nil {
		var aopts alerts.Options
		aopts, err = alertOptions(cfg)
		if err == nil {
			b.hook.SetOptions(aopts)
		}
	}
	if err != nil {
		b.reloadOK.Set(0)
		b.logger.Error("Reloading the configuration failed; the previous configuration stays in effect", "file", b.opts.ConfigFile, "err", err)
		return err
	}
	b.poll.Update(queries(cfg))
	old := b.cfg
	var needRestart []string
	if old.Deephaven.Address != cfg.Deephaven.Address || old.Deephaven.Auth != cfg.Deephaven.Auth || old.Deephaven.TLS != cfg.Deephaven.TLS {
		needRestart = append(needRestart, "deephaven")
	}
	if old.Tables != cfg.Tables {
		needRestart = append(needRestart, "tables")
	}
	if old.Prometheus.URL != cfg.Prometheus.URL {
		needRestart = append(needRestart, "prometheus.url")
	}
	if len(needRestart) > 0 {
		b.logger.Warn("Some changed settings take effect only after a restart", "keys", strings.Join(needRestart, ", "))
	}
	b.cfg = cfg
	b.reloadOK.Set(1)
	b.reloadTime.SetToCurrentTime()
	b.logger.Info("Configuration reloaded", "file", b.opts.ConfigFile, "queries", len(cfg.Queries))
	return nil
}

func queries(cfg *config.Config) []poller.Query {
	qs := make([]poller.Query, len(cfg.Queries))
	for i, q := range cfg.Queries {
		qs[i] = poller.Query{Name: q.Name, Expr: q.Expr, Interval: time.Duration(q.Interval), Timeout: time.Duration(q.Timeout)}
	}
	return qs
}

func alertOptions(cfg *config.Config) (alerts.Options, error) {
	a := cfg.Alerts
	o := alerts.Options{
		QueryLabel:          a.QueryLabel,
		SeverityLabel:       a.SeverityLabel,
		MaxBodyBytes:        a.MaxBodyBytes,
		MaxAlertsPerRequest: a.MaxAlertsPerRequest,
		MaxConcurrent:       a.MaxConcurrentRequests,
		RequestTimeout:      time.Duration(a.RequestTimeout),
		DedupCapacity:       a.DedupCacheSize,
	}
	if a.BearerTokenFile != "" {
		tok, err := os.ReadFile(a.BearerTokenFile)
		if err != nil {
			return o, fmt.Errorf("alerts.bearer_token_file: %w", err)
		}
		o.BearerToken = strings.TrimSpace(string(tok))
		if o.BearerToken == "" {
			return o, fmt.Errorf("alerts.bearer_token_file: %s is empty", a.BearerTokenFile)
		}
	}
	return o, nil
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

// alertSink and metricSink adapt the batchers to the sources' interfaces.
type alertSink struct{ b *sink.Batcher[rows.AlertRow] }

func (s alertSink) WriteAlerts(ctx context.Context, rs []rows.AlertRow) error {
	return s.b.Write(ctx, rs)
}

type metricSink struct{ b *sink.Batcher[rows.MetricRow] }

func (s metricSink) WriteMetrics(ctx context.Context, rs []rows.MetricRow) error {
	return s.b.Write(ctx, rs)
}

// Package app runs the bridge: it builds the sources and the sink from the
// configuration, runs them, serves HTTP, routes reloads and stops everything
// in order. It is the only package that knows all the others; cmd/ only
// parses flags and signals and calls Run, so tests can run the whole daemon
// in-process.
//
// Data flows one way, from sources through a sink into Deephaven:
//
//	sources (pkg/source)                   sink (rows wait)                              rows land
//	webhook      (pkg/alerts)      ─┐
//	remote_write (pkg/remotewrite) ─┤
//	rules        (pkg/rules)       ─┼─► sink.Writer per table ─► [journal + shipper, alerts]
//	poller       (pkg/poller)      ─┘                         ─► sink.Batcher ─► pkg/tables ─► Deephaven
//
// A webhook request's alerts and notifications are written together
// (sink.PairWriter): in direct mode one sink.Pair batches both tables, so
// the rows of the same requests share their uploads.
//
// Rule discovery feeds the poller (the rules' value expressions) and the
// webhook (which query and series each alert joins).
//
// In Kafka mode (sink.kind: kafka) the writers are pkg/kafkasink's instead:
// rows go to Kafka topics, which Deephaven consumes itself (app.d), and the
// journal, retention and the history are not built.
//
// sources.go builds the list of sources, deephaven.go the sink into
// Deephaven, kafka.go the one into Kafka, lifecycle.go runs them and stops
// them in reverse order.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/alerts"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/config"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/history"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/journal"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/kafkasink"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/poller"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/retention"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rules"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/shipper"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/source"
)

// Environment variables that override the configuration file, for containers.
const (
	EnvDeephavenAddress = "BRIDGE_DEEPHAVEN_ADDRESS"
	EnvDeephavenPSK     = "BRIDGE_DEEPHAVEN_PSK"
	EnvPrometheusURL    = "BRIDGE_PROMETHEUS_URL"
	EnvJournalDir       = "BRIDGE_JOURNAL_DIR"
	EnvHistoryDir       = "BRIDGE_HISTORY_DIR"
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
	if v := getenv(EnvHistoryDir); v != "" {
		cfg.History.Dir = v
	}
	if getenv(EnvDeephavenPSK) != "" {
		cfg.Deephaven.Auth = config.AuthConfig{Type: config.AuthPSK, KeyEnv: EnvDeephavenPSK}
	}
	if v := getenv(EnvKafkaBrokers); v != "" {
		if cfg.Kafka.Brokers, err = config.ParseBrokers(v); err != nil {
			return nil, err
		}
	}
	switch v := getenv(EnvSinkKind); v {
	case "":
	case config.SinkDirect, config.SinkKafka:
		cfg.Sink.Kind = v
	default:
		return nil, fmt.Errorf("%s: unknown sink kind %q, want %s or %s", EnvSinkKind, v, config.SinkDirect, config.SinkKafka)
	}
	if !cfg.KafkaMode() && cfg.Deephaven.Address == "" {
		return nil, fmt.Errorf("%s: deephaven.address must be set with sink.kind direct (or %s)", path, EnvDeephavenAddress)
	}
	if cfg.KafkaMode() && len(cfg.Kafka.Brokers) == 0 {
		return nil, fmt.Errorf("%s: kafka.brokers must be set with sink.kind kafka (or %s)", path, EnvKafkaBrokers)
	}
	if cfg.KafkaMode() && cfg.Journal.Dir != "" {
		return nil, fmt.Errorf("%s: journal.dir (%s) must be empty with sink.kind kafka: the Kafka topics are the durable store", path, EnvJournalDir)
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

// bridge holds the built parts of the daemon.
type bridge struct {
	opts   Options
	logger *slog.Logger
	reg    *prometheus.Registry

	cfgMu sync.Mutex // serialises reloads
	cfg   *config.Config

	// id names this bridge in Deephaven's checkpoint table: the journal's
	// ID, or one made for this process when there is no journal.
	id string

	dh      *deephavenSink   // where rows land in direct mode; nil in Kafka mode
	kafka   *kafkasink.Sink  // where rows go in Kafka mode; nil in direct mode
	out     writers          // the writers of whichever of the two is on
	journal *journal.Journal // nil when journal.dir is unset
	ship    *shipper.Shipper // delivers journaled alerts; nil without a journal

	hook *alerts.Handler
	// noteLog is the webhook's notification log; at start it recalls what
	// the last process logged (from the journal, and from Deephaven once
	// the tables are ready).
	noteLog *alerts.NotificationLog
	poll    *poller.Poller
	rules   *rules.Discovery
	sources []source.Source // every source, in start order

	// keep bounds the live tables and moves what leaves them into the
	// history. alertsFloor is the history's cursor of the alerts table
	// (Unix ns): journaled rows older than it are in the history already
	// and are not delivered again.
	keep        *retention.Keeper
	history     *history.Store // nil without retention or history.dir
	alertsFloor atomic.Int64
	notesFloor  atomic.Int64 // the same for the notification log

	reloadOK, reloadTime prometheus.Gauge
}

// Run runs the bridge until ctx ends, then stops it in reverse order of the
// data flow: HTTP intake, the sources, the journal's shipper, the sinks'
// last uploads, the Deephaven session (in Kafka mode: HTTP intake, the
// sources, the producer's records in flight). It returns an error when the
// configuration is invalid, when Deephaven holds tables with another schema,
// or when the HTTP server cannot listen.
func Run(ctx context.Context, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	cfg, err := LoadConfig(opts.ConfigFile, opts.Getenv)
	if err != nil {
		return err
	}
	if err := checkWebhookAuth(cfg, opts.Web); err != nil {
		return err
	}
	b := &bridge{opts: opts, logger: opts.Logger, reg: opts.Registry, cfg: cfg, id: processID()}
	b.registerMetrics()
	defer func() {
		if b.kafka != nil {
			b.kafka.Close()
		}
		if b.history != nil {
			b.history.Close()
		}
		if b.journal != nil {
			b.journal.Close()
		}
	}()
	if cfg.KafkaMode() {
		if err := b.newKafkaSink(cfg); err != nil {
			return err
		}
	} else if err := b.buildDirect(cfg); err != nil {
		return err
	}
	if err := b.buildSources(cfg); err != nil {
		return err
	}

	l := newLifecycle(b.logger)
	if b.kafka != nil {
		l.add("kafka", func(ctx context.Context) error { return b.kafka.Run(ctx, l.drain()) })
	} else {
		b.addDirect(l)
	}
	for _, s := range b.sources {
		l.add(s.Name(), s.Run)
	}
	l.add("reload", b.reloadLoop)
	l.add("http", func(ctx context.Context) error { return b.serve(ctx, l.drain()) })
	err = l.run(ctx, opts.ShutdownTimeout)
	b.logger.Info("Stopped")
	return err
}

// buildDirect builds direct mode's sink: the alert journal and its shipper
// when journal.dir is set, the Deephaven sink, retention and the history.
// The caller closes b.journal and b.history.
func (b *bridge) buildDirect(cfg *config.Config) error {
	var err error
	opts := b.opts
	if cfg.Journal.Dir != "" {
		b.journal, err = journal.Open(cfg.Journal.Dir, journal.Options{
			MaxBytes: cfg.Journal.MaxBytes, MaxAge: time.Duration(cfg.Journal.MaxAge), SegmentBytes: cfg.Journal.SegmentBytes,
		}, b.logger.With("component", "journal"), b.reg)
		if err != nil {
			return fmt.Errorf("journal.dir: %w", err)
		}
		b.id = b.journal.ID()
	}
	if b.dh, err = newDeephavenSink(cfg, writerName(cfg, opts.Web, b.id), opts.Getenv, b.onTablesReady, b.logger, b.reg); err != nil {
		return err
	}
	b.out = directWriters(b.dh)
	if b.journal != nil {
		b.ship = shipper.New(b.journal, b.deliverJournaled, b.dh.alerts.Write, shipper.Options{MaxRows: cfg.Deephaven.BatchMaxRows, InFlight: cfg.Deephaven.UploadsInFlight}, b.logger.With("component", "shipper"), b.reg)
		b.ship.SetNotifications(b.deliverJournaledNotes, b.dh.notes.Write)
		b.ship.SetNotesHeld(b.dh.notesHeld)
		st := b.journal.Stats()
		b.logger.Info("Alert journal open", "dir", cfg.Journal.Dir, "records", st.LastSeq-st.FirstSeq+min(st.FirstSeq, 1), "undelivered", b.ship.Pending())
	}
	return b.buildRetention(cfg)
}

// addDirect adds direct mode's stages: the Deephaven connection, a
// batcher per table (one for the alerts and notifications together) and
// the journal's shipper.
func (b *bridge) addDirect(l *lifecycle) {
	l.add("deephaven", b.dh.run)
	for _, s := range b.dh.batchers() {
		l.add(s.name, func(ctx context.Context) error { s.run(ctx, l.drain()); return nil })
	}
	if b.ship != nil {
		l.add("journal shipper", func(ctx context.Context) error {
			b.ship.Run(ctx, l.drain())
			// Journaled rows are safe on disk either way; one bounded
			// attempt saves the next start some work.
			if err := b.ship.Flush(l.drain()); err != nil {
				b.logger.Info("Journaled alerts not yet delivered at shutdown; they will be sent after the next start", "pending", b.ship.Pending(), "err", err)
			}
			return nil
		})
	}
}

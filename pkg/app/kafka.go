package app

import (
	"context"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/config"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/kafkasink"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/sink"
)

// Environment overrides of Kafka mode, for containers.
const (
	// EnvSinkKind overrides sink.kind (direct or kafka).
	EnvSinkKind = "BRIDGE_SINK_KIND"
	// EnvKafkaBrokers overrides kafka.brokers (comma-separated host:port).
	EnvKafkaBrokers = "BRIDGE_KAFKA_BROKERS"
)

// writers are where the sources' rows go, one writer per table, whichever
// sink is configured: sources do not know which one it is.
type writers struct {
	alerts  sink.Writer[rows.AlertRow]
	metrics sink.Writer[rows.MetricRow]
	rules   sink.Writer[rows.RuleRow]
	states  sink.Writer[rows.AlertStateRow]
	notes   sink.Writer[rows.NotificationRow]
	// alertsAndNotes writes a webhook request's alerts and notifications
	// together.
	alertsAndNotes sink.PairWriter[rows.AlertRow, rows.NotificationRow]
	samples        sink.Writer[rows.SampleRow]
	// readyCh is closed once rows can be written for the first time;
	// ready says why they cannot be written now, or nil.
	readyCh <-chan struct{}
	ready   func() error
}

// directWriters are the direct sink's batchers.
func directWriters(d *deephavenSink) writers {
	return writers{alerts: d.alerts, metrics: d.metrics, rules: d.rules, states: d.states, notes: d.notes,
		alertsAndNotes: d.alertsAndNotes, samples: d.samples, readyCh: d.readyCh, ready: d.ready}
}

// newKafkaSink builds Kafka mode's sink: a producer with a writer per
// topic. Nothing of the direct path (Deephaven session, journal,
// retention, history) is built in this mode.
func (b *bridge) newKafkaSink(cfg *config.Config) error {
	k, err := kafkasink.New(kafkasink.Options{
		Brokers: cfg.Kafka.Brokers, ClientID: cfg.Kafka.ClientID, TopicPrefix: cfg.Kafka.TopicPrefix,
		ProduceTimeout: time.Duration(cfg.Kafka.ProduceTimeout), Partitions: int32(cfg.Kafka.Partitions),
		ReplicationFactor: int16(cfg.Kafka.ReplicationFactor), Bridge: writerName(cfg, b.opts.Web, b.id),
	}, b.logger.With("component", "kafka"), b.reg)
	if err != nil {
		return err
	}
	b.kafka = k
	b.out = writers{alerts: k.Alerts(), metrics: k.Metrics(), rules: k.Rules(), states: k.States(),
		notes: k.Notifications(), alertsAndNotes: sink.Parallel(k.Alerts(), k.Notifications()),
		samples: k.Samples(), readyCh: k.Ready(), ready: k.Err}
	return nil
}

// noAlertsPresent answers the Alertmanager sync's question in Kafka mode,
// where the bridge cannot look into Deephaven: none are known, so the sync
// writes what it found once per process, and Deephaven's last_by on the
// alerts' key absorbs the repeat.
func noAlertsPresent(context.Context, []rows.AlertKey) (map[rows.AlertKey]bool, error) {
	return map[rows.AlertKey]bool{}, nil
}

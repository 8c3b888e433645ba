package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Sink kinds: where the bridge writes its rows.
const (
	// SinkDirect writes rows into Deephaven input tables (the default).
	SinkDirect = "direct"
	// SinkKafka produces rows to Kafka topics; Deephaven consumes them
	// (app.d/prometheus.py with PROMETHEUS_BRIDGE_KAFKA_BROKERS set).
	SinkKafka = "kafka"
)

// SinkConfig chooses where rows go.
type SinkConfig struct {
	// Kind is SinkDirect (default) or SinkKafka. In Kafka mode the bridge
	// does not connect to Deephaven at all, and the journal, retention and
	// history are not used: the topics' retention is the durable store, and
	// deephaven.* and retention.*/history.* are ignored. journal.dir must be
	// empty.
	Kind string `yaml:"kind"`
}

// KafkaConfig is the producer of Kafka mode (sink.kind: kafka).
type KafkaConfig struct {
	// Brokers are the seed brokers, host:port. Required in Kafka mode.
	Brokers []string `yaml:"brokers,omitempty"`
	// TopicPrefix starts every topic's name; the rest is the table's kind:
	// alerts, metrics, samples, rules, alert_state, alert_notifications.
	// Default "prometheus_", so topics are named like the tables.
	TopicPrefix string `yaml:"topic_prefix"`
	// ClientID names the bridge to the brokers. Default
	// "prometheus-deephaven-bridge".
	ClientID string `yaml:"client_id"`
	// ProduceTimeout bounds how long one write waits for the brokers'
	// acknowledgement before the caller (a webhook, a remote write) gets an
	// error. Default 10s.
	ProduceTimeout model.Duration `yaml:"produce_timeout"`
	// Partitions and ReplicationFactor are used when the bridge creates a
	// missing topic. Defaults 4 and 0 (the broker's
	// default.replication.factor).
	Partitions        int `yaml:"partitions"`
	ReplicationFactor int `yaml:"replication_factor"`
}

func defaultKafka() KafkaConfig {
	return KafkaConfig{
		TopicPrefix:    "prometheus_",
		ClientID:       "prometheus-deephaven-bridge",
		ProduceTimeout: model.Duration(10 * time.Second),
		Partitions:     4,
	}
}

// topicRE is what Kafka allows in topic names (at most 249 characters).
var topicRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// KafkaMode reports whether rows go to Kafka.
func (c *Config) KafkaMode() bool { return c.Sink.Kind == SinkKafka }

func (c *Config) validateSink(v *validator) {
	s := keyPath("sink")
	switch c.Sink.Kind {
	case SinkDirect:
	case SinkKafka:
		k := keyPath("kafka")
		if len(c.Kafka.Brokers) == 0 {
			v.errorf(k.field("brokers"), "must be set with sink.kind %s", SinkKafka)
		}
		for i, b := range c.Kafka.Brokers {
			v.address(k.field("brokers").index(i), b)
		}
		if c.Journal.Dir != "" {
			v.errorf(keyPath("journal").field("dir"), "must be empty with sink.kind %s: the Kafka topics are the durable store", SinkKafka)
		}
	default:
		v.errorf(s.field("kind"), "unknown kind %q, want %s or %s", c.Sink.Kind, SinkDirect, SinkKafka)
	}
	k := keyPath("kafka")
	switch {
	case c.Kafka.TopicPrefix == "":
	case !topicRE.MatchString(c.Kafka.TopicPrefix) || len(c.Kafka.TopicPrefix) > 200:
		v.errorf(k.field("topic_prefix"), "%q may only hold letters, digits, '.', '_' and '-' (at most 200)", c.Kafka.TopicPrefix)
	}
	if strings.TrimSpace(c.Kafka.ClientID) == "" {
		v.errorf(k.field("client_id"), "must be set")
	}
	v.positiveDuration(k.field("produce_timeout"), c.Kafka.ProduceTimeout)
	v.positive(k.field("partitions"), int64(c.Kafka.Partitions))
	if c.Kafka.ReplicationFactor < 0 {
		v.errorf(k.field("replication_factor"), "%d is negative", c.Kafka.ReplicationFactor)
	}
}

// ParseBrokers reads a comma-separated list of host:port brokers, as the
// environment variable BRIDGE_KAFKA_BROKERS holds them.
func ParseBrokers(s string) ([]string, error) {
	v := &validator{file: "BRIDGE_KAFKA_BROKERS"}
	var out []string
	for i, b := range strings.Split(s, ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		v.address(keyPath("").index(i), b)
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("BRIDGE_KAFKA_BROKERS: no broker in %q", s)
	}
	if len(v.errs) > 0 {
		return nil, v.errs[0]
	}
	return out, nil
}

package config

import (
	"reflect"
	"testing"
)

const kafkaBase = "prometheus:\n  url: http://localhost:9090\n"

func TestKafkaConfig(t *testing.T) {
	cfg, err := Parse([]byte(kafkaBase+"sink:\n  kind: kafka\nkafka:\n  brokers: [127.0.0.1:19092, kafka:9092]\n  topic_prefix: dev.prom_\n  produce_timeout: 3s\n"), "k.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.KafkaMode() {
		t.Error("KafkaMode() = false")
	}
	want := KafkaConfig{Brokers: []string{"127.0.0.1:19092", "kafka:9092"}, TopicPrefix: "dev.prom_",
		ClientID: "prometheus-deephaven-bridge", ProduceTimeout: dur("3s"), Partitions: 4}
	if !reflect.DeepEqual(cfg.Kafka, want) {
		t.Errorf("Kafka = %+v, want %+v", cfg.Kafka, want)
	}
	// Kafka mode needs no Deephaven address: the bridge does not connect.
	if cfg.Deephaven.Address != "" {
		t.Errorf("Deephaven.Address = %q", cfg.Deephaven.Address)
	}
}

// TestKafkaConfigErrors checks the exact texts, as TestLoadErrors does.
func TestKafkaConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"sink:\n  kind: kafak\ndeephaven:\n  address: a:1\n", `k.yml: sink.kind: unknown kind "kafak", want direct or kafka`},
		{"sink:\n  kind: kafka\n", "k.yml: kafka.brokers: must be set with sink.kind kafka"},
		{"sink:\n  kind: kafka\nkafka:\n  brokers: [localhost]\n", `k.yml: kafka.brokers[0]: missing port in address "localhost"`},
		{"sink:\n  kind: kafka\nkafka:\n  brokers: [a:1]\njournal:\n  dir: j\n", "k.yml: journal.dir: must be empty with sink.kind kafka: the Kafka topics are the durable store"},
		{"sink:\n  kind: kafka\nkafka:\n  brokers: [a:1]\n  topic_prefix: a/b\n", `k.yml: kafka.topic_prefix: "a/b" may only hold letters, digits, '.', '_' and '-' (at most 200)`},
		{"sink:\n  kind: kafka\nkafka:\n  brokers: [a:1]\n  produce_timeout: 0s\n", "k.yml: kafka.produce_timeout: must be greater than 0"},
		{"sink:\n  kind: kafka\nkafka:\n  brokers: [a:1]\n  client_id: ' '\n", "k.yml: kafka.client_id: must be set"},
		{"sink:\n  kind: kafka\nkafka:\n  brokers: [a:1]\n  partitions: 0\n", "k.yml: kafka.partitions: must be greater than 0"},
		{"sink:\n  kind: kafka\nkafka:\n  brokers: [a:1]\n  replication_factor: -1\n", "k.yml: kafka.replication_factor: -1 is negative"},
		// The direct sink still needs Deephaven's address.
		{"sink:\n  kind: direct\n", "k.yml: deephaven.address: must be set"},
	} {
		_, err := Parse([]byte(kafkaBase+tc.yaml), "k.yml")
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q:\n got %v\nwant %s", tc.yaml, err, tc.want)
		}
	}
}

func TestParseBrokers(t *testing.T) {
	got, err := ParseBrokers(" a:1, b:2 ,")
	if err != nil || !reflect.DeepEqual(got, []string{"a:1", "b:2"}) {
		t.Errorf("ParseBrokers = %v, %v", got, err)
	}
	for _, bad := range []string{"", " , ", "a"} {
		if _, err := ParseBrokers(bad); err == nil {
			t.Errorf("ParseBrokers(%q) = nil error", bad)
		}
	}
}

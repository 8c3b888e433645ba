package app_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/app"
)

// TestKafkaConfigFromEnvironment checks the environment overrides of Kafka
// mode, and that Kafka mode refuses a journal however it is configured.
func TestKafkaConfigFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	direct := write("direct.yml", "deephaven: {address: 'dh:10000'}\nprometheus: {url: 'http://p:9090'}\n")
	kafkaOnly := write("kafka.yml", "prometheus: {url: 'http://p:9090'}\nsink: {kind: kafka}\nkafka: {brokers: ['k:9092']}\n")
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}

	cfg, err := app.LoadConfig(direct, env(app.EnvSinkKind, "kafka", app.EnvKafkaBrokers, "a:1, b:2"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.KafkaMode() || !slices.Equal(cfg.Kafka.Brokers, []string{"a:1", "b:2"}) {
		t.Errorf("kind %q brokers %v, want kafka [a:1 b:2]", cfg.Sink.Kind, cfg.Kafka.Brokers)
	}

	for _, tc := range []struct {
		file string
		env  func(string) string
		want string
	}{
		{direct, env(app.EnvSinkKind, "kafka"), "kafka.brokers must be set with sink.kind kafka (or BRIDGE_KAFKA_BROKERS)"},
		{direct, env(app.EnvSinkKind, "kafak"), `BRIDGE_SINK_KIND: unknown sink kind "kafak", want direct or kafka`},
		{direct, env(app.EnvSinkKind, "kafka", app.EnvKafkaBrokers, "nohost"), `missing port in address "nohost"`},
		{kafkaOnly, env(app.EnvJournalDir, "/var/lib/j"), "journal.dir (BRIDGE_JOURNAL_DIR) must be empty with sink.kind kafka"},
		{kafkaOnly, env(app.EnvSinkKind, "direct"), "deephaven.address must be set with sink.kind direct (or BRIDGE_DEEPHAVEN_ADDRESS)"},
	} {
		_, err := app.LoadConfig(tc.file, tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", filepath.Base(tc.file), err, tc.want)
		}
	}
}

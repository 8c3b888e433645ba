package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
)

// In Kafka mode the bridge binary is killed with SIGKILL while alerts
// stream in, and started again: every alert it acknowledged is in
// Deephaven's prometheus_alerts (read by app.d from the topic) exactly once,
// also those whose records were in flight when it died and those the
// senders then sent again.
func TestKafkaBridgeKilledWhileAlertsStream(t *testing.T) {
	kafka := testenv.StartKafka(t)
	const prefix = "kafkakill_"
	dh := testenv.StartDeephaven(t, testenv.DeephavenOptions{AppDir: "app.d", Heap: "1g", Env: []string{
		"PROMETHEUS_BRIDGE_KAFKA_BROKERS=" + kafka.Addr(),
		"PROMETHEUS_BRIDGE_KAFKA_TOPIC_PREFIX=" + prefix,
	}})
	bin := build(t)
	cfg := filepath.Join(t.TempDir(), "bridge.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`prometheus: {url: "http://127.0.0.1:1", backfill_max: 0s}
sink: {kind: kafka}
kafka: {brokers: [%q], topic_prefix: %s, produce_timeout: 3s}
rules: {enabled: false}
alertmanager: {enabled: false}
`, kafka.Addr(), prefix)), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	b := startBinary(t, bin, cfg, addr, filepath.Join(t.TempDir(), "bridge.log"))
	s := startStream(func() string { return addr }, 4)
	time.Sleep(4 * time.Second)
	b.kill()
	killedAt := s.acked.Load()
	time.Sleep(time.Second)
	b.start()
	time.Sleep(4 * time.Second)
	s.finish()
	t.Logf("killed with SIGKILL after %d acknowledged alerts", killedAt)
	check(t, s, dh.Addr(), "prometheus_alerts")
}

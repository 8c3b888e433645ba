package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
)

// In Kafka mode two bridge processes share the topics behind one
// "address": each sender alternates between them and, like a load
// balancer, moves on to the other when one does not answer. One bridge is
// killed with SIGKILL mid-stream and started again later. Every alert
// either acknowledged is in Deephaven's prometheus_alerts (read by app.d
// from the topic) exactly once, also those whose records were in flight
// when it died and those the senders then sent again through the other.
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
	addrs := [2]string{fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
	dir := t.TempDir()
	a := startBinary(t, bin, cfg, addrs[0], filepath.Join(dir, "bridge-a.log"))
	startBinary(t, bin, cfg, addrs[1], filepath.Join(dir, "bridge-b.log"))
	var next atomic.Uint32
	s := startStream(func() string { return addrs[next.Add(1)%2] }, 4)
	time.Sleep(4 * time.Second)
	a.kill()
	killedAt := s.acked.Load()
	time.Sleep(3 * time.Second)
	a.start()
	time.Sleep(4 * time.Second)
	s.finish()
	s.mu.Lock()
	byA, byB := s.ackedBy[addrs[0]], s.ackedBy[addrs[1]]
	s.mu.Unlock()
	t.Logf("bridge A killed with SIGKILL after %d acknowledged alerts; acknowledged by A %d, by B %d", killedAt, byA, byB)
	if byA == 0 || byB == 0 {
		t.Fatalf("both bridges must take part: A acknowledged %d, B %d", byA, byB)
	}
	check(t, s, dh.Addr(), "prometheus_alerts")
}

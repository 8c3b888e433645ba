package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
)

// kafkaMain compares direct mode with Kafka mode in one run, against one
// Deephaven started here with app.d consuming the Kafka topics, and one
// broker started with scripts/kafka.sh:
//
//   - direct: the bridge binary's webhook, 8 connections × 100 alerts per
//     request, acknowledged once the rows are in a Deephaven input table;
//     the acknowledgement rate is the ingest rate;
//   - Kafka: the same load into a bridge in Kafka mode, acknowledged once
//     the broker holds the records, and the time until all of them are rows
//     of Deephaven's deduplicated prometheus_alerts (the consumer ticks once
//     a second), which gives the end-to-end rows/s;
//   - the same two for remote write: --rw-samples samples in requests of
//     --rw-per-request, --rw-connections at a time (protocol 1.0).
func kafkaMain(o options) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bridge-bench-kafka")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	broker, stopKafka, err := startKafkaBroker(root, dir)
	if err != nil {
		return err
	}
	defer stopKafka()
	const prefix = "bench_"
	os.Setenv("PROMETHEUS_BRIDGE_KAFKA_BROKERS", broker)
	os.Setenv("PROMETHEUS_BRIDGE_KAFKA_TOPIC_PREFIX", prefix)
	stopDH, dh, err := startDeephavenApp(root, dir, o.server())
	if err != nil {
		return err
	}
	defer stopDH()
	bin := filepath.Join(dir, "prometheus-deephaven-bridge")
	build := exec.Command("go", "build", "-o", bin, "./cmd/prometheus-deephaven-bridge")
	build.Dir, build.Stderr = root, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	ctx := context.Background()
	c, err := deephaven.Dial(ctx, dh)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Printf("bridge-bench --only kafka: Deephaven at %s (app.d, Kafka mode tables), broker %s, %d alerts per run, 8 connections × 100 alerts per request, %s\n\n",
		dh, broker, o.alerts, time.Now().UTC().Format(time.RFC3339))

	var seq atomic.Int64
	// A short warm-up of each path (JIT, topic metadata, table creation).
	// Every table of its own: app.d's prometheus_* tables are Kafka's here.
	direct, err := startBridgeConfig(bin, dir, "direct", fmt.Sprintf(`deephaven: {address: %q}
prometheus: {url: "http://127.0.0.1:1", backfill_max: 0s}
rules: {enabled: false}
alertmanager: {enabled: false}
alerts: {max_concurrent_requests: 256}
tables: {alerts: d_alerts, metrics: d_metrics, joined: d_joined, rules: d_rules, samples: d_samples,
  state: d_state, notifications: d_notes, episodes: d_episodes, checkpoints: d_checkpoints}
`, dh))
	if err != nil {
		return err
	}
	if _, err := direct.throughput(2000, 100, 8, &seq, ""); err != nil {
		direct.stop()
		return err
	}
	defer direct.stop()
	dres, err := direct.throughput(o.alerts, 100, 8, &seq, "")
	if err != nil {
		return err
	}

	cfg := fmt.Sprintf(`sink: {kind: kafka}
kafka: {brokers: [%q], topic_prefix: %s}
prometheus: {url: "http://127.0.0.1:1", backfill_max: 0s}
rules: {enabled: false}
alertmanager: {enabled: false}
alerts: {max_concurrent_requests: 256}
`, broker, prefix)
	kb, err := startBridgeConfig(bin, dir, "kafka", cfg)
	if err != nil {
		return err
	}
	defer kb.stop()
	if _, err := kb.throughput(2000, 100, 8, &seq, ""); err != nil {
		return err
	}
	before, err := waitRows(ctx, c, "prometheus_alerts", 2000, time.Minute)
	if err != nil {
		return err
	}
	start := time.Now()
	kres, err := kb.throughput(o.alerts, 100, 8, &seq, "")
	if err != nil {
		return err
	}
	if _, err := waitRows(ctx, c, "prometheus_alerts", before+int64(o.alerts), 5*time.Minute); err != nil {
		return err
	}
	visible := time.Since(start)
	e2e := float64(o.alerts) / visible.Seconds()

	// Remote write: the same pre-built requests (1.0 protocol) to both.
	load := rwLoad{series: rwSeries(10_000), perRequest: o.rwPerRequest, requests: o.rwSamples / o.rwPerRequest,
		start: time.Now().Add(-time.Hour).Truncate(time.Second)}
	bodies := make([][]byte, load.requests)
	for r := range bodies {
		bodies[r] = load.bodyV1(r)
	}
	const ctV1 = "application/x-protobuf"
	timed := bodies[1:]
	n := len(timed) * load.perRequest
	samples := func(b *bridge) (time.Duration, error) {
		start := time.Now()
		err := forEach(len(timed), o.rwConns, func(r int) error { return b.postRW(ctV1, timed[r]) })
		return time.Since(start), err
	}
	if err := direct.postRW(ctV1, bodies[0]); err != nil {
		return err
	}
	dsAck, err := samples(direct)
	if err != nil {
		return err
	}
	if err := kb.postRW(ctV1, bodies[0]); err != nil {
		return err
	}
	sbefore, err := waitRows(ctx, c, "prometheus_samples", int64(load.perRequest), time.Minute)
	if err != nil {
		return err
	}
	sstart := time.Now()
	ksAck, err := samples(kb)
	if err != nil {
		return err
	}
	if _, err := waitRows(ctx, c, "prometheus_samples", sbefore+int64(n), 5*time.Minute); err != nil {
		return err
	}
	ksVisible := time.Since(sstart)

	fmt.Println("| mode | alerts | acknowledged when | ack alerts/s | p50 ack | p99 ack | all rows in Deephaven after | rows/s into Deephaven | vs direct |")
	fmt.Println("|---|---:|---|---:|---:|---:|---:|---:|---:|")
	fmt.Printf("| direct | %d | row in a Deephaven input table | %.0f | %s | %s | %.1f s | %.0f | 1.00× |\n",
		dres.alerts, dres.rate, ms(dres.p50), ms(dres.p99), float64(dres.alerts)/dres.rate, dres.rate)
	fmt.Printf("| Kafka | %d | record acknowledged by the broker (acks=all) | %.0f | %s | %s | %.1f s | %.0f | %.2f× |\n",
		kres.alerts, kres.rate, ms(kres.p50), ms(kres.p99), visible.Seconds(), e2e, e2e/dres.rate)
	fmt.Println()
	dsRate, ksRate := float64(n)/dsAck.Seconds(), float64(n)/ksVisible.Seconds()
	fmt.Printf("Remote write 1.0, %d samples in requests of %d, %d concurrent requests:\n\n", n, load.perRequest, o.rwConns)
	fmt.Println("| mode | samples | ack samples/s | all rows in Deephaven after | rows/s into Deephaven | vs direct |")
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	fmt.Printf("| direct | %d | %.0f | %.1f s | %.0f | 1.00× |\n", n, dsRate, dsAck.Seconds(), dsRate)
	fmt.Printf("| Kafka | %d | %.0f | %.1f s | %.0f | %.2f× |\n", n, float64(n)/ksAck.Seconds(), ksVisible.Seconds(), ksRate, ksRate/dsRate)
	return nil
}

// waitRows waits until the table has at least n rows and returns its count.
func waitRows(ctx context.Context, c *deephaven.Client, table string, n int64, within time.Duration) (int64, error) {
	deadline := time.Now().Add(within)
	var got int64
	var err error
	for time.Now().Before(deadline) {
		if got, err = countRows(ctx, c, table); err == nil && got >= n {
			return got, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return got, fmt.Errorf("%s has %d rows after %v, want %d (last error: %v)", table, got, within, n, err)
}

// startKafkaBroker runs scripts/kafka.sh on free ports in dir.
func startKafkaBroker(root, dir string) (addr string, stop func(), err error) {
	addr, err = freeAddr()
	if err != nil {
		return "", nil, err
	}
	caddr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	_, cport, _ := net.SplitHostPort(caddr)
	logPath := filepath.Join(dir, "kafka.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(filepath.Join(root, "scripts", "kafka.sh"), "run", "--data-dir", filepath.Join(dir, "kafka"), "--port", port, "--controller-port", cport)
	stop, err = startServer(cmd, logf, logPath, "Kafka", "Kafka Server started", "needs java and mvn, see scripts/setup.sh")
	if err != nil {
		return "", nil, err
	}
	return addr, stop, nil
}

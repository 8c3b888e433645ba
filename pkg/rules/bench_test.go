package rules

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/poller"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// benchRules writes n alerting rules over the node exporter's metrics: n/2
// alert names, each with a warning and a critical rule on one value
// expression (as the node-mixin does), in groups of 50 evaluated every
// interval. The value expressions return 1 to 16 series each.
func benchRules(n int, interval string) string {
	var b strings.Builder
	exprs := []string{
		`node_load1{job="node"} * %d`,
		`node_memory_MemAvailable_bytes{job="node"} / node_memory_MemTotal_bytes{job="node"} * 100 + %d`,
		`rate(node_cpu_seconds_total{job="node"}[1m]) * %d`,
		`node_filesystem_avail_bytes{job="node",fstype!=""} / node_filesystem_size_bytes{job="node",fstype!=""} + %d`,
		`sum by (job, instance) (rate(node_context_switches_total{job="node"}[1m])) + %d`,
	}
	for i := 0; i < n/2; i++ {
		if i%25 == 0 {
			fmt.Fprintf(&b, "- name: bench-%d\n  interval: %s\n  rules:\n", i/25, interval)
		}
		expr := fmt.Sprintf(exprs[i%len(exprs)], i)
		for _, sev := range []struct{ name, thr string }{{"warning", "1e12"}, {"critical", "1e15"}} {
			fmt.Fprintf(&b, "  - alert: BenchRule%d\n    expr: %s > %s\n    for: 5m\n    labels: {severity: %s}\n", i, expr, sev.thr, sev.name)
		}
	}
	return "groups:\n" + b.String()
}

type countingSink struct{ rows atomic.Int64 }

func (s *countingSink) Write(_ context.Context, rs []rows.MetricRow) error {
	s.rows.Add(int64(len(rs)))
	return nil
}

type discardRules struct{}

func (discardRules) Write(context.Context, []rows.RuleRow) error { return nil }

// BenchmarkDiscovery500Rules reads 500 rules from a real Prometheus (250
// value expressions over a real node exporter) and derives everything from
// them; each op is one read. It also polls every value expression for a
// few rounds and reports the bridge's CPU time per round, the rows per
// round, and the Go heap in use with 500 rules discovered and polled.
//
//	go test -run '^$' -bench Discovery500Rules -benchtime 20x ./pkg/rules/
func BenchmarkDiscovery500Rules(b *testing.B) {
	node := testenv.StartNodeExporter(b)
	port := testenv.FreePort(b)
	prom := testenv.StartPrometheus(b, testenv.PrometheusOptions{
		Port: port,
		ConfigYAML: fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 15s}
rule_files: [rules.yml]
scrape_configs: [{job_name: node, static_configs: [{targets: ["%s"]}]}]
`, node.Addr()),
		RulesYAML: benchRules(500, "2s"),
	})
	c, err := api.NewClient(api.Config{Address: "http://" + prom.Addr()})
	if err != nil {
		b.Fatal(err)
	}
	promAPI := v1.NewAPI(c)
	metrics := &countingSink{}
	p := poller.New(promAPI, metrics, nil, prometheus.NewRegistry())
	d := New(promAPI, p, discardRules{}, Settings{Enabled: true, RefreshInterval: time.Hour, QueryTimeout: 10 * time.Second}, nil, nil)
	ctx := context.Background()
	// Prometheus loads the rules file at start; wait until it lists them.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if err := d.Refresh(ctx); err != nil {
			b.Fatal(err)
		}
		if len(d.idx.Load().byExpr) == 500 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("Prometheus lists %d rules, want 500", len(d.idx.Load().byExpr))
		}
	}

	b.ResetTimer()
	for b.Loop() {
		if err := d.Refresh(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()

	// Poll rounds: every value expression once every 2 s (the groups'
	// interval), for a few rounds.
	const rounds = 5
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	cpu0 := cpuTime()
	rows0 := metrics.rows.Load()
	start := time.Now()
	go func() { p.Run(pctx); close(done) }()
	time.Sleep(rounds * 2 * time.Second)
	cancel()
	<-done
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	n := float64(elapsed) / float64(2*time.Second)
	b.ReportMetric(float64(len(d.idx.Load().byExpr)), "rules")
	b.ReportMetric(float64(len(p.Queries())), "value-queries")
	b.ReportMetric(float64(cpu.Milliseconds())/n, "cpu-ms/round")
	b.ReportMetric(float64(metrics.rows.Load()-rows0)/n, "rows/round")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

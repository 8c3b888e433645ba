package app_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
)

// nodeRules are shaped like the public node-mixin's (comparison, ratio,
// sum by, rate, and on, group_left, absent, bool), with thresholds that
// fire on any machine, and for: so that samples exist before an alert
// starts (a rule without it that fires at the very first scrape of a new
// series has no earlier sample to join). NodeLoadHigh's static label
// overrides the series' instance. NodeFlapping fires 8 s out of every 20 s,
// so it resolves too.
const nodeRules = `groups:
- name: node-mixin-shaped
  interval: 1s
  rules:
  - alert: NodeLoadHigh
    expr: node_load1{job="node"} >= 0
    for: 3s
    labels: {severity: warning, instance: node-a}
  - alert: NodeMemoryAvailableLow
    expr: node_memory_MemAvailable_bytes{job="node"} / node_memory_MemTotal_bytes{job="node"} * 100 < 101
    for: 3s
    labels: {severity: warning}
  - alert: NodeCPUBusy
    expr: sum by (job, instance) (rate(node_cpu_seconds_total{job="node",mode!="idle"}[30s])) >= 0
    for: 3s
    labels: {severity: info}
  - alert: NodeCPUIdleRate
    expr: rate(node_cpu_seconds_total{job="node",mode="idle"}[30s]) >= 0
    for: 3s
  - alert: NodeFilesystemSpaceLow
    expr: (node_filesystem_avail_bytes{job="node",fstype!=""} / node_filesystem_size_bytes{job="node",fstype!=""} * 100 < 101 and on (instance, device, mountpoint) node_filesystem_readonly{job="node",fstype!=""} == 0)
    for: 3s
    labels: {severity: warning}
  - alert: NodeLoadWithHostname
    expr: node_load1{job="node"} > on (instance) group_left (nodename) (node_uname_info{job="node"} * 0 - 1)
    for: 3s
  - alert: NodeExporterMetricAbsent
    expr: absent(node_exporter_metric_that_does_not_exist{job="node"})
    for: 3s
  - alert: NodeLoadHuge
    expr: node_load1{job="node"} > bool 1000000
    for: 3s
  - alert: NodeFlapping
    expr: node_time_seconds{job="node"} > 0 and on () (vector(time() % 20) < 10)
    for: 2s
    labels: {severity: info}
`

// slowMoving are the rules whose value expression changes at most once per
// scrape, so the joined Value must be one of Prometheus's own answers for
// the value expression within one evaluation step before the alert's time.
// (rate() moves with the evaluation time itself.)
var slowMoving = map[string]bool{
	"NodeLoadHigh": true, "NodeMemoryAvailableLow": true, "NodeFilesystemSpaceLow": true,
	"NodeLoadWithHostname": true, "NodeFlapping": true,
}

// Real node exporter, Prometheus (external labels, static labels, rules
// shaped like the node-mixin's), Alertmanager, Deephaven and the bridge with
// no query configured: every firing and resolved row of a reducible rule
// has a Value, equal to Prometheus's own answer for the value expression at
// that instant (within one evaluation step) for slow-moving series;
// irreducible rules are listed with their reason.
func TestRulesEndToEndNoQueriesConfigured(t *testing.T) {
	dh := testenv.Deephaven(t)
	node := testenv.StartNodeExporter(t)
	bridgeAddr := freeAddr(t)
	am := testenv.StartAlertmanager(t, testenv.AlertmanagerOptions{ConfigYAML: fmt.Sprintf(`route:
  receiver: bridge
  group_by: ['...']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
- name: bridge
  webhook_configs:
  - url: http://%s/alerts
    send_resolved: true
`, bridgeAddr)})
	// The bridge starts first, as in production: Prometheus is not up yet,
	// its rules are discovered once it is.
	promPort := testenv.FreePort(t)
	b := startBridge(t, bridgeSetup{
		Deephaven:  dh,
		Prometheus: fmt.Sprintf("http://127.0.0.1:%d", promPort),
		Listen:     bridgeAddr,
		Backfill:   "10m",
	})
	prom := testenv.StartPrometheus(t, testenv.PrometheusOptions{
		Port: promPort,
		ConfigYAML: fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
  external_labels: {cluster: e2e, replica: a}
rule_files: [rules.yml]
alerting:
  alertmanagers: [{static_configs: [{targets: ["%s"]}]}]
scrape_configs:
- job_name: node
  static_configs: [{targets: ["%s"]}]
`, am.Addr(), node.Addr()),
		RulesYAML: nodeRules,
		ExtraArgs: []string{"--rules.alert.resend-delay=1s"},
	})
	c := client(t, dh)
	promAPI := promClient(t, prom.Addr())

	reducible := []string{"NodeLoadHigh", "NodeMemoryAvailableLow", "NodeCPUBusy", "NodeCPUIdleRate",
		"NodeFilesystemSpaceLow", "NodeLoadWithHostname", "NodeFlapping"}
	// Wait for a firing row of every reducible rule with its Value, and a
	// resolved row of NodeFlapping.
	var joined []map[string]any
	eventually(t, 3*time.Minute, func() string {
		joined = readTable(t, c, b.Tables[2])
		seen := map[string]bool{}
		for _, r := range joined {
			if r["Value"] != nil {
				seen[r["AlertName"].(string)+" "+r["Status"].(string)] = true
			}
		}
		for _, name := range reducible {
			if !seen[name+" firing"] {
				return name + " has no firing row with a Value yet"
			}
		}
		if !seen["NodeFlapping resolved"] {
			return "NodeFlapping has no resolved row with a Value yet"
		}
		return ""
	})

	rulesTable := readTable(t, c, b.Tables[0]+"_rules")
	byName := map[string]map[string]any{}
	for _, r := range rulesTable {
		byName[r["AlertName"].(string)] = r
	}
	for _, name := range reducible {
		if byName[name] == nil || byName[name]["Query"] == "" {
			t.Errorf("%s: no rule row with a query: %v", name, byName[name])
		}
	}
	for name, reason := range map[string]string{
		"NodeExporterMetricAbsent": "absent(): the value is always 1",
		"NodeLoadHuge":             "bool comparison: the value is 0 or 1",
	} {
		if r := byName[name]; r == nil || r["Derivation"] != reason {
			t.Errorf("%s: rule row %v, want derivation %q", name, r, reason)
		}
	}

	// Every row of a reducible rule has a Value; for slow-moving series it
	// is one of Prometheus's values of the value expression in the
	// evaluation step before the row's time.
	checked := map[string]int{}
	for _, r := range joined {
		name := r["AlertName"].(string)
		rule := byName[name]
		if rule == nil || rule["Reduced"] != "true" {
			continue
		}
		at := r["PrometheusDateTime"].(time.Time)
		if r["Value"] == nil {
			t.Errorf("%s %s at %v: no Value (series key %s, query %s)", name, r["Status"], at, r["SeriesKey"], r["PrometheusQuery"])
			continue
		}
		if !slowMoving[name] {
			continue
		}
		got := r["Value"].(float64)
		window := promValues(t, promAPI, rule["ValueExpr"].(string), r["Labels"].(string), at.Add(-time.Second), at)
		if !containsFloat(window, got) {
			t.Errorf("%s %s at %v: Value %v, Prometheus's values in the step before: %v", name, r["Status"], at, got, window)
		}
		checked[name]++
	}
	t.Logf("values checked against Prometheus: %v", checked)
	for name := range slowMoving {
		if checked[name] == 0 {
			t.Errorf("%s: no row checked", name)
		}
	}
}

func promClient(t *testing.T, addr string) v1.API {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	return v1.NewAPI(c)
}

// promValues returns the values of expr's series that the alert (by its
// label text) is about, at every millisecond step from..to that changes the
// answer: Prometheus's own answers in that window.
func promValues(t *testing.T, promAPI v1.API, expr, alertLabels string, from, to time.Time) []float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, _, _, err := promAPI.QueryRange(ctx, expr, v1.Range{Start: from, End: to, Step: 10 * time.Millisecond})
	if err != nil {
		t.Fatalf("query_range %s: %v", expr, err)
	}
	var out []float64
	for _, s := range v.(model.Matrix) {
		if !seriesOfAlert(s.Metric, alertLabels) {
			continue
		}
		for _, p := range s.Values {
			if !containsFloat(out, float64(p.Value)) {
				out = append(out, float64(p.Value))
			}
		}
	}
	return out
}

// seriesOfAlert reports whether every label the series and the alert share
// has the same value, apart from instance (a static label may override it)
// and labels only the alert has.
func seriesOfAlert(series model.Metric, alertLabels string) bool {
	for name, value := range series {
		if name == model.MetricNameLabel || name == model.InstanceLabel {
			continue
		}
		pair := fmt.Sprintf("%s=%q", name, value)
		if !strings.Contains(alertLabels, pair) {
			return false
		}
	}
	return true
}

func containsFloat(vs []float64, v float64) bool {
	for _, w := range vs {
		if w == v || math.Abs(w-v) <= 1e-9*math.Max(math.Abs(w), math.Abs(v)) {
			return true
		}
	}
	return false
}

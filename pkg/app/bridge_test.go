package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/app"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

const e2eRules = `groups:
- name: e2e
  interval: 1s
  rules:
  - alert: PrometheusUp
    expr: up{job="prometheus"} == 1
    labels: {severity: info, prometheus_query: up}
    annotations: {summary: "Prometheus is up"}
  # Fires for 6 s out of every 20 s, so it fires and resolves during the test.
  - alert: Flapping
    expr: go_goroutines{job="prometheus"} > 0 and on() (vector(time() % 20) < 6)
    labels: {severity: warning, prometheus_query: go_goroutines}
`

// Real Prometheus evaluates rules and sends alerts to a real Alertmanager,
// which delivers webhooks to the bridge; the poller fills the metrics; the
// join in Deephaven shows the metric value at each alert's time.
func TestAlertmanagerPrometheusDeephavenEndToEnd(t *testing.T) {
	dh := testenv.Deephaven(t)
	bridgeAddr := freeAddr(t)
	am := testenv.StartAlertmanager(t, testenv.AlertmanagerOptions{ConfigYAML: fmt.Sprintf(`route:
  receiver: bridge
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
- name: bridge
  webhook_configs:
  - url: http://%s/alerts
    send_resolved: true
`, bridgeAddr)})
	promPort := testenv.FreePort(t)
	prom := startAlertingPrometheus(t, promPort, am.Addr(), e2eRules)
	b := startBridge(t, bridgeSetup{
		Deephaven:  dh,
		Prometheus: "http://" + prom.Addr(),
		Listen:     bridgeAddr,
		Queries: `  - {name: up, expr: up}
  - {name: go_goroutines, expr: go_goroutines, interval: 2s}`,
	})
	c := client(t, dh)
	instance := fmt.Sprintf("127.0.0.1:%d", promPort)

	// Alerts arrive through Alertmanager, firing and resolved.
	var alertRows []map[string]any
	eventually(t, 2*time.Minute, func() string {
		alertRows = readTable(t, c, b.Tables[0])
		var up, flapFiring, flapResolved bool
		for _, r := range alertRows {
			switch {
			case r["AlertName"] == "PrometheusUp" && r["Status"] == "firing":
				up = true
			case r["AlertName"] == "Flapping" && r["Status"] == "firing":
				flapFiring = true
			case r["AlertName"] == "Flapping" && r["Status"] == "resolved":
				flapResolved = true
			}
		}
		if up && flapFiring && flapResolved {
			return ""
		}
		return fmt.Sprintf("alerts table has %d rows; PrometheusUp firing %v, Flapping firing %v, resolved %v", len(alertRows), up, flapFiring, flapResolved)
	})
	for _, r := range alertRows {
		if r["Job"] != "prometheus" || r["Instance"] != instance {
			t.Errorf("alert row Job/Instance = %v/%v, want prometheus/%s", r["Job"], r["Instance"], instance)
		}
		if r["Receiver"] != "bridge" || r["GeneratorURL"] == "" || r["Fingerprint"] == "" {
			t.Errorf("alert row misses receiver, generator URL or fingerprint: %v", r)
		}
		labels, _ := r["Labels"].(string)
		if !strings.Contains(labels, fmt.Sprintf(`alertname="%s"`, r["AlertName"])) || !strings.HasPrefix(labels, "{") {
			t.Errorf("Labels = %q", labels)
		}
		switch r["AlertName"] {
		case "PrometheusUp":
			if r["PrometheusQuery"] != "up" || r["Severity"] != "info" || r["Annotations"] != `{summary="Prometheus is up"}` {
				t.Errorf("PrometheusUp row: %v", r)
			}
		case "Flapping":
			if r["PrometheusQuery"] != "go_goroutines" || r["Severity"] != "warning" {
				t.Errorf("Flapping row: %v", r)
			}
		}
		switch r["Status"] {
		case "firing":
			if r["PrometheusDateTime"] != r["StartsAt"] || r["EndsAt"] != nil {
				t.Errorf("firing row: PrometheusDateTime %v StartsAt %v EndsAt %v", r["PrometheusDateTime"], r["StartsAt"], r["EndsAt"])
			}
		case "resolved":
			if r["PrometheusDateTime"] != r["EndsAt"] || r["EndsAt"] == nil {
				t.Errorf("resolved row: PrometheusDateTime %v EndsAt %v", r["PrometheusDateTime"], r["EndsAt"])
			}
		}
		if at, ok := r["AlertIngestDateTime"].(time.Time); !ok || time.Since(at) > 5*time.Minute {
			t.Errorf("AlertIngestDateTime = %v", r["AlertIngestDateTime"])
		}
	}

	// Every configured query fills the metrics table.
	var metricRows []map[string]any
	eventually(t, time.Minute, func() string {
		metricRows = readTable(t, c, b.Tables[1])
		seen := map[any]int{}
		for _, r := range metricRows {
			seen[r["PrometheusQuery"]]++
		}
		if seen["up"] >= 2 && seen["go_goroutines"] >= 2 {
			return ""
		}
		return fmt.Sprintf("metrics per query: %v", seen)
	})
	for _, r := range metricRows {
		if r["Job"] != "prometheus" || r["Instance"] != instance {
			t.Errorf("metric row Job/Instance = %v/%v", r["Job"], r["Instance"])
		}
		if r["PrometheusQuery"] == "up" && r["Value"] != 1.0 {
			t.Errorf("up = %v, want 1", r["Value"])
		}
		if l, _ := r["Labels"].(string); !strings.Contains(l, `job="prometheus"`) {
			t.Errorf("metric Labels = %q", l)
		}
	}

	// The join shows, for alerts after the first sample, the value at the
	// alert's time; the matched sample is never later than the alert.
	eventually(t, time.Minute, func() string {
		joined := readTable(t, c, b.Tables[2])
		matched := 0
		for _, r := range joined {
			if r["Value"] == nil {
				continue
			}
			matched++
			mt, at := r["MetricTimeStamp"].(time.Time), r["PrometheusDateTime"].(time.Time)
			if mt.After(at) {
				return fmt.Sprintf("joined row with MetricTimeStamp %v after PrometheusDateTime %v", mt, at)
			}
			if r["PrometheusQuery"] == "up" && r["Value"] != 1.0 {
				return fmt.Sprintf("joined up value %v", r["Value"])
			}
		}
		if len(joined) != len(readTable(t, c, b.Tables[0])) {
			return "joined table does not have one row per alert"
		}
		if matched == 0 {
			return fmt.Sprintf("none of %d joined rows has a metric value yet", len(joined))
		}
		return ""
	})

	t.Run("reload adds and removes queries", func(t *testing.T) {
		writeConfig(t, b.ConfigFile, bridgeSetup{Deephaven: dh, Prometheus: "http://" + prom.Addr(), Queries: `  - {name: scrape_duration, expr: scrape_duration_seconds}`}, b.Tables)
		if code, body := post(t, b.URL+"/-/reload", ""); code != 200 {
			t.Fatalf("reload: %d %s", code, body)
		}
		eventually(t, 30*time.Second, func() string {
			for _, r := range readTable(t, c, b.Tables[1]) {
				if r["PrometheusQuery"] == "scrape_duration" {
					return ""
				}
			}
			return "no rows of the new query"
		})
		if err := os.WriteFile(b.ConfigFile, []byte("deephaven: {address: nope}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		code, body := post(t, b.URL+"/-/reload", "")
		if code != 500 || !strings.Contains(body, "deephaven.address") {
			t.Errorf("invalid reload: %d %q, want 500 naming deephaven.address", code, body)
		}
		if v, ok, err := testenv.ScrapeMetric(b.URL, "prometheus_deephaven_bridge_config_last_reload_successful"); err != nil || !ok || v != 0 {
			t.Errorf("config_last_reload_successful = %v (present %v, %v) after a bad reload, want 0", v, ok, err)
		}
		// The old configuration keeps running.
		before := countQuery(readTable(t, c, b.Tables[1]), "scrape_duration")
		eventually(t, 30*time.Second, func() string {
			if countQuery(readTable(t, c, b.Tables[1]), "scrape_duration") > before {
				return ""
			}
			return "the previous queries stopped after a bad reload"
		})
	})
}

func countQuery(rs []map[string]any, q string) int {
	n := 0
	for _, r := range rs {
		if r["PrometheusQuery"] == q {
			n++
		}
	}
	return n
}

// The same notification sent five times (and once more as an HA peer
// would, from another Alertmanager) leaves one row. Bad input gets a 4xx
// with a reason and leaves the table untouched.
func TestRepeatsAndBadInput(t *testing.T) {
	dh := testenv.Deephaven(t)
	b := startBridge(t, bridgeSetup{Deephaven: dh})
	c := client(t, dh)
	start := time.Now().UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano)
	body := notification("firing", "aaaabbbbccccdddd", start, "0001-01-01T00:00:00Z", map[string]string{"alertname": "Repeat", "job": "j", "instance": "i:1"})
	for i := 0; i < 5; i++ {
		if code, resp := post(t, b.URL+"/alerts", body); code != 200 {
			t.Fatalf("post %d: %d %s", i, code, resp)
		}
	}
	peer := strings.Replace(body, "http://am:9093", "http://am-2:9093", 1)
	if code, resp := post(t, b.URL+"/", peer); code != 200 {
		t.Fatalf("post from peer to /: %d %s", code, resp)
	}
	if rs := readTable(t, c, b.Tables[0]); len(rs) != 1 {
		t.Fatalf("%d rows after six copies of one notification, want 1", len(rs))
	}
	if v := testenv.Metric(t, b.URL, "prometheus_deephaven_bridge_alerts_duplicate_total"); v != 5 {
		t.Errorf("alerts_duplicate_total = %v, want 5", v)
	}

	for _, tc := range []struct {
		name, contentType, body string
		code                    int
		reason                  string
	}{
		{"invalid JSON", "application/json", `{"alerts": [`, 400, "JSON"},
		{"wrong content type", "text/plain", body, 415, "Content-Type"},
		{"wrong type", "application/json", strings.Replace(body, `"status":"firing","labels"`, `"status":7,"labels"`, 1), 400, "alerts[0].status"},
		{"one bad alert spoils the request", "application/json", strings.Replace(body, `"alerts":[`, `"alerts":[{"status":"firing"},`, 1), 400, "alerts[0]"},
	} {
		resp, err := http.Post(b.URL+"/alerts", tc.contentType, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(msg), tc.reason) {
			t.Errorf("%s: %d %s, want %d naming %q", tc.name, resp.StatusCode, msg, tc.code, tc.reason)
		}
	}
	if rs := readTable(t, c, b.Tables[0]); len(rs) != 1 {
		t.Fatalf("%d rows after bad requests, want still 1", len(rs))
	}
}

// Label values that look like code are data: stored verbatim, never run.
func TestHostileLabelsAreStoredVerbatim(t *testing.T) {
	dh := testenv.Deephaven(t)
	b := startBridge(t, bridgeSetup{Deephaven: dh})
	c := client(t, dh)
	marker := filepath.Join(t.TempDir(), "pwned")
	hostile := map[string]string{
		"alertname": "Hostile",
		"job":       `"); import os; os.system("touch ` + marker + `") #`,
		"instance":  "line1\nline2\t\"quoted\" 'single' \\back",
		"python":    `__import__('os').system('touch ` + marker + `')`,
		"groovy":    `"${new File('` + marker + `').createNewFile()}"`,
		"unicode":   "ünïcødé ✓ 日本語 \u0000 nul",
	}
	start := time.Now().UTC().Format(time.RFC3339Nano)
	if code, resp := post(t, b.URL+"/alerts", notification("firing", "0123456789abcdef", start, "0001-01-01T00:00:00Z", hostile)); code != 200 {
		t.Fatalf("post: %d %s", code, resp)
	}
	rs := readTable(t, c, b.Tables[0])
	if len(rs) != 1 {
		t.Fatalf("%d rows, want 1", len(rs))
	}
	if rs[0]["Job"] != hostile["job"] || rs[0]["Instance"] != hostile["instance"] {
		t.Errorf("stored Job %q Instance %q, want them verbatim", rs[0]["Job"], rs[0]["Instance"])
	}
	for _, k := range []string{"python", "groovy", "unicode"} {
		if !strings.Contains(rs[0]["Labels"].(string), fmt.Sprintf("%s=%q", k, hostile[k])) {
			t.Errorf("Labels %q lacks %s verbatim", rs[0]["Labels"], k)
		}
	}
	time.Sleep(time.Second)
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists: input was executed", marker)
	}
}

// Against a server started with app.d/, the bridge finds the tables there
// and writes into them: app.d and the Go code agree on every column, type
// and key. A table with another schema stops the bridge with an error
// naming the column.
func TestAppDirTablesAgreeWithBridge(t *testing.T) {
	srv := testenv.StartDeephaven(t, testenv.DeephavenOptions{AppDir: filepath.Join(testenv.RepoRoot(t), "app.d")})
	c := client(t, srv.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for name, spec := range map[string]rows.TableSpec{rows.DefaultAlertsTable: rows.AlertsTable, rows.DefaultMetricsTable: rows.MetricsTable,
		rows.DefaultSamplesTable: rows.SamplesTable} {
		got, err := c.TableSchema(ctx, name)
		if err != nil {
			t.Fatalf("app.d did not make %s: %v", name, err)
		}
		if err := deephaven.CheckSchema(name, got, spec.Schema(), spec.Keys); err != nil {
			t.Errorf("app.d and pkg/rows disagree: %v", err)
		}
		for i, col := range spec.Columns {
			if f := got.Field(i); f.Name != col.Name || deephaven.TypeName(f) != col.Type.String() {
				t.Errorf("%s column %d is %s %s, want %s %s", name, i, f.Name, deephaven.TypeName(f), col.Name, col.Type)
			}
		}
	}
	if _, err := c.TableSchema(ctx, rows.DefaultJoinedTable); err != nil {
		t.Errorf("app.d did not make %s: %v", rows.DefaultJoinedTable, err)
	}
	b := startBridge(t, bridgeSetup{Deephaven: srv.Addr(), Tables: [3]string{rows.DefaultAlertsTable, rows.DefaultMetricsTable, rows.DefaultJoinedTable}})
	start := time.Now().UTC().Format(time.RFC3339Nano)
	if code, resp := post(t, b.URL+"/alerts", notification("firing", "feedfacecafebeef", start, "0001-01-01T00:00:00Z", map[string]string{"alertname": "AppD", "job": "j", "instance": "i"})); code != 200 {
		t.Fatalf("post: %d %s", code, resp)
	}
	eventually(t, 30*time.Second, func() string {
		if rs := readTable(t, c, rows.DefaultJoinedTable); len(rs) == 1 && rs[0]["AlertName"] == "AppD" {
			return ""
		}
		return "the app.d join does not show the alert"
	})
}

func TestSchemaMismatchStopsTheBridge(t *testing.T) {
	dh := testenv.Deephaven(t)
	c := client(t, dh)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := fmt.Sprintf("wrong_alerts_%d", time.Now().UnixNano()%1e9)
	// An alerts table whose Job column holds doubles.
	wrong := rows.TableSpec{Keys: rows.AlertKeys}
	for _, col := range rows.AlertColumns {
		if col.Name == "Job" {
			col.Type = rows.Double
		}
		wrong.Columns = append(wrong.Columns, col)
	}
	if _, err := c.CreateInputTable(ctx, name, wrong.Schema(), wrong.Keys...); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "bridge.yml")
	writeConfig(t, cfg, bridgeSetup{Deephaven: dh}, [3]string{name, name + "_m", name + "_j"})
	listen := []string{freeAddr(t)}
	empty := ""
	err := app.Run(ctx, app.Options{ConfigFile: cfg, Web: &web.FlagConfig{WebListenAddresses: &listen, WebConfigFile: &empty}, Logger: testenv.Logger(t), Registry: prometheus.NewRegistry(), Getenv: func(string) string { return "" }})
	if err == nil || !strings.Contains(err.Error(), `column "Job" has type double, want java.lang.String`) {
		t.Fatalf("Run = %v, want an error naming column Job and both types", err)
	}
}

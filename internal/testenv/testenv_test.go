package testenv

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

func TestMain(m *testing.M) { Main(m) }

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("RepoRoot() = %s, which has no go.mod", root)
	}
}

func TestReplace(t *testing.T) {
	got := Replace(t, "a:1 b:2 a:1", "a:1", "x", "b:2", "y")
	if got != "x y x" {
		t.Errorf("Replace() = %q", got)
	}
}

func TestRender(t *testing.T) {
	got := Render(t, "targets: ['{{.Addr}}']", struct{ Addr string }{"127.0.0.1:1"})
	if got != "targets: ['127.0.0.1:1']" {
		t.Errorf("Render() = %q", got)
	}
}

func TestLogger(t *testing.T) {
	var l *slog.Logger
	t.Run("inner", func(t *testing.T) {
		l = Logger(t)
		l.Debug("hello", "k", "v")
	})
	// Goroutines of the code under test may log after their test ended:
	// that must not panic.
	l.Info("after the test")
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestStartPrometheusAndAlertmanager(t *testing.T) {
	t.Parallel()
	am := StartAlertmanager(t, AlertmanagerOptions{})
	prom := StartPrometheus(t, PrometheusOptions{})
	for _, p := range []*Process{am, prom} {
		if code, body := get(t, p.URL()+"/-/ready"); code != http.StatusOK {
			t.Errorf("%s /-/ready: %d %s", p.name, code, body)
		}
	}

	// Stop must free the port and Restart must bring the server back there.
	prom.Stop()
	if prom.Running() {
		t.Fatal("Prometheus still running after Stop")
	}
	if _, err := net.DialTimeout("tcp", prom.Addr(), time.Second); err == nil {
		t.Fatal("Prometheus port still accepts connections after Stop")
	}
	prom.Restart(t)
	if code, _ := get(t, prom.URL()+"/-/ready"); code != http.StatusOK {
		t.Errorf("Prometheus /-/ready after Restart: %d", code)
	}
}

// alertmanagerMessage is the part of Alertmanager's webhook payload the demo
// test looks at.
type alertmanagerMessage struct {
	Alerts []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

// demoQueries are the example queries of bridge.yml the demo rules refer to.
var demoQueries = map[string]string{
	"go_memstats_alloc_bytes":       "go_memstats_alloc_bytes",
	"go_goroutines":                 "go_goroutines",
	"up":                            "up",
	"prometheus_http_requests_rate": "sum by (job, instance) (rate(prometheus_http_requests_total[1m]))",
}

// TestDemoConfigs runs the demo's Prometheus and Alertmanager configuration
// with a stand-in for the bridge and checks that alerts fire and resolve and
// carry the labels the as-of join needs.
func TestDemoConfigs(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("waits up to two minutes for demo alerts")
	}
	t.Parallel()

	var (
		mu       sync.Mutex
		statuses = map[string]bool{}
		alerts   []map[string]string
	)
	bridge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/alerts" {
			http.NotFound(w, r)
			return
		}
		var msg alertmanagerMessage
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, a := range msg.Alerts {
			statuses[a.Status] = true
			alerts = append(alerts, a.Labels)
		}
	}))
	defer bridge.Close()
	bridgeAddr := strings.TrimPrefix(bridge.URL, "http://")

	am := StartAlertmanager(t, AlertmanagerOptions{ConfigYAML: DemoAlertmanagerConfig(t, bridge.URL+"/alerts")})
	promPort := FreePort(t)
	promAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(promPort))
	prom := StartPrometheus(t, PrometheusOptions{
		Port: promPort,
		ConfigYAML: DemoPrometheusConfig(t, DemoAddrs{
			Prometheus:   promAddr,
			Alertmanager: am.Addr(),
			Bridge:       bridgeAddr,
		}),
		RulesYAML: DemoRules(t),
	})

	deadline := time.Now().Add(2 * time.Minute)
	for {
		mu.Lock()
		done := statuses["firing"] && statuses["resolved"]
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no firing and resolved notifications within 2 minutes; got %v", statuses)
		}
		time.Sleep(time.Second)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, labels := range alerts {
		name, ok := labels["prometheus_query"]
		if !ok {
			continue // a zero-config rule's alert: it joins the rule's value expression, which the bridge discovers
		}
		expr, ok := demoQueries[name]
		if !ok {
			t.Errorf("alert %v: prometheus_query %q is not a demo query", labels, name)
			continue
		}
		if !hasSeries(t, prom, expr, labels["job"], labels["instance"]) {
			t.Errorf("alert %s: query %s has no series with job=%q instance=%q",
				labels["alertname"], name, labels["job"], labels["instance"])
		}
	}
}

// hasSeries reports whether the instant query expr returns a series with the
// given job and instance.
func hasSeries(t *testing.T, prom *Process, expr, job, instance string) bool {
	t.Helper()
	code, body := get(t, prom.URL()+"/api/v1/query?query="+url.QueryEscape(expr))
	if code != http.StatusOK {
		t.Fatalf("query %s: %d %s", expr, code, body)
	}
	var resp struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatalf("query %s: %v", expr, err)
	}
	for _, r := range resp.Data.Result {
		if r.Metric["job"] == job && r.Metric["instance"] == instance {
			return true
		}
	}
	return false
}

func TestSharedDeephaven(t *testing.T) {
	t.Parallel()
	addr := Deephaven(t)
	if again := Deephaven(t); again != addr {
		t.Fatalf("second Deephaven() = %s, want %s", again, addr)
	}
	if code, _ := get(t, "http://"+addr+"/ide/"); code != http.StatusOK {
		t.Errorf("GET /ide/: %d", code)
	}
}

// appDReport is the output of scripts/check_app_d.py.
type appDReport struct {
	Tables map[string]struct {
		Columns []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"columns"`
		InputTable bool     `json:"input_table"`
		KeyColumns []string `json:"key_columns"`
	} `json:"tables"`
	Missing []string            `json:"missing"`
	Figures map[string][]string `json:"figures"`
	Join    *struct {
		OK bool `json:"ok"`
	} `json:"join"`
}

func checkAppD(t *testing.T, p *Process, pskFile string, args ...string) (appDReport, error) {
	t.Helper()
	argv := append([]string{
		filepath.Join(RepoRoot(t), "scripts", "check_app_d.py"),
		"--port", strconv.Itoa(p.Port()),
		"--psk-file", pskFile,
	}, args...)
	cmd := exec.Command(Python(t), argv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var rep appDReport
	if err != nil {
		return rep, errors.New(err.Error() + ": " + stderr.String())
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("check_app_d.py output: %v\n%s", err, out)
	}
	return rep, nil
}

// TestStartDeephaven starts a dedicated server with PSK authentication and
// app.d, checks app.d's tables against pkg/rows, and kills and restarts it.
func TestStartDeephaven(t *testing.T) {
	t.Parallel()
	const psk = "testenv-secret-key"
	dh := StartDeephaven(t, DeephavenOptions{
		AppDir:  "app.d",
		PSK:     psk,
		Heap:    "1g",
		JVMArgs: []string{"-Dhttp.session.durationMs=120000"},
	})
	if code, _ := get(t, dh.URL()+"/ide/"); code != http.StatusOK {
		t.Fatalf("GET /ide/: %d", code)
	}
	log, err := os.ReadFile(dh.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(log, []byte("Picked up JAVA_TOOL_OPTIONS: -Dhttp.session.durationMs=120000")) {
		t.Error("JVMArgs did not reach the JVM")
	}
	if bytes.Contains(log, []byte(psk)) {
		t.Error("the PSK appears in the server log")
	}

	pskFile := filepath.Join(t.TempDir(), "psk")
	writeFile(t, pskFile, psk)
	wrongFile := filepath.Join(t.TempDir(), "wrong")
	writeFile(t, wrongFile, "not-"+psk)
	if _, err := checkAppD(t, dh, wrongFile); err == nil {
		t.Error("check_app_d.py with a wrong key succeeded")
	}
	rep, err := checkAppD(t, dh, pskFile, "--write-rows")
	if err != nil {
		t.Fatalf("check_app_d.py: %v", err)
	}
	checkTable(t, rep, rows.DefaultAlertsTable, rows.AlertsTable)
	checkTable(t, rep, rows.DefaultMetricsTable, rows.MetricsTable)
	checkTable(t, rep, rows.DefaultCheckpointsTable, rows.CheckpointsTable)
	checkTable(t, rep, rows.DefaultRulesTable, rows.RulesTable)
	checkTable(t, rep, rows.DefaultStateTable, rows.StateTable)
	checkTable(t, rep, rows.DefaultNotificationsTable, rows.NotificationsTable)
	if _, ok := rep.Tables[rows.DefaultEpisodesTable]; !ok {
		t.Errorf("no table %s", rows.DefaultEpisodesTable)
	}
	checkTable(t, rep, rows.DefaultSamplesTable, rows.SamplesTable)
	if _, ok := rep.Tables[rows.DefaultJoinedTable]; !ok {
		t.Errorf("no table %s", rows.DefaultJoinedTable)
	}
	if rep.Join == nil || !rep.Join.OK {
		t.Errorf("as-of join did not show the added metric: %+v", rep.Join)
	}
	for name, errs := range rep.Figures {
		if len(errs) > 0 {
			t.Errorf("figure %s: %v", name, errs)
		}
	}

	dh.Kill()
	if dh.Running() {
		t.Fatal("Deephaven still running after Kill")
	}
	dh.Restart(t)
	if code, _ := get(t, dh.URL()+"/ide/"); code != http.StatusOK {
		t.Fatalf("GET /ide/ after Restart: %d", code)
	}
	if rep, err := checkAppD(t, dh, pskFile); err != nil || len(rep.Missing) > 0 {
		t.Fatalf("check_app_d.py after Restart: %v %v", err, rep.Missing)
	}
}

// checkTable compares a table reported by check_app_d.py with its spec.
func checkTable(t *testing.T, rep appDReport, name string, spec rows.TableSpec) {
	t.Helper()
	got, ok := rep.Tables[name]
	if !ok {
		t.Errorf("no table %s", name)
		return
	}
	if !got.InputTable {
		t.Errorf("%s is not an input table", name)
	}
	var gotCols, wantCols []string
	for _, c := range got.Columns {
		gotCols = append(gotCols, c.Name+" "+c.Type)
	}
	for _, c := range spec.Columns {
		wantCols = append(wantCols, c.Name+" "+c.Type.String())
	}
	if !reflect.DeepEqual(gotCols, wantCols) {
		t.Errorf("%s columns:\n got %v\nwant %v", name, gotCols, wantCols)
	}
	// check_app_d.py lists keys in column order, rows in key order.
	gotKeys := map[string]bool{}
	for _, k := range got.KeyColumns {
		gotKeys[k] = true
	}
	wantKeys := map[string]bool{}
	for _, k := range spec.Keys {
		wantKeys[k] = true
	}
	if !reflect.DeepEqual(gotKeys, wantKeys) {
		t.Errorf("%s keys: got %v, want %v", name, got.KeyColumns, spec.Keys)
	}
}

package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/app"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var seq atomic.Int64

// bridge is one in-process bridge under test.
type bridge struct {
	URL        string
	ConfigFile string
	Tables     [3]string // alerts, metrics, joined
	stop       func() error
}

type bridgeSetup struct {
	Deephaven  string
	Prometheus string
	Queries    string // YAML list items under queries:
	Extra      string // more top-level YAML
	Backfill   string // prometheus.backfill_max (default 0s: off)
	Listen     string // host:port to serve on (default: a free port)
	Tables     [3]string
	WebConfig  string            // --web.config.file contents (TLS, basic auth)
	HTTP       *http.Client      // client for the readiness check (default http.DefaultClient)
	Scheme     string            // "https" with TLS (default "http")
	ReadyAuth  [2]string         // basic auth user and password for the readiness check
	Env        map[string]string // environment overrides seen by the bridge
	Logs       io.Writer         // receives the bridge's logs too
	History    string            // history.dir (default: next to the config file)
}

// startAlertingPrometheus starts a Prometheus on port that scrapes itself
// every second (job prometheus), evaluates rulesYAML and sends the alerts
// to the Alertmanager at amAddr, resending them every second.
func startAlertingPrometheus(t *testing.T, port int, amAddr, rulesYAML string) *testenv.Process {
	t.Helper()
	return testenv.StartPrometheus(t, testenv.PrometheusOptions{
		Port: port,
		ConfigYAML: fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [rules.yml]
alerting:
  alertmanagers: [{static_configs: [{targets: ["%s"]}]}]
scrape_configs:
- job_name: prometheus
  static_configs: [{targets: ["127.0.0.1:%d"]}]
`, amAddr, port),
		RulesYAML: rulesYAML,
		ExtraArgs: []string{"--rules.alert.resend-delay=1s"},
	})
}

func freeAddr(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
}

func writeConfig(t *testing.T, path string, s bridgeSetup, tables [3]string) {
	t.Helper()
	if s.Prometheus == "" {
		s.Prometheus = "http://127.0.0.1:1" // nothing listens: poll errors only
	}
	if s.Backfill == "" {
		s.Backfill = "0s"
	}
	if s.History == "" {
		s.History = filepath.Join(filepath.Dir(path), "history")
	}
	cfg := fmt.Sprintf(`deephaven:
  address: %s
  batch_max_delay: 20ms
prometheus:
  url: %s
  poll_interval: 1s
  backfill_max: %s
queries:
%s
tables: {alerts: %[5]s, metrics: %[6]s, joined: %[7]s, rules: %[5]s_rules, state: %[5]s_state, notifications: %[5]s_notes, episodes: %[5]s_episodes, samples: %[5]s_samples}
history: {dir: %[9]s}
%[8]s`, s.Deephaven, s.Prometheus, s.Backfill, s.Queries, tables[0], tables[1], tables[2], s.Extra, s.History)
	if s.Queries == "" {
		cfg = strings.Replace(cfg, "queries:\n\n", "queries: []\n", 1)
	}
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startBridge runs app.Run in-process and waits until it is ready.
func startBridge(t *testing.T, s bridgeSetup) *bridge {
	t.Helper()
	n := seq.Add(1)
	sfx := fmt.Sprintf("%d_%d", time.Now().UnixNano()%1e9, n)
	b := &bridge{
		ConfigFile: filepath.Join(t.TempDir(), "bridge.yml"),
		Tables:     [3]string{"alerts_" + sfx, "metrics_" + sfx, "joined_" + sfx},
	}
	if s.Tables[0] != "" {
		b.Tables = s.Tables
	}
	writeConfig(t, b.ConfigFile, s, b.Tables)
	addr := s.Listen
	if addr == "" {
		addr = freeAddr(t)
	}
	scheme := s.Scheme
	if scheme == "" {
		scheme = "http"
	}
	b.URL = scheme + "://" + addr
	webConfig := ""
	if s.WebConfig != "" {
		webConfig = filepath.Join(t.TempDir(), "web.yml")
		if err := os.WriteFile(webConfig, []byte(s.WebConfig), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hc := s.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	logger := testenv.Logger(t)
	if s.Logs != nil {
		logger = slog.New(slog.NewTextHandler(s.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	listen := []string{addr}
	go func() {
		errc <- app.Run(ctx, app.Options{
			ConfigFile: b.ConfigFile,
			Web:        &web.FlagConfig{WebListenAddresses: &listen, WebConfigFile: &webConfig},
			Logger:     logger,
			Registry:   prometheus.NewRegistry(),
			Getenv:     func(k string) string { return s.Env[k] },
		})
	}()
	var stopped bool
	b.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("bridge did not stop within 30s")
		}
	}
	t.Cleanup(func() {
		if err := b.stop(); err != nil {
			t.Errorf("bridge stop: %v", err)
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case err := <-errc:
			stopped = true
			t.Fatalf("bridge exited: %v", err)
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, b.URL+"/-/ready", nil)
		if s.ReadyAuth[0] != "" {
			req.SetBasicAuth(s.ReadyAuth[0], s.ReadyAuth[1])
		}
		resp, err := hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return b
			}
			if time.Now().After(deadline) {
				t.Fatalf("bridge not ready after 90s: %s", body)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// readTable reads a published table with our client as rows of strings.
func readTable(t *testing.T, c *deephaven.Client, name string) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tab, err := c.Snapshot(ctx, c.NamedTable(name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	defer tab.Release()
	return arrowRows(tab)
}

// arrowRows turns an Arrow table into rows by column name: strings,
// doubles and longs as themselves, times as UTC time.Time, nulls as nil,
// anything else as its text.
func arrowRows(tab arrow.Table) []map[string]any {
	tr := array.NewTableReader(tab, 0)
	defer tr.Release()
	var out []map[string]any
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			row := map[string]any{}
			for j, f := range rec.Schema().Fields() {
				col := rec.Column(j)
				if col.IsNull(i) {
					row[f.Name] = nil
					continue
				}
				switch a := col.(type) {
				case *array.String:
					row[f.Name] = a.Value(i)
				case *array.Float64:
					row[f.Name] = a.Value(i)
				case *array.Int64:
					row[f.Name] = a.Value(i)
				case *array.Timestamp:
					row[f.Name] = time.Unix(0, int64(a.Value(i))).UTC()
				default:
					row[f.Name] = a.ValueStr(i)
				}
			}
			out = append(out, row)
		}
	}
	return out
}

// eventually polls f until it returns "" or the time runs out.
func eventually(t *testing.T, within time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	var why string
	for time.Now().Before(deadline) {
		if why = f(); why == "" {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("after %v: %s", within, why)
}

func client(t *testing.T, addr string) *deephaven.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := deephaven.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func notification(status, fingerprint, startsAt, endsAt string, labels map[string]string) string {
	lb, _ := json.Marshal(labels)
	return fmt.Sprintf(`{"version":"4","groupKey":"{}:{}","truncatedAlerts":0,"status":%q,"receiver":"bridge",
"groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am:9093",
"alerts":[{"status":%q,"labels":%s,"annotations":{"summary":"s"},"startsAt":%q,"endsAt":%q,
"generatorURL":"http://prom/graph","fingerprint":%q}]}`, status, status, lb, startsAt, endsAt, fingerprint)
}

package app_test

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/history"
)

// readHistory reads every committed Parquet file of a table's history.
func readHistory(t *testing.T, dir, table string) []map[string]any {
	t.Helper()
	var out []map[string]any
	root := filepath.Join(dir, table)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".parquet") || strings.HasPrefix(d.Name(), ".") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		pf, err := file.NewParquetReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		defer pf.Close()
		fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, memory.DefaultAllocator)
		if err != nil {
			return err
		}
		tab, err := fr.ReadTable(context.Background())
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		defer tab.Release()
		out = append(out, arrowRows(tab)...)
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("read history of %s: %v", table, err)
	}
	return out
}

// Retention and history across a kill -9 of Deephaven. Alerts (through the
// journal) and metrics (polled from a real Prometheus) stream into a
// Deephaven whose live window is 20 s; rows that leave it go to Parquet.
// Deephaven is killed mid-stream and restarted empty. Afterwards the live
// tables hold exactly the rows at or after the history's cursor, the
// history exactly the rows before it, and together they hold every
// acknowledged alert once and every sample once, without a gap.
func TestRetentionHistoryAcrossDeephavenKill(t *testing.T) {
	dh := testenv.StartDeephaven(t, testenv.DeephavenOptions{Heap: "1g"})
	promPort := testenv.FreePort(t)
	prom := testenv.StartPrometheus(t, testenv.PrometheusOptions{
		Port: promPort,
		ConfigYAML: fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs:
- job_name: prometheus
  static_configs: [{targets: ["127.0.0.1:%d"]}]
`, promPort),
	})
	histDir := filepath.Join(t.TempDir(), "history")
	b := startBridge(t, bridgeSetup{
		Deephaven:  dh.Addr(),
		Prometheus: "http://" + prom.Addr(),
		Backfill:   "10m",
		History:    histDir,
		Queries:    `  - {name: up, expr: up}`,
		Extra: fmt.Sprintf(`journal: {dir: %s}
retention: {live: 20s, interval: 2s}
rules: {enabled: false}
alertmanager: {enabled: false}
`, filepath.Join(t.TempDir(), "journal")),
	})

	// Alerts at about 10/s, each its own event; a 200 is an ack.
	var (
		mu    sync.Mutex
		acked = map[string]bool{} // answered 200
		tried = map[string]bool{} // sent, whatever the answer
	)
	ctx, stopSending := context.WithCancel(context.Background())
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 0; ctx.Err() == nil; i++ {
			fp := fmt.Sprintf("7e7e%012x", i)
			mu.Lock()
			tried[fp] = true
			mu.Unlock()
			start := time.Now().UTC().Truncate(time.Millisecond)
			body := notification("firing", fp, start.Format(time.RFC3339Nano), "0001-01-01T00:00:00Z",
				map[string]string{"alertname": "Retained", "job": "j", "instance": "i"})
			if code := tryPost(b.URL+"/alerts", body); code == 200 {
				mu.Lock()
				acked[fp] = true
				mu.Unlock()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()

	// Let rows leave the live window into the history, then kill
	// Deephaven mid-stream and bring it back empty.
	eventually(t, 2*time.Minute, func() string {
		if len(readHistory(t, histDir, b.Tables[0])) > 0 && len(readHistory(t, histDir, b.Tables[1])) > 0 {
			return ""
		}
		return "no history yet"
	})
	dh.Kill()
	time.Sleep(5 * time.Second)
	dh.Restart(t)
	// Stream on until the restarted Deephaven has rows older than the
	// window again (so the window moved after the restart), then stop.
	c := client(t, dh.Addr())
	eventually(t, 3*time.Minute, func() string {
		if n, err := tableSize(c, b.Tables[1]); err != nil || n == 0 {
			return fmt.Sprintf("the metrics table is not refilled yet: %d rows, %v", n, err)
		}
		return ""
	})
	time.Sleep(25 * time.Second)
	stopSending()
	<-sent
	eventually(t, time.Minute, func() string {
		if v, ok, err := testenv.ScrapeMetric(b.URL, "prometheus_deephaven_bridge_journal_undelivered_records"); err != nil || !ok || v != 0 {
			return fmt.Sprintf("journal undelivered: %v (present %v, %v)", v, ok, err)
		}
		return ""
	})
	time.Sleep(3 * time.Second) // one more retention step
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}

	store, err := history.Open(histDir, history.Options{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	alertsCursor, _, _ := store.Cursor(b.Tables[0])
	metricsCursor, _, _ := store.Cursor(b.Tables[1])
	store.Close()

	// Alerts: every acknowledged one exactly once, live after the cursor,
	// history before it.
	live, hist := readTable(t, c, b.Tables[0]), readHistory(t, histDir, b.Tables[0])
	where := map[string]string{}
	for _, set := range []struct {
		name string
		rows []map[string]any
	}{{"live", live}, {"history", hist}} {
		for _, r := range set.rows {
			fp := r["Fingerprint"].(string)
			if prev, dup := where[fp]; dup {
				t.Errorf("alert %s is in the %s and in the %s", fp, prev, set.name)
			}
			where[fp] = set.name
			at := r["AlertIngestDateTime"].(time.Time)
			if (set.name == "live") != !at.Before(alertsCursor) {
				t.Errorf("alert %s ingested at %s is in the %s; cursor %s", fp, at, set.name, alertsCursor)
			}
		}
	}
	missing := 0
	for fp := range acked {
		if where[fp] == "" {
			missing++
		}
	}
	unsent := 0
	for fp := range where {
		if !tried[fp] {
			unsent++
		}
	}
	t.Logf("alerts: %d sent, %d acknowledged, %d live, %d in the history (cursor %s), %d acknowledged but missing",
		len(tried), len(acked), len(live), len(hist), alertsCursor.Format(time.RFC3339Nano), missing)
	// A request whose answer was not 200 may still have been stored (the
	// sender would send it again); an acknowledged one must be.
	if missing > 0 || unsent > 0 {
		t.Errorf("%d acknowledged alerts missing, %d stored that were never sent", missing, unsent)
	}

	// Metrics: each sample once, split at the cursor, no gap.
	mlive, mhist := readTable(t, c, b.Tables[1]), readHistory(t, histDir, b.Tables[1])
	seen := map[string]string{}
	var times []time.Time
	for _, set := range []struct {
		name string
		rows []map[string]any
	}{{"live", mlive}, {"history", mhist}} {
		for _, r := range set.rows {
			at := r["PrometheusDateTime"].(time.Time)
			k := fmt.Sprintf("%v|%v|%s", r["PrometheusQuery"], r["SeriesKey"], at.Format(time.RFC3339Nano))
			if prev, dup := seen[k]; dup {
				t.Errorf("sample %s is in the %s and in the %s", k, prev, set.name)
			}
			seen[k] = set.name
			if (set.name == "live") != !at.Before(metricsCursor) {
				t.Errorf("sample at %s is in the %s; cursor %s", at, set.name, metricsCursor)
			}
			times = append(times, at)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	var gap time.Duration
	for i := 1; i < len(times); i++ {
		gap = max(gap, times[i].Sub(times[i-1]))
	}
	t.Logf("metrics: %d live, %d in the history (cursor %s), largest gap between samples %s",
		len(mlive), len(mhist), metricsCursor.Format(time.RFC3339Nano), gap)
	if len(mlive) == 0 || len(mhist) == 0 {
		t.Error("the live table or the history holds no samples")
	}
	if gap > 5*time.Second {
		t.Errorf("a %s gap in the samples (poll interval 1s)", gap)
	}
}

// tryPost posts a webhook body and returns the status code, 0 when the
// request failed.
func tryPost(url, body string) int {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// tableSize returns the rows of a table, or an error while it does not exist.
func tableSize(c *deephaven.Client, name string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tb, err := c.OpenTable(ctx, name)
	if err != nil {
		return 0, err
	}
	defer tb.Release(ctx)
	agg, err := tb.AggBy(ctx, []deephaven.Agg{deephaven.AggCount("N")})
	if err != nil {
		return 0, err
	}
	defer agg.Release(ctx)
	tab, err := c.Snapshot(ctx, agg)
	if err != nil {
		return 0, err
	}
	defer tab.Release()
	rs := arrowRows(tab)
	if len(rs) == 0 {
		return 0, nil
	}
	n, _ := rs[0]["N"].(int64)
	return n, nil
}

// In app.d mode Deephaven publishes <table>_history from the bridge's
// Parquet files; files written after it started appear without a restart,
// with the same rows as the files hold.
func TestAppDirHistoryTables(t *testing.T) {
	histDir := filepath.Join(t.TempDir(), "history")
	srv := testenv.StartDeephaven(t, testenv.DeephavenOptions{
		AppDir: filepath.Join(testenv.RepoRoot(t), "app.d"),
		Env:    []string{"PROMETHEUS_BRIDGE_HISTORY_DIR=" + histDir},
	})
	c := client(t, srv.Addr())
	b := startBridge(t, bridgeSetup{
		Deephaven: srv.Addr(),
		Tables:    [3]string{"prometheus_alerts", "prometheus_metrics", "prometheus_alerts_metrics"},
		History:   histDir,
		Extra:     "retention: {live: 10s, interval: 2s}\nalertmanager: {enabled: false}\nrules: {enabled: false}\n",
	})
	send := func(from, n int) {
		for i := from; i < from+n; i++ {
			body := notification("firing", fmt.Sprintf("a11d%012x", i), time.Now().UTC().Format(time.RFC3339Nano), "0001-01-01T00:00:00Z",
				map[string]string{"alertname": "History", "job": "j", "instance": "i"})
			if code, resp := post(t, b.URL+"/alerts", body); code != 200 {
				t.Fatalf("post: %d %s", code, resp)
			}
		}
	}
	// history returns the fingerprints in the history files and in
	// prometheus_alerts_history.
	compare := func() (files, table map[string]bool) {
		files, table = map[string]bool{}, map[string]bool{}
		for _, r := range readHistory(t, histDir, "prometheus_alerts") {
			files[r["Fingerprint"].(string)] = true
		}
		for _, r := range readTable(t, c, "prometheus_alerts_history") {
			table[r["Fingerprint"].(string)] = true
			if r["date"] == nil || r["AlertName"] != "History" {
				t.Errorf("history row %v", r)
			}
		}
		return files, table
	}
	for round, n := range []int{20, 30} {
		send(round*100, n)
		eventually(t, 2*time.Minute, func() string {
			files, table := compare()
			want := 20
			if round == 1 {
				want = 50
			}
			if len(files) != want || len(table) != len(files) {
				return fmt.Sprintf("round %d: %d alerts in the files, %d in prometheus_alerts_history, want %d", round, len(files), len(table), want)
			}
			for fp := range files {
				if !table[fp] {
					return "alert " + fp + " is in the files but not in the table"
				}
			}
			return ""
		})
	}
}

package main_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
)

// Deephaven restarts empty under a bridge without a journal. Everything the
// bridge can restore comes back: a repeated notification of an alert it had
// already written is written again (the webhook's dedup cache does not hide
// it), the metrics table is refilled from Prometheus (backfill_max back, not
// only the outage), and a query added by a reload during the outage gets its
// history too.
func TestDeephavenRestartRestoresWithoutJournal(t *testing.T) {
	bin := build(t)
	srv := testenv.StartDeephaven(t, testenv.DeephavenOptions{})
	prom := startSelfScrapingPrometheus(t)
	dir := t.TempDir()
	sfx := fmt.Sprint(time.Now().UnixNano() % 1e9)
	cfg := filepath.Join(dir, "bridge.yml")
	write := func(queries string) {
		// A 1 s notification window makes the repeat below a new
		// notification, as Alertmanager's repeat hours later would be.
		os.WriteFile(cfg, []byte(fmt.Sprintf(`deephaven: {address: %q}
prometheus: {url: %q, backfill_max: 1h}
alerts: {notification_window: 1s}
queries: %s
tables: {alerts: gap_alerts_%s, metrics: gap_metrics_%s, joined: gap_joined_%s}
`, srv.Addr(), "http://"+prom.Addr(), queries, sfx, sfx, sfx)), 0o644)
	}
	write("[{name: series, expr: prometheus_tsdb_head_series, interval: 1s}]")
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	startBinary(t, bin, cfg, addr, filepath.Join(dir, "bridge.log"))

	alert := `{"version":"4","status":"firing","receiver":"r","alerts":[{"status":"firing","labels":{"alertname":"Repeated"},"annotations":{},"startsAt":"2026-11-30T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"00000000000000aa"}]}`
	postUntil2xx(t, addr, alert)
	waitRows(t, srv.Addr(), "gap_alerts_"+sfx, 1)
	for deadline := time.Now().Add(time.Minute); len(metricTimes(t, srv.Addr(), "gap_metrics_"+sfx)) < 5; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no metric rows before the kill")
		}
	}
	firstBefore := metricTimes(t, srv.Addr(), "gap_metrics_"+sfx)[0]

	srv.Kill()
	killedAt := time.Now()
	// A reload during the outage adds a query.
	write("[{name: series, expr: prometheus_tsdb_head_series, interval: 1s}, {name: added, expr: 'up', interval: 1s}]")
	resp, err := http.Post("http://"+addr+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("reload during the outage: %d %s", resp.StatusCode, body)
	}
	reloadedAt := time.Now()
	time.Sleep(3 * time.Second)
	srv.Restart(t)

	// Alertmanager repeats the notification (repeat_interval): it must land
	// in the new, empty table. Posted right away, it races the bridge
	// noticing the restart: its notification's write waits for the new
	// server, and the alert row the bridge's cache called written is
	// written with it.
	postUntil2xx(t, addr, alert)
	waitRows(t, srv.Addr(), "gap_alerts_"+sfx, 1)

	var series, added []time.Time
	var gap time.Duration
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		series = metricTimesOf(t, srv.Addr(), "gap_metrics_"+sfx, "series")
		added = metricTimesOf(t, srv.Addr(), "gap_metrics_"+sfx, "added")
		gap = largestGap(series)
		if refilled(series, firstBefore) && gap <= 2*time.Second && refilled(added, firstBefore) {
			break
		}
	}
	t.Logf("after the restart: series %d rows from %v (first sample before the kill %v, killed at %v), largest gap %v; added %d rows from %v (reloaded at %v)",
		len(series), first(series), firstBefore.Format(time.RFC3339), killedAt.UTC().Format(time.RFC3339), gap, len(added), first(added), reloadedAt.UTC().Format(time.RFC3339))
	if !refilled(series, firstBefore) || gap > 2*time.Second {
		t.Errorf("the metrics Deephaven lost were not refilled from Prometheus")
	}
	if !refilled(added, firstBefore) {
		t.Errorf("the query added during the outage was not backfilled from before the reload")
	}
	if d := duplicates(series); d > 0 {
		t.Errorf("%d duplicate samples", d)
	}
}

// The bridge is killed twice: once to make a gap, then again in the middle
// of the backfill of that gap. After the second restart the metrics have no
// gap and no sample twice.
func TestBridgeKilledDuringBackfill(t *testing.T) {
	bin := build(t)
	dh := testenv.Deephaven(t)
	prom := startSelfScrapingPrometheus(t)
	dir := t.TempDir()
	sfx := fmt.Sprint(time.Now().UnixNano() % 1e9)
	cfg := filepath.Join(dir, "bridge.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`deephaven: {address: %q}
prometheus: {url: %q, backfill_max: 1h}
queries: [{name: series, expr: prometheus_tsdb_head_series, interval: 1s}]
tables: {alerts: bf_alerts_%s, metrics: bf_metrics_%s, joined: bf_joined_%s}
`, dh, "http://"+prom.Addr(), sfx, sfx, sfx)), 0o644)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	logPath := filepath.Join(dir, "bridge.log")
	b := startBinary(t, bin, cfg, addr, logPath)
	table := "bf_metrics_" + sfx
	for deadline := time.Now().Add(time.Minute); len(metricTimes(t, dh, table)) < 3; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no metric rows")
		}
	}
	b.kill()
	time.Sleep(15 * time.Second)
	off := logSize(logPath)
	b.start()
	if !waitLog(logPath, off, "Backfilling gap", time.Minute) {
		t.Fatal("the restarted bridge did not backfill")
	}
	b.kill()
	time.Sleep(5 * time.Second)
	b.start()
	var ts []time.Time
	var gap time.Duration
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		ts = metricTimes(t, dh, table)
		gap = largestGap(ts)
		if gap <= 2*time.Second && len(ts) > 25 {
			break
		}
	}
	t.Logf("%d samples from %v to %v, largest gap %v, %d duplicates", len(ts), first(ts), last(ts), gap, duplicates(ts))
	if gap > 2*time.Second || duplicates(ts) > 0 {
		t.Errorf("a crash during backfill left a gap or doubled samples")
	}
}

// refilled reports whether ts starts no later than a step (1s, plus the
// backfill's alignment) after first: the whole history was fetched again.
func refilled(ts []time.Time, first time.Time) bool {
	return len(ts) > 0 && !ts[0].After(first.Add(1500*time.Millisecond))
}

func startSelfScrapingPrometheus(t *testing.T) *testenv.Process {
	t.Helper()
	port := testenv.FreePort(t)
	return testenv.StartPrometheus(t, testenv.PrometheusOptions{Port: port, ConfigYAML: fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs: [{job_name: prometheus, static_configs: [{targets: ["127.0.0.1:%d"]}]}]
`, port)})
}

// postUntil2xx posts a notification and retries until it is acknowledged.
func postUntil2xx(t *testing.T, addr, body string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		resp, err := http.Post("http://"+addr+"/alerts", "application/json", strings.NewReader(body))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("notification not acknowledged: %v", err)
		}
	}
}

func waitRows(t *testing.T, dh, table string, n int) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); len(fingerprints(t, dh, table)) < n; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s has fewer than %d rows", table, n)
		}
	}
}

// metricTimesOf reads the sample times of one query, sorted.
func metricTimesOf(t *testing.T, addr, table, query string) []time.Time {
	t.Helper()
	c, err := deephaven.Dial(t.Context(), addr)
	if err != nil {
		return nil
	}
	defer c.Close()
	tab, err := c.Snapshot(t.Context(), c.NamedTable(table))
	if err != nil {
		return nil
	}
	defer tab.Release()
	var out []time.Time
	qi, ti := tab.Schema().FieldIndices("PrometheusQuery")[0], tab.Schema().FieldIndices("PrometheusDateTime")[0]
	qs, ts := tab.Column(qi).Data().Chunks(), tab.Column(ti).Data().Chunks()
	for i := range qs {
		q, tt := qs[i].(*array.String), ts[i].(*array.Timestamp)
		for j := 0; j < q.Len(); j++ {
			if q.Value(j) == query {
				out = append(out, time.Unix(0, int64(tt.Value(j))).UTC())
			}
		}
	}
	sortTimes(out)
	return out
}

func largestGap(ts []time.Time) time.Duration {
	var gap time.Duration
	for i := 1; i < len(ts); i++ {
		gap = max(gap, ts[i].Sub(ts[i-1]))
	}
	return gap
}

func duplicates(ts []time.Time) int {
	n := 0
	for i := 1; i < len(ts); i++ {
		if ts[i].Equal(ts[i-1]) {
			n++
		}
	}
	return n
}

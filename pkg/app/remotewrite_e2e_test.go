package app_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
)

// Debian's Prometheus scrapes a real node exporter and remote-writes to the
// bridge, which stores into a real Deephaven. Once Prometheus has stopped
// scraping and its queue is empty, the count is exact: every sample
// Prometheus says it sent was received, every one that is not a staleness
// marker is a row, and the rows are exactly Prometheus's own raw samples of
// the target: same series, timestamps and values.
func TestRemoteWriteEndToEnd(t *testing.T) {
	dh := testenv.Deephaven(t)
	node := testenv.StartNodeExporter(t)
	bridgeAddr := freeAddr(t)
	promPort := testenv.FreePort(t)
	b := startBridge(t, bridgeSetup{
		Deephaven:  dh,
		Prometheus: fmt.Sprintf("http://127.0.0.1:%d", promPort),
		Listen:     bridgeAddr,
	})
	samplesTable := b.Tables[0] + "_samples"
	// Small batches and a short deadline, so that several requests (and
	// metadata requests) are sent during the test.
	const remoteWrite = `remote_write:
- url: http://%s/api/v1/write
  queue_config: {max_samples_per_send: 200, batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}
  metadata_config: {send: true, send_interval: 2s}
`
	scraping := fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs:
- job_name: node
  static_configs: [{targets: ["%s"]}]
`+remoteWrite, node.Addr(), bridgeAddr)
	prom := testenv.StartPrometheus(t, testenv.PrometheusOptions{Port: promPort, ConfigYAML: scraping})
	promURL := "http://" + prom.Addr()

	// Let it scrape and send for a while.
	eventually(t, time.Minute, func() string {
		if n := testenv.Metric(t, promURL, "prometheus_remote_storage_samples_total"); n < 2000 {
			return fmt.Sprintf("Prometheus sent %v samples so far", n)
		}
		return ""
	})
	// Stop scraping by taking the target away (the job stays: a removed
	// job's loops end without staleness markers): after two intervals
	// the target's series end with staleness markers, which are sent too.
	// Then wait until everything read from the WAL was sent and nothing
	// changed for a few seconds.
	stopped := fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs:
- job_name: node
  static_configs: [{targets: []}]
`+remoteWrite, bridgeAddr)
	if err := os.WriteFile(prom.ConfigPath(), []byte(stopped), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(promURL+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reload Prometheus: %s", resp.Status)
	}
	var sent float64
	stableSince := time.Now()
	eventually(t, 2*time.Minute, func() string {
		s, in := testenv.Metric(t, promURL, "prometheus_remote_storage_samples_total"), testenv.Metric(t, promURL, "prometheus_remote_storage_samples_in_total")
		pending := testenv.Metric(t, promURL, "prometheus_remote_storage_samples_pending")
		if s != sent || s != in || pending != 0 {
			sent, stableSince = s, time.Now()
			return fmt.Sprintf("sent %v, read from the WAL %v, pending %v", s, in, pending)
		}
		if testenv.Metric(t, b.URL, "prometheus_deephaven_bridge_remote_write_samples_dropped_total", "reason", "stale_marker") == 0 {
			return "no staleness markers received yet"
		}
		if time.Since(stableSince) < 5*time.Second {
			return "waiting for the counts to stay put"
		}
		return ""
	})
	for _, name := range []string{"prometheus_remote_storage_samples_failed_total", "prometheus_remote_storage_samples_retried_total",
		"prometheus_remote_storage_samples_dropped_total"} {
		if v := testenv.Metric(t, promURL, name); v != 0 {
			t.Errorf("Prometheus: %s = %v", name, v)
		}
	}

	bm := func(name string, lv ...string) float64 { return testenv.Metric(t, b.URL, name, lv...) }
	const ns = "prometheus_deephaven_bridge_remote_write_"
	received, written, stale := bm(ns+"samples_received_total"), bm(ns+"samples_written_total"), bm(ns+"samples_dropped_total", "reason", "stale_marker")
	t.Logf("Prometheus sent %v samples; the bridge received %v, wrote %v, dropped %v staleness markers; %v metadata entries; requests %v",
		sent, received, written, stale, bm(ns+"metadata_dropped_total"), bm(ns+"requests_total", "code", "204"))
	if received != sent {
		t.Errorf("the bridge received %v samples, Prometheus sent %v", received, sent)
	}
	if written+stale != received || stale == 0 {
		t.Errorf("received %v = written %v + stale markers %v? (the removed target's series must end with staleness markers)", received, written, stale)
	}
	if n := bm(ns+"requests_total", "code", "204"); n == 0 || bm(ns+"requests_total") != n {
		t.Errorf("requests: %v answered 204 of %v", n, bm(ns+"requests_total"))
	}
	if bm(ns+"metadata_dropped_total") == 0 {
		t.Error("no metadata received: Prometheus's metadata requests did not arrive")
	}

	// The rows are Prometheus's raw samples of the target, one for one.
	c := client(t, dh)
	stored := readTable(t, c, samplesTable)
	if float64(len(stored)) != written {
		t.Fatalf("%s holds %d rows, the bridge wrote %v", samplesTable, len(stored), written)
	}
	got := map[string]int{}
	for _, r := range stored {
		k := fmt.Sprintf("%s %s %d %s", r["MetricName"], r["Labels"], r["PrometheusDateTime"].(time.Time).UnixMilli(), valueText(r["Value"].(float64)))
		got[k]++
		if r["Job"] != "node" || r["Instance"] != node.Addr() {
			t.Fatalf("row with job %q and instance %q: %v", r["Job"], r["Instance"], r)
		}
	}
	want := map[string]int{}
	nwant := 0
	for _, s := range rawSamples(t, prom.Addr(), `{job="node"}[1h]`) {
		labels := model.LabelSet(s.Metric).String()
		for _, p := range s.Values {
			want[fmt.Sprintf("%s %s %d %s", s.Metric[model.MetricNameLabel], labels, int64(p.Timestamp), valueText(float64(p.Value)))]++
			nwant++
		}
	}
	if nwant != len(stored) {
		t.Errorf("Prometheus holds %d raw samples of job node, the table %d rows", nwant, len(stored))
	}
	shown := 0
	for k, n := range want {
		if got[k] != n && shown < 10 {
			t.Errorf("sample %s: %d rows, want %d", k, got[k], n)
			shown++
		}
	}
	for k, n := range got {
		if want[k] == 0 && shown < 20 {
			t.Errorf("row %s (%d times) is no sample of Prometheus", k, n)
			shown++
		}
	}
	series := map[string]bool{}
	for _, r := range stored {
		series[r["Labels"].(string)] = true
	}
	t.Logf("%d rows of %d series match Prometheus's raw samples", len(stored), len(series))
}

// valueText formats a sample value so that NaN equals NaN.
func valueText(v float64) string {
	if math.IsNaN(v) {
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// rawSamples returns the raw samples of a range selector, from Prometheus's
// query API.
func rawSamples(t *testing.T, addr, selector string) model.Matrix {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, _, _, err := promClient(t, addr).Query(ctx, selector, time.Now())
	if err != nil {
		t.Fatalf("query %s: %v", selector, err)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		t.Fatalf("query %s: %T, want a matrix", selector, v)
	}
	return m
}

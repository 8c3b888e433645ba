package app_test

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	writev2 "github.com/prometheus/client_golang/exp/api/remote/genproto/v2"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
)

// kafkaLedger records which alerts a sender got a 2xx for.
type kafkaLedger struct {
	mu    sync.Mutex
	acked map[string]bool // fingerprint → acknowledged by some bridge
}

func (l *kafkaLedger) ack(fp string) {
	l.mu.Lock()
	l.acked[fp] = true
	l.mu.Unlock()
}

func (l *kafkaLedger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// kafkaStored counts the rows per fingerprint of the deduplicated alerts
// table, read through a fresh client.
func kafkaStored(t *testing.T, dhAddr string) map[string]int {
	c := client(t, dhAddr)
	out := map[string]int{}
	for _, r := range readTable(t, c, "prometheus_alerts") {
		fp, _ := r["Fingerprint"].(string)
		out[fp]++
	}
	return out
}

// kafkaCheck compares the acknowledged alerts with the table: every one
// present exactly once. It returns "" when they agree, else the counts.
func kafkaCheck(l *kafkaLedger, stored map[string]int) (string, [4]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	missing, dups := 0, 0
	for fp := range l.acked {
		switch n := stored[fp]; {
		case n == 0:
			missing++
		case n > 1:
			dups++
		}
	}
	counts := [4]int{len(l.acked), len(stored), missing, dups}
	if missing == 0 && dups == 0 {
		return "", counts
	}
	return fmt.Sprintf("acknowledged %d, stored %d, missing %d, duplicates %d", counts[0], counts[1], counts[2], counts[3]), counts
}

// Kafka mode end to end, with real servers: one broker, one Deephaven
// running app.d with the Kafka consumer, two bridges producing to it.
//
//	(a) senders post every alert to both bridges, retrying until one
//	    answers 2xx, while one bridge is stopped mid-stream: every
//	    acknowledged alert is in prometheus_alerts exactly once;
//	(b) the broker stops for 10 s while senders post: no request sent
//	    during the outage is answered 2xx, and after the broker is back the
//	    senders' retries get through, again exactly once each;
//	(c) Deephaven is killed and started again: the tables refill from the
//	    topics alone, with the same rows; alerts valued NaN and ±Inf keep
//	    their values, every acknowledged alert has its notification logged
//	    and one episode counting it, remote-written samples (NaN and +Inf
//	    among them) are in prometheus_samples, the polled query's rows in
//	    prometheus_metrics, the as-of join has a row per alert, and the
//	    rule the bridges discovered and the alert Alertmanager holds are
//	    in prometheus_rules and prometheus_alert_state.
func TestKafkaModeEndToEnd(t *testing.T) {
	kafka := testenv.StartKafka(t)
	const prefix = "kafka_e2e_"
	dh := testenv.StartDeephaven(t, testenv.DeephavenOptions{AppDir: "app.d", Heap: "1g", Env: []string{
		"PROMETHEUS_BRIDGE_KAFKA_BROKERS=" + kafka.Addr(),
		"PROMETHEUS_BRIDGE_KAFKA_TOPIC_PREFIX=" + prefix,
	}})
	// A Prometheus scraping itself, which the bridges poll (query up), with
	// an alerting rule they discover, always firing into an Alertmanager
	// they read (its default route has no webhook).
	am := testenv.StartAlertmanager(t, testenv.AlertmanagerOptions{})
	promPort := testenv.FreePort(t)
	prom := startAlertingPrometheus(t, promPort, am.Addr(), `groups:
- name: kafka
  interval: 1s
  rules:
  - alert: KafkaAlwaysFiring
    expr: up{job="prometheus"} == 1
`)
	kafkaYAML := fmt.Sprintf(`sink: {kind: kafka}
kafka: {brokers: [%s], topic_prefix: %s, produce_timeout: 3s}
alertmanager: {urls: ["http://%s"], sync_interval: 1s}
rules: {refresh_interval: 2s}
`, kafka.Addr(), prefix, am.Addr())
	setup := bridgeSetup{Deephaven: "127.0.0.1:1", Extra: kafkaYAML, Prometheus: "http://" + prom.Addr(), Queries: "  - {name: up, expr: up}"}
	b1, b2 := startBridge(t, setup), startBridge(t, setup)
	// Alert values JSON has no number for reach Deephaven as they are.
	// (Their fingerprints are far above the senders' counter.)
	nonFinite := map[string]float64{"fffffffffffffff1": math.NaN(), "fffffffffffffff2": math.Inf(1), "fffffffffffffff3": math.Inf(-1)}
	if code, resp := post(t, b2.URL+"/alerts", grafanaValues(nonFinite)); code != 200 {
		t.Fatalf("post alerts with NaN and infinite values: %d %s", code, resp)
	}
	// An alert too large for one Kafka record (the broker's default
	// max.message.bytes is 1 MB) lands with its annotations cut; whole, it
	// was refused with a 503 on every retry.
	huge := fmt.Sprintf(`{"version":"4","status":"firing","receiver":"r","groupKey":"{}:{}","alerts":[{"status":"firing",`+
		`"labels":{"alertname":"KafkaHuge","job":"j","instance":"i"},"annotations":{"description":%q},`+
		`"startsAt":"2026-12-04T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"fffffffffffffff4"}]}`, strings.Repeat("d", 2_000_000))
	if code, resp := post(t, b2.URL+"/alerts", huge); code != 200 {
		t.Fatalf("post an alert of 2 MB: %d %s", code, resp)
	}
	// Remote-written samples go through their own topic.
	samples := map[string]float64{"1": 0.5, "2": math.NaN(), "3": math.Inf(1)}
	if code := postRemoteWrite(t, b2.URL, "kafka_e2e_sample", samples); code != http.StatusNoContent {
		t.Fatalf("remote write: %d", code)
	}
	var urls [2]atomic.Pointer[string]
	urls[0].Store(&b1.URL)
	urls[1].Store(&b2.URL)

	ledger := &kafkaLedger{acked: map[string]bool{}}
	var (
		next       atomic.Int64 // the next alert's number
		stopSend   atomic.Bool
		outageFrom atomic.Int64 // Unix ns: the broker is down from then ...
		outageTo   atomic.Int64 // ... until then (0 while it still is)
		bad2xx     atomic.Int64 // 2xx for requests sent and answered during the outage
		posts      atomic.Int64
	)
	startsAt := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	send := func() {
		for !stopSend.Load() {
			n := next.Add(1)
			fp := fmt.Sprintf("%016x", n)
			body := notification("firing", fp, startsAt, "0001-01-01T00:00:00Z",
				map[string]string{"alertname": "KafkaE2E", "n": fmt.Sprint(n)})
			// To both bridges, as an Alertmanager HA pair would; an alert
			// counts as acknowledged once either answered 2xx. The sender
			// retries until then.
			for acked := false; !acked; {
				for i := range urls {
					sent := time.Now().UnixNano()
					code := tryPost(*urls[i].Load()+"/alerts", body)
					posts.Add(1)
					if code/100 != 2 {
						continue
					}
					acked = true
					if from := outageFrom.Load(); from != 0 && sent > from && outageTo.Load() == 0 {
						bad2xx.Add(1)
					}
				}
				if acked {
					ledger.ack(fp)
				} else {
					time.Sleep(100 * time.Millisecond)
				}
			}
		}
	}
	var senders sync.WaitGroup
	for range 4 {
		senders.Add(1)
		go func() { defer senders.Done(); send() }()
	}

	// (a) one bridge goes away mid-stream.
	time.Sleep(3 * time.Second)
	if err := b1.stop(); err != nil {
		t.Errorf("stopping bridge 1: %v", err)
	}
	t.Logf("(a) bridge 1 stopped after %d acknowledged alerts", ledger.count())
	time.Sleep(2 * time.Second)
	b3 := startBridge(t, setup)
	urls[0].Store(&b3.URL)
	time.Sleep(2 * time.Second)

	// (b) the broker is down for 10 s: over three produce timeouts, so
	// requests fail while it is.
	const outage = 10 * time.Second
	kafka.Stop()
	outageFrom.Store(time.Now().UnixNano())
	before := ledger.count()
	time.Sleep(outage)
	outageTo.Store(time.Now().UnixNano())
	kafka.Restart(t)
	t.Logf("(b) broker was down %s: %d alerts acknowledged during the outage (want 0 requests sent then answered 2xx: %d)",
		outage, ledger.count()-before, bad2xx.Load())
	if bad2xx.Load() != 0 {
		t.Errorf("%d requests sent while the broker was down were answered 2xx", bad2xx.Load())
	}
	// The senders catch up.
	caughtUp := ledger.count()
	eventually(t, 60*time.Second, func() string {
		if ledger.count() > caughtUp+50 {
			return ""
		}
		return fmt.Sprintf("senders stuck at %d acknowledged alerts after the broker came back", ledger.count())
	})
	stopSend.Store(true)
	senders.Wait()

	var counts [4]int
	eventually(t, 60*time.Second, func() string {
		why, c := kafkaCheck(ledger, kafkaStored(t, dh.Addr()))
		counts = c
		return why
	})
	t.Logf("(a+b) acknowledged %d, stored %d, missing %d, duplicates %d (%d posts)", counts[0], counts[1], counts[2], counts[3], posts.Load())

	// (c) Deephaven starts again with nothing: the topics refill it.
	dh.Kill()
	start := time.Now()
	dh.Restart(t)
	var refilled [4]int
	eventually(t, 90*time.Second, func() string {
		why, c := kafkaCheck(ledger, kafkaStored(t, dh.Addr()))
		refilled = c
		return why
	})
	t.Logf("(c) Deephaven restarted and refilled from Kafka in %v: acknowledged %d, stored %d, missing %d, duplicates %d",
		time.Since(start).Round(time.Second), refilled[0], refilled[1], refilled[2], refilled[3])
	if refilled[1] != counts[1] {
		t.Errorf("after the restart the table has %d alerts, before %d", refilled[1], counts[1])
	}
	found := 0
	for _, r := range readTable(t, client(t, dh.Addr()), "prometheus_alerts") {
		want, ok := nonFinite[r["Fingerprint"].(string)]
		if !ok {
			continue
		}
		found++
		if got, _ := r["AlertValue"].(float64); !(got == want || math.IsNaN(got) && math.IsNaN(want)) {
			t.Errorf("alert %s: AlertValue %v, want %v", r["Fingerprint"], r["AlertValue"], want)
		}
	}
	if found != len(nonFinite) {
		t.Errorf("%d of the %d alerts with NaN and infinite values are in prometheus_alerts", found, len(nonFinite))
	}
	hugeRows := 0
	for _, r := range readTable(t, client(t, dh.Addr()), "prometheus_alerts") {
		if r["Fingerprint"] != "fffffffffffffff4" {
			continue
		}
		hugeRows++
		a, _ := r["Annotations"].(string)
		if !strings.HasPrefix(a, `{description="ddd`) || !strings.Contains(a, "…[cut by prometheus-deephaven-bridge from ") || len(a) < 500_000 || r["AlertName"] != "KafkaHuge" {
			t.Errorf("the 2 MB alert: AlertName %v, Annotations of %d bytes ending %q", r["AlertName"], len(a), a[max(0, len(a)-80):])
		}
	}
	if hugeRows != 1 {
		t.Errorf("prometheus_alerts has %d rows of the 2 MB alert, want 1", hugeRows)
	}

	// The other tables of Kafka mode refilled too: every acknowledged
	// alert has its notification logged and one episode counting it, and
	// the samples are there with their values.
	c := client(t, dh.Addr())
	notes := map[string]int{}
	for _, r := range readTable(t, c, "prometheus_alert_notifications") {
		notes[r["Fingerprint"].(string)]++
	}
	episodes := map[string]int{}
	for _, r := range readTable(t, c, "prometheus_alert_episodes") {
		if n, _ := r["Notifications"].(int64); n >= 1 {
			episodes[r["Fingerprint"].(string)]++
		}
	}
	ledger.mu.Lock()
	var noNote, noEpisode int
	for fp := range ledger.acked {
		if notes[fp] == 0 {
			noNote++
		}
		if episodes[fp] != 1 {
			noEpisode++
		}
	}
	acked := len(ledger.acked)
	ledger.mu.Unlock()
	if noNote > 0 || noEpisode > 0 {
		t.Errorf("of %d acknowledged alerts, %d have no notification logged and %d not one episode counting it", acked, noNote, noEpisode)
	}
	// The poller's rows, and the as-of join of the alerts onto them (a row
	// per alert).
	ups := 0
	for _, r := range readTable(t, c, "prometheus_metrics") {
		if r["PrometheusQuery"] == "up" && r["Value"] == 1.0 && r["Job"] == "prometheus" {
			ups++
		}
	}
	if ups == 0 {
		t.Error("no row of the query up in prometheus_metrics")
	}
	if alerts, joined := len(readTable(t, c, "prometheus_alerts")), len(readTable(t, c, "prometheus_alerts_metrics")); joined != alerts {
		t.Errorf("prometheus_alerts_metrics has %d rows, prometheus_alerts %d", joined, alerts)
	}
	// Rule discovery's rows, and the Alertmanager's view of the alert.
	var rules []map[string]any
	for _, r := range readTable(t, c, "prometheus_rules") {
		if r["AlertName"] == "KafkaAlwaysFiring" {
			rules = append(rules, r)
		}
	}
	// (readTable gives booleans as text.)
	if len(rules) != 1 || rules[0]["Present"] != "true" || rules[0]["Query"] == "" {
		t.Errorf("prometheus_rules' rows of KafkaAlwaysFiring: %v, want one present with its query", rules)
	}
	states := 0
	for _, r := range readTable(t, c, "prometheus_alert_state") {
		if r["AlertName"] == "KafkaAlwaysFiring" && r["State"] == "active" {
			states++
		}
	}
	if states != 1 {
		t.Errorf("prometheus_alert_state has %d active rows of KafkaAlwaysFiring, want 1", states)
	}
	gotSamples := map[string]any{}
	for _, r := range readTable(t, c, "prometheus_samples") {
		if r["MetricName"] == "kafka_e2e_sample" {
			gotSamples[r["Labels"].(string)] = r["Value"]
		}
	}
	for id, want := range samples {
		var got float64
		for labels, v := range gotSamples {
			if strings.Contains(labels, `id="`+id+`"`) {
				got, _ = v.(float64)
			}
		}
		if !(got == want || math.IsNaN(got) && math.IsNaN(want)) {
			t.Errorf("sample id=%s: Value %v, want %v (samples: %v)", id, got, want, gotSamples)
		}
	}
}

// postRemoteWrite sends one remote write 2.0 request to the bridge at url:
// a sample of the gauge name per entry of values, labelled id, an hour ago.
func postRemoteWrite(t *testing.T, url, name string, values map[string]float64) int {
	t.Helper()
	syms := writev2.NewSymbolTable()
	var req writev2.Request
	at := time.Now().Add(-time.Hour).UnixMilli()
	for id, v := range values {
		req.Timeseries = append(req.Timeseries, &writev2.TimeSeries{
			LabelsRefs: syms.SymbolizeLabels([]string{"__name__", name, "id", id}, nil),
			Samples:    []*writev2.Sample{{Value: v, Timestamp: at}},
			Metadata:   &writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE},
		})
	}
	req.Symbols = syms.Symbols()
	b, err := req.MarshalVT()
	if err != nil {
		t.Fatal(err)
	}
	hr, err := http.NewRequest(http.MethodPost, url+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, b)))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request")
	hr.Header.Set("Content-Encoding", "snappy")
	hr.Header.Set("X-Prometheus-Remote-Write-Version", "2.0.0")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Logf("remote write answered %d: %s", resp.StatusCode, msg)
	}
	return resp.StatusCode
}

// grafanaValues is a Grafana notification of one firing alert per
// fingerprint, each with the value given (in Grafana's valueString, where
// NaN and ±Inf are written as Go writes them).
func grafanaValues(values map[string]float64) string {
	var alerts []string
	for fp, v := range values {
		alerts = append(alerts, fmt.Sprintf(`{"status":"firing","labels":{"alertname":"KafkaNonFinite","fp":%q},"annotations":{},
"startsAt":"2026-12-04T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"https://grafana.example/alerting/grafana/x/view",
"fingerprint":%q,"values":null,"valueString":"[ var='B' labels={} value=%s ], [ var='C' labels={} value=1 ]"}`, fp, fp, strconv.FormatFloat(v, 'g', -1, 64)))
	}
	return `{"receiver":"deephaven","status":"firing","orgId":1,"alerts":[` + strings.Join(alerts, ",") + `],
"groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"https://grafana.example/","version":"1",
"groupKey":"{}:{}","truncatedAlerts":0,"title":"t","state":"alerting","message":"m"}`
}

// Command bridge-load measures the bridge against a real Deephaven server
// and prints a Markdown table. It runs the bridge in-process (pkg/app) on a
// loopback port, with a small fake Prometheus of its own, and measures:
//
//   - webhook throughput: alerts/s from HTTP request to acknowledged row
//     (the 2xx is sent only once the rows are in Deephaven), at several
//     alerts per request, with many concurrent senders;
//   - webhook latency at a fixed 500 alerts/s: p50/p99/max of the
//     acknowledgement;
//   - metric rows/s from a decoded Prometheus response to Deephaven (the
//     poller's conversion, the batcher and the input-table upload), side
//     by side with the client's raw upload of the same rows.
//
// Usage: bridge-load --deephaven 127.0.0.1:10000
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/app"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/poller"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/sink"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/tables"
)

func main() {
	addr := flag.String("deephaven", "127.0.0.1:10000", "Deephaven host:port")
	alerts := flag.Int("alerts", 50_000, "alerts per throughput run")
	senders := flag.Int("senders", 32, "concurrent webhook senders")
	rateSeconds := flag.Int("rate-seconds", 10, "length of the fixed-rate run")
	metricRows := flag.Int("metric-rows", 200_000, "rows for the metrics runs")
	journal := flag.Bool("journal", false, "run the bridge with its alert journal (acknowledge once fsynced)")
	flag.Parse()
	if err := run(*addr, *alerts, *senders, *rateSeconds, *metricRows, *journal); err != nil {
		fmt.Fprintln(os.Stderr, "bridge-load:", err)
		os.Exit(1)
	}
}

func run(dh string, nAlerts, senders, rateSeconds, metricRows int, withJournal bool) error {
	dir, err := os.MkdirTemp("", "bridge-load")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sfx := fmt.Sprint(time.Now().UnixNano() % 1e9)
	cfgPath := filepath.Join(dir, "bridge.yml")
	cfg := fmt.Sprintf(`deephaven: {address: %q}
prometheus: {url: "http://127.0.0.1:1", backfill_max: 0s}
alerts: {max_concurrent_requests: 256}
tables: {alerts: load_alerts_%s, metrics: load_metrics_%s, joined: load_joined_%s}
`, dh, sfx, sfx, sfx)
	if withJournal {
		cfg += fmt.Sprintf("journal: {dir: %q}\n", filepath.Join(dir, "journal"))
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	listen := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	addrs, empty := []string{listen}, ""
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() {
		errc <- app.Run(ctx, app.Options{ConfigFile: cfgPath, Web: &web.FlagConfig{WebListenAddresses: &addrs, WebConfigFile: &empty}, Logger: logger, Registry: prometheus.NewRegistry()})
	}()
	base := "http://" + listen
	if err := waitReady(base, errc); err != nil {
		return err
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}}
	fmt.Println("| run | alerts | alerts/request | senders | alerts/s | p50 ack | p99 ack | max ack |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|")
	var seq atomic.Int64
	for _, per := range []int{1, 10, 100} {
		n := nAlerts
		if per == 1 {
			n = nAlerts / 5 // one alert per request is slow by nature; keep the run short
		}
		res, err := throughput(client, base, n, per, senders, &seq)
		if err != nil {
			return err
		}
		fmt.Printf("| throughput | %d | %d | %d | %.0f | %s | %s | %s |\n", res.alerts, per, senders, res.rate, ms(res.p50), ms(res.p99), ms(res.max))
	}
	res, err := fixedRate(client, base, 500, time.Duration(rateSeconds)*time.Second, &seq)
	if err != nil {
		return err
	}
	fmt.Printf("| fixed 500 alerts/s | %d | 1 | paced | %.0f | %s | %s | %s |\n", res.alerts, res.rate, ms(res.p50), ms(res.p99), ms(res.max))
	fmt.Println()
	cancel()
	if err := <-errc; err != nil {
		return err
	}
	if withJournal || metricRows <= 0 {
		return nil
	}
	return metrics(dh, metricRows, sfx)
}

func waitReady(base string, errc chan error) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-errc:
			return fmt.Errorf("bridge exited: %v", err)
		default:
		}
		if resp, err := http.Get(base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("bridge not ready")
}

type result struct {
	alerts        int
	rate          float64
	p50, p99, max time.Duration
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func body(seq *atomic.Int64, per int) string {
	var b strings.Builder
	b.WriteString(`{"version":"4","status":"firing","receiver":"load","groupKey":"{}:{}","alerts":[`)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for i := 0; i < per; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		n := seq.Add(1)
		fmt.Fprintf(&b, `{"status":"firing","labels":{"alertname":"Load","job":"load","instance":"i%d","prometheus_query":"up"},"annotations":{},"startsAt":%q,"endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"%016x"}`, n%100, now, n)
	}
	b.WriteString(`]}`)
	return b.String()
}

func send(client *http.Client, base, payload string) (time.Duration, error) {
	start := time.Now()
	resp, err := client.Post(base+"/alerts", "application/json", strings.NewReader(payload))
	if err != nil {
		return 0, err
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("webhook answered %d: %s", resp.StatusCode, msg)
	}
	return time.Since(start), nil
}

func throughput(client *http.Client, base string, n, per, senders int, seq *atomic.Int64) (result, error) {
	requests := n / per
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(requests) {
				d, err := send(client, base, body(seq, per))
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if firstErr != nil {
		return result{}, firstErr
	}
	return summarize(lat, requests*per, el), nil
}

func fixedRate(client *http.Client, base string, perSecond int, d time.Duration, seq *atomic.Int64) (result, error) {
	interval := time.Second / time.Duration(perSecond)
	total := int(d / interval)
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < total; i++ {
		// Open-loop pacing: a slow answer does not delay the next send.
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := send(client, base, body(seq, 1))
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			lat = append(lat, d)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return result{}, firstErr
	}
	return summarize(lat, total, time.Since(start)), nil
}

func summarize(lat []time.Duration, alerts int, el time.Duration) result {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return result{alerts: alerts, rate: float64(alerts) / el.Seconds(), p50: q(0.50), p99: q(0.99), max: lat[len(lat)-1]}
}

// metrics measures decoded Prometheus responses → rows → batcher → Deephaven,
// and the client's raw upload of the same rows.
func metrics(dh string, n int, sfx string) error {
	ctx := context.Background()
	c, err := deephaven.Dial(ctx, dh)
	if err != nil {
		return err
	}
	defer c.Close()
	tb := tables.New(c, tables.Names{Alerts: "loadm_alerts_" + sfx, Metrics: "loadm_metrics_" + sfx, Joined: "loadm_joined_" + sfx,
		Rules: "loadm_rules_" + sfx, State: "loadm_state_" + sfx, Notifications: "loadm_notifications_" + sfx,
		Episodes: "loadm_episodes_" + sfx, Checkpoints: "loadm_checkpoints_" + sfx, Samples: "loadm_samples_" + sfx}, nil)
	if err := tb.Ensure(ctx); err != nil {
		return err
	}
	// A decoded instant-query response of 1,000 series, as client_golang returns it.
	const series = 1000
	vec := make(model.Vector, series)
	now := model.Now()
	for i := range vec {
		vec[i] = &model.Sample{Metric: model.Metric{"__name__": "load_metric", "job": "load", "instance": model.LabelValue(fmt.Sprintf("host-%d:9100", i))}, Value: model.SampleValue(i), Timestamp: now}
	}
	responses := n / series

	b := sink.New(tb.AddMetrics, sink.Options{Table: "metrics"}, nil, nil)
	bctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { b.Run(bctx, ctx); close(done) }()
	start := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, responses)
	for i := 0; i < responses; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs, _, err := poller.ToRows("load", vec, time.Now())
			if err == nil {
				err = b.Write(ctx, rs)
			}
			errc <- err
		}()
	}
	wg.Wait()
	pipeline := time.Since(start)
	stop()
	<-done
	close(errc)
	for err := range errc {
		if err != nil {
			return err
		}
	}

	// The client's raw upload of the same rows, already converted.
	all := make([]rows.MetricRow, 0, n)
	for i := 0; i < responses; i++ {
		rs, _, _ := poller.ToRows("load", vec, time.Now())
		all = append(all, rs...)
	}
	rec := rows.MetricRecord(memory.DefaultAllocator, all)
	defer rec.Release()
	raw, _, err := c.EnsureInputTable(ctx, "loadm_raw_"+sfx, rows.MetricSchema)
	if err != nil {
		return err
	}
	start = time.Now()
	if err := raw.Add(ctx, rec); err != nil {
		return err
	}
	rawD := time.Since(start)

	fmt.Println("| metrics path | rows | rows/s |")
	fmt.Println("|---|---:|---:|")
	fmt.Printf("| decoded responses (%d series each, %d concurrent) → rows → batcher → Deephaven | %d | %.0f |\n", series, responses, responses*series, float64(responses*series)/pipeline.Seconds())
	fmt.Printf("| client's raw upload of the same rows (one batch) | %d | %.0f |\n", len(all), float64(len(all))/rawD.Seconds())
	return nil
}

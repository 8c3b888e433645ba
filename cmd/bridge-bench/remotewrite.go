package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/klauspost/compress/snappy"
	writev2 "github.com/prometheus/client_golang/exp/api/remote/genproto/v2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// rwSeries are node exporter-like series: n label sets of five labels,
// sorted by name, as Prometheus sends them.
func rwSeries(n int) [][]rows.Label {
	modes := []string{"idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"}
	out := make([][]rows.Label, n)
	for i := range out {
		out[i] = []rows.Label{
			{Name: "__name__", Value: "node_cpu_seconds_total"},
			{Name: "cpu", Value: fmt.Sprint(i / len(modes) % 64)},
			{Name: "instance", Value: fmt.Sprintf("host-%d.example.com:9100", i/512)},
			{Name: "job", Value: "node"},
			{Name: "mode", Value: modes[i%len(modes)]},
		}
	}
	return out
}

// rwLoad is a remote write load: requests of perRequest samples, one per
// series, the series cycling as scrapes of a fleet would, each scrape a
// second after the one before.
type rwLoad struct {
	series     [][]rows.Label
	requests   int
	perRequest int
	start      time.Time
}

// sample returns the series and sample of the k-th sample of request r.
func (l rwLoad) sample(r, k int) ([]rows.Label, int64, float64) {
	i := r*l.perRequest + k
	s := l.series[i%len(l.series)]
	at := l.start.Add(time.Duration(i/len(l.series)) * time.Second)
	return s, at.UnixMilli(), float64(i)
}

// bodyV1 encodes request r as a snappy-compressed prometheus.WriteRequest,
// field by field (the generated types are internal to pkg/remotewrite).
func (l rwLoad) bodyV1(r int) []byte {
	var req, ts, lb, sb []byte
	for k := range l.perRequest {
		ls, ms, v := l.sample(r, k)
		ts = ts[:0]
		for _, lab := range ls {
			lb = protowire.AppendTag(lb[:0], 1, protowire.BytesType)
			lb = protowire.AppendString(lb, lab.Name)
			lb = protowire.AppendTag(lb, 2, protowire.BytesType)
			lb = protowire.AppendString(lb, lab.Value)
			ts = protowire.AppendTag(ts, 1, protowire.BytesType)
			ts = protowire.AppendBytes(ts, lb)
		}
		sb = protowire.AppendTag(sb[:0], 1, protowire.Fixed64Type)
		sb = protowire.AppendFixed64(sb, math.Float64bits(v))
		sb = protowire.AppendTag(sb, 2, protowire.VarintType)
		sb = protowire.AppendVarint(sb, uint64(ms))
		ts = protowire.AppendTag(ts, 2, protowire.BytesType)
		ts = protowire.AppendBytes(ts, sb)
		req = protowire.AppendTag(req, 1, protowire.BytesType)
		req = protowire.AppendBytes(req, ts)
	}
	return snappy.Encode(nil, req)
}

// bodyV2 encodes request r as a snappy-compressed io.prometheus.write.v2.Request.
func (l rwLoad) bodyV2(r int) ([]byte, error) {
	syms := writev2.NewSymbolTable()
	req := &writev2.Request{}
	var lv []string
	for k := range l.perRequest {
		ls, ms, v := l.sample(r, k)
		lv = lv[:0]
		for _, lab := range ls {
			lv = append(lv, lab.Name, lab.Value)
		}
		req.Timeseries = append(req.Timeseries, &writev2.TimeSeries{LabelsRefs: syms.SymbolizeLabels(lv, nil),
			Samples: []*writev2.Sample{{Value: v, Timestamp: ms}}, Metadata: &writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER}})
	}
	req.Symbols = syms.Symbols()
	b, err := req.MarshalVT()
	return snappy.Encode(nil, b), err
}

// rows returns the rows the bridge makes of the whole load.
func (l rwLoad) rows(ingest time.Time) []rows.SampleRow {
	out := make([]rows.SampleRow, 0, l.requests*l.perRequest)
	for r := range l.requests {
		for k := range l.perRequest {
			ls, ms, v := l.sample(r, k)
			labels, key := rows.SeriesText(ls)
			out = append(out, rows.SampleRow{PrometheusDateTime: time.UnixMilli(ms).UTC(), MetricName: ls[0].Value, SeriesKey: key,
				Labels: labels, Value: v, Job: ls[3].Value, Instance: ls[2].Value, SampleIngestDateTime: ingest})
		}
	}
	return out
}

// remoteWriteBench measures remote write requests into the bridge binary
// (HTTP, pre-built snappy protobuf bodies, acknowledged once the rows are in
// Deephaven), protocol 1.0 and 2.0, next to the client's raw upload of the
// same rows as Arrow records: in one batch, and in batches of the
// request size uploaded as concurrently as the requests were sent.
func remoteWriteBench(bin, dir, dh string, o options) error {
	load := rwLoad{series: rwSeries(10_000), perRequest: o.rwPerRequest, requests: o.rwSamples / o.rwPerRequest,
		start: time.Now().Add(-time.Hour).Truncate(time.Second)}
	n := load.requests * load.perRequest
	fmt.Fprintf(os.Stderr, "remote write: encoding %d requests of %d samples...\n", load.requests, load.perRequest)
	v1 := make([][]byte, load.requests)
	v2 := make([][]byte, load.requests)
	for r := range v1 {
		v1[r] = load.bodyV1(r)
		var err error
		if v2[r], err = load.bodyV2(r); err != nil {
			return err
		}
	}

	fmt.Println("| remote write path | connections | samples/request | samples | samples/s | vs raw, one batch | vs raw, same batches | CPU ms per 10k samples: bridge, Deephaven, sender |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---|")
	type run struct {
		what  string
		rate  float64
		cpu   [3]time.Duration
		conns int
	}
	var runs []run
	for _, p := range []struct {
		what, contentType string
		bodies            [][]byte
	}{
		{"bridge, remote write 1.0", "application/x-protobuf", v1},
		{"bridge, remote write 2.0", "application/x-protobuf;proto=io.prometheus.write.v2.Request", v2},
	} {
		b, err := startBridge(bin, dir, dh, "rw", false)
		if err != nil {
			return err
		}
		// A warm-up request, so that the tables exist and connections are open.
		if err := b.postRW(p.contentType, p.bodies[0]); err != nil {
			b.stop()
			return err
		}
		fmt.Fprintf(os.Stderr, "remote write: %s, %d samples at %d connections...\n", p.what, n, o.rwConns)
		cpu0 := cpuTimes(b.cmd.Process.Pid, deephavenPid)
		start := time.Now()
		err = forEach(len(p.bodies), o.rwConns, func(r int) error { return b.postRW(p.contentType, p.bodies[r]) })
		el := time.Since(start)
		cpu1 := cpuTimes(b.cmd.Process.Pid, deephavenPid)
		stats := b.uploadStatsOf("bench_samples_")
		b.stop()
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "  %s: %s\n", p.what, stats)
		runs = append(runs, run{what: p.what, rate: float64(n) / el.Seconds(), conns: o.rwConns,
			cpu: [3]time.Duration{cpu1[0] - cpu0[0], cpu1[1] - cpu0[1], cpu1[2] - cpu0[2]}})
	}

	// The client's raw upload of the same rows, already converted.
	ctx := context.Background()
	c, err := deephaven.Dial(ctx, dh)
	if err != nil {
		return err
	}
	defer c.Close()
	all := load.rows(time.Now().UTC())
	mem := memory.DefaultAllocator
	rawRate := func(name string, recs []arrow.RecordBatch, conns int) (float64, [3]time.Duration, error) {
		raw, _, err := c.EnsureInputTable(ctx, name, rows.SampleSchema)
		if err != nil {
			return 0, [3]time.Duration{}, err
		}
		raw.SetMaxInFlight(conns)
		cpu0 := cpuTimes(0, deephavenPid)
		start := time.Now()
		err = forEach(len(recs), conns, func(i int) error { return raw.Add(ctx, recs[i]) })
		el := time.Since(start)
		cpu1 := cpuTimes(0, deephavenPid)
		return float64(n) / el.Seconds(), [3]time.Duration{0, cpu1[1] - cpu0[1], cpu1[2] - cpu0[2]}, err
	}
	sfx := fmt.Sprint(time.Now().UnixNano() % 1e9)
	one := []arrow.RecordBatch{rows.SampleRecord(mem, all)}
	oneRate, oneCPU, err := rawRate("benchrw_raw1_"+sfx, one, 1)
	one[0].Release()
	if err != nil {
		return err
	}
	var same []arrow.RecordBatch
	for i := 0; i < len(all); i += load.perRequest {
		same = append(same, rows.SampleRecord(mem, all[i:min(i+load.perRequest, len(all))]))
	}
	sameRate, sameCPU, err := rawRate("benchrw_raws_"+sfx, same, o.rwConns)
	for _, r := range same {
		r.Release()
	}
	if err != nil {
		return err
	}
	per10k := func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d.Milliseconds())*10_000/float64(n)) }
	for _, r := range runs {
		fmt.Printf("| %s | %d | %d | %d | %.0f | %.0f %% | %.0f %% | %s, %s, %s |\n", r.what, r.conns, load.perRequest, n, r.rate,
			100*r.rate/oneRate, 100*r.rate/sameRate, per10k(r.cpu[0]), per10k(r.cpu[1]), per10k(r.cpu[2]))
	}
	fmt.Printf("| client's raw upload of the same rows, one batch | 1 | %d | %d | %.0f | 100 %% | | –, %s, %s |\n", n, n, oneRate, per10k(oneCPU[1]), per10k(oneCPU[2]))
	fmt.Printf("| client's raw upload of the same rows, a batch per request | %d | %d | %d | %.0f | | 100 %% | –, %s, %s |\n", o.rwConns, load.perRequest, n, sameRate, per10k(sameCPU[1]), per10k(sameCPU[2]))
	return nil
}

// forEach calls f for 0..n-1 from conns goroutines and returns the first error.
func forEach(n, conns int, f func(int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// postRW sends one remote write request and wants 204.
func (b *bridge) postRW(contentType string, body []byte) error {
	req, err := http.NewRequest(http.MethodPost, b.base+"/api/v1/write", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Content-Encoding", "snappy")
	version := "0.1.0"
	if strings.Contains(contentType, "proto=io.prometheus.write.v2.Request") {
		version = "2.0.0"
	}
	req.Header.Set("X-Prometheus-Remote-Write-Version", version)
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("remote write: %s: %s", resp.Status, msg)
	}
	return nil
}

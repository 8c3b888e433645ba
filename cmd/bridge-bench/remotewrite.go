package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
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

	ctx := context.Background()
	c, err := deephaven.Dial(ctx, dh)
	if err != nil {
		return err
	}
	defer c.Close()
	b, err := startBridge(bin, dir, dh, "rw", false)
	if err != nil {
		return err
	}
	defer b.stop()
	const ctV1, ctV2 = "application/x-protobuf", "application/x-protobuf;proto=io.prometheus.write.v2.Request"
	// A warm-up request, so that the tables exist and connections are open.
	if err := b.postRW(ctV1, v1[0]); err != nil {
		return err
	}

	// The client's raw upload of the same rows, already converted: in one
	// batch, and in a batch per request at the same concurrency.
	all := load.rows(time.Now().UTC())
	mem := memory.DefaultAllocator
	// Slotted like the bridge's table: sequential slots.
	slots := make([]int64, len(all))
	for i := range slots {
		slots[i] = int64(i)
	}
	one := []arrow.RecordBatch{rows.SampleRecord(mem, all, rows.Places{Writer: 1, Slots: slots})}
	defer one[0].Release()
	var same []arrow.RecordBatch
	for i := 0; i < len(all); i += load.perRequest {
		j := min(i+load.perRequest, len(all))
		same = append(same, rows.SampleRecord(mem, all[i:j], rows.Places{Writer: 1, Slots: slots[i:j]}))
	}
	defer func() {
		for _, r := range same {
			r.Release()
		}
	}()
	sfx := fmt.Sprint(time.Now().UnixNano() % 1e9)
	raw := func(name string, recs []arrow.RecordBatch, conns int) (func() error, error) {
		it, _, err := c.EnsureInputTable(ctx, name, rows.SampleSchema, rows.SamplesTable.Keys...)
		if err != nil {
			return nil, err
		}
		it.SetMaxInFlight(conns)
		return func() error { return forEach(len(recs), conns, func(i int) error { return it.Add(ctx, recs[i]) }) }, nil
	}
	rawOne, err := raw("benchrw_raw1_"+sfx, one, 1)
	if err != nil {
		return err
	}
	rawSame, err := raw("benchrw_raws_"+sfx, same, o.rwConns)
	if err != nil {
		return err
	}
	post := func(contentType string, bodies [][]byte) func() error {
		return func() error {
			return forEach(len(bodies), o.rwConns, func(r int) error { return b.postRW(contentType, bodies[r]) })
		}
	}
	paths := []struct {
		what   string
		conns  int
		batch  int
		run    func() error
		bridge bool
	}{
		{"bridge, remote write 1.0", o.rwConns, load.perRequest, post(ctV1, v1), true},
		{"bridge, remote write 2.0", o.rwConns, load.perRequest, post(ctV2, v2), true},
		{"client's raw upload of the same rows, one batch", 1, n, rawOne, false},
		{"client's raw upload of the same rows, a batch per request", o.rwConns, load.perRequest, rawSame, false},
	}
	// Rounds in a rotating order, so that neither warm-up nor the load of
	// other processes favours one path; each path's median round counts.
	rates := make([][]float64, len(paths))
	cpus := make([][3]time.Duration, len(paths))
	for round := range o.rwRounds {
		for k := range paths {
			i := (k + round) % len(paths)
			p := paths[i]
			fmt.Fprintf(os.Stderr, "remote write, round %d: %s...\n", round+1, p.what)
			pid := 0
			if p.bridge {
				pid = b.cmd.Process.Pid
			}
			cpu0 := cpuTimes(pid, deephavenPid)
			start := time.Now()
			if err := p.run(); err != nil {
				return fmt.Errorf("%s: %w", p.what, err)
			}
			el := time.Since(start)
			cpu1 := cpuTimes(pid, deephavenPid)
			rates[i] = append(rates[i], float64(n)/el.Seconds())
			for j := range cpus[i] {
				cpus[i][j] += cpu1[j] - cpu0[j]
			}
		}
	}
	fmt.Fprintf(os.Stderr, "  bridge uploads: %s\n", b.uploadStatsOf("bench_samples_"))
	// Ratios are taken within a round, whose runs follow each other, then
	// the median: other load on the machine changes less within a round.
	ratio := func(i, base int) float64 {
		var rs []float64
		for r := range rates[i] {
			rs = append(rs, rates[i][r]/rates[base][r])
		}
		return 100 * median(rs)
	}
	per10k := func(d time.Duration) string {
		if d == 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f", float64(d.Milliseconds())*10_000/float64(n*o.rwRounds))
	}
	fmt.Printf("| remote write path (median of %d rounds) | connections | rows per request or upload | samples | samples/s | vs raw, one batch | vs raw, a batch per request | CPU ms per 10k samples: bridge, Deephaven, sender |\n", o.rwRounds)
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---|")
	for i, p := range paths {
		fmt.Printf("| %s | %d | %d | %d | %.0f | %.0f %% | %.0f %% | %s, %s, %s |\n", p.what, p.conns, p.batch, n, median(rates[i]),
			ratio(i, 2), ratio(i, 3), per10k(cpus[i][0]), per10k(cpus[i][1]), per10k(cpus[i][2]))
	}
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

// median returns the middle value of xs (the upper one of an even count).
func median(xs []float64) float64 {
	ys := slices.Sorted(slices.Values(xs))
	return ys[len(ys)/2]
}

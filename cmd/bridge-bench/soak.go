package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"

	"github.com/prometheus/common/model"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/history"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/poller"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/retention"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/sink"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/tables"
)

// soakOptions shape a soak run.
type soakOptions struct {
	Duration time.Duration // how long rows flow
	Rate     int           // metric rows per second (series polled every second)
	Live     time.Duration // retention.live
	Report   time.Duration // how often a line is printed
	History  string        // history directory
}

// soakSample is one line of a soak's report.
type soakSample struct {
	Elapsed     time.Duration
	Written     int64 // rows written so far
	Live        int64 // rows in the live table
	History     int64 // rows in the history files
	HeapUsedMiB float64
}

// soak writes metric rows at a steady rate through the bridge's metrics
// path (rows → sink → slotted table) with retention and history on, and
// reports Deephaven's used heap after a full GC (jcmd on dhPid) as it goes:
// with a bounded live window it must stay flat while the history grows.
func soak(ctx context.Context, dh string, dhPid int, o soakOptions, out io.Writer) ([]soakSample, error) {
	c, err := deephaven.Dial(ctx, dh)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	sfx := fmt.Sprint(time.Now().UnixNano() % 1e9)
	tb := tables.New(c, tables.DefaultNames.WithSuffix("soak_"+sfx), nil)
	tb.SetUploadsInFlight(4)
	if err := tb.Ensure(ctx); err != nil {
		return nil, err
	}
	store, err := history.Open(o.History, history.Options{}, nil, nil)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	interval := min(max(o.Live/24, 2*time.Second), time.Hour)
	keep := retention.New(func() *tables.Tables { return tb }, store, retention.Options{Live: o.Live, Interval: interval}, nil, nil)
	b := sink.New(tb.AddMetrics, sink.Options{Table: "metrics", MaxInFlight: 4}, nil, nil)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{}, 2)
	go func() { b.Run(runCtx, ctx); done <- struct{}{} }()
	go func() { keep.Run(runCtx); done <- struct{}{} }()

	// One instant-query response per second with Rate series.
	vec := make(model.Vector, o.Rate)
	for i := range vec {
		vec[i] = &model.Sample{Metric: model.Metric{"__name__": "soak_metric", "job": "soak",
			"instance": model.LabelValue(fmt.Sprintf("host-%d:9100", i%500)), "cpu": model.LabelValue(strconv.Itoa(i / 500))}}
	}
	fmt.Fprintf(out, "soak: %d rows/s for %s, retention.live %s (step every %s), history in %s\n", o.Rate, o.Duration, o.Live, interval, o.History)
	fmt.Fprintln(out, "| elapsed | rows written | live rows | history rows | Deephaven heap used after GC |")
	fmt.Fprintln(out, "|---:|---:|---:|---:|---:|")
	var samples []soakSample
	report := func(el time.Duration, written int64) error {
		heap, err := heapUsedMiB(dhPid)
		if err != nil {
			return err
		}
		live, err := countRows(ctx, c, tb.Names().Metrics)
		if err != nil {
			return err
		}
		files, err := store.Files(tb.Names().Metrics)
		if err != nil {
			return err
		}
		var hist int64
		for _, f := range files {
			hist += f.Rows
		}
		s := soakSample{Elapsed: el, Written: written, Live: live, History: hist, HeapUsedMiB: heap}
		samples = append(samples, s)
		fmt.Fprintf(out, "| %s | %d | %d | %d | %.0f MiB |\n", el.Round(time.Second), written, live, hist, heap)
		return nil
	}
	if err := report(0, 0); err != nil {
		return nil, err
	}
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	nextReport := o.Report
	var written int64
	for el := time.Duration(0); el < o.Duration; el = time.Since(start) {
		<-tick.C
		now := model.Now()
		for _, s := range vec {
			s.Timestamp, s.Value = now, model.SampleValue(written)
		}
		rs, _, err := poller.ToRows("soak", vec, time.Now())
		if err != nil {
			return nil, err
		}
		if err := b.Write(ctx, rs); err != nil {
			return nil, err
		}
		written += int64(len(rs))
		if el := time.Since(start); el >= nextReport {
			if err := report(el, written); err != nil {
				return nil, err
			}
			nextReport += o.Report
		}
	}
	stop()
	<-done
	<-done
	return samples, report(time.Since(start), written)
}

// countRows counts a table's rows on the server.
func countRows(ctx context.Context, c *deephaven.Client, name string) (int64, error) {
	agg, err := c.NamedTable(name).AggBy(ctx, []deephaven.Agg{deephaven.AggCount("N")})
	if err != nil {
		return 0, err
	}
	defer agg.Release(ctx)
	tab, err := c.Snapshot(ctx, agg)
	if err != nil {
		return 0, err
	}
	defer tab.Release()
	if tab.NumRows() == 0 {
		return 0, nil
	}
	col := tab.Column(0).Data().Chunk(0)
	v, err := strconv.ParseInt(col.ValueStr(0), 10, 64)
	return v, err
}

// heapUsed finds the used heap in GC.heap_info: "garbage-first heap total
// …K, used 94498K" (G1) or "ZHeap used 148M, capacity …" (ZGC).
var heapUsed = regexp.MustCompile(`(?:heap|ZHeap)\s.*?used (\d+)([KMG])`)

// heapUsedMiB runs two full GCs in the JVM of pid and returns the heap
// then in use.
func heapUsedMiB(pid int) (float64, error) {
	p := strconv.Itoa(pid)
	for i := 0; i < 2; i++ {
		if out, err := exec.Command("jcmd", p, "GC.run").CombinedOutput(); err != nil {
			return 0, fmt.Errorf("jcmd %s GC.run: %v: %s", p, err, out)
		}
	}
	out, err := exec.Command("jcmd", p, "GC.heap_info").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("jcmd %s GC.heap_info: %v: %s", p, err, out)
	}
	return parseHeapUsed(out)
}

// parseHeapUsed returns the used heap in MiB that GC.heap_info printed.
func parseHeapUsed(out []byte) (float64, error) {
	m := heapUsed.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("GC.heap_info: no used heap in %q", out)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	switch string(m[2]) {
	case "K":
		return v / 1024, nil
	case "G":
		return v * 1024, nil
	}
	return v, nil
}

// soakMain runs a soak (or the retention keys measurement) from the
// command line.
func soakMain(o options) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bridge-soak")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dh, pid := o.deephaven, deephavenPid
	if dh == "" {
		// G1 whatever --gc says: its full GC stops the world, so the heap
		// it reports leaves out rows arriving while it is measured.
		stop, addr, err := startDeephaven(root, dir, []string{"--heap", o.heap, "--gc", "g1"})
		if err != nil {
			return err
		}
		defer stop()
		dh, pid = addr, deephavenPid
	}
	if pid == 0 {
		return fmt.Errorf("--soak and --retention-keys need --deephaven-pid with --deephaven, to read the server's heap")
	}
	if o.keys > 0 {
		return retentionKeys(context.Background(), dh, pid, o.keys, os.Stdout)
	}
	_, err = soak(context.Background(), dh, pid, soakOptions{
		Duration: o.soak, Rate: o.soakRate, Live: o.soakLive, Report: max(o.soak/10, 10*time.Second), History: dir + "/history",
	}, os.Stdout)
	return err
}

package main_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
)

// runningBridge is the real binary with a journal.
type runningBridge struct {
	t      *testing.T
	bin    string
	cfg    string
	addr   string
	log    string
	cmd    *exec.Cmd
	exited chan error
}

func startBinary(t *testing.T, bin, cfg, addr, log string) *runningBridge {
	t.Helper()
	b := &runningBridge{t: t, bin: bin, cfg: cfg, addr: addr, log: log}
	b.start()
	t.Cleanup(func() {
		if b.cmd.ProcessState == nil {
			b.cmd.Process.Kill()
			<-b.exited
		}
		if t.Failed() {
			// The bridge's own account of what happened, minus per-request noise.
			out, _ := os.ReadFile(b.log)
			var keep []string
			for _, l := range strings.Split(string(out), "\n") {
				if !strings.Contains(l, "level=DEBUG") {
					keep = append(keep, l)
				}
			}
			t.Logf("bridge log:\n%s", strings.Join(keep[max(0, len(keep)-120):], "\n"))
		}
	})
	return b
}

func (b *runningBridge) start() {
	f, err := os.OpenFile(b.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		b.t.Fatal(err)
	}
	b.cmd = exec.Command(b.bin, "--config.file", b.cfg, "--web.listen-address", b.addr, "--log.level", "debug")
	b.cmd.Stdout, b.cmd.Stderr = f, f
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.exited = make(chan error, 1)
	go func() { b.exited <- b.cmd.Wait(); f.Close() }()
	// Listening is enough: with a journal the webhook takes alerts even
	// before Deephaven answers.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + b.addr + "/-/healthy"); err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(b.log)
			b.t.Fatalf("bridge not listening:\n%s", out)
		}
	}
}

func (b *runningBridge) kill() {
	b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.exited
}

// stream posts one-alert notifications with unique fingerprints from several
// senders until stop is closed, recording which were acknowledged.
type stream struct {
	sent, acked atomic.Int64
	mu          sync.Mutex
	ackedFP     map[string]bool
	ackedBy     map[string]int // acknowledgements per bridge address
	stop        chan struct{}
	wg          sync.WaitGroup
}

func startStream(addr func() string, senders int) *stream {
	s := &stream{ackedFP: map[string]bool{}, ackedBy: map[string]int{}, stop: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second}
	for w := 0; w < senders; w++ {
		s.wg.Add(1)
		go func(w int) {
			defer s.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-s.stop:
					return
				default:
				}
				fp := fmt.Sprintf("%08x%08x", w, i)
				body := fmt.Sprintf(`{"version":"4","status":"firing","receiver":"r","alerts":[{"status":"firing","labels":{"alertname":"Fault","n":"%s"},"annotations":{},"startsAt":"2026-11-30T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"%s"}]}`, fp, fp)
				s.sent.Add(1)
				to := addr()
				resp, err := client.Post("http://"+to+"/alerts", "application/json", strings.NewReader(body))
				if err != nil {
					time.Sleep(20 * time.Millisecond) // the bridge is down: Alertmanager would retry later
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					s.acked.Add(1)
					s.mu.Lock()
					s.ackedFP[fp] = true
					s.ackedBy[to]++
					s.mu.Unlock()
				} else {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}(w)
	}
	return s
}

func (s *stream) finish() { close(s.stop); s.wg.Wait() }

// fingerprints reads the alerts table and counts rows per fingerprint.
func fingerprints(t *testing.T, addr, table string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := deephaven.Dial(ctx, addr)
	if err != nil {
		t.Logf("dial: %v", err)
		return nil
	}
	defer c.Close()
	tab, err := c.Snapshot(ctx, c.NamedTable(table))
	if err != nil {
		t.Logf("snapshot: %v", err)
		return nil
	}
	defer tab.Release()
	out := map[string]int{}
	idx := tab.Schema().FieldIndices("Fingerprint")[0]
	for _, chunk := range tab.Column(idx).Data().Chunks() {
		a := chunk.(*array.String)
		for i := 0; i < a.Len(); i++ {
			out[a.Value(i)]++
		}
	}
	return out
}

// check waits until every acknowledged alert is stored and reports the
// counts: sent, acknowledged, stored, duplicates, missing.
func check(t *testing.T, s *stream, dh, table string) {
	t.Helper()
	var stored map[string]int
	var missing, dups int
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		stored = fingerprints(t, dh, table)
		missing, dups = 0, 0
		s.mu.Lock()
		for fp := range s.ackedFP {
			if stored[fp] == 0 {
				missing++
			}
		}
		s.mu.Unlock()
		for _, n := range stored {
			dups += n - 1
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("sent %d, acknowledged %d, stored %d, duplicates %d, missing %d", s.sent.Load(), s.acked.Load(), len(stored), dups, missing)
	if missing > 0 || dups > 0 {
		t.Fatalf("%d acknowledged alerts missing, %d duplicate rows", missing, dups)
	}
}

func journalConfig(t *testing.T, dh, journalDir, sfx, promURL string) (cfg, table string) {
	table = "fault_alerts_" + sfx
	cfg = filepath.Join(t.TempDir(), "bridge.yml")
	queries := "[]"
	if promURL == "" {
		promURL = "http://127.0.0.1:1"
	} else {
		queries = "[{name: series, expr: 'prometheus_tsdb_head_series', interval: 1s}]"
	}
	os.WriteFile(cfg, []byte(fmt.Sprintf(`deephaven: {address: %q}
prometheus: {url: %q, backfill_max: 1h}
queries: %s
journal: {dir: %q}
tables: {alerts: %s, metrics: fault_metrics_%s, joined: fault_joined_%s}
`, dh, promURL, queries, journalDir, table, sfx, sfx)), 0o644)
	return cfg, table
}

// metricTimes reads the sample times of the metrics table, sorted.
func metricTimes(t *testing.T, addr, table string) []time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := deephaven.Dial(ctx, addr)
	if err != nil {
		return nil
	}
	defer c.Close()
	tab, err := c.Snapshot(ctx, c.NamedTable(table))
	if err != nil {
		return nil
	}
	defer tab.Release()
	var out []time.Time
	idx := tab.Schema().FieldIndices("PrometheusDateTime")[0]
	for _, chunk := range tab.Column(idx).Data().Chunks() {
		a := chunk.(*array.Timestamp)
		for i := 0; i < a.Len(); i++ {
			out = append(out, time.Unix(0, int64(a.Value(i))).UTC())
		}
	}
	sortTimes(out)
	return out
}

// Deephaven is killed with SIGKILL while alerts stream in, then restarted
// empty: the journal keeps acknowledging, and afterwards every acknowledged
// alert is in prometheus_alerts exactly once.
func TestDeephavenKilledWhileAlertsStream(t *testing.T) {
	bin := build(t)
	srv := testenv.StartDeephaven(t, testenv.DeephavenOptions{})
	promPort := testenv.FreePort(t)
	prom := testenv.StartPrometheus(t, testenv.PrometheusOptions{Port: promPort, ConfigYAML: fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs: [{job_name: prometheus, static_configs: [{targets: ["127.0.0.1:%d"]}]}]
`, promPort)})
	sfx := fmt.Sprint(time.Now().UnixNano() % 1e9)
	cfg, table := journalConfig(t, srv.Addr(), t.TempDir(), sfx, "http://"+prom.Addr())
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	startBinary(t, bin, cfg, addr, filepath.Join(t.TempDir(), "bridge.log"))
	// Kill only once the bridge runs normally: tables in place, metrics flowing.
	for deadline := time.Now().Add(2 * time.Minute); len(metricTimes(t, srv.Addr(), "fault_metrics_"+sfx)) < 3; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no metric rows before the kill")
		}
	}
	s := startStream(func() string { return addr }, 8)
	time.Sleep(3 * time.Second)
	srv.Kill()
	killedAt := time.Now()
	before := s.acked.Load()
	time.Sleep(5 * time.Second)
	if s.acked.Load() == before {
		t.Errorf("no alert was acknowledged while Deephaven was down; the journal should take them")
	}
	srv.Restart(t)
	time.Sleep(3 * time.Second)
	s.finish()
	check(t, s, srv.Addr(), table)

	// The metrics of the outage were backfilled from Prometheus into the
	// new (empty) table: a sample every second from the last one written
	// before the kill (rows written before it died with the old server; the
	// process takes a moment to die after SIGKILL of its launcher).
	var ts []time.Time
	var gap time.Duration
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		ts = metricTimes(t, srv.Addr(), "fault_metrics_"+sfx)
		gap = 0
		for i := 1; i < len(ts); i++ {
			gap = max(gap, ts[i].Sub(ts[i-1]))
		}
		if len(ts) > 0 && ts[0].Before(killedAt.Add(3*time.Second)) && gap <= 2*time.Second {
			break
		}
	}
	t.Logf("metrics after the Deephaven restart: %d rows from %v to %v, largest gap %v (killed at %v)", len(ts), first(ts), last(ts), gap, killedAt.UTC().Format(time.RFC3339))
	if len(ts) == 0 || !ts[0].Before(killedAt.Add(3*time.Second)) || gap > 2*time.Second {
		t.Fatalf("the outage window was not backfilled")
	}
}

func sortTimes(ts []time.Time) {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
}

func first(ts []time.Time) any {
	if len(ts) == 0 {
		return nil
	}
	return ts[0].Format(time.RFC3339)
}

func last(ts []time.Time) any {
	if len(ts) == 0 {
		return nil
	}
	return ts[len(ts)-1].Format(time.RFC3339)
}

// The bridge is killed with SIGKILL mid-stream and restarted on the same
// journal: every alert it acknowledged is stored exactly once.
func TestBridgeKilledWhileAlertsStream(t *testing.T) {
	bin := build(t)
	dh := testenv.Deephaven(t)
	sfx := fmt.Sprint(time.Now().UnixNano() % 1e9)
	cfg, table := journalConfig(t, dh, t.TempDir(), sfx, "")
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	b := startBinary(t, bin, cfg, addr, filepath.Join(t.TempDir(), "bridge.log"))
	s := startStream(func() string { return addr }, 8)
	time.Sleep(3 * time.Second)
	b.kill()
	time.Sleep(time.Second)
	b.start()
	time.Sleep(3 * time.Second)
	s.finish()
	check(t, s, dh, table)
}

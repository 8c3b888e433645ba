// Command bridge-bench measures the bridge side by side with the original
// example's alert path, against one Deephaven server, in one run, and
// prints Markdown tables with ratios:
//
//   - the original example's alert path: one run_script per alert
//     (scripts/original_example.py), at the same alert count as each bridge
//     run;
//   - the client's raw upload of alert rows into a key-backed table in
//     800-row uploads, one at a time: the ceiling of 8 × 100;
//   - the bridge binary's webhook at 1, 8 and 32 connections × 1, 10 and 100
//     alerts per request, acknowledged once the rows are in Deephaven (no
//     journal), then 8 × 100 with the journal (acknowledged once fsynced);
//   - acknowledgement latency paced at a fixed rate, one alert per request,
//     with and without the journal;
//   - the metrics path (decoded Prometheus responses → rows → sink →
//     Deephaven) next to the client's raw upload of the same rows;
//   - remote write 1.0 and 2.0 into the bridge binary (pre-built snappy
//     protobuf bodies over HTTP, acknowledged once the rows are in
//     Deephaven) next to the client's raw upload of the same rows;
//   - with --memory, the bridge's RSS after 500,000 and after 5,000,000
//     distinct alerts;
//   - with --only kafka (alone), direct mode next to Kafka mode: the same
//     alerts into one Deephaven (app.d consuming the topics), with a broker
//     from scripts/kafka.sh; see kafka.go.
//
// Without --deephaven it starts a server of its own (scripts/run_deephaven.py
// with --heap). With --profile DIR it saves the bridge's CPU profile of each
// connections × alerts run there (from /debug/pprof).
//
// Usage: go run ./cmd/bridge-bench [--deephaven host:port] [--alerts 10000] [--memory]
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/alerts"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/config"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/poller"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/sink"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/tables"
)

type options struct {
	deephaven    string
	heap         string
	gc           string
	alerts       int
	pacedRate    int
	pacedSeconds int
	metricRows   int
	memory       bool
	profile      string
	warmup       int
	only         string
	conns, per   string
	splits       string
	inFlight     int
	soak         time.Duration
	soakRate     int
	soakLive     time.Duration
	keys         int
	batchMaxRows int

	rwSamples, rwPerRequest, rwConns, rwRounds int
	metricRounds                               int
}

func main() {
	var o options
	flag.StringVar(&o.deephaven, "deephaven", "", "Deephaven host:port (default: start a server)")
	flag.StringVar(&o.heap, "heap", "6g", "heap of the Deephaven server started here")
	flag.StringVar(&o.gc, "gc", "zgc", "garbage collector of the Deephaven server started here: zgc or g1 (scripts/run_deephaven.py --gc); --soak and --retention-keys always use g1")
	flag.IntVar(&o.alerts, "alerts", 10_000, "alerts per run")
	flag.IntVar(&o.pacedRate, "paced-rate", 2000, "alerts/s of the paced runs")
	flag.IntVar(&o.pacedSeconds, "paced-seconds", 10, "length of the paced runs")
	flag.IntVar(&o.metricRows, "metric-rows", 200_000, "rows of the metrics runs")
	flag.BoolVar(&o.memory, "memory", false, "measure the bridge's RSS after 500,000 and 5,000,000 distinct alerts")
	flag.IntVar(&o.warmup, "warmup", 5000, "unmeasured alerts through each path first, so that Deephaven's JIT has compiled them (0: none)")
	flag.StringVar(&o.profile, "profile", "", "save the bridge's CPU profile of each connections x alerts run (its first 10 s) in this directory")
	flag.StringVar(&o.only, "only", "", "comma-separated parts to run: original,matrix,journal,paced,metrics,remotewrite,memory (default all; memory only with --memory); or kafka alone: direct vs Kafka mode, with a broker and a Deephaven of its own")
	flag.StringVar(&o.conns, "connections", "1,8,32", "connections of the matrix runs")
	flag.IntVar(&o.inFlight, "uploads-in-flight", 0, "the bridge's deephaven.uploads_in_flight (default: its default)")
	flag.StringVar(&o.per, "per-request", "1,10,100", "alerts per request of the matrix runs")
	flag.StringVar(&o.splits, "ceiling-splits", "", "also run the second ceiling of 8 × 100 with its 800 rows split over this many concurrent uploads (comma-separated, e.g. 2,4)")
	flag.DurationVar(&o.soak, "soak", 0, "instead of the benchmark, write metric rows at --soak-rate for this long with retention and history on, printing Deephaven's heap")
	flag.IntVar(&o.soakRate, "soak-rate", 5000, "metric rows/s of --soak")
	flag.DurationVar(&o.soakLive, "soak-live", 5*time.Minute, "retention.live of --soak")
	flag.IntVar(&o.keys, "retention-keys", 0, "instead of the benchmark, push this many 100,000-row batches through a 500,000-row window keyed by content and by slot, printing Deephaven's heap")
	flag.IntVar(&o.batchMaxRows, "batch-max-rows", 0, "the bridge's deephaven.batch_max_rows (default: its default)")
	flag.IntVar(&deephavenPid, "deephaven-pid", 0, "pid of the --deephaven server, for its CPU time and (--soak, --retention-keys) its heap")
	flag.IntVar(&o.rwSamples, "rw-samples", 200_000, "samples of each remote write run")
	flag.IntVar(&o.rwPerRequest, "rw-per-request", 2000, "samples per remote write request (Prometheus's max_samples_per_send)")
	flag.IntVar(&o.rwConns, "rw-connections", 8, "concurrent remote write requests (Prometheus's shards)")
	flag.IntVar(&o.rwRounds, "rw-rounds", 3, "rounds of the remote write runs; the median counts")
	flag.IntVar(&o.metricRounds, "metric-rounds", 5, "measured rounds of the metrics runs, after two warm-up rounds; the median counts")
	flag.Parse()
	run := run
	if o.soak > 0 || o.keys > 0 {
		run = soakMain
		// The soak's server runs G1 (soakMain says why); a --gc asking
		// for another would be ignored, so it is refused.
		if o.gc != "g1" && flagSet("gc") {
			fmt.Fprintln(os.Stderr, "bridge-bench: --soak and --retention-keys run their Deephaven with G1 to read its heap; drop --gc", o.gc)
			os.Exit(2)
		}
	}
	if o.only == "kafka" {
		run = kafkaMain
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bridge-bench:", err)
		os.Exit(1)
	}
}

// flagSet reports whether the named flag was given on the command line.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func (o options) part(name string) bool {
	if o.only == "" {
		return name != "memory" || o.memory
	}
	for _, p := range strings.Split(o.only, ",") {
		if p == name {
			return true
		}
	}
	return false
}

func run(o options) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if o.inFlight > 0 {
		extraConfig += fmt.Sprintf(", uploads_in_flight: %d", o.inFlight)
	}
	if o.batchMaxRows > 0 {
		extraConfig += fmt.Sprintf(", batch_max_rows: %d", o.batchMaxRows)
	}
	dir, err := os.MkdirTemp("", "bridge-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dh := o.deephaven
	if dh == "" {
		stop, addr, err := startDeephaven(root, dir, o.server())
		if err != nil {
			return err
		}
		defer stop()
		dh = addr
	}
	bin := filepath.Join(dir, "prometheus-deephaven-bridge")
	build := exec.Command("go", "build", "-o", bin, "./cmd/prometheus-deephaven-bridge")
	build.Dir, build.Stderr = root, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	server := "started here: heap " + o.heap + ", collector " + o.gc
	if o.deephaven != "" {
		server = "not started here"
	}
	fmt.Printf("bridge-bench: Deephaven at %s (%s), %d alerts per run, %s\n\n", dh, server, o.alerts, time.Now().UTC().Format(time.RFC3339))

	var original float64
	if o.part("original") {
		fmt.Fprintf(os.Stderr, "original example path: %d alerts...\n", o.alerts)
		original, err = originalPath(root, dh, o.alerts, o.warmup)
		if err != nil {
			return err
		}
	}
	ratio := func(rate float64) string {
		if original <= 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f×", rate/original)
	}

	if o.part("original") || o.part("matrix") || o.part("journal") {
		fmt.Println("| path | connections | alerts/request | alerts | alerts/s | vs original | p50 ack | p99 ack |")
		fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|")
	}
	if original > 0 {
		fmt.Printf("| original example: one run_script per alert | 1 | 1 | %d | %.0f | 1× | | |\n", o.alerts, original)
	}
	var seq atomic.Int64
	// Every part that uploads runs on a warm server, as a long-running
	// bridge meets one: `--only metrics` on a cold one measured the JIT.
	if o.warmup > 0 && (o.part("matrix") || o.part("journal") || o.part("paced") || o.part("metrics") || o.part("remotewrite")) {
		if err := warmUp(bin, dir, dh, o.warmup, &seq); err != nil {
			return err
		}
	}
	if o.part("matrix") {
		rate, err := rawAlertUploads(context.Background(), dh, o.alerts, 800)
		if err != nil {
			return err
		}
		fmt.Printf("| client's raw upload into a key-backed table of the alerts' schema, 800 rows per upload, one at a time: the ceiling of 8 × 100 | – | 800 | %d | %.0f | %s | | |\n", o.alerts, rate, ratio(rate))
		rate, err = rawPairUploads(context.Background(), dh, &seq, o.alerts, 800, 1)
		if err != nil {
			return err
		}
		fmt.Printf("| the same with the bridge's work on the server: its rows and notification log, both at once, into its tables with their derived tables: the ceiling of the bridge's 8 × 100 | – | 800 | %d | %.0f | %s | | |\n", o.alerts, rate, ratio(rate))
		for _, streams := range ints(o.splits) {
			rate, err = rawPairUploads(context.Background(), dh, &seq, o.alerts, 800, streams)
			if err != nil {
				return err
			}
			fmt.Printf("| the same, the 800 rows split over %d concurrent uploads | – | %d | %d | %.0f | %s | | |\n", streams, 800/streams, o.alerts, rate, ratio(rate))
		}
		b, err := startBridge(bin, dir, dh, "matrix", false)
		if err != nil {
			return err
		}
		for _, conns := range ints(o.conns) {
			for _, per := range ints(o.per) {
				prof := ""
				if o.profile != "" {
					prof = filepath.Join(o.profile, fmt.Sprintf("bridge-%dx%d.pprof", conns, per))
				}
				res, err := b.throughput(o.alerts, per, conns, &seq, prof)
				if err != nil {
					b.stop()
					return err
				}
				fmt.Printf("| bridge, ack = row in Deephaven | %d | %d | %d | %.0f | %s | %s | %s |\n", conns, per, res.alerts, res.rate, ratio(res.rate), ms(res.p50), ms(res.p99))
				fmt.Fprintf(os.Stderr, "  %d x %d: %s; CPU per 1,000 alerts: bridge %.0f ms, Deephaven %.0f ms, load generator %.0f ms\n", conns, per, b.uploadStats(),
					perThousand(b.lastCPU[0], res.alerts), perThousand(b.lastCPU[1], res.alerts), perThousand(b.lastCPU[2], res.alerts))
			}
		}
		b.stop()
	}
	if o.part("journal") {
		b, err := startBridge(bin, dir, dh, "journal", true)
		if err != nil {
			return err
		}
		before, err := b.uploadedRows()
		if err != nil {
			b.stop()
			return err
		}
		res, err := b.throughput(o.alerts, 100, 8, &seq, "")
		var landed float64
		if err == nil {
			fmt.Fprintf(os.Stderr, "  journal 8 x 100, until the last answer: %s; CPU per 1,000 alerts: bridge %.0f ms, Deephaven %.0f ms, load generator %.0f ms\n", b.uploadStats(),
				perThousand(b.lastCPU[0], res.alerts), perThousand(b.lastCPU[1], res.alerts), perThousand(b.lastCPU[2], res.alerts))
			landed, err = b.delivered(res, before+float64(res.alerts))
		}
		b.stop()
		if err != nil {
			return err
		}
		fmt.Printf("| bridge, ack = fsynced in the journal | 8 | 100 | %d | %.0f | %s | %s | %s |\n", res.alerts, res.rate, ratio(res.rate), ms(res.p50), ms(res.p99))
		fmt.Printf("| the same, until its last row was in Deephaven | 8 | 100 | %d | %.0f | %s | | |\n", res.alerts, landed, ratio(landed))
	}
	fmt.Println()

	if o.part("paced") {
		fmt.Println("| paced, one alert per request | alerts/s asked | alerts/s acknowledged | refused (503) | p50 ack | p99 ack | max ack |")
		fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
		for _, journal := range []bool{false, true} {
			b, err := startBridge(bin, dir, dh, fmt.Sprintf("paced%v", journal), journal)
			if err != nil {
				return err
			}
			var profDone chan error
			if o.profile != "" {
				profDone = make(chan error, 1)
				path := filepath.Join(o.profile, fmt.Sprintf("bridge-paced-journal-%v.pprof", journal))
				go func() { profDone <- b.saveProfile(path, 10*time.Second) }()
			}
			res, err := b.paced(o.pacedRate, time.Duration(o.pacedSeconds)*time.Second, &seq)
			fmt.Fprintf(os.Stderr, "  paced, journal %v: %s; upload time p99 %s\n", journal, b.uploadStats(), b.uploadP99())
			if profDone != nil {
				if err := <-profDone; err != nil {
					fmt.Fprintln(os.Stderr, "profile:", err)
				}
			}
			b.stop()
			if err != nil {
				return err
			}
			what := "ack = row in Deephaven"
			if journal {
				what = "ack = fsynced in the journal"
			}
			fmt.Printf("| %s | %d | %.0f | %d | %s | %s | %s |\n", what, o.pacedRate, res.rate, res.refused, ms(res.p50), ms(res.p99), ms(res.max))
		}
		fmt.Println()
	}

	if o.part("metrics") {
		if err := metrics(dh, o.metricRows, o.batchMaxRows, o.inFlight, o.metricRounds, o.profile); err != nil {
			return err
		}
		fmt.Println()
	}

	if o.part("remotewrite") {
		if err := remoteWriteBench(bin, dir, dh, o); err != nil {
			return err
		}
		fmt.Println()
	}

	if o.part("memory") {
		if err := memoryRun(bin, dir, dh, &seq); err != nil {
			return err
		}
	}
	return nil
}

func perThousand(d time.Duration, n int) float64 {
	return float64(d.Milliseconds()) * 1000 / float64(n)
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run it inside the repository (no go.mod found)")
		}
		dir = parent
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// server returns run_deephaven.py's arguments for the server started here.
func (o options) server() []string { return []string{"--heap", o.heap, "--gc", o.gc} }

// startDeephaven starts scripts/run_deephaven.py and waits for it.
func startDeephaven(root, dir string, jvm []string) (stop func(), addr string, err error) {
	return startDeephavenDir(root, dir, jvm, "")
}

// startDeephavenApp starts Deephaven with app.d, which reads its mode from
// the environment this process passes on.
func startDeephavenApp(root, dir string, jvm []string) (stop func(), addr string, err error) {
	return startDeephavenDir(root, dir, jvm, filepath.Join(root, "app.d"))
}

func startDeephavenDir(root, dir string, jvm []string, appDir string) (stop func(), addr string, err error) {
	addr, err = freeAddr()
	if err != nil {
		return nil, "", err
	}
	_, port, _ := net.SplitHostPort(addr)
	logPath := filepath.Join(dir, "deephaven.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	py := os.Getenv("DH_PYTHON") // as in internal/testenv
	if py == "" {
		py = filepath.Join(root, ".venv", "bin", "python")
	}
	args := append([]string{filepath.Join(root, "scripts", "run_deephaven.py"), "--port", port, "--data-dir", filepath.Join(dir, "deephaven")}, jvm...)
	cmd := exec.Command(py, args...)
	if appDir != "" {
		cmd.Args = append(cmd.Args, "--app-dir", appDir)
	}
	stop, err = startServer(cmd, logf, logPath, "Deephaven", "DEEPHAVEN READY", "run ./test.sh or scripts/setup.sh first")
	if err != nil {
		return nil, "", err
	}
	deephavenPid = cmd.Process.Pid
	return stop, addr, nil
}

// startServer starts cmd in a process group of its own with its output in
// logf, and waits up to 3 minutes for ready to appear in logPath. stop
// terminates the group (SIGKILL after 20 s) and closes logf.
func startServer(cmd *exec.Cmd, logf *os.File, logPath, name, ready, hint string) (stop func(), err error) {
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, hint, err)
	}
	stop = func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
	}
	fmt.Fprintf(os.Stderr, "starting %s...\n", name)
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out, _ := os.ReadFile(logPath)
		if bytes.Contains(out, []byte(ready)) {
			return stop, nil
		}
	}
	stop()
	return nil, fmt.Errorf("%s did not start within 3 minutes", name)
}

// originalPath runs the original example's path and returns its alerts/s.
func originalPath(root, dh string, n, warmup int) (float64, error) {
	host, port, _ := net.SplitHostPort(dh)
	cmd := exec.Command(filepath.Join(root, ".venv", "bin", "python"), filepath.Join(root, "scripts", "original_example.py"),
		"--host", host, "--port", port, "--alerts", strconv.Itoa(n), "--warmup", strconv.Itoa(warmup))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("original example path: %w", err)
	}
	var res struct {
		Alerts  int
		Seconds float64
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, fmt.Errorf("original example path: %w: %s", err, out)
	}
	return float64(res.Alerts) / res.Seconds, nil
}

// warmUp sends n one-alert requests and 4n alerts in 100-alert requests
// through a bridge of its own, unmeasured. Deephaven's JIT compiles the
// input-table add only after thousands of calls, and until then an upload
// costs the server 3–4 times as much CPU (BenchmarkUploadSteps in
// pkg/deephaven); a long-running bridge meets a warm server. The original
// example's path gets the same number of unmeasured calls.
func warmUp(bin, dir, dh string, n int, seq *atomic.Int64) error {
	fmt.Fprintf(os.Stderr, "warming Deephaven up: %d one-alert requests, then %d alerts in 100s...\n", n, 4*n)
	b, err := startBridge(bin, dir, dh, "warmup", false)
	if err != nil {
		return err
	}
	defer b.stop()
	if _, err := b.throughput(n, 1, 8, seq, ""); err != nil {
		return err
	}
	_, err = b.throughput(4*n, 100, 8, seq, "")
	return err
}

// bridge is the bridge binary running as a process of its own.
type bridge struct {
	cmd    *exec.Cmd
	base   string
	client *http.Client
	last   [3]float64 // upload counters at the last uploadStats
	// lastCPU is the CPU time of the last throughput run: the bridge,
	// Deephaven (when started here) and this load generator.
	lastCPU [3]time.Duration
}

// deephavenPid is the pid of the Deephaven server started here, or 0.
var deephavenPid int

// cpuTimes returns the user+system CPU time of the bridge, Deephaven and
// this process.
func cpuTimes(bridgePid, dhPid int) [3]time.Duration {
	var self syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	return [3]time.Duration{procCPU(bridgePid), procCPU(dhPid), time.Duration(self.Utime.Nano() + self.Stime.Nano())}
}

// procCPU reads a process's utime+stime from /proc/pid/stat.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are
	// the 14th and 15th fields, in clock ticks (100 per second here).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// extraConfig is added to every bridge's configuration.
var extraConfig string

func startBridge(bin, dir, dh, name string, journal bool) (*bridge, error) {
	sfx := fmt.Sprintf("%s_%d", name, time.Now().UnixNano()%1e9)
	cfg := fmt.Sprintf(`deephaven: {address: %q`+extraConfig+`}
prometheus: {url: "http://127.0.0.1:1", backfill_max: 0s}
rules: {enabled: false}
alerts: {max_concurrent_requests: 256}
tables: {alerts: bench_alerts_%[2]s, metrics: bench_metrics_%[2]s, joined: bench_joined_%[2]s, rules: bench_rules_%[2]s, samples: bench_samples_%[2]s,
  state: bench_state_%[2]s, notifications: bench_notifications_%[2]s, episodes: bench_episodes_%[2]s}
`, dh, sfx)
	if journal {
		cfg += fmt.Sprintf("journal: {dir: %q}\n", filepath.Join(dir, "journal-"+sfx))
	}
	return startBridgeConfig(bin, dir, sfx, cfg)
}

// startBridgeConfig runs the bridge binary with the configuration cfg and
// waits until it is ready.
func startBridgeConfig(bin, dir, sfx, cfg string) (*bridge, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "bridge-"+sfx+".yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "bridge-"+sfx+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--config.file", path, "--web.listen-address", addr, "--log.level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b := &bridge{cmd: cmd, base: "http://" + addr, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}}}
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(b.base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return b, nil
			}
		}
	}
	b.stop()
	return nil, errors.New("bridge not ready within 2 minutes")
}

func (b *bridge) stop() {
	b.cmd.Process.Signal(syscall.SIGTERM)
	b.cmd.Wait()
}

// uploadStats reads the bridge's upload counters of the alerts table since
// the last call: how many uploads, their mean rows and duration.
func (b *bridge) uploadStats() string { return b.uploadStatsOf("bench_alerts_") }

// uploadStatsOf is uploadStats for the table whose name starts with prefix.
func (b *bridge) uploadStatsOf(prefix string) string {
	mfs, err := b.scrape()
	if err != nil {
		return err.Error()
	}
	rowsH := tableHistogram(mfs, "prometheus_deephaven_bridge_batch_rows", prefix)
	durH := tableHistogram(mfs, "prometheus_deephaven_bridge_flush_duration_seconds", prefix)
	now := [3]float64{rowsH.GetSampleSum(), float64(rowsH.GetSampleCount()), durH.GetSampleSum()}
	rowsSum, n, dur := now[0]-b.last[0], now[1]-b.last[1], now[2]-b.last[2]
	b.last = now
	if n == 0 {
		return "no uploads"
	}
	return fmt.Sprintf("%.0f uploads, %.0f rows and %.1f ms each on average", n, rowsSum/n, 1000*dur/n)
}

// uploadP99 estimates the 99th percentile of the alerts table's upload
// durations since the bridge started, from its histogram's buckets.
func (b *bridge) uploadP99() string {
	mfs, err := b.scrape()
	if err != nil {
		return err.Error()
	}
	h := tableHistogram(mfs, "prometheus_deephaven_bridge_flush_duration_seconds", "bench_alerts_")
	total := float64(h.GetSampleCount())
	for _, bk := range h.GetBucket() {
		if total > 0 && float64(bk.GetCumulativeCount()) >= 0.99*total {
			return fmt.Sprintf("≤ %.0f ms", 1000*bk.GetUpperBound())
		}
	}
	return "n/a"
}

// scrape reads the bridge's /metrics.
func (b *bridge) scrape() (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(b.base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// tableHistogram returns the histogram of the family name whose table
// label starts with prefix (nil if none: its getters return zeros).
func tableHistogram(mfs map[string]*dto.MetricFamily, name, prefix string) *dto.Histogram {
	for _, m := range mfs[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "table" && strings.HasPrefix(l.GetValue(), prefix) {
				return m.GetHistogram()
			}
		}
	}
	return nil
}

// procStatus reads a size field of the bridge's /proc/PID/status, such as
// "VmRSS:" or "VmHWM:", in bytes.
func (b *bridge) procStatus(field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", b.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, b.cmd.Process.Pid)
}

type result struct {
	alerts        int
	rate          float64
	p50, p99, max time.Duration
	refused       int // paced: requests answered 503 (a sender retries them)
	started       time.Time
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// body is a notification of per distinct alerts, as Alertmanager sends.
func body(seq *atomic.Int64, per int) string {
	var b strings.Builder
	b.WriteString(`{"version":"4","status":"firing","receiver":"bench","groupKey":"{}:{alertname=\"Bench\"}","alerts":[`)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for i := 0; i < per; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		n := seq.Add(1)
		fmt.Fprintf(&b, `{"status":"firing","labels":{"alertname":"Bench","job":"bench","instance":"host-%d:9100","severity":"warning","device":"sda%d"},"annotations":{"summary":"Bench alert %d is firing"},"startsAt":%q,"endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus:9090/graph?g0.expr=bench+%%3E+1","fingerprint":%q}`, n%500, n%7, n, now, fingerprint(n))
	}
	b.WriteString(`]}`)
	return b.String()
}

// fingerprint is alert n's fingerprint as Alertmanager writes one: 16 hex
// digits of a 64-bit hash of its labels (here a mix of n), not a counter,
// whose strings hash into neighbouring buckets of the server's hash tables.
func fingerprint(n int64) string {
	x := uint64(n) + 0x9e3779b97f4a7c15 // splitmix64
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return fmt.Sprintf("%016x", x^(x>>31))
}

// errRefused is a 503 from the webhook: the bridge refuses more work than
// it can take (a sender retries).
var errRefused = errors.New("webhook answered 503")

func (b *bridge) send(payload string) (time.Duration, error) {
	start := time.Now()
	resp, err := b.client.Post(b.base+"/alerts", "application/json", strings.NewReader(payload))
	if err != nil {
		return 0, err
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		return 0, fmt.Errorf("%w: %s", errRefused, msg)
	}
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("webhook answered %d: %s", resp.StatusCode, msg)
	}
	return time.Since(start), nil
}

// throughput sends n alerts in requests of per over conns connections, each
// waiting for its answer before the next request, as Alertmanager does.
// With profile set it saves the bridge's CPU profile of the first 10 s there.
func (b *bridge) throughput(n, per, conns int, seq *atomic.Int64, profile string) (result, error) {
	requests := max(n/per, 1)
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	// Bodies are made before the clock starts: the load generator shares
	// the machine's cores with the bridge and Deephaven.
	bodies := make([]string, requests)
	for i := range bodies {
		bodies[i] = body(seq, per)
	}
	var profDone chan error
	if profile != "" {
		profDone = make(chan error, 1)
		go func() { profDone <- b.saveProfile(profile, 10*time.Second) }()
	}
	cpu0 := cpuTimes(b.cmd.Process.Pid, deephavenPid)
	start := time.Now()
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(requests); i = next.Add(1) {
				d, err := b.send(bodies[i-1])
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
	cpu1 := cpuTimes(b.cmd.Process.Pid, deephavenPid)
	b.lastCPU = [3]time.Duration{cpu1[0] - cpu0[0], cpu1[1] - cpu0[1], cpu1[2] - cpu0[2]}
	if profDone != nil {
		if err := <-profDone; err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
		}
	}
	if firstErr != nil {
		return result{}, firstErr
	}
	res := summarize(lat, requests*per, el)
	res.started = start
	return res, nil
}

// uploadedRows is how many rows the bridge has uploaded into its alerts
// table so far (Deephaven acknowledged them).
func (b *bridge) uploadedRows() (float64, error) {
	mfs, err := b.scrape()
	if err != nil {
		return 0, err
	}
	return tableHistogram(mfs, "prometheus_deephaven_bridge_batch_rows", "bench_alerts_").GetSampleSum(), nil
}

// delivered waits until the bridge has uploaded want rows into its alerts
// table and returns the rate from res's first request until then: what a
// journal sustains, where the acknowledgement only says "fsynced" and the
// shipper may still be behind when the last answer came.
func (b *bridge) delivered(res result, want float64) (float64, error) {
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(5 * time.Millisecond) {
		got, err := b.uploadedRows()
		if err != nil {
			return 0, err
		}
		if got >= want {
			return float64(res.alerts) / time.Since(res.started).Seconds(), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("journal: %.0f of %.0f rows in Deephaven after 5 minutes", got, want)
		}
	}
}

func (b *bridge) saveProfile(path string, d time.Duration) error {
	resp, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", b.base, int(d.Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	fmt.Fprintf(os.Stderr, "CPU profile: %s\n", f.Name())
	return err
}

// paced sends one alert per request at a fixed rate, open-loop: a slow
// answer does not delay the next send.
func (b *bridge) paced(perSecond int, d time.Duration, seq *atomic.Int64) (result, error) {
	interval := time.Second / time.Duration(perSecond)
	total := int(d / interval)
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	refused := 0
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < total; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := b.send(body(seq, 1))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, errRefused):
				// Overload: the bridge sheds the request (a sender
				// retries); the rate counts only acknowledged alerts.
				refused++
			case err != nil:
				if firstErr == nil {
					firstErr = err
				}
			default:
				lat = append(lat, d)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return result{}, firstErr
	}
	if len(lat) == 0 {
		return result{}, fmt.Errorf("paced: all %d requests refused", total)
	}
	r := summarize(lat, len(lat), time.Since(start))
	r.refused = refused
	return r, nil
}

func summarize(lat []time.Duration, alerts int, el time.Duration) result {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return result{alerts: alerts, rate: float64(alerts) / el.Seconds(), p50: q(0.50), p99: q(0.99), max: lat[len(lat)-1]}
}

// rawAlertUploads measures what 8 × 100 could reach at best: the client
// uploading alert rows straight into a key-backed table with the alerts'
// schema and keys, in uploads of per rows (8 synchronous callers × 100
// alerts merged into one upload), one after another. No HTTP, no
// notification log, no derived tables (episodes, the as-of join): the
// bridge does all of those on top.
func rawAlertUploads(ctx context.Context, dh string, n, per int) (float64, error) {
	c, err := deephaven.Dial(ctx, dh)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	it, _, err := c.EnsureInputTable(ctx, fmt.Sprintf("benchraw_alerts_%d", time.Now().UnixNano()%1e9), rows.AlertSchema, rows.AlertsTable.Keys...)
	if err != nil {
		return 0, err
	}
	now := time.Now().UTC()
	rs := make([]rows.AlertRow, n)
	for i := range rs {
		rs[i] = rows.AlertRow{PrometheusDateTime: now, Job: "bench", Instance: fmt.Sprintf("host-%d:9100", i%100),
			PrometheusQuery: "BenchAlert", AlertName: "BenchAlert", Status: "firing", AlertIngestDateTime: now,
			Fingerprint: fingerprint(int64(i)), StartsAt: now, Source: rows.SourceAlertmanager, Receiver: "bench",
			Labels: fmt.Sprintf(`{alertname="BenchAlert", instance="host-%d:9100", job="bench"}`, i%100)}
	}
	run, err := timed(n, func() error {
		for i := 0; i < n; i += per {
			rec := rows.AlertRecord(memory.DefaultAllocator, rs[i:min(i+per, n)])
			err := it.Add(ctx, rec)
			rec.Release()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "  raw %d-row uploads: Deephaven CPU per 1,000 rows %s\n", per, run.cpuPer1000())
	return run.rate, nil
}

// rawPairUploads is rawAlertUploads doing the bridge's work on the server:
// the rows the bridge makes of n alerts in 100-alert notifications (decoded
// by its own code before the clock), and their notification log, uploaded
// by the client in chunks of per rows, both tables at once as the bridge's
// Pair does, into a set of the bridge's tables with its derived tables
// (episodes, the as-of join). What is left between it and the bridge is
// HTTP, decoding, batching and the callers' waits.
//
// With streams > 1 the per rows are split over that many concurrent
// uploaders (per/streams rows each), as a client that pipelined the eight
// callers' rows instead of gathering them would.
func rawPairUploads(ctx context.Context, dh string, seq *atomic.Int64, n, per, streams int) (float64, error) {
	c, err := deephaven.Dial(ctx, dh)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	tb := tables.New(c, tables.DefaultNames.WithSuffix(fmt.Sprintf("benchrp_%d", time.Now().UnixNano()%1e9)), nil)
	if err := tb.Ensure(ctx); err != nil {
		return 0, err
	}
	return uploadPairs(ctx, tb, seq, n, per, streams)
}

// uploadPairs is rawPairUploads into the tables tb, which are ready.
func uploadPairs(ctx context.Context, tb *tables.Tables, seq *atomic.Int64, n, per, streams int) (float64, error) {
	now := time.Now().UTC()
	var as []rows.AlertRow
	var ns []rows.NotificationRow
	for len(as) < n {
		msg, err := alerts.Decode([]byte(body(seq, min(100, n-len(as)))), alerts.Options{})
		if err != nil {
			return 0, err
		}
		for _, r := range msg.Rows(ctx, now, alerts.Options{}) {
			as = append(as, r)
			ns = append(ns, rows.NotificationRow{Fingerprint: r.Fingerprint, StartsAt: r.StartsAt, Status: r.Status,
				AlertName: r.AlertName, ReceivedAt: now, Source: r.Source, Receiver: r.Receiver})
		}
	}
	streams = max(streams, 1)
	chunk := max(per/streams, 1)
	run, err := timed(n, func() error {
		var next atomic.Int64
		errs := make([]error, streams)
		var wg sync.WaitGroup
		for s := range streams {
			wg.Go(func() {
				for i := int(next.Add(int64(chunk))) - chunk; i < n; i = int(next.Add(int64(chunk))) - chunk {
					j := min(i+chunk, n)
					if errs[s] = addPair(ctx, tb, as[i:j], ns[i:j]); errs[s] != nil {
						next.Store(int64(n)) // the others stop at their next chunk
						return
					}
				}
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	})
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "  raw %d-row uploads of the bridge's rows (%d at a time): Deephaven CPU per 1,000 alerts %s\n", chunk, streams, run.cpuPer1000())
	return run.rate, nil
}

// addPair adds alert rows and their notifications to both tables at once,
// as the bridge's sink.Pair does.
func addPair(ctx context.Context, tb *tables.Tables, as []rows.AlertRow, ns []rows.NotificationRow) error {
	notes := make(chan error, 1)
	go func() { notes <- tb.AddNotifications(ctx, ns) }()
	return errors.Join(tb.AddAlerts(ctx, as), <-notes)
}

// metrics measures the metrics path (decoded query responses → rows →
// sink → Deephaven) against the client's raw upload of the same rows, in
// rounds of both, and prints the medians. The first two rounds are
// unmeasured: the server's JIT is still compiling this table's add, and
// the raw upload ran 30–40 % slower in them than in the rounds after.
//
// The raw upload goes into the same tables as the path: the bridge's
// metrics input table with the as-of join and the other derived tables
// hanging off it, whose upkeep the server pays on every add. A third
// upload of the same rows into a plain input table, with nothing derived
// from it, shows that cost.
func metrics(dh string, n, maxRows, inFlight, rounds int, profile string) error {
	if maxRows <= 0 {
		maxRows = config.DefaultBatchMaxRows // as the bridge
	}
	if inFlight <= 0 {
		inFlight = 4 // as the bridge
	}
	ctx := context.Background()
	c, err := deephaven.Dial(ctx, dh)
	if err != nil {
		return err
	}
	defer c.Close()
	if profile != "" {
		// The metrics path runs in this process: its profile is ours.
		f, err := os.Create(filepath.Join(profile, "metrics-path.pprof"))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	mt, err := newMetricsTables(ctx, c, maxRows, inFlight)
	if err != nil {
		return err
	}
	var paths, raws, plains []metricsRun
	var ratios, plainRatios []float64
	const warmupRounds = 2
	for r := 1 - warmupRounds; r <= rounds; r++ {
		fmt.Fprintf(os.Stderr, "metrics, round %d of %d (up to 0: warm-up)...\n", r, rounds)
		path, raw, plain, err := mt.round(ctx, n, r%2 == 0)
		if err != nil {
			return err
		}
		if err := mt.empty(ctx); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "  path %.0f rows/s, raw %.0f rows/s (%.0f %%), raw into a plain table %.0f rows/s (%.0f %%); Deephaven CPU per 1,000 rows: %s, %s, %s\n",
			path.rate, raw.rate, 100*path.rate/raw.rate, plain.rate, 100*path.rate/plain.rate, path.cpuPer1000(), raw.cpuPer1000(), plain.cpuPer1000())
		if r > 0 {
			// The ratio is taken within a round, whose runs follow each
			// other: other load on the machine changes less within one.
			paths, raws, plains = append(paths, path), append(raws, raw), append(plains, plain)
			ratios, plainRatios = append(ratios, path.rate/raw.rate), append(plainRatios, path.rate/plain.rate)
		}
	}
	fmt.Printf("| metrics path (median of %d rounds) | rows | rows/s | vs raw upload | Deephaven CPU per 1,000 rows |\n", rounds)
	fmt.Println("|---|---:|---:|---:|---:|")
	fmt.Printf("| decoded responses (1000 series each, %d concurrent) → rows → sink → Deephaven | %d | %.0f | %.0f %% | %s |\n", n/1000, n, medianRun(paths).rate, 100*median(ratios), medianRun(paths).cpuPer1000())
	fmt.Printf("| client's raw upload of the same rows, already converted (one batch), into the same tables | %d | %.0f | 100 %% | %s |\n", n, medianRun(raws).rate, medianRun(raws).cpuPer1000())
	fmt.Printf("| the same into a plain input table, nothing derived from it (path vs it: %.0f %%) | %d | %.0f | | %s |\n", 100*median(plainRatios), n, medianRun(plains).rate, medianRun(plains).cpuPer1000())
	return nil
}

// metricsRun is one timed upload run (of a metrics round, or a ceiling).
type metricsRun struct {
	rows      int
	rate      float64       // rows/s
	serverCPU time.Duration // Deephaven's CPU time meanwhile (0: its pid is unknown)
}

func (m metricsRun) cpuPer1000() string {
	if m.serverCPU <= 0 || m.rows == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f ms", float64(m.serverCPU.Microseconds())/float64(m.rows))
}

// medianRun returns the run of median rate, with its CPU time.
func medianRun(runs []metricsRun) metricsRun {
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b metricsRun) int { return cmp.Compare(a.rate, b.rate) })
	return s[len(s)/2]
}

// timed runs f and returns its rows/s and the server's CPU time meanwhile.
func timed(rows int, f func() error) (metricsRun, error) {
	cpu0 := procCPU(deephavenPid)
	start := time.Now()
	if err := f(); err != nil {
		return metricsRun{}, err
	}
	d := time.Since(start)
	return metricsRun{rows: rows, rate: float64(rows) / d.Seconds(), serverCPU: procCPU(deephavenPid) - cpu0}, nil
}

// metricsTables are the tables of the metrics runs: the path's set of
// the bridge's tables, another set for the raw upload, and a plain input
// table. Every round writes into the same tables, which are emptied after
// it: fresh tables each round left the server holding every round's rows,
// and its later rounds ran on a fuller heap than its first; and the
// bridge's tables, too, live as long as it does.
type metricsTables struct {
	path, raw *tables.Tables
	plain     *deephaven.InputTable
	// The path's batching, as the bridge's deephaven.batch_max_rows and
	// uploads_in_flight.
	maxRows, inFlight int
}

func newMetricsTables(ctx context.Context, c *deephaven.Client, maxRows, inFlight int) (*metricsTables, error) {
	sfx := fmt.Sprint(time.Now().UnixNano() % 1e9)
	mt := &metricsTables{
		path:     tables.New(c, tables.DefaultNames.WithSuffix("benchm_"+sfx), nil),
		raw:      tables.New(c, tables.DefaultNames.WithSuffix("benchr_"+sfx), nil),
		maxRows:  maxRows,
		inFlight: inFlight,
	}
	mt.path.SetUploadsInFlight(inFlight)
	for _, tb := range []*tables.Tables{mt.path, mt.raw} {
		if err := tb.Ensure(ctx); err != nil {
			return nil, err
		}
	}
	var err error
	mt.plain, _, err = c.EnsureInputTable(ctx, "benchp_"+sfx, rows.MetricSchema, rows.MetricsTable.Keys...)
	return mt, err
}

// empty deletes every row of the three metrics tables.
func (mt *metricsTables) empty(ctx context.Context) error {
	all := time.Now().Add(24 * time.Hour)
	for _, tb := range []*tables.Tables{mt.path, mt.raw} {
		if _, err := tb.Expire(ctx, tables.Metrics, all, nil); err != nil {
			return err
		}
	}
	frozen, err := mt.plain.Table().Freeze(ctx)
	if err != nil {
		return err
	}
	defer frozen.Release(ctx)
	return mt.plain.DeleteRows(ctx, frozen)
}

// round runs the metrics path and the raw uploads once each and returns
// their rates.
func (mt *metricsTables) round(ctx context.Context, n int, rawFirst bool) (path, raw, plain metricsRun, err error) {
	// A decoded instant-query response of 1,000 series, as client_golang
	// returns it.
	const series = 1000
	vec := make(model.Vector, series)
	now := model.Now()
	for i := range vec {
		vec[i] = &model.Sample{Metric: model.Metric{"__name__": "bench_metric", "job": "bench", "instance": model.LabelValue(fmt.Sprintf("host-%d:9100", i))}, Value: model.SampleValue(i), Timestamp: now}
	}
	responses := n / series

	// The raw uploads' rows, converted and in one record before the
	// clock, keyed (Writer, Slot) as the bridge's.
	all := make([]rows.MetricRow, 0, n)
	for i := 0; i < responses; i++ {
		rs, _, _ := poller.ToRows("bench", vec, time.Now())
		all = append(all, rs...)
	}
	slots := make([]int64, len(all))
	for i := range slots {
		slots[i] = int64(i)
	}
	rec := rows.MetricRecord(memory.DefaultAllocator, all, rows.Places{Writer: 1, Slots: slots})
	defer rec.Release()

	runPath := func() error {
		var uploads atomic.Int64
		var sizesMu sync.Mutex
		var sizes []string // rows, start and duration of each upload, in the order they ended
		var start time.Time
		upload := func(ctx context.Context, rs []rows.MetricRow) error {
			uploads.Add(1)
			began := time.Now()
			err := mt.path.AddMetrics(ctx, rs)
			sizesMu.Lock()
			sizes = append(sizes, fmt.Sprintf("%d@+%d:%dms", len(rs), began.Sub(start).Milliseconds(), time.Since(began).Milliseconds()))
			sizesMu.Unlock()
			return err
		}
		b := sink.New(upload, sink.Options{Table: "metrics", MaxInFlight: mt.inFlight, MaxRows: mt.maxRows}, nil, nil)
		bctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { b.Run(bctx, ctx); close(done) }()
		defer func() { stop(); <-done }()
		start = time.Now()
		var wg sync.WaitGroup
		errc := make(chan error, responses)
		for i := 0; i < responses; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rs, _, err := poller.ToRows("bench", vec, time.Now())
				if err == nil {
					err = b.Write(ctx, rs)
				}
				errc <- err
			}()
		}
		wg.Wait()
		fmt.Fprintf(os.Stderr, "  path: %d uploads, %d rows each on average (rows@+start:duration as they ended: %s)\n", uploads.Load(), int64(n)/max(uploads.Load(), 1), strings.Join(sizes, " "))
		close(errc)
		for err := range errc {
			if err != nil {
				return err
			}
		}
		return nil
	}
	runRaw := func() error { return mt.raw.Add(ctx, tables.Metrics, rec) }
	runPlain := func() error { return mt.plain.Add(ctx, rec) }

	// Which goes first alternates from round to round, so that neither
	// always runs on the server the other just loaded.
	parts := []struct {
		run *metricsRun
		f   func() error
	}{{&path, runPath}, {&raw, runRaw}, {&plain, runPlain}}
	if rawFirst {
		parts = append(parts[1:], parts[0])
	}
	for _, p := range parts {
		if *p.run, err = timed(n, p.f); err != nil {
			return path, raw, plain, err
		}
	}
	return path, raw, plain, nil
}

// memoryRun sends 5,000,000 distinct alerts at 8 × 100 and reports the
// bridge's RSS after 500,000 and after all of them, next to the Go heap in
// use after a forced GC (what the bridge holds) and the peak RSS (what a
// transient, such as a slow upload, cost on the way).
func memoryRun(bin, dir, dh string, seq *atomic.Int64) error {
	b, err := startBridge(bin, dir, dh, "memory", false)
	if err != nil {
		return err
	}
	defer b.stop()
	fmt.Println("| distinct alerts sent | bridge RSS | vs after 500,000 | Go heap in use after GC | vs after 500,000 | peak RSS so far |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|")
	var baseRSS, baseHeap int64
	sent := 0
	for _, upTo := range []int{500_000, 1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000} {
		fmt.Fprintf(os.Stderr, "memory: sending up to %d alerts...\n", upTo)
		if _, err := b.throughput(upTo-sent, 100, 8, seq, ""); err != nil {
			return err
		}
		sent = upTo
		rss, err := b.procStatus("VmRSS:")
		if err != nil {
			return err
		}
		peak, err := b.procStatus("VmHWM:")
		if err != nil {
			return err
		}
		heap, err := b.heapAfterGC()
		if err != nil {
			return err
		}
		if baseRSS == 0 {
			baseRSS, baseHeap = rss, heap
		}
		fmt.Printf("| %d | %.1f MiB | %.2f× | %.1f MiB | %.2f× | %.1f MiB |\n", sent, mib(rss), float64(rss)/float64(baseRSS),
			mib(heap), float64(heap)/float64(baseHeap), mib(peak))
	}
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// heapAfterGC forces a GC in the bridge (the heap profile endpoint's gc=1)
// and reads go_memstats_heap_inuse_bytes from its /metrics.
func (b *bridge) heapAfterGC() (int64, error) {
	resp, err := http.Get(b.base + "/debug/pprof/heap?gc=1")
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	mfs, err := b.scrape()
	if err != nil {
		return 0, err
	}
	if ms := mfs["go_memstats_heap_inuse_bytes"].GetMetric(); len(ms) > 0 {
		return int64(ms[0].GetGauge().GetValue()), nil
	}
	return 0, errors.New("no go_memstats_heap_inuse_bytes in /metrics")
}

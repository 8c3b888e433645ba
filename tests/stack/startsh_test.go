package stack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

const (
	// stackUpTimeout covers setup.sh, building the bridge and starting a
	// Deephaven JVM with app.d on a busy machine.
	stackUpTimeout = 5 * time.Minute
	// rowsTimeout is how long the demo may take to fill all three tables.
	rowsTimeout = 3 * time.Minute
	// stopTimeout is how long start.sh may take to stop after Ctrl-C.
	stopTimeout = 60 * time.Second
)

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startedProcess is a line "name pid" of start.sh's pid file.
type startedProcess struct {
	name string
	pid  int
}

func readPidFile(t *testing.T, path string) []startedProcess {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading start.sh's pid file: %v", err)
	}
	var ps []startedProcess
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, pidText, ok := strings.Cut(sc.Text(), " ")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil {
			t.Fatalf("pid file line %q: want \"name pid\"", sc.Text())
		}
		ps = append(ps, startedProcess{name, pid})
	}
	return ps
}

// freePorts returns n different free loopback ports.
func freePorts(t *testing.T, n int) []int {
	seen := map[int]bool{}
	var ports []int
	for len(ports) < n {
		if p := testenv.FreePort(t); !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports
}

var statusLine = regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d status: rows written:.* prometheus_alerts=([1-9]\d*) prometheus_metrics=([1-9]\d*) prometheus_rules=([1-9]\d*) prometheus_samples=([1-9]\d*);`)

// TestStartShWithoutDocker runs ./start.sh --no-docker as a user would, on
// free ports and in a run directory of its own, waits for the demo to fill
// the three Deephaven tables, then presses Ctrl-C (SIGINT to start.sh's
// process group, as a terminal does) and checks that everything it started
// is gone.
func TestStartShWithoutDocker(t *testing.T) {
	root := testenv.RepoRoot(t)
	// What start.sh needs; setup.sh would install the Debian packages, but
	// only as root, which a test must not count on.
	testenv.Python(t)
	lookPath(t, "go")
	lookPath(t, "curl")
	lookPath(t, "setsid")
	lookPath(t, "prometheus")
	lookPath(t, "prometheus-alertmanager", "alertmanager")

	runDir := t.TempDir()
	ports := freePorts(t, 4)
	dhPort, promPort, amPort, bridgePort := ports[0], ports[1], ports[2], ports[3]

	cmd := exec.Command(filepath.Join(root, "start.sh"), "--no-docker")
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("DEEPHAVEN_PORT=%d", dhPort),
		fmt.Sprintf("PROMETHEUS_PORT=%d", promPort),
		fmt.Sprintf("ALERTMANAGER_PORT=%d", amPort),
		fmt.Sprintf("BRIDGE_PORT=%d", bridgePort),
		"START_RUN_DIR="+runDir,
		"DEEPHAVEN_HEAP=1g",
		"STATUS_INTERVAL=2",
	)
	out := &lockedBuffer{}
	var w io.Writer = out
	if d := os.Getenv("TESTENV_LOG_DIR"); d != "" {
		if f, err := os.Create(filepath.Join(d, "start.sh.out")); err == nil {
			defer f.Close()
			w = io.MultiWriter(out, f)
		}
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A group of its own, like a job in a terminal, which Ctrl-C
		// signals as a whole.
		Setpgid: true,
		// If the test binary dies, start.sh gets SIGTERM and stops what it
		// started (see the locked thread below).
		Pdeathsig: syscall.SIGTERM,
	}
	// A process started with SIGINT ignored passes that on, and bash cannot
	// trap a signal ignored on entry: then Ctrl-C could not be tested.
	// Handling SIGINT here (doing nothing with it) makes it default again
	// in start.sh.
	if signal.Ignored(syscall.SIGINT) {
		signal.Notify(make(chan os.Signal, 1), syscall.SIGINT)
	}

	started := make(chan error, 1)
	exited := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that forked exits; this one
		// stays locked until start.sh has exited.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		t.Fatalf("starting start.sh: %v", err)
	}
	pgid := cmd.Process.Pid
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			// The test failed before its own Ctrl-C: stop the stack.
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(stopTimeout):
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				<-exited
			}
		}
		if t.Failed() {
			t.Logf("start.sh output:\n%s", out.String())
			logs, _ := filepath.Glob(filepath.Join(runDir, "logs", "*.log"))
			for _, l := range logs {
				t.Logf("last lines of %s:\n%s", l, tail(l, 30))
			}
		}
	})

	// waitOutput waits until the output matches re, failing if start.sh
	// exits first.
	waitOutput := func(re *regexp.Regexp, timeout time.Duration) []string {
		t.Helper()
		deadline := time.After(timeout)
		for {
			if m := re.FindStringSubmatch(out.String()); m != nil {
				return m
			}
			select {
			case err := <-exited:
				stopped = true
				t.Fatalf("start.sh exited (%v) before printing %q", err, re)
			case <-deadline:
				t.Fatalf("start.sh did not print %q within %v", re, timeout)
			case <-time.After(500 * time.Millisecond):
			}
		}
	}

	waitOutput(regexp.MustCompile(`the stack is up`), stackUpTimeout)
	for _, url := range []string{
		fmt.Sprintf("http://localhost:%d/ide/", dhPort),
		fmt.Sprintf("http://localhost:%d/", promPort),
		fmt.Sprintf("http://localhost:%d/", amPort),
		fmt.Sprintf("http://localhost:%d/metrics", bridgePort),
	} {
		if !strings.Contains(out.String(), url) {
			t.Errorf("start.sh does not print the URL %s", url)
		}
	}

	// start.sh and four services, each the leader of its own process
	// group.
	procs := readPidFile(t, filepath.Join(runDir, "pids"))
	var names []string
	for _, p := range procs {
		names = append(names, p.name)
		if p.name == "start.sh" {
			if p.pid != cmd.Process.Pid {
				t.Errorf("the pid file names start.sh %d, want %d", p.pid, cmd.Process.Pid)
			}
			continue
		}
		if g, err := syscall.Getpgid(p.pid); err != nil || g != p.pid {
			t.Errorf("%s (pid %d) has process group %d (%v), want its own", p.name, p.pid, g, err)
		}
	}
	if got := strings.Join(names, " "); got != "start.sh deephaven prometheus alertmanager bridge" {
		t.Errorf("pid file lists %q", got)
	}

	// The demo fills the tables, read back from Deephaven.
	ctx, cancel := context.WithTimeout(context.Background(), rowsTimeout)
	defer cancel()
	c := dial(t, ctx, fmt.Sprintf("127.0.0.1:%d", dhPort))
	tables := []string{rows.DefaultAlertsTable, rows.DefaultMetricsTable, rows.DefaultJoinedTable, rows.DefaultRulesTable}
	counts := map[string]int64{}
	for {
		var lastErr error
		full := true
		for _, name := range tables {
			n, err := tableRows(ctx, c, name)
			if err != nil {
				lastErr = err
			}
			counts[name] = n
			full = full && n > 0
		}
		if full {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("tables not filled within %v: rows %v, last error %v", rowsTimeout, counts, lastErr)
		case err := <-exited:
			stopped = true
			t.Fatalf("start.sh exited (%v) while the tables filled", err)
		case <-time.After(2 * time.Second):
		}
	}
	t.Logf("rows in Deephaven: %v", counts)
	// The zero-config rule's alerts carry the value that fired them (the
	// rule fires in the first half of every minute).
	for {
		v, err := joinedValue(ctx, c, "DemoHeapInUse")
		if err == nil && v > 0 {
			t.Logf("DemoHeapInUse fired at %.0f bytes of heap in use", v)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no DemoHeapInUse alert with a value within %v (%v)", rowsTimeout, err)
		case <-time.After(2 * time.Second):
		}
	}
	c.Close()

	// The status line reports rows in the tables the bridge writes.
	m := waitOutput(statusLine, 30*time.Second)
	t.Logf("status line: %s", strings.TrimSpace(m[0]))

	// Ctrl-C.
	if err := syscall.Kill(-pgid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Errorf("start.sh exited with %v after Ctrl-C, want exit status 130", err)
		}
	case <-time.After(stopTimeout):
		t.Fatalf("start.sh still runs %v after Ctrl-C", stopTimeout)
	}
	if !strings.Contains(out.String(), "start.sh: stopped") {
		t.Error(`start.sh did not print "start.sh: stopped"`)
	}

	// Nothing it started remains: not the services' process groups (the
	// services are reaped by start.sh or, if it left them, by init — give
	// that a moment), not start.sh's own group, and nothing using the run
	// directory.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var alive []string
		for _, p := range procs {
			if err := syscall.Kill(-p.pid, 0); !errors.Is(err, syscall.ESRCH) {
				alive = append(alive, fmt.Sprintf("%s (process group %d: %v)", p.name, p.pid, err))
			}
		}
		pgrep, _ := exec.Command("pgrep", "-af", regexp.QuoteMeta(runDir)).Output()
		if len(pgrep) > 0 {
			alive = append(alive, "processes using the run directory:\n"+string(pgrep))
		}
		if len(alive) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left behind after start.sh stopped: %s", strings.Join(alive, "; "))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(runDir, "pids")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("start.sh left its pid file (%v)", err)
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

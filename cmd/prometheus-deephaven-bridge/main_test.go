package main_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
)

func TestMain(m *testing.M) {
	testenv.Main(m, func() {
		if binary.dir != "" {
			os.RemoveAll(binary.dir)
		}
	})
}

// binary is the bridge built once for every test of the package: each
// build links the whole binary again, which on a busy 2-core machine costs
// seconds per test.
var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func build(t *testing.T) string {
	t.Helper()
	binary.once.Do(func() {
		dir, err := os.MkdirTemp("", "bridge-bin-")
		if err != nil {
			binary.err = err
			return
		}
		binary.dir = dir
		binary.path = filepath.Join(dir, "prometheus-deephaven-bridge")
		if out, err := exec.Command("go", "build", "-o", binary.path, ".").CombinedOutput(); err != nil {
			binary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

// journalLine turns the journal on in a config, in dir.
func journalLine(on bool, dir string) string {
	if !on {
		return ""
	}
	return fmt.Sprintf("journal: {dir: %q}\n", filepath.Join(dir, "journal"))
}

func TestConfigCheck(t *testing.T) {
	bin := build(t)
	out, err := exec.Command(bin, "--config.check", "--config.file", filepath.Join(testenv.RepoRoot(t), "bridge.yml")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "configuration is valid") {
		t.Fatalf("--config.check of bridge.yml: %v %s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(bad, []byte("deephaven: {adress: x}\n"), 0o644)
	out, err = exec.Command(bin, "--config.check", "--config.file", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "bad.yml") || !strings.Contains(string(out), "adress") {
		t.Fatalf("--config.check of a bad file: %v %s, want an error naming the file and key", err, out)
	}
}

// SIGTERM while alerts stream in: the bridge stops taking requests, answers
// what it took, and exits 0 within its shutdown deadline; every alert it
// acknowledged is in Deephaven.
func TestSIGTERMDrainsAndExits(t *testing.T) {
	bin := build(t)
	for _, journal := range []bool{false, true} {
		t.Run(fmt.Sprintf("journal=%v", journal), func(t *testing.T) { sigterm(t, bin, journal) })
	}
}

func sigterm(t *testing.T, bin string, withJournal bool) {
	dh := testenv.Deephaven(t)
	dir := t.TempDir()
	sfx := fmt.Sprint(time.Now().UnixNano() % 1e9)
	table := "sigterm_alerts_" + sfx
	cfg := filepath.Join(dir, "bridge.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`deephaven: {address: %q}
prometheus: {url: "http://127.0.0.1:1", backfill_max: 0s}
tables: {alerts: %s, metrics: sigterm_metrics_%s, joined: sigterm_joined_%s}
%s`, dh, table, sfx, sfx, journalLine(withJournal, dir))), 0o644)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cmd := exec.Command(bin, "--config.file", cfg, "--web.listen-address", addr, "--shutdown.timeout", "10s")
	logFile, _ := os.Create(filepath.Join(dir, "bridge.log"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get("http://" + addr + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logFile.Name())
			t.Fatalf("bridge not ready:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}

	var sent, acked atomic.Int64
	var mu sync.Mutex
	var ackedFPs []string
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				fp := fmt.Sprintf("%08x%08x", w, i)
				body := fmt.Sprintf(`{"version":"4","status":"firing","receiver":"r","alerts":[{"status":"firing","labels":{"alertname":"Term","n":"%s"},"annotations":{},"startsAt":"2026-11-30T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"%s"}]}`, fp, fp)
				sent.Add(1)
				resp, err := http.Post("http://"+addr+"/alerts", "application/json", strings.NewReader(body))
				if err != nil {
					return // the listener is closed: shutdown has begun
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					acked.Add(1)
					mu.Lock()
					ackedFPs = append(ackedFPs, fp)
					mu.Unlock()
				}
			}
		}(w)
	}
	time.Sleep(2 * time.Second)
	termAt := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("bridge exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		// SIGQUIT makes the Go runtime write every goroutine's stack to
		// the log: where the shutdown hangs.
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
		b, _ := os.ReadFile(logFile.Name())
		t.Fatalf("bridge still running 30s after SIGTERM; its log and stacks:\n%s", b)
	}
	took := time.Since(termAt)
	stop()
	wg.Wait()

	c, err := deephaven.Dial(context.Background(), dh)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tab, err := c.Snapshot(context.Background(), c.NamedTable(table))
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Release()
	stored := tab.NumRows()
	t.Logf("sent %d, acknowledged %d, stored %d; exit %v after SIGTERM", sent.Load(), acked.Load(), stored, took)
	if stored < acked.Load() {
		t.Fatalf("%d alerts acknowledged but only %d stored", acked.Load(), stored)
	}
	if acked.Load() == 0 {
		t.Fatalf("nothing was acknowledged before SIGTERM; the test proves nothing")
	}
	if took > 15*time.Second {
		t.Errorf("shutdown took %v, over the 10s deadline plus slack", took)
	}
}

// SIGHUP re-reads the configuration: an invalid file keeps the old one
// running and says so in a gauge; a valid one takes effect.
func TestSIGHUPReloads(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bridge.yml")
	good := fmt.Sprintf("deephaven: {address: %q}\nprometheus: {url: \"http://127.0.0.1:1\"}\n", testenv.Deephaven(t))
	os.WriteFile(cfg, []byte(good), 0o644)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cmd := exec.Command(bin, "--config.file", cfg, "--web.listen-address", addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	gauge := func() string {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "prometheus_deephaven_bridge_config_last_reload_successful ") {
				return strings.Fields(l)[1]
			}
		}
		return ""
	}
	waitGauge := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); gauge() != want; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("config_last_reload_successful = %q, want %s", gauge(), want)
			}
		}
	}
	waitGauge("1")
	os.WriteFile(cfg, []byte("deephaven: {address: nope}\n"), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	waitGauge("0")
	os.WriteFile(cfg, []byte(good), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	waitGauge("1")
}

package main_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/journal"
)

// The crash loop kills Deephaven, the bridge, or both, with SIGKILL at
// random moments (during a history resend, during journal segment rotation,
// during shutdown, or anywhere), while senders keep posting 10-alert
// notifications and retry each until it gets a 2xx, as Alertmanager does.
// After every round it checks that every acknowledged alert is in Deephaven
// exactly once per key, in prometheus_alerts and in the notification log,
// that no row was never sent, and that the journal opens clean, and prints
// the round's counts.
//
//	CRASHLOOP_ROUNDS  rounds (default 5; the benchmark runs 20 or more)
//	CRASHLOOP_SEED    the seed, printed by every run, to replay one
//	CRASHLOOP_KINDS   comma-separated kinds to draw from (default all):
//	                  deephaven, bridge, both, resend, rotation, shutdown
//
// "resend" is the data loss of issue 9: Deephaven is killed and comes back
// empty, and the bridge is killed while it sends the history again.
func TestCrashLoop(t *testing.T) {
	rounds := envInt(t, "CRASHLOOP_ROUNDS", 5)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CRASHLOOP_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("CRASHLOOP_SEED: %v", err)
		}
	}
	kinds := []string{"deephaven", "bridge", "both", "resend", "rotation", "shutdown"}
	if v := os.Getenv("CRASHLOOP_KINDS"); v != "" {
		kinds = strings.Split(v, ",")
	}
	t.Logf("crash loop: %d rounds of %v, seed %d (replay with CRASHLOOP_SEED=%d)", rounds, kinds, seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	bin := build(t)
	// app.d mode: after a restart Deephaven has the tables again, empty,
	// which is the case where "not empty" cannot be trusted.
	dh := testenv.StartDeephaven(t, testenv.DeephavenOptions{AppDir: "app.d"})
	dir := t.TempDir()
	journalDir := filepath.Join(dir, "journal")
	cfg := filepath.Join(dir, "bridge.yml")
	// Small segments so that rotation happens every second or so.
	os.WriteFile(cfg, []byte(fmt.Sprintf(`deephaven: {address: %q}
prometheus: {url: "http://127.0.0.1:1", backfill_max: 0s}
alerts: {max_concurrent_requests: 256}
journal: {dir: %q, segment_bytes: 262144}
`, dh.Addr(), journalDir)), 0o644)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	logPath := filepath.Join(dir, "bridge.log")
	b := startBinary(t, bin, cfg, addr, logPath)
	load := startNotifications(addr, 4, 10)
	defer load.stop()

	var failed bool
	for round := 1; round <= rounds && !failed; round++ {
		kind := kinds[rng.IntN(len(kinds))]
		start := time.Now()
		time.Sleep(time.Duration(1000+rng.IntN(3000)) * time.Millisecond)
		what := crash(t, rng, kind, dh, b, journalDir, logPath)

		// Quiesce: every sender finishes its notification (retrying until
		// 2xx), then the tables must hold exactly what was acknowledged.
		load.pause()
		c := checkAlerts(t, dh.Addr(), load)
		c.journal = journalGauges(addr)
		t.Logf("round %2d %-9s %-44s acknowledged %7d  stored %7d  missing %d  duplicates %d  never sent %d  notifications %7d (missing %d, duplicates %d, never sent %d)  journal %s  %.0fs",
			round, kind, what, c.acked, c.stored, c.missing, c.dups, c.unknown, c.notes, c.notesMissing, c.notesDups, c.notesUnknown, c.journal, time.Since(start).Seconds())
		if c.missing > 0 || c.dups > 0 || c.unknown > 0 {
			t.Errorf("round %d (%s): %d acknowledged alerts missing, %d duplicate rows, %d rows never sent (seed %d)", round, kind, c.missing, c.dups, c.unknown, seed)
			failed = true
		}
		if c.notesMissing > 0 || c.notesDups > 0 || c.notesUnknown > 0 {
			t.Errorf("round %d (%s): notification log: %d acknowledged notifications missing, %d logged twice, %d never sent (seed %d)", round, kind, c.notesMissing, c.notesDups, c.notesUnknown, seed)
			failed = true
		}
		load.resume()
	}
}

// crash runs one round's kill and restarts what it killed. It returns what
// happened, for the round's line.
func crash(t *testing.T, rng *rand.Rand, kind string, dh *testenv.Process, b *runningBridge, journalDir, logPath string) string {
	t.Helper()
	switch kind {
	case "deephaven":
		dh.Kill()
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Millisecond)
		dh.Restart(t)
		return "Deephaven killed and restarted empty"
	case "bridge":
		b.kill()
		checkJournalOpensClean(t, journalDir)
		b.start()
		return "bridge killed"
	case "both":
		dh.Kill()
		b.kill()
		checkJournalOpensClean(t, journalDir)
		dh.Restart(t)
		b.start()
		return "both killed at once"
	case "resend":
		dh.Kill()
		off := logSize(logPath)
		dh.Restart(t)
		// The restarted Deephaven lacks the bridge's checkpoint: the
		// bridge resends its history. Kill it somewhere in that resend.
		if !waitLog(logPath, off, "retained alert history to Deephaven", time.Minute) {
			t.Fatalf("the bridge did not start a history resend after Deephaven restarted empty")
		}
		delay := time.Duration(rng.IntN(1500)) * time.Millisecond
		time.Sleep(delay)
		b.kill()
		checkJournalOpensClean(t, journalDir)
		b.start()
		return fmt.Sprintf("bridge killed %v into the resend", delay.Round(time.Millisecond))
	case "rotation":
		// Kill as soon as a new segment file appears.
		before := segments(journalDir)
		deadline := time.Now().Add(30 * time.Second)
		for segments(journalDir) == before && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		b.kill()
		checkJournalOpensClean(t, journalDir)
		b.start()
		return "bridge killed at a segment rotation"
	case "shutdown":
		b.cmd.Process.Signal(syscall.SIGTERM)
		delay := time.Duration(rng.IntN(300)) * time.Millisecond
		time.Sleep(delay)
		b.kill()
		checkJournalOpensClean(t, journalDir)
		b.start()
		return fmt.Sprintf("bridge killed %v into its shutdown", delay.Round(time.Millisecond))
	}
	t.Fatalf("unknown crash kind %q", kind)
	return ""
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

func logSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// waitLog waits until the log has a line containing s after offset.
func waitLog(path string, offset int64, s string, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		data, _ := os.ReadFile(path)
		if int64(len(data)) > offset && strings.Contains(string(data[offset:]), s) {
			return true
		}
	}
	return false
}

func segments(dir string) int {
	entries, _ := os.ReadDir(dir)
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".seg") {
			n++
		}
	}
	return n
}

// checkJournalOpensClean opens the journal of a killed bridge: it must be
// consistent, with no damage to repair. Cutting an unfinished last write
// (the kill came inside it; it was never fsynced, so never acknowledged) is
// logged, not a failure; each round separately proves nothing acknowledged
// is missing.
func checkJournalOpensClean(t *testing.T, dir string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	j, err := journal.Open(dir, journal.Options{}, slog.New(slog.NewTextHandler(&logs, nil)), reg)
	if err != nil {
		t.Fatalf("journal does not open after the kill: %v", err)
	}
	defer j.Close()
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		v := mf.GetMetric()[0].GetCounter().GetValue()
		switch mf.GetName() {
		case "prometheus_deephaven_bridge_journal_corruptions_total":
			if v != 0 {
				t.Errorf("journal needed %v repairs after a SIGKILL:\n%s", v, logs.String())
			}
		case "prometheus_deephaven_bridge_journal_torn_writes_cut_total":
			if v != 0 {
				t.Logf("journal cut %v unfinished write(s) after a SIGKILL:\n%s", v, logs.String())
			}
		}
	}
	if st := j.Stats(); st.Delivered > st.LastSeq {
		t.Errorf("journal after the kill: delivered %d beyond the last record %d", st.Delivered, st.LastSeq)
	}
}

// notifications is a set of senders like Alertmanager's: each posts a
// notification of n alerts (new firing alerts and the resolution of
// alerts of its previous notification) and retries it until it gets a 2xx.
type notifications struct {
	mu      sync.Mutex
	sent    map[string]bool // fingerprint|status of every alert ever posted
	acked   map[string]bool // of every alert in a notification that got a 2xx
	senders int
	paused  bool
	idle    sync.WaitGroup // senders not yet parked in a pause
	cond    *sync.Cond
	stopped atomic.Bool
	wg      sync.WaitGroup
}

func startNotifications(addr string, senders, n int) *notifications {
	l := &notifications{sent: map[string]bool{}, acked: map[string]bool{}, senders: senders}
	l.cond = sync.NewCond(&l.mu)
	client := &http.Client{Timeout: 10 * time.Second}
	for w := 0; w < senders; w++ {
		l.wg.Add(1)
		go func(w int) {
			defer l.wg.Done()
			var prev []string // fingerprints of the previous notification's firing alerts
			for i := 0; !l.stopped.Load(); i++ {
				l.mu.Lock()
				for l.paused && !l.stopped.Load() {
					l.idle.Done()
					l.cond.Wait()
				}
				l.mu.Unlock()
				body, keys, firing := notification(w, i, n, prev)
				prev = firing
				l.mu.Lock()
				for _, k := range keys {
					l.sent[k] = true
				}
				l.mu.Unlock()
				for !l.stopped.Load() {
					resp, err := client.Post("http://"+addr+"/alerts", "application/json", strings.NewReader(body))
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							l.mu.Lock()
							for _, k := range keys {
								l.acked[k] = true
							}
							l.mu.Unlock()
							break
						}
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}(w)
	}
	return l
}

// notification builds sender w's i-th notification: n-3 new firing alerts
// and the resolution of 3 firing alerts of the previous one.
func notification(w, i, n int, prev []string) (body string, keys, firing []string) {
	var alerts []string
	starts := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
	for k := 0; k < n-3; k++ {
		fp := fmt.Sprintf("%04x%06x%02x", w, i, k)
		firing = append(firing, fp)
		keys = append(keys, fp+"|firing")
		alerts = append(alerts, fmt.Sprintf(`{"status":"firing","labels":{"alertname":"Crash","w":"%d","n":"%s"},"annotations":{},"startsAt":%q,"endsAt":"0001-01-01T00:00:00Z","fingerprint":"%s"}`,
			w, fp, starts.Format(time.RFC3339), fp))
	}
	for k := 0; k < 3 && k < len(prev); k++ {
		fp := prev[k]
		keys = append(keys, fp+"|resolved")
		alerts = append(alerts, fmt.Sprintf(`{"status":"resolved","labels":{"alertname":"Crash","w":"%d","n":"%s"},"annotations":{},"startsAt":%q,"endsAt":%q,"fingerprint":"%s"}`,
			w, fp, starts.Add(-time.Second).Format(time.RFC3339), starts.Format(time.RFC3339), fp))
	}
	body = `{"version":"4","status":"firing","receiver":"crash","groupKey":"{}:{w=\"` + strconv.Itoa(w) + `\"}","alerts":[` + strings.Join(alerts, ",") + `]}`
	return body, keys, firing
}

// pause waits until every sender has finished its notification (got its
// 2xx) and parked.
func (l *notifications) pause() {
	l.mu.Lock()
	l.paused = true
	l.idle.Add(l.senders)
	l.mu.Unlock()
	l.idle.Wait()
}

func (l *notifications) resume() {
	l.mu.Lock()
	l.paused = false
	l.cond.Broadcast()
	l.mu.Unlock()
}

func (l *notifications) stop() {
	l.stopped.Store(true)
	l.mu.Lock()
	l.cond.Broadcast()
	l.mu.Unlock()
	l.wg.Wait()
}

// journalGauges reads the journal's size and undelivered records from the
// bridge's /metrics.
func journalGauges(addr string) string {
	get := func(name string) string {
		v, ok, err := testenv.ScrapeMetric("http://"+addr, name)
		if err != nil || !ok {
			return "?"
		}
		return fmt.Sprint(v)
	}
	return fmt.Sprintf("%s segments, %s undelivered", get("prometheus_deephaven_bridge_journal_segments"), get("prometheus_deephaven_bridge_journal_undelivered_records"))
}

type roundCounts struct {
	acked, stored, missing, dups, unknown int
	// The same for the notification log: each alert is in one
	// notification, so each acknowledged one is logged exactly once.
	notes, notesMissing, notesDups, notesUnknown int
	journal                                      string
}

// checkAlerts waits (up to 3 minutes) until every acknowledged alert is in
// prometheus_alerts and in prometheus_alert_notifications, and counts what
// is there.
func checkAlerts(t *testing.T, dh string, l *notifications) roundCounts {
	t.Helper()
	var c roundCounts
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Second) {
		stored := alertKeys(t, dh, "prometheus_alerts")
		notes := alertKeys(t, dh, "prometheus_alert_notifications")
		c = roundCounts{stored: len(stored), notes: len(notes)}
		l.mu.Lock()
		c.acked = len(l.acked)
		for k := range l.acked {
			if stored[k] == 0 {
				c.missing++
			}
			if notes[k] == 0 {
				c.notesMissing++
			}
		}
		for k, n := range stored {
			c.dups += n - 1
			if !l.sent[k] {
				c.unknown++
			}
		}
		for k, n := range notes {
			c.notesDups += n - 1
			if !l.sent[k] {
				c.notesUnknown++
			}
		}
		l.mu.Unlock()
		if (c.missing == 0 && c.notesMissing == 0) || time.Now().After(deadline) {
			break
		}
	}
	return c
}

// alertKeys counts the rows of an alerts table per fingerprint|status.
func alertKeys(t *testing.T, addr, table string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
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
	fi, si := tab.Schema().FieldIndices("Fingerprint")[0], tab.Schema().FieldIndices("Status")[0]
	fps, sts := tab.Column(fi).Data().Chunks(), tab.Column(si).Data().Chunks()
	for i := range fps {
		f, s := fps[i].(*array.String), sts[i].(*array.String)
		for j := 0; j < f.Len(); j++ {
			out[f.Value(j)+"|"+s.Value(j)]++
		}
	}
	return out
}

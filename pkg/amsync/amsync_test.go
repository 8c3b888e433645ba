package amsync

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// fakeAM serves /api/v2/alerts from a list a test may change. Unit tests
// only; a real Alertmanager is in pkg/app's tests.
type fakeAM struct {
	mu     sync.Mutex
	alerts []Alert
	down   bool
}

func (f *fakeAM) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down || r.URL.Path != "/api/v2/alerts" || r.URL.Query().Get("silenced") != "true" || r.URL.Query().Get("inhibited") != "true" {
		http.Error(w, "no", http.StatusServiceUnavailable)
		return
	}
	json.NewEncoder(w).Encode(f.alerts)
}

func (f *fakeAM) set(down bool, alerts ...Alert) {
	f.mu.Lock()
	f.alerts, f.down = alerts, down
	f.mu.Unlock()
}

func alert(fp, state string, startsAt, updatedAt time.Time, silencedBy ...string) Alert {
	var a Alert
	a.Fingerprint = fp
	a.Labels = map[string]string{"alertname": "A" + fp, "severity": "warning"}
	a.StartsAt, a.UpdatedAt = startsAt, updatedAt
	a.Status.State, a.Status.SilencedBy = state, silencedBy
	a.Receivers = append(a.Receivers, struct {
		Name string `json:"name"`
	}{"team"})
	return a
}

type collector[R any] struct {
	mu   sync.Mutex
	rows []R
}

func (c *collector[R]) Write(_ context.Context, rs []R) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows = append(c.rows, rs...)
	return nil
}

func (c *collector[R]) take() []R {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.rows
	c.rows = nil
	return out
}

func toRows(_ context.Context, as []Alert, at time.Time) []rows.AlertRow {
	var out []rows.AlertRow
	for _, a := range as {
		out = append(out, rows.AlertRow{Fingerprint: a.Fingerprint, Status: "firing", PrometheusDateTime: a.StartsAt, StartsAt: a.StartsAt, Source: rows.SourceAPI})
	}
	return out
}

// Two replicas are one source: their alerts merge by fingerprint, the most
// recent update winning, and a replica that is down does not stop the
// sync. Suppressed alerts and old active ones no webhook brought enter the
// alerts table once; an alert that is gone gets the state gone.
func TestSyncMergesReplicasAndFillsHoles(t *testing.T) {
	a, b := &fakeAM{}, &fakeAM{}
	sa, sb := httptest.NewServer(http.HandlerFunc(a.serve)), httptest.NewServer(http.HandlerFunc(b.serve))
	defer sa.Close()
	defer sb.Close()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	old, recent := now.Add(-time.Hour), now.Add(-10*time.Second)
	a.set(false,
		alert("01", "active", old, now.Add(-5*time.Second)),
		alert("02", "suppressed", recent, now.Add(-5*time.Second), "silence-1"),
		alert("03", "active", recent, now.Add(-5*time.Second)), // young: its webhook may be on its way
		alert("04", "active", old, now.Add(-5*time.Second)),    // came by webhook
	)
	// Replica b has a newer view of 01: it is silenced now.
	b.set(false, alert("01", "suppressed", old, now.Add(-time.Second), "silence-2"))

	states, alertRows := &collector[rows.AlertStateRow]{}, &collector[rows.AlertRow]{}
	present := func(_ context.Context, keys []rows.AlertKey) (map[rows.AlertKey]bool, error) {
		out := map[rows.AlertKey]bool{}
		for _, k := range keys {
			out[k] = k.Fingerprint == "04"
		}
		return out, nil
	}
	y := New(nil, nil, states, alertRows, toRows, present, Settings{Enabled: true, URLs: []string{sa.URL, sb.URL}, Interval: 30 * time.Second, Timeout: time.Second}, nil, nil)
	y.now = func() time.Time { return now }
	if err := y.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := map[string]rows.AlertStateRow{}
	for _, s := range states.take() {
		got[s.Fingerprint] = s
	}
	if len(got) != 4 || got["01"].State != "suppressed" || got["01"].SilencedBy != "silence-2" || got["01"].Alertmanager != sb.URL ||
		got["02"].State != "suppressed" || got["03"].State != "active" || got["01"].Receivers != "team" || got["01"].AlertName != "A01" {
		t.Fatalf("states: %+v", got)
	}
	wrote := map[string]bool{}
	for _, r := range alertRows.take() {
		wrote[r.Fingerprint] = true
	}
	if !wrote["01"] || !wrote["02"] || wrote["03"] || wrote["04"] || len(wrote) != 2 {
		t.Fatalf("alerts written from the API: %v, want 01 (old, no webhook) and 02 (suppressed)", wrote)
	}

	// Replica a is down, b holds only 02 now: 01, 03 and 04 are gone; 02
	// is not written again.
	a.set(true)
	b.set(false, alert("02", "suppressed", recent, now, "silence-1"))
	if err := y.Sync(context.Background()); err != nil {
		t.Fatalf("with one replica up: %v", err)
	}
	got = map[string]rows.AlertStateRow{}
	for _, s := range states.take() {
		got[s.Fingerprint] = s
	}
	if got["01"].State != "gone" || got["03"].State != "gone" || got["04"].State != "gone" || got["02"].State != "suppressed" {
		t.Fatalf("states after: %+v", got)
	}
	if rs := alertRows.take(); len(rs) != 0 {
		t.Fatalf("%d alerts written again", len(rs))
	}
	// Both down: an error, and nothing changes.
	b.set(true)
	if err := y.Sync(context.Background()); err == nil {
		t.Fatal("no error with every replica down")
	}
	if rs := states.take(); len(rs) != 0 {
		t.Fatalf("%d state rows written with every replica down", len(rs))
	}
}

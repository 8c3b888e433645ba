package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/journal"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// silence creates a silence through Alertmanager's API and returns its ID.
func silence(t *testing.T, am, alertname string) string {
	t.Helper()
	now := time.Now().UTC()
	body := fmt.Sprintf(`{"matchers":[{"name":"alertname","value":%q,"isRegex":false,"isEqual":true}],
"startsAt":%q,"endsAt":%q,"createdBy":"test","comment":"alert story"}`,
		alertname, now.Format(time.RFC3339Nano), now.Add(time.Hour).Format(time.RFC3339Nano))
	resp, err := http.Post("http://"+am+"/api/v2/silences", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out struct {
		SilenceID string `json:"silenceID"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(data, &out) != nil || out.SilenceID == "" {
		t.Fatalf("create silence: %d %s", resp.StatusCode, data)
	}
	return out.SilenceID
}

// rowsBy returns the rows of a table whose column col equals v.
func rowsBy(rs []map[string]any, col string, v any) []map[string]any {
	var out []map[string]any
	for _, r := range rs {
		if r[col] == v {
			out = append(out, r)
		}
	}
	return out
}

// A real Alertmanager: an alert silenced after it fired, one silenced
// before it ever fired, and one inhibited by another show as suppressed in
// the state table, with who suppresses them, within one sync interval of
// the silence; and every one of them has its row in the alerts table (the
// ones no webhook carried come from the API).
func TestAlertmanagerSilencedAndInhibitedAlerts(t *testing.T) {
	dh := testenv.Deephaven(t)
	bridgeAddr := freeAddr(t)
	am := testenv.StartAlertmanager(t, testenv.AlertmanagerOptions{ConfigYAML: fmt.Sprintf(`route:
  receiver: bridge
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
- name: bridge
  webhook_configs:
  - url: http://%s/alerts
    send_resolved: true
inhibit_rules:
- source_matchers: [alertname="StoryOutage"]
  target_matchers: [alertname="StoryDiskSlow"]
  equal: [instance]
`, bridgeAddr)})
	const interval = 2 * time.Second
	b := startBridge(t, bridgeSetup{
		Deephaven: dh,
		Listen:    bridgeAddr,
		Extra:     fmt.Sprintf("alertmanager: {urls: [\"http://%s\"], sync_interval: %s}\n", am.Addr(), interval),
	})
	c := client(t, dh)
	state := b.Tables[0] + "_state"

	// Silenced before it ever fired: no webhook ever carries it.
	silencedBefore := silence(t, am.Addr(), "StorySilencedEarly")
	postAlertToAM(t, am.Addr(), "StorySilencedEarly", "", time.Time{})
	// Fires, reaches the bridge by webhook, then gets silenced.
	postAlertToAM(t, am.Addr(), "StorySilencedLate", "", time.Time{})
	// The outage inhibits the disk alert on the same instance.
	postAlertToAM(t, am.Addr(), "StoryOutage", `,"severity":"critical"`, time.Time{})
	postAlertToAM(t, am.Addr(), "StoryDiskSlow", `,"severity":"warning"`, time.Time{})

	waitAlertRow(t, b, dh, "StorySilencedLate")
	silencedAfter := silence(t, am.Addr(), "StorySilencedLate")
	// The late silence shows at the first sync that began after it. A sync
	// may be under way while the silence is made, so the second one to
	// finish after it is the first that surely read it; its state row is
	// in Deephaven before the sync counts as done. Causal, not timed: a
	// slow Deephaven makes syncs longer, not this test flaky.
	const syncs = "prometheus_deephaven_bridge_alertmanager_syncs_total"
	before := testenv.Metric(t, b.URL, syncs, "result", "ok")
	eventually(t, time.Minute, func() string {
		if n := testenv.Metric(t, b.URL, syncs, "result", "ok"); n < before+2 {
			return fmt.Sprintf("%v syncs finished since the silence, want 2", n-before)
		}
		return ""
	})
	if late := rowsBy(readTable(t, c, state), "AlertName", "StorySilencedLate"); len(late) != 1 || late[0]["State"] != rows.StateSuppressed || late[0]["SilencedBy"] != silencedAfter {
		t.Errorf("after the first sync that began after the silence, the state row is %v, want suppressed by %s", late, silencedAfter)
	}

	eventually(t, time.Minute, func() string {
		states := readTable(t, c, state)
		var why []string
		for name, by := range map[string]string{"StorySilencedEarly": silencedBefore, "StorySilencedLate": silencedAfter} {
			r := rowsBy(states, "AlertName", name)
			if len(r) != 1 || r[0]["State"] != rows.StateSuppressed || r[0]["SilencedBy"] != by {
				why = append(why, fmt.Sprintf("%s: %v", name, r))
			}
		}
		outage := rowsBy(states, "AlertName", "StoryOutage")
		disk := rowsBy(states, "AlertName", "StoryDiskSlow")
		if len(outage) != 1 || outage[0]["State"] != rows.StateActive {
			why = append(why, fmt.Sprintf("StoryOutage: %v", outage))
		} else if len(disk) != 1 || disk[0]["State"] != rows.StateSuppressed || disk[0]["InhibitedBy"] != outage[0]["Fingerprint"] {
			why = append(why, fmt.Sprintf("StoryDiskSlow: %v", disk))
		}
		return strings.Join(why, "; ")
	})

	// Every alert has its rows: by webhook, or from the API when no
	// webhook carried it (the silenced-early and the inhibited one).
	eventually(t, time.Minute, func() string {
		alerts := readTable(t, c, b.Tables[0])
		var why []string
		for name, source := range map[string]string{
			"StorySilencedEarly": rows.SourceAPI,
			"StorySilencedLate":  rows.SourceAlertmanager,
			"StoryOutage":        rows.SourceAlertmanager,
			"StoryDiskSlow":      rows.SourceAPI,
		} {
			r := rowsBy(alerts, "AlertName", name)
			if len(r) != 1 || r[0]["Source"] != source || r[0]["Status"] != "firing" {
				why = append(why, fmt.Sprintf("%s: %v", name, r))
			}
		}
		return strings.Join(why, "; ")
	})
}

// The episodes of one alert over a scripted sequence, counted by hand:
// it fires, is notified again (a repeat), the HA replica's copy of that
// repeat arrives, it resolves, it fires again. The resolve changes the
// episode's row in place.
func TestEpisodesMatchAHandCount(t *testing.T) {
	dh := testenv.Deephaven(t)
	b := startBridge(t, bridgeSetup{
		Deephaven: dh,
		Extra:     "alerts: {notification_window: 3s}\nalertmanager: {enabled: false}\n",
	})
	c := client(t, dh)
	episodes := b.Tables[0] + "_episodes"
	labels := map[string]string{"alertname": "StoryEpisode", "severity": "critical", "job": "j", "instance": "i:1"}
	fp := "e91e000000000001"
	start1 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	end1 := start1.Add(3*time.Hour + 12*time.Minute)
	start2 := end1.Add(time.Hour)
	send := func(status string, start, end time.Time, externalURL string) {
		t.Helper()
		body := notification(status, fp, start.Format(time.RFC3339), end.Format(time.RFC3339), labels)
		body = strings.Replace(body, `"externalURL":"http://am:9093"`, fmt.Sprintf("%q:%q", "externalURL", externalURL), 1)
		if code, resp := post(t, b.URL+"/alerts", body); code != 200 {
			t.Fatalf("%s notification: %d %s", status, code, resp)
		}
	}
	byStart := func() map[time.Time]map[string]any {
		out := map[time.Time]map[string]any{}
		for _, r := range readTable(t, c, episodes) {
			if r["Fingerprint"] == fp {
				out[r["StartsAt"].(time.Time)] = r
			}
		}
		return out
	}
	send("firing", start1, time.Time{}, "http://am-a:9093") // 1: fires
	time.Sleep(4 * time.Second)                             // past the window
	send("firing", start1, time.Time{}, "http://am-a:9093") // 2: repeat
	send("firing", start1, time.Time{}, "http://am-b:9093") // the HA replica's copy: not counted
	eventually(t, 30*time.Second, func() string {
		e := byStart()[start1]
		if e == nil || e["Notifications"] != int64(2) || e["ResolvedAt"] != nil || e["DurationSeconds"] != nil || e["AlertName"] != "StoryEpisode" {
			return fmt.Sprintf("firing episode: %v", e)
		}
		return ""
	})
	send("resolved", start1, end1, "http://am-a:9093") // 3: resolves
	eventually(t, 30*time.Second, func() string {
		e := byStart()[start1]
		if e == nil || e["Notifications"] != int64(3) || e["ResolvedAt"] != end1 || e["DurationSeconds"] != (3*time.Hour+12*time.Minute).Seconds() {
			return fmt.Sprintf("resolved episode: %v", e)
		}
		return ""
	})
	send("firing", start2, time.Time{}, "http://am-a:9093") // a new episode
	eventually(t, 30*time.Second, func() string {
		es := byStart()
		if len(es) != 2 || es[start2]["Notifications"] != int64(1) || es[start2]["ResolvedAt"] != nil || es[start1]["Notifications"] != int64(3) {
			return fmt.Sprintf("episodes: %v", es)
		}
		return ""
	})
	t.Logf("episodes: %v", byStart())
}

// A bridge that dies after logging a notification but before answering
// gets the same notification again from the sender after its restart. The
// restarted bridge recalls what the last one logged (from the journal, or
// from Deephaven without one), so the notification log holds it once and
// the episode counts it once.
func TestNotificationRetriedAfterRestartIsLoggedOnce(t *testing.T) {
	for _, journal := range []bool{false, true} {
		t.Run(fmt.Sprintf("journal=%v", journal), func(t *testing.T) {
			dh := testenv.Deephaven(t)
			sfx := fmt.Sprintf("%d_%d", time.Now().UnixNano()%1e9, seq.Add(1))
			setup := bridgeSetup{
				Deephaven: dh,
				Tables:    [3]string{"alerts_" + sfx, "metrics_" + sfx, "joined_" + sfx},
				Extra:     "alertmanager: {enabled: false}\nrules: {enabled: false}\n",
			}
			if journal {
				setup.Extra += fmt.Sprintf("journal: {dir: %q}\n", filepath.Join(t.TempDir(), "journal"))
			}
			start := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
			labels := map[string]string{"alertname": "Retried", "job": "j", "instance": "i:1"}
			send := func(b *bridge, fp string) {
				t.Helper()
				if code, resp := post(t, b.URL+"/alerts", notification("firing", fp, start, "0001-01-01T00:00:00Z", labels)); code != 200 {
					t.Fatalf("post %s: %d %s", fp, code, resp)
				}
			}
			b1 := startBridge(t, setup)
			send(b1, "7e7e000000000001")
			if err := b1.stop(); err != nil {
				t.Fatal(err)
			}
			b2 := startBridge(t, setup)
			send(b2, "7e7e000000000001") // the sender's retry
			send(b2, "7e7e000000000002") // sent after it: once it is in, so is the retry's row if any
			c := client(t, dh)
			notes := setup.Tables[0] + "_notes"
			var byFP map[any]int
			eventually(t, time.Minute, func() string {
				byFP = map[any]int{}
				for _, r := range readTable(t, c, notes) {
					byFP[r["Fingerprint"]]++
				}
				if byFP["7e7e000000000002"] != 1 {
					return fmt.Sprintf("notification log: %v", byFP)
				}
				return ""
			})
			if n := byFP["7e7e000000000001"]; n != 1 {
				t.Errorf("the retried notification is in the log %d times, want once", n)
			}
			eventually(t, time.Minute, func() string {
				e := rowsBy(readTable(t, c, setup.Tables[0]+"_episodes"), "Fingerprint", "7e7e000000000001")
				if len(e) != 1 || e[0]["Notifications"] != int64(1) {
					return fmt.Sprintf("episode: %v, want one notification", e)
				}
				return ""
			})
		})
	}
}

// A bridge killed after its journal's shipper delivered notifications but
// before it moved the delivery watermark sends them again after the
// restart (here the watermark is moved back by hand). The notification log
// appends, so the shipper first asks Deephaven what it holds and skips
// that: every notification is logged once.
func TestJournalRedeliveryLogsNotificationsOnce(t *testing.T) {
	dh := testenv.Deephaven(t)
	sfx := fmt.Sprintf("%d_%d", time.Now().UnixNano()%1e9, seq.Add(1))
	journalDir := filepath.Join(t.TempDir(), "journal")
	setup := bridgeSetup{
		Deephaven: dh,
		Tables:    [3]string{"alerts_" + sfx, "metrics_" + sfx, "joined_" + sfx},
		Extra:     fmt.Sprintf("alertmanager: {enabled: false}\nrules: {enabled: false}\njournal: {dir: %q}\n", journalDir),
	}
	start := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	send := func(b *bridge, fp string) {
		t.Helper()
		body := notification("firing", fp, start, "0001-01-01T00:00:00Z", map[string]string{"alertname": "Redelivered", "job": "j", "instance": "i:1"})
		if code, resp := post(t, b.URL+"/alerts", body); code != 200 {
			t.Fatalf("post %s: %d %s", fp, code, resp)
		}
	}
	delivered := func(b *bridge) {
		t.Helper()
		eventually(t, time.Minute, func() string {
			if v, ok, err := testenv.ScrapeMetric(b.URL, "prometheus_deephaven_bridge_journal_undelivered_records"); err != nil || !ok || v != 0 {
				return fmt.Sprintf("journal undelivered: %v (present %v, %v)", v, ok, err)
			}
			return ""
		})
	}
	b1 := startBridge(t, setup)
	send(b1, "7e7e000000000011")
	send(b1, "7e7e000000000012")
	delivered(b1)
	if err := b1.stop(); err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(journalDir, journal.Options{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if to, err := j.Rewind(); err != nil || to != 0 {
		t.Fatalf("rewind the watermark: %d, %v", to, err)
	}
	j.Close()

	b2 := startBridge(t, setup)
	send(b2, "7e7e000000000013")
	delivered(b2)
	c := client(t, dh)
	var byFP map[any]int
	eventually(t, time.Minute, func() string {
		byFP = map[any]int{}
		for _, r := range readTable(t, c, setup.Tables[0]+"_notes") {
			byFP[r["Fingerprint"]]++
		}
		if byFP["7e7e000000000013"] != 1 {
			return fmt.Sprintf("notification log: %v", byFP)
		}
		return ""
	})
	for _, fp := range []string{"7e7e000000000011", "7e7e000000000012"} {
		if byFP[fp] != 1 {
			t.Errorf("notification %s is in the log %d times after the redelivery, want once", fp, byFP[fp])
		}
	}
}

package app_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
)

// An Alertmanager HA pair: Prometheus sends every alert to both replicas,
// and either may notify (both do when gossip is slow). Each alert is stored
// once.
func TestAlertmanagerHAPairStoresEachAlertOnce(t *testing.T) {
	dh := testenv.Deephaven(t)
	addr := freeAddr(t)
	b := startBridge(t, bridgeSetup{Deephaven: dh, Listen: addr})
	cfg := fmt.Sprintf(`route: {receiver: bridge, group_by: [alertname], group_wait: 1s, group_interval: 2s, repeat_interval: 1h}
receivers:
- name: bridge
  webhook_configs: [{url: "http://%s/alerts"}]
`, addr)
	p1, p2 := testenv.FreePort(t), testenv.FreePort(t)
	cluster := func(self, peer int) []string {
		return []string{
			fmt.Sprintf("--cluster.listen-address=127.0.0.1:%d", self),
			fmt.Sprintf("--cluster.peer=127.0.0.1:%d", peer),
			fmt.Sprintf("--cluster.advertise-address=127.0.0.1:%d", self),
			// Short enough that the second replica also sends while the
			// notification log gossip is still on its way, sometimes.
			"--cluster.peer-timeout=1ms",
		}
	}
	am1 := testenv.StartAlertmanager(t, testenv.AlertmanagerOptions{ConfigYAML: cfg, ExtraArgs: cluster(p1, p2)})
	am2 := testenv.StartAlertmanager(t, testenv.AlertmanagerOptions{ConfigYAML: cfg, ExtraArgs: cluster(p2, p1)})
	const alerts = 20
	for i := 0; i < alerts; i++ {
		labels := fmt.Sprintf(`,"n":"%d"`, i)
		name := fmt.Sprintf("HA%02d", i)
		// Prometheus sends the same alert, same start, to every replica.
		start := time.Now()
		postAlertToAM(t, am1.Addr(), name, labels, start)
		postAlertToAM(t, am2.Addr(), name, labels, start)
	}
	c := client(t, dh)
	var rows []map[string]any
	eventually(t, 90*time.Second, func() string {
		rows = readTable(t, c, b.Tables[0])
		if len(rows) >= alerts {
			return ""
		}
		return fmt.Sprintf("%d of %d alerts stored", len(rows), alerts)
	})
	time.Sleep(5 * time.Second) // let any second notification arrive
	rows = readTable(t, c, b.Tables[0])
	seen := map[any]int{}
	for _, r := range rows {
		seen[r["AlertName"]]++
	}
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	received := testenv.Metric(t, b.URL, "prometheus_deephaven_bridge_alerts_received_total", "status", "firing")
	t.Logf("sent %d alerts to both replicas; webhook received %v alert notifications; stored %d rows; duplicates %d", alerts, received, len(rows), dups)
	if received <= float64(alerts) {
		t.Logf("no replica sent a second notification this time; the key-backed table was not put to the test")
	}
	if len(rows) != alerts || dups != 0 || len(seen) != alerts {
		t.Fatalf("stored %d rows for %d alerts (%d distinct, %d duplicates)", len(rows), alerts, len(seen), dups)
	}
}

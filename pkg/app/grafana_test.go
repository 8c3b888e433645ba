package app_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
)

// Grafana payloads from Grafana's documentation (9.0's valueString, an
// intermediate revision with custom ref IDs, 10.x to 12.x's values) and an
// Alertmanager payload go through the same endpoint of the running bridge
// into the right columns of Deephaven's table.
func TestGrafanaAndAlertmanagerPayloadsInDeephaven(t *testing.T) {
	dh := testenv.Deephaven(t)
	c := client(t, dh)
	dir := filepath.Join(testenv.RepoRoot(t), "pkg", "alerts", "testdata")
	// The documented Grafana payloads share fingerprints and start times,
	// so each goes to a bridge and tables of its own.
	for _, tc := range []struct {
		file, source string
		values       string // of the first alert
		value        any
	}{
		{"grafana_9_0_firing.json", "grafana", `{0="14151.331895396988"}`, 14151.331895396988},
		{"grafana_docs_03703ac_data_avg_firing.json", "grafana", `{data-avg="14151.331895396988"}`, 14151.331895396988},
		// values {B: 44.24, C: 1}: C is the condition, B fed it.
		{"grafana_11_firing.json", "grafana", `{B="44.23943737541908", C="1"}`, 44.23943737541908},
		{"am025_firing.json", "alertmanager", "", nil},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b := startBridge(t, bridgeSetup{Deephaven: dh})
			body, err := os.ReadFile(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got := postAndRead(t, c, b, string(body), 2)
			for _, r := range got {
				if r["Source"] != tc.source || (tc.source == "grafana") != (r["AlertValue"] != nil && r["Values"] != "") {
					t.Errorf("row %s: Source %v Values %v AlertValue %v", r["Fingerprint"], r["Source"], r["Values"], r["AlertValue"])
				}
			}
			first := got[0]
			if got[1]["StartsAt"].(time.Time).Before(first["StartsAt"].(time.Time)) {
				first = got[1]
			}
			if first["Values"] != tc.values || first["AlertValue"] != tc.value {
				t.Errorf("first alert: Values %v AlertValue %v, want %v %v", first["Values"], first["AlertValue"], tc.values, tc.value)
			}
		})
	}
}

// A Grafana alert whose value is NaN (an error ratio of 0/0) lands with
// AlertValue NaN, with the journal on as without it: the journal's JSON
// records have no number for NaN, and used to refuse the whole request.
func TestNaNAlertValueLandsWithAndWithoutTheJournal(t *testing.T) {
	dh := testenv.Deephaven(t)
	c := client(t, dh)
	body, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "pkg", "alerts", "testdata", "grafana_12_values_null_constructed.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, journal := range []bool{false, true} {
		t.Run(fmt.Sprintf("journal=%v", journal), func(t *testing.T) {
			s := bridgeSetup{Deephaven: dh, Extra: "alertmanager: {enabled: false}\nrules: {enabled: false}\n"}
			if journal {
				s.Extra += fmt.Sprintf("journal: {dir: %q}\n", filepath.Join(t.TempDir(), "journal"))
			}
			for _, r := range postAndRead(t, c, startBridge(t, s), string(body), 2) {
				v, _ := r["AlertValue"].(float64)
				switch r["Fingerprint"] {
				case "5f0e3d1c2b4a6978": // firing, values A and B NaN
					if !math.IsNaN(v) {
						t.Errorf("firing alert: AlertValue %v, want NaN", r["AlertValue"])
					}
				case "8a7b6c5d4e3f2a1b":
					if v != 0.004 {
						t.Errorf("resolved alert: AlertValue %v, want 0.004", r["AlertValue"])
					}
				default:
					t.Errorf("unexpected row %v", r)
				}
			}
		})
	}
}

// postAndRead posts a webhook body to b and returns the rows of its alerts
// table once it holds want of them.
func postAndRead(t *testing.T, c *deephaven.Client, b *bridge, body string, want int) []map[string]any {
	t.Helper()
	if code, resp := post(t, b.URL+"/alerts", body); code != 200 {
		t.Fatalf("%d %s", code, resp)
	}
	var got []map[string]any
	eventually(t, 30*time.Second, func() string {
		if got = readTable(t, c, b.Tables[0]); len(got) != want {
			return fmt.Sprintf("%d rows, want %d", len(got), want)
		}
		return ""
	})
	return got
}

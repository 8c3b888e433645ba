package alerts

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// grafanaBody returns a minimal Grafana (version "1") body of one firing
// alert whose values and valueString are the given raw JSON.
func grafanaBody(values, valueString string) []byte {
	return []byte(`{"receiver":"deephaven","status":"firing","orgId":1,"version":"1","groupKey":"{}:{}",` +
		`"truncatedAlerts":0,"title":"t","state":"alerting","message":"m","alerts":[{"status":"firing",` +
		`"labels":{"alertname":"A","job":"j"},"annotations":{},"startsAt":"2026-11-25T04:00:00Z",` +
		`"endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"0123456789abcdef",` +
		`"values":` + values + `,"valueString":` + valueString + `}]}`)
}

// manyValues returns the JSON object {"R0":0,"R1":1,...} of n values.
func manyValues(n int) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `"R%d":%d`, i, i)
	}
	sb.WriteByte('}')
	return sb.String()
}

// manyValueStringEntries returns a valueString (as a JSON string) of n
// entries.
func manyValueStringEntries(n int) string {
	entries := make([]string, n)
	for i := range entries {
		entries[i] = fmt.Sprintf("[ var='R%d' labels={} value=%d ]", i, i)
	}
	return `"` + strings.Join(entries, ", ") + `"`
}

func f64(v float64) *float64 { return &v }

// The Grafana payloads of testdata (see testdata/README.md) map to these
// rows, every column checked.
func TestRowsGrafana(t *testing.T) {
	received := time.Date(2026, 11, 25, 7, 0, 0, 0, time.UTC)
	// The two alerts of Grafana's documented examples, which differ only in
	// their values from one Grafana version to the next.
	docs := func(values string, v1, v2 *float64) []rows.AlertRow {
		at1 := time.Date(2021, 10, 12, 7, 51, 3, 157076000, time.UTC)
		at2 := time.Date(2021, 10, 12, 7, 56, 3, 157076000, time.UTC)
		r1 := rows.AlertRow{
			PrometheusDateTime:  at1,
			PrometheusQuery:     "High memory usage",
			Status:              "firing",
			AlertIngestDateTime: received,
			AlertName:           "High memory usage",
			Fingerprint:         "c6eadffa33fcdf37",
			StartsAt:            at1,
			Labels:              `{alertname="High memory usage", team="blue", zone="us-1"}`,
			Annotations:         `{description="The system has high memory usage", runbook_url="https://myrunbook.com/runbook/1234", summary="This alert was triggered for zone us-1"}`,
			GeneratorURL:        "https://play.grafana.org/alerting/1afz29v7z/edit",
			Receiver:            "My Super Webhook",
			Source:              "grafana",
			SeriesKey:           "{}",
			AlertValue:          v1,
		}
		r2 := r1
		r2.PrometheusDateTime, r2.StartsAt = at2, at2
		r2.PrometheusQuery, r2.AlertName = "High CPU usage", "High CPU usage"
		r2.Fingerprint = "bc97ff14869b13e3"
		r2.Labels = `{alertname="High CPU usage", team="blue", zone="eu-1"}`
		r2.Annotations = `{description="The system has high CPU usage", runbook_url="https://myrunbook.com/runbook/1234", summary="This alert was triggered for zone eu-1"}`
		r2.GeneratorURL = "https://play.grafana.org/alerting/d1rdpdv7k/edit"
		r2.AlertValue = v2
		v1s, v2s, _ := strings.Cut(values, "|")
		r1.Values, r2.Values = v1s, v2s
		return []rows.AlertRow{r1, r2}
	}

	errorRatio := rows.AlertRow{
		Job:                 "api",
		PrometheusQuery:     "Error ratio",
		AlertIngestDateTime: received,
		AlertName:           "Error ratio",
		GeneratorURL:        "https://grafana.example/alerting/grafana/f1a2b3c4d5e6f7/view?orgId=1",
		Receiver:            "deephaven",
		Source:              "grafana",
	}
	firingNaN, resolved := errorRatio, errorRatio
	firingNaN.PrometheusDateTime = time.Date(2026, 11, 25, 3, 10, 0, 500000000, time.UTC)
	firingNaN.StartsAt = firingNaN.PrometheusDateTime
	firingNaN.Instance = "api-0:8080"
	firingNaN.Status = "firing"
	firingNaN.Fingerprint = "5f0e3d1c2b4a6978"
	firingNaN.Labels = `{alertname="Error ratio", grafana_folder="Backend", instance="api-0:8080", job="api"}`
	firingNaN.Annotations = `{summary="Error ratio of api-0:8080 is undefined (no requests)"}`
	firingNaN.SeriesKey = `{instance="api-0:8080", job="api"}`
	firingNaN.Values = `{A="NaN", B="NaN", C="1"}` // values is null: from valueString
	firingNaN.AlertValue = f64(math.NaN())
	resolved.PrometheusDateTime = time.Date(2026, 11, 25, 3, 55, 0, 0, time.UTC)
	resolved.StartsAt = time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	resolved.EndsAt = resolved.PrometheusDateTime
	resolved.Instance = "api-1:8080"
	resolved.Status = "resolved"
	resolved.Fingerprint = "8a7b6c5d4e3f2a1b"
	resolved.Labels = `{alertname="Error ratio", grafana_folder="Backend", instance="api-1:8080", job="api"}`
	resolved.Annotations = `{summary="Error ratio of api-1:8080 is 0.004"}`
	resolved.SeriesKey = `{instance="api-1:8080", job="api"}`
	resolved.Values = `{A="0.0042", B="0.004", C="0"}`
	resolved.AlertValue = f64(0.004)

	noData := rows.AlertRow{
		PrometheusDateTime:  time.Date(2026, 11, 25, 5, 0, 0, 0, time.UTC),
		PrometheusQuery:     "DatasourceNoData",
		Status:              "firing",
		AlertIngestDateTime: received,
		AlertName:           "DatasourceNoData",
		Fingerprint:         "0a1b2c3d4e5f6071",
		StartsAt:            time.Date(2026, 11, 25, 5, 0, 0, 0, time.UTC),
		Labels:              `{alertname="DatasourceNoData", datasource_uid="P1809F7CD0C75ACF3", grafana_folder="Infra", ref_id="A", rulename="High memory usage"}`,
		Annotations:         `{summary="Memory usage is above 90%"}`,
		GeneratorURL:        "https://grafana.example/alerting/grafana/aa11bb22cc33/view?orgId=1",
		Receiver:            "deephaven",
		Source:              "grafana",
		SeriesKey:           "{}",
		Values:              `{B="-1", C="-1"}`, // Grafana's placeholders, shown as sent
	}
	keepLast := noData
	keepLast.PrometheusDateTime = time.Date(2026, 11, 25, 4, 30, 0, 0, time.UTC)
	keepLast.StartsAt = keepLast.PrometheusDateTime
	keepLast.Instance = "db1:9100"
	keepLast.PrometheusQuery, keepLast.AlertName = "High disk usage", "High disk usage"
	keepLast.Fingerprint = "1b2c3d4e5f607182"
	keepLast.Labels = `{alertname="High disk usage", grafana_folder="Infra", instance="db1:9100"}`
	keepLast.Annotations = `{grafana_state_reason="NoData, KeepLast", summary="Disk usage is above 90%"}`
	keepLast.GeneratorURL = "https://grafana.example/alerting/grafana/dd44ee55ff66/view?orgId=1"
	keepLast.SeriesKey = `{instance="db1:9100"}`
	dsError := noData
	dsError.PrometheusDateTime = time.Date(2026, 11, 25, 5, 1, 0, 0, time.UTC)
	dsError.StartsAt = dsError.PrometheusDateTime
	dsError.PrometheusQuery, dsError.AlertName = "DatasourceError", "DatasourceError"
	dsError.Fingerprint = "2c3d4e5f60718293"
	dsError.Labels = `{alertname="DatasourceError", datasource_uid="P1809F7CD0C75ACF3", grafana_folder="Infra", ref_id="A", rulename="High memory usage"}`
	dsError.Annotations = `{Error="[sse.dataQueryError] failed to execute query [A]: context deadline exceeded", summary="Memory usage is above 90%"}`
	dsError.Values = "" // values null, valueString ""

	grafana80 := rows.AlertRow{
		PrometheusDateTime:  time.Date(2021, 6, 1, 8, 21, 3, 157076000, time.UTC),
		PrometheusQuery:     "High memory usage",
		Status:              "resolved",
		AlertIngestDateTime: received,
		AlertName:           "High memory usage",
		Fingerprint:         "c6eadffa33fcdf37",
		StartsAt:            time.Date(2021, 6, 1, 7, 51, 3, 157076000, time.UTC),
		EndsAt:              time.Date(2021, 6, 1, 8, 21, 3, 157076000, time.UTC),
		Labels:              `{alertname="High memory usage", team="blue", zone="us-1"}`,
		Annotations:         `{summary="This alert was triggered for zone us-1"}`,
		GeneratorURL:        "https://grafana.example/alerting/1afz29v7z/edit",
		Receiver:            "deephaven",
		Source:              "grafana",
		SeriesKey:           "{}",
	}

	testAlert := rows.AlertRow{
		PrometheusDateTime:  time.Date(2026, 11, 25, 6, 0, 0, 123456789, time.UTC),
		Instance:            "Grafana",
		PrometheusQuery:     "TestAlert",
		Status:              "firing",
		AlertIngestDateTime: received,
		AlertName:           "TestAlert",
		Fingerprint:         "57c6d9296de2ad39",
		StartsAt:            time.Date(2026, 11, 25, 6, 0, 0, 123456789, time.UTC),
		Labels:              `{alertname="TestAlert", instance="Grafana"}`,
		Annotations:         `{summary="Notification test"}`,
		Receiver:            "deephaven",
		Source:              "grafana",
		SeriesKey:           `{instance="Grafana"}`,
		Values:              `{0="10"}`, // Grafana 8.0's valueString form has no ref IDs
		AlertValue:          f64(10),
	}

	for _, tc := range []struct {
		file string
		want []rows.AlertRow
	}{
		{"grafana_9_0_firing.json", docs(`{0="14151.331895396988"}|{0="47043.702386305304"}`, f64(14151.331895396988), f64(47043.702386305304))},
		{"grafana_docs_03703ac_data_avg_firing.json", docs(`{data-avg="14151.331895396988"}|{data-avg="47043.702386305304"}`, f64(14151.331895396988), f64(47043.702386305304))},
		{"grafana_11_firing.json", docs(`{B="44.23943737541908", C="1"}|{B="44.23943737541908", C="1"}`, f64(44.23943737541908), f64(44.23943737541908))},
		{"grafana_12_values_null_constructed.json", []rows.AlertRow{firingNaN, resolved}},
		{"grafana_11_nodata_constructed.json", []rows.AlertRow{noData, keepLast, dsError}},
		{"grafana_8_0_constructed.json", []rows.AlertRow{grafana80}},
		{"grafana_test_notification_constructed.json", []rows.AlertRow{testAlert}},
	} {
		t.Run(strings.TrimSuffix(tc.file, ".json"), func(t *testing.T) {
			rs := decodeRows(t, tc.file, received, Options{})
			if len(rs) != len(tc.want) {
				t.Fatalf("got %d rows, want %d", len(rs), len(tc.want))
			}
			for i := range rs {
				checkRow(t, rs[i], tc.want[i])
			}
		})
	}
}

// The message-level and per-alert fields that do not become columns.
func TestDecodeGrafanaFields(t *testing.T) {
	m, err := Decode(readTestdata(t, "grafana_12_values_null_constructed.json"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := GrafanaMessage{OrgID: 1, Title: "[FIRING:1, RESOLVED:1] Error ratio Backend (api)", State: "alerting", Message: "**Firing**\n\nValue: A=NaN, B=NaN, C=1\n"}
	if m.Grafana == nil || *m.Grafana != want {
		t.Errorf("Grafana = %+v, want %+v", m.Grafana, want)
	}
	if m.Version != "1" || m.TruncatedAlerts != 2 || m.Receiver != "deephaven" || m.ExternalURL != "https://grafana.example/" {
		t.Errorf("message fields: %+v", m)
	}
	a := m.Alerts[0]
	if a.Values != nil {
		t.Errorf("Values = %v, want nil for null", a.Values)
	}
	if !strings.HasPrefix(a.ValueString, "[ var='A' labels={instance=api-0:8080, job=api} type='query' value=NaN ], ") {
		t.Errorf("ValueString = %q", a.ValueString)
	}
	if a.SilenceURL != "https://grafana.example/alerting/silence/new?alertmanager=grafana&matcher=__alert_rule_uid__%3Df1a2b3c4d5e6f7&matcher=instance%3Dapi-0%3A8080&orgId=1" ||
		a.DashboardURL != "https://grafana.example/d/api?orgId=1" ||
		a.PanelURL != "https://grafana.example/d/api?orgId=1&viewPanel=4" ||
		a.ImageURL != "https://grafana.example/public/img/attachments/abc.png" {
		t.Errorf("URLs: %+v", a)
	}
	if b := m.Alerts[1]; b.ImageURL != "" || b.Values["A"] != 0.0042 || b.Values["C"] != 0 || len(b.Values) != 3 {
		t.Errorf("second alert: %+v", b)
	}

	// Grafana 8.0 sent neither orgId nor valueString.
	m, err = Decode(readTestdata(t, "grafana_8_0_constructed.json"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (GrafanaMessage{Title: "[RESOLVED]  (High memory usage blue us-1)", State: "ok", Message: "**Resolved**\n"}); m.Grafana == nil || *m.Grafana != want {
		t.Errorf("Grafana = %+v, want %+v", m.Grafana, want)
	}
	if a := m.Alerts[0]; a.Values != nil || a.ValueString != "" || a.Value != nil {
		t.Errorf("alert: %+v", a)
	}
}

// A version "4" body is Alertmanager's, whatever else it holds: fields
// named like Grafana's are unknown fields, neither decoded nor checked.
func TestDecodeAlertmanagerIgnoresGrafanaFields(t *testing.T) {
	received := time.Date(2026, 11, 25, 7, 0, 0, 0, time.UTC)
	m, err := Decode(readTestdata(t, "am_with_grafana_fields.json"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Grafana != nil {
		t.Errorf("Grafana = %+v, want nil", m.Grafana)
	}
	a := m.Alerts[0]
	if a.Values != nil || a.Value != nil || a.ValueString != "" || a.SilenceURL != "" {
		t.Errorf("alert: %+v", a)
	}
	r := m.Rows(t.Context(), received, Options{})[0]
	if r.Source != "alertmanager" || r.Values != "" || r.AlertValue != nil {
		t.Errorf("row: Source %q Values %q AlertValue %v", r.Source, r.Values, r.AlertValue)
	}
	for _, file := range []string{"am025_firing.json", "am034_extra_fields.json", "no_version.json"} {
		for _, r := range decodeRows(t, file, received, Options{}) {
			if r.Source != "alertmanager" || r.Values != "" || r.AlertValue != nil {
				t.Errorf("%s: Source %q Values %q AlertValue %v", file, r.Source, r.Values, r.AlertValue)
			}
		}
	}
}

func TestDecodeGrafanaLimits(t *testing.T) {
	for _, tc := range []struct {
		name        string
		values      string
		valueString string
		opts        Options
		err         string
	}{
		{"1000 values", manyValues(1000), `""`, Options{}, ""},
		{"1001 values", manyValues(1001), `""`, Options{}, "alerts[0].values: 1001 entries, more than the limit of 1000"},
		{"10000 values", manyValues(10000), `""`, Options{}, "alerts[0].values: 10000 entries, more than the limit of 1000"},
		{"values at a low limit", manyValues(3), `""`, Options{MaxLabelsPerAlert: 3}, ""},
		{"values over a low limit", manyValues(4), `""`, Options{MaxLabelsPerAlert: 3}, "alerts[0].values: 4 entries, more than the limit of 3"},
		{"1000 valueString entries", "null", manyValueStringEntries(1000), Options{}, ""},
		{"1001 valueString entries", "null", manyValueStringEntries(1001), Options{}, "alerts[0].valueString: more than 1000 values, the limit"},
		// valueString is not used, so not bounded, when values has any.
		{"valueString besides values", `{"B":1}`, manyValueStringEntries(1001), Options{}, ""},
		{"largest float64", `{"B":1.7976931348623157e308,"C":-1.7976931348623157e308}`, `""`, Options{}, ""},
		{"smallest float64", `{"B":5e-324}`, `""`, Options{}, ""},
		{"beyond float64", `{"B":-1.8e308}`, `""`, Options{}, `alerts[0].values["B"]: -1.8e308 is out of the float64 range`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(grafanaBody(tc.values, tc.valueString), tc.opts)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.err {
				t.Errorf("Decode error %q, want %q", got, tc.err)
			}
		})
	}
}

// Values keep the full float64 range and precision of what Grafana sent.
func TestDecodeGrafanaNumbers(t *testing.T) {
	m, err := Decode(grafanaBody(`{"A":1.7976931348623157e308,"B":5e-324,"C":9007199254740993,"D":-0,"E":1e+21}`, `""`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := m.Alerts[0].Values
	if v["A"] != math.MaxFloat64 || v["B"] != math.SmallestNonzeroFloat64 || v["C"] != 9007199254740992 ||
		!math.Signbit(v["D"]) || v["E"] != 1e21 {
		t.Errorf("Values = %v", v)
	}
	if got, want := m.Alerts[0].ValuesText(), `{A="1.7976931348623157e+308", B="5e-324", C="9.007199254740992e+15", D="-0", E="1e+21"}`; got != want {
		t.Errorf("ValuesText = %s, want %s", got, want)
	}
}

func TestParseValueString(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name string
		in   string
		want map[string]float64
	}{
		{"empty", "", map[string]float64{}},
		{"first form (Grafana 8.0, docs)", "[ metric='' labels={} value=14151.331895396988 ]", map[string]float64{"0": 14151.331895396988}},
		{"first form, several", "[ metric='a' labels={x=1} value=1.5 ], [ metric='b' labels={x=2} value=null ], [ metric='c' labels={} value=3 ]",
			map[string]float64{"0": 1.5, "2": 3}},
		{"test notification", "[ metric='foo' labels={instance=bar} value=10 ]", map[string]float64{"0": 10}},
		{"captures", "[ var='B' labels={foo=bar} value=15 ], [ var='C' labels={foo=bar} value=1 ]", map[string]float64{"B": 15, "C": 1}},
		{"classic conditions", "[ var='B0' metric='xxx' labels={env=xxx} value=0.016666666666666666 ], [ var='B1' metric='yyy' labels={env=yyy} value=0.13333333333333333 ]",
			map[string]float64{"B0": 0.016666666666666666, "B1": 0.13333333333333333}},
		{"with type", "[ var='RD1' labels={} type='reduce' value=24.77483755989039 ], [ var='TH3' labels={} type='threshold' value=1 ]",
			map[string]float64{"RD1": 24.77483755989039, "TH3": 1}},
		{"NaN and infinities", "[ var='A' labels={} value=NaN ], [ var='B' labels={} value=+Inf ], [ var='C' labels={} value=-Inf ]",
			map[string]float64{"A": nan, "B": math.Inf(1), "C": math.Inf(-1)}},
		{"null is missing", "[ var='A' labels={} value=null ], [ var='B' labels={} value=2 ]", map[string]float64{"B": 2}},
		{"exponents", "[ var='A' labels={} value=1e+21 ], [ var='B' labels={} value=-1.5e-07 ]", map[string]float64{"A": 1e21, "B": -1.5e-07}},
		{"repeated ref ID keeps the last", "[ var='B' labels={a=1} value=1 ], [ var='B' labels={a=2} value=2 ]", map[string]float64{"B": 2}},
		{"labels with separators", "[ var='B' labels={path=/a, b}, x=y=z} value=7 ]", map[string]float64{"B": 7}},
		{"not Go's float syntax", "[ var='A' labels={} value=inf ], [ var='B' labels={} value=0x10 ], [ var='C' labels={} value=1_0 ], [ var='D' labels={} value=4 ]",
			map[string]float64{"D": 4}},
		{"unknown format", "B=44.2, C=1", map[string]float64{}},
		{"garbage around entries", "xx [ var='A' labels={} value=1 ] yy", map[string]float64{"A": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, over := parseValueString(tc.in, 0)
			if over {
				t.Error("over the limit without a limit")
			}
			if !sameValues(got, tc.want) {
				t.Errorf("parseValueString(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}

	s := "[ var='A' labels={} value=1 ], [ var='B' labels={} value=null ], [ var='C' labels={} value=3 ]"
	if got, over := parseValueString(s, 3); over || len(got) != 2 {
		t.Errorf("3 entries, limit 3: %v, over=%v", got, over)
	}
	if got, over := parseValueString(s, 2); !over || len(got) != 1 {
		t.Errorf("3 entries, limit 2: %v, over=%v", got, over)
	}
}

func sameValues(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !sameValue(&v, &w) {
			return false
		}
	}
	return true
}

// TestChooseValue covers the cases of the value rule (chooseValue),
// including each edge case of Grafana's payloads it has to handle.
func TestChooseValue(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	noData := map[string]string{"alertname": "DatasourceNoData", "rulename": "R"}
	dsError := map[string]string{"alertname": "DatasourceError", "rulename": "R"}
	rule := map[string]string{"alertname": "R"}
	for _, tc := range []struct {
		name        string
		m           map[string]float64
		labels      map[string]string
		annotations map[string]string
		want        string // "" for none
	}{
		// Step 0: no candidates.
		{name: "no values", m: nil, want: ""},
		{name: "empty values", m: map[string]float64{}, want: ""},

		// Step 1: explicit.
		{name: "annotation picks", m: map[string]float64{"A": 3, "B": 44.2, "C": 1},
			annotations: map[string]string{ValueRefAnnotation: "A"}, want: "A"},
		{name: "annotation may pick the condition", m: map[string]float64{"B": 44.2, "C": 1},
			annotations: map[string]string{ValueRefAnnotation: "C"}, want: "C"},
		{name: "annotation naming no value is ignored", m: map[string]float64{"B": 44.2, "C": 1},
			annotations: map[string]string{ValueRefAnnotation: "Z"}, want: "B"},
		{name: "annotation with a custom ref ID", m: map[string]float64{"query": 3, "avg": 7, "threshold": 1},
			annotations: map[string]string{ValueRefAnnotation: "avg"}, want: "avg"},

		// Step 2a: a single value.
		{name: "single value (data-avg, docs)", m: map[string]float64{"data-avg": 14151.331895396988}, want: "data-avg"},
		{name: "single value from valueString, Grafana 8", m: map[string]float64{"0": 14151.331895396988}, want: "0"},
		{name: "single threshold value", m: map[string]float64{"C": 1}, want: "C"},
		{name: "single NaN", m: map[string]float64{"B": nan}, want: "B"},

		// Step 2b: classic conditions.
		{name: "classic condition", m: map[string]float64{"B0": 0.0166, "B1": 0.1333}, want: "B0"},
		{name: "classic condition, three", m: map[string]float64{"B2": 5, "B0": 3, "B1": 4}, want: "B0"},
		{name: "classic condition beside a query", m: map[string]float64{"A": 7, "B0": 3, "B1": 4}, want: "B0"},
		{name: "classic-like keys with a 0/1 companion", m: map[string]float64{"B0": 3, "B1": 4, "C": 1}, want: "B1"},
		{name: "classic condition, first form of valueString", m: map[string]float64{"0": 1.5, "1": 2.5}, want: "0"},
		{name: "indexed keys without 0", m: map[string]float64{"B1": 3, "B2": 4}, want: "B2"},

		// Steps 2c–e: the condition and its predecessor.
		{name: "default layout (docs: B, C=1)", m: map[string]float64{"B": 44.23943737541908, "C": 1}, want: "B"},
		{name: "query, reduce, threshold", m: map[string]float64{"A": 40, "B": 44.2, "C": 1}, want: "B"},
		{name: "resolved: C is 0", m: map[string]float64{"B": 12.5, "C": 0}, want: "B"},
		{name: "metric is 1 too (up)", m: map[string]float64{"B": 1, "C": 1}, want: "B"},
		{name: "metric is 0 and C is 1", m: map[string]float64{"B": 0, "C": 1}, want: "B"},
		{name: "condition B on instant query A (Grafana's eval test)", m: map[string]float64{"A": 10, "B": 1}, want: "A"},
		{name: "C even when not 0 or 1", m: map[string]float64{"B": 5, "C": 7}, want: "B"},
		{name: "greatest key is not 0/1: no condition", m: map[string]float64{"A": 3, "B": 4}, want: "B"},
		{name: "natural order: AA after C", m: map[string]float64{"A": 3, "B": 4, "AA": 1}, want: "B"},
		{name: "natural order: predecessor of C across lengths", m: map[string]float64{"A": 3, "B": 4, "C": 1, "AA": 9}, want: "B"},
		{name: "nothing before C", m: map[string]float64{"C": 1, "D": 3, "E": 4}, want: "E"},
		{name: "custom ref IDs with a threshold", m: map[string]float64{"query": 3, "threshold": 1}, want: "query"},
		{name: "custom ref IDs, several", m: map[string]float64{"query": 3, "reduce": 5, "threshold": 1}, want: "reduce"},
		{name: "several reduces before C", m: map[string]float64{"A": 5, "B": 6, "D": 2, "C": 1}, want: "B"},

		// NaN, ±Inf.
		{name: "NaN reduce: kept when nothing else", m: map[string]float64{"B": nan, "C": 1}, want: "B"},
		{name: "NaN dropped", m: map[string]float64{"A": 40, "B": nan, "C": 1}, want: "A"},
		{name: "all NaN", m: map[string]float64{"A": nan, "B": nan, "C": 1}, want: "B"},
		{name: "+Inf is a value", m: map[string]float64{"B": inf, "C": 1}, want: "B"},

		// NoData and Error.
		{name: "NoData placeholders", m: map[string]float64{"B": -1, "C": -1}, labels: noData, want: ""},
		{name: "Error placeholders", m: map[string]float64{"B": -1, "C": -1}, labels: dsError, want: ""},
		{name: "NoData state reason", m: map[string]float64{"B": -1, "C": -1}, labels: rule,
			annotations: map[string]string{"grafana_state_reason": "NoData"}, want: ""},
		{name: "Error state reason with keep-last", m: map[string]float64{"B": -1, "C": -1}, labels: rule,
			annotations: map[string]string{"grafana_state_reason": "Error, KeepLast"}, want: ""},
		{name: "NoData: annotation naming a placeholder", m: map[string]float64{"B": -1, "C": -1}, labels: noData,
			annotations: map[string]string{ValueRefAnnotation: "B"}, want: ""},
		{name: "NoData: a real value is kept", m: map[string]float64{"B": 3, "C": -1}, labels: noData, want: "B"},
		{name: "-1 is a value otherwise", m: map[string]float64{"B": -1, "C": 1}, labels: rule, want: "B"},
		{name: "other state reasons keep -1", m: map[string]float64{"B": -1, "C": 1}, labels: rule,
			annotations: map[string]string{"grafana_state_reason": "MissingSeries"}, want: "B"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := chooseValue(tc.m, tc.labels, tc.annotations)
			if ok != (tc.want != "") || got != tc.want {
				t.Errorf("chooseValue(%v) = %q, %v; want %q", tc.m, got, ok, tc.want)
			}
		})
	}
}

func TestValuesText(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    Alert
		want string
	}{
		{"nothing reported", Alert{}, ""},
		{"values", Alert{Values: map[string]float64{"C": 1, "B": 44.2}}, `{B="44.2", C="1"}`},
		{"values win over valueString", Alert{Values: map[string]float64{"B": 1}, ValueString: "[ var='B' labels={} value=2 ]"}, `{B="1"}`},
		{"valueString when values is null", Alert{ValueString: "[ var='B' labels={} value=NaN ], [ var='C' labels={} value=+Inf ]"}, `{B="NaN", C="+Inf"}`},
		{"valueString when values is empty", Alert{Values: map[string]float64{}, ValueString: "[ var='B' labels={} value=3 ]"}, `{B="3"}`},
		{"all null: as sent", Alert{ValueString: "[ var='B' labels={} value=null ]"}, "[ var='B' labels={} value=null ]"},
		{"unknown format: as sent", Alert{ValueString: "B=44.2"}, "B=44.2"},
	} {
		if got := tc.a.ValuesText(); got != tc.want {
			t.Errorf("%s: ValuesText = %s, want %s", tc.name, got, tc.want)
		}
	}
}

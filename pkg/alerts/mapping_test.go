package alerts

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

func decodeRows(t *testing.T, file string, receivedAt time.Time, opts Options) []rows.AlertRow {
	t.Helper()
	m, err := Decode(readTestdata(t, file), opts)
	if err != nil {
		t.Fatal(err)
	}
	return m.Rows(context.Background(), receivedAt, opts)
}

func TestRowsFiring(t *testing.T) {
	// A receive time in another zone must come out in UTC.
	received := time.Date(2026, 11, 25, 4, 0, 0, 0, time.FixedZone("CET", 3600))
	rs := decodeRows(t, "am025_firing.json", received, Options{})
	if len(rs) != 2 {
		t.Fatalf("got %d rows, want 2", len(rs))
	}
	startsAt := time.Date(2026, 11, 25, 2, 54, 38, 320000000, time.UTC)
	want := rows.AlertRow{
		PrometheusDateTime:  startsAt,
		Job:                 "prometheus",
		Instance:            "localhost:19090",
		PrometheusQuery:     "up",
		Status:              "firing",
		AlertIngestDateTime: time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC),
		AlertName:           "SelfUp",
		Severity:            "info",
		Fingerprint:         "8203da3fbe0de749",
		StartsAt:            startsAt,
		EndsAt:              time.Time{},
		Labels:              `{alertname="SelfUp", instance="localhost:19090", job="prometheus", prometheus_query="up", replica="a", severity="info"}`,
		Annotations:         `{description="localhost:19090 of job prometheus is up", summary="Prometheus is up"}`,
		GeneratorURL:        "http://vm:19090/graph?g0.expr=up+%3D%3D+1&g0.tab=1",
		Receiver:            "deephaven",
		Source:              "alertmanager",
		SeriesKey:           `{instance="localhost:19090", job="prometheus"}`, // the default join labels
	}
	checkRow(t, rs[0], want)
	if rs[1].Job != "node" || rs[1].Instance != "localhost:19100" {
		t.Errorf("second row: %+v", rs[1])
	}
}

func TestRowsResolved(t *testing.T) {
	received := time.Date(2026, 11, 25, 1, 11, 0, 0, time.UTC)
	rs := decodeRows(t, "am025_resolved.json", received, Options{})
	want := rows.AlertRow{
		PrometheusDateTime:  time.Date(2026, 11, 25, 1, 10, 0, 500000000, time.UTC), // endsAt
		Job:                 "node",
		Instance:            "db1:9100",
		PrometheusQuery:     "DiskFull", // no prometheus_query label: the alertname
		Status:              "resolved",
		AlertIngestDateTime: received,
		AlertName:           "DiskFull",
		Severity:            "critical",
		Fingerprint:         rs[0].Fingerprint,
		StartsAt:            time.Date(2026, 11, 25, 1, 0, 0, 123456789, time.UTC),
		EndsAt:              time.Date(2026, 11, 25, 1, 10, 0, 500000000, time.UTC),
		Labels:              `{alertname="DiskFull", instance="db1:9100", job="node", severity="critical"}`,
		Annotations:         `{summary="Disk almost full"}`,
		GeneratorURL:        "http://vm:19090/graph?g0.expr=disk",
		Receiver:            "deephaven",
		Source:              "alertmanager",
		SeriesKey:           `{instance="db1:9100", job="node"}`,
	}
	checkRow(t, rs[0], want)
}

func TestRowsMissingLabelsAndCustomLabelNames(t *testing.T) {
	received := time.Date(2026, 11, 25, 5, 0, 0, 0, time.UTC)
	// This payload has no instance, severity or prometheus_query label.
	rs := decodeRows(t, "missing_fingerprint.json", received, Options{})
	r := rs[0]
	if r.Instance != "" || r.Severity != "" || r.Job != "j" || r.PrometheusQuery != "A" || r.Annotations != "{}" {
		t.Errorf("row: %+v", r)
	}

	// Other label names, as configured.
	rs = decodeRows(t, "am025_firing.json", received, Options{QueryLabel: "replica", SeverityLabel: "job"})
	if r := rs[0]; r.PrometheusQuery != "a" || r.Severity != "prometheus" {
		t.Errorf("custom labels: query %q severity %q", r.PrometheusQuery, r.Severity)
	}
}

func TestRowsVerbatimStrings(t *testing.T) {
	rs := decodeRows(t, "script_strings.json", time.Unix(0, 0), Options{})
	r := rs[0]
	const evil = `"); import os; os.system("touch /tmp/pwned") #`
	if r.AlertName != evil || r.PrometheusQuery != evil || r.Receiver != "`rm -rf /`" || r.GeneratorURL != "javascript:alert(1)" {
		t.Errorf("row: %+v", r)
	}
	want := `{alertname="\"); import os; os.system(\"touch /tmp/pwned\") #", instance="${jndi:ldap://x/a}", job="j'; DROP TABLE prometheus_alerts; --"}`
	if r.Labels != want {
		t.Errorf("Labels:\n got %s\nwant %s", r.Labels, want)
	}
}

func TestLabelsText(t *testing.T) {
	for _, tc := range []struct {
		in   map[string]string
		want string
	}{
		{nil, "{}"},
		{map[string]string{"job": "x", "instance": "a:9090"}, `{instance="a:9090", job="x"}`},
		{map[string]string{"a": "x\x00y\n\"\\"}, `{a="x\x00y\n\"\\"}`},
		{map[string]string{"a": "é ☃"}, `{a="é ☃"}`},
	} {
		if got := LabelsText(tc.in); got != tc.want {
			t.Errorf("LabelsText(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestRowKeys(t *testing.T) {
	// A firing and a resolved event of one alert are different rows.
	rs := decodeRows(t, "am034_extra_fields.json", time.Unix(0, 0), Options{})
	if rs[0].Key() == rs[1].Key() {
		t.Error("different alerts share a key")
	}
	if k := rs[1].Key(); k.Status != "resolved" || k.PrometheusDateTime != rs[1].EndsAt.UnixNano() {
		t.Errorf("resolved key: %+v", k)
	}
}

func checkRow(t *testing.T, got, want rows.AlertRow) {
	t.Helper()
	// Alert event times are kept to the millisecond (as Alertmanager's
	// API reports them); the wants are written as the senders sent them.
	want.PrometheusDateTime = want.PrometheusDateTime.Truncate(time.Millisecond)
	want.StartsAt = want.StartsAt.Truncate(time.Millisecond)
	want.EndsAt = want.EndsAt.Truncate(time.Millisecond)
	for _, tm := range []struct {
		name      string
		got, want time.Time
	}{
		{"PrometheusDateTime", got.PrometheusDateTime, want.PrometheusDateTime},
		{"AlertIngestDateTime", got.AlertIngestDateTime, want.AlertIngestDateTime},
		{"StartsAt", got.StartsAt, want.StartsAt},
		{"EndsAt", got.EndsAt, want.EndsAt},
	} {
		if !tm.got.Equal(tm.want) {
			t.Errorf("%s = %v, want %v", tm.name, tm.got, tm.want)
		}
		if !tm.got.IsZero() && tm.got.Location() != time.UTC {
			t.Errorf("%s is in %v, want UTC", tm.name, tm.got.Location())
		}
	}
	got.PrometheusDateTime, got.AlertIngestDateTime, got.StartsAt, got.EndsAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	want.PrometheusDateTime, want.AlertIngestDateTime, want.StartsAt, want.EndsAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	// AlertValue is a pointer: compare what it points to (NaN equals NaN).
	if !sameValue(got.AlertValue, want.AlertValue) {
		t.Errorf("AlertValue = %s, want %s", fmtValue(got.AlertValue), fmtValue(want.AlertValue))
	}
	got.AlertValue, want.AlertValue = nil, nil
	if got != want {
		t.Errorf("row:\n got %+v\nwant %+v", got, want)
	}
}

func sameValue(a, b *float64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b || (math.IsNaN(*a) && math.IsNaN(*b))
}

func fmtValue(v *float64) string {
	if v == nil {
		return "nil"
	}
	return strconv.FormatFloat(*v, 'g', -1, 64)
}

type fixedResolver map[string]rows.JoinTarget

func (r fixedResolver) Resolve(_ context.Context, labels map[string]string, _ string) (rows.JoinTarget, bool) {
	t, ok := r[labels["alertname"]]
	return t, ok
}

// An alert naming a configured query is keyed on that query's join labels;
// other alerts go to the Resolver, and to their alertname when it does not
// know them.
func TestRowsTargets(t *testing.T) {
	received := time.Date(2026, 11, 25, 5, 0, 0, 0, time.UTC)
	opts := Options{
		JoinLabels: map[string][]string{"up": {"job"}},
		Resolver:   fixedResolver{"DiskFull": {Query: "DiskFull:0a1b2c3d", SeriesKey: `{device="sda"}`}, "SelfUp": {Query: "never", SeriesKey: "never"}},
	}
	rs := decodeRows(t, "am025_firing.json", received, opts)
	if rs[0].PrometheusQuery != "up" || rs[0].SeriesKey != `{job="prometheus"}` {
		t.Errorf("alert naming a configured query: %s %s", rs[0].PrometheusQuery, rs[0].SeriesKey)
	}
	rs = decodeRows(t, "am025_resolved.json", received, opts)
	if rs[0].PrometheusQuery != "DiskFull:0a1b2c3d" || rs[0].SeriesKey != `{device="sda"}` {
		t.Errorf("alert of a known rule: %s %s", rs[0].PrometheusQuery, rs[0].SeriesKey)
	}
}

// randomLabels returns a label set of up to 40 labels (more than
// LabelsText keeps on its stack) whose names and values mix plain ASCII,
// quotes, backslashes, control characters, DEL, non-ASCII and invalid
// UTF-8, all of which %q treats differently.
func randomLabels(rng *rand.Rand) map[string]string {
	pieces := []string{"a", "job", "instance", "Z", "_", "0", " ", `"`, `\`, "\x00", "\n", "\t", "\x7f", "~", "é", "☃", "😀",
		"\u00a0", "\u200b", "\ufffd", "\xff", "\xc3", "{", "}", ",", "=", "'", "`"}
	word := func() string {
		var sb strings.Builder
		for range rng.IntN(8) {
			sb.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return sb.String()
	}
	m := map[string]string{}
	for range rng.IntN(41) {
		m[word()] = word()
	}
	return m
}

// LabelsText writes what model.LabelSet's String writes.
func TestLabelsTextIsModels(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 20000 {
		m := randomLabels(rng)
		if got, want := LabelsText(m), toLabelSet(m).String(); got != want {
			t.Fatalf("LabelsText(%q) =\n %s\nmodel.LabelSet's String:\n %s", m, got, want)
		}
	}
}

// configuredTarget keys an alert as rows.KeySpec keys its whole label set.
func TestConfiguredTargetKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	names := []string{"job", "instance", "a", "", "__name__", "é"}
	for range 5000 {
		labels := randomLabels(rng)
		for _, name := range names {
			switch rng.IntN(3) {
			case 0:
				labels[name] = "v" + name
			case 1:
				labels[name] = ""
			}
		}
		var join []string
		if rng.IntN(5) > 0 {
			join = []string{}
			for range rng.IntN(4) {
				join = append(join, names[rng.IntN(len(names))])
			}
		}
		opts := Options{JoinLabels: map[string][]string{"q": join}}.withDefaults()
		labels[opts.QueryLabel] = []string{"q", "other"}[rng.IntN(2)]
		got := configuredTarget(labels, opts)
		spec := rows.KeySpec{Only: join}
		if labels[opts.QueryLabel] != "q" {
			spec.Only = rows.DefaultJoinLabels
		}
		if want := spec.Key(toLabelSet(labels)); got.SeriesKey != want {
			t.Fatalf("labels %q, join %q: key %s, want %s", labels, join, got.SeriesKey, want)
		}
	}
}

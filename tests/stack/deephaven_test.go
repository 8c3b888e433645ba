package stack

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/tables"
)

func dial(t testing.TB, ctx context.Context, addr string) *deephaven.Client {
	t.Helper()
	c, err := deephaven.Dial(ctx, addr)
	if err != nil {
		t.Fatalf("connecting to Deephaven at %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tableRows returns the number of rows of the published table name.
func tableRows(ctx context.Context, c *deephaven.Client, name string) (int64, error) {
	tbl, err := c.Snapshot(ctx, c.NamedTable(name))
	if err != nil {
		return 0, err
	}
	defer tbl.Release()
	return tbl.NumRows(), nil
}

// joinedValue returns the Value of an alert of alertName in the join, or 0.
func joinedValue(ctx context.Context, c *deephaven.Client, alertName string) (float64, error) {
	tbl, err := c.Snapshot(ctx, c.NamedTable(rows.DefaultJoinedTable))
	if err != nil {
		return 0, err
	}
	defer tbl.Release()
	names, values := tbl.Schema().FieldIndices("AlertName"), tbl.Schema().FieldIndices("Value")
	if len(names) != 1 || len(values) != 1 {
		return 0, fmt.Errorf("%s lacks AlertName or Value", rows.DefaultJoinedTable)
	}
	nc, vc := tbl.Column(names[0]).Data().Chunks(), tbl.Column(values[0]).Data().Chunks()
	for i := range nc {
		n, v := nc[i].(*array.String), vc[i].(*array.Float64)
		for j := 0; j < n.Len(); j++ {
			if n.Value(j) == alertName && v.IsValid(j) {
				return v.Value(j), nil
			}
		}
	}
	return 0, nil
}

// demoTarget is one scrape target of the compose demo.
type demoTarget struct{ job, instance string }

var demoTargets = []demoTarget{
	{"prometheus", "localhost:9090"},
	{"alertmanager", "alertmanager:9093"},
	{"bridge", "bridge:5000"},
}

// demoRule mirrors an alerting rule of prometheus/rules.yml: active(t) is its
// clock condition.
type demoRule struct {
	alert, query string
	jobs         []string // empty: every target
	active       func(sec int64) bool
}

// demoFamily is a rule the bridge discovers, with no prometheus_query label:
// its alerts join its value expression's rows (demoFamilyQuery).
const (
	demoFamily      = "DemoHeapInUse"
	demoFamilyQuery = demoFamily + ":5f1e2d3c"
)

var demoRules = []demoRule{
	{"DemoMemoryAllocated", "go_memstats_alloc_bytes", nil, func(s int64) bool { return s%60 < 30 }},
	{"DemoGoroutines", "go_goroutines", nil, func(s int64) bool { return s%60 >= 30 }},
	{"DemoTargetUp", "up", nil, func(s int64) bool { return s%40 < 20 }},
	{"DemoHTTPRequestRate", "prometheus_http_requests_rate", []string{"prometheus"}, func(s int64) bool { return s%90 < 45 }},
	{demoFamily, demoFamilyQuery, nil, func(s int64) bool { return s%60 < 30 }},
}

// demoRows makes the rows the compose demo's bridge writes in the given span
// before end: a sample of each bridge.yml query every 5 s for each target,
// and the firing and resolved events of the demo rules, whose conditions
// switch with the clock. The values are plausible, not real.
func demoRows(end time.Time, span time.Duration) ([]rows.AlertRow, []rows.MetricRow) {
	const step = 5 * time.Second
	end = end.UTC().Truncate(step)
	start := end.Add(-span)
	var metrics []rows.MetricRow
	var alerts []rows.AlertRow
	firing := map[string]time.Time{} // fingerprint -> StartsAt
	for ts := start; !ts.After(end); ts = ts.Add(step) {
		i := float64(ts.Sub(start) / step)
		sec := ts.Unix()
		for n, tg := range demoTargets {
			base := []float64{14e6, 8e6, 3e6}[n]
			// Heap grows until a GC every 45 s drops it.
			alloc := base + float64(sec%45)*base/60 + 1e5*math.Sin(i/2)
			goroutines := []float64{42, 31, 18}[n] + math.Round(3*math.Sin(i/3+float64(n)))
			series := fmt.Sprintf(`instance="%s", job="%s"`, tg.instance, tg.job)
			add := func(query string, v float64, labels string) {
				metrics = append(metrics, rows.MetricRow{
					PrometheusDateTime: ts, PrometheusQuery: query, Job: tg.job, Instance: tg.instance,
					Value: v, MetricIngestDateTime: ts.Add(40 * time.Millisecond), Labels: labels,
					SeriesKey: "{" + series + "}",
				})
			}
			add("go_memstats_alloc_bytes", alloc, `{__name__="go_memstats_alloc_bytes", `+series+`}`)
			add("go_goroutines", goroutines, `{__name__="go_goroutines", `+series+`}`)
			add("up", 1, `{__name__="up", `+series+`}`)
			if tg.job == "prometheus" {
				add("prometheus_http_requests_rate", 0.8+0.3*math.Sin(i/4), "{"+series+"}")
			}
			// The value expression of the zero-configuration rule family,
			// discovered by the bridge: heap in use, one line per target.
			add(demoFamilyQuery, 0.6*alloc, `{__name__="go_memstats_heap_inuse_bytes", `+series+`}`)
		}
		// The rules are evaluated at the same 5 s steps.
		for _, r := range demoRules {
			for _, tg := range demoTargets {
				if len(r.jobs) > 0 && r.jobs[0] != tg.job {
					continue
				}
				labels := fmt.Sprintf(`{alertname="%s", instance="%s", job="%s", prometheus_query="%s", severity="info"}`,
					r.alert, tg.instance, tg.job, r.query)
				if r.alert == demoFamily {
					labels = fmt.Sprintf(`{alertname="%s", instance="%s", job="%s", severity="info"}`, r.alert, tg.instance, tg.job)
				}
				fp := fingerprint(labels)
				startsAt, isFiring := firing[fp]
				row := rows.AlertRow{
					Job: tg.job, Instance: tg.instance, PrometheusQuery: r.query,
					AlertIngestDateTime: ts.Add(1200 * time.Millisecond), AlertName: r.alert, Severity: "info",
					Fingerprint: fp, Labels: labels,
					Annotations:  fmt.Sprintf(`{summary="demo alert %s on %s"}`, r.alert, tg.instance),
					GeneratorURL: "http://localhost:9090/graph?g0.expr=" + r.query,
					Receiver:     "bridge",
					Source:       rows.SourceAlertmanager,
					SeriesKey:    fmt.Sprintf(`{instance="%s", job="%s"}`, tg.instance, tg.job),
				}
				switch active := r.active(sec); {
				case active && !isFiring:
					firing[fp] = ts
					row.Status, row.PrometheusDateTime, row.StartsAt = "firing", ts, ts
					alerts = append(alerts, row)
				case !active && isFiring:
					delete(firing, fp)
					row.Status, row.PrometheusDateTime, row.StartsAt, row.EndsAt = "resolved", ts, startsAt, ts
					alerts = append(alerts, row)
				}
			}
		}
	}
	return alerts, metrics
}

func fingerprint(labels string) string {
	h := fnv.New64a()
	h.Write([]byte(labels))
	return fmt.Sprintf("%016x", h.Sum64())
}

// demoRuleRow is the rules table's row of the discovered demo rule family.
func demoRuleRow(at time.Time) rows.RuleRow {
	return rows.RuleRow{
		Group: "demo", File: "/etc/prometheus/rules.yml", AlertName: demoFamily,
		Expr:      `go_memstats_heap_inuse_bytes > 0 and on () (vector(time()) % 60 < 30)`,
		ValueExpr: "go_memstats_heap_inuse_bytes", Reduced: true, Derivation: "left side of and, then vector side of >",
		Query: demoFamilyQuery, JoinLabels: "all but {__name__, alertname, severity}", IntervalSeconds: 15,
		StaticLabels: `{severity="info"}`, Annotations: "{}", Health: "ok", State: "firing", ActiveAlerts: 3,
		LastEvaluation: at, UpdatedAt: at, Present: true,
	}
}

// writeDemoRows writes demoRows into the input tables that app.d created
// and waits until the join has a row for each alert.
func writeDemoRows(t testing.TB, ctx context.Context, c *deephaven.Client) (alerts []rows.AlertRow, metrics []rows.MetricRow) {
	t.Helper()
	alerts, metrics = demoRows(time.Now(), 5*time.Minute)
	alertsTable, err := c.OpenInputTable(ctx, rows.DefaultAlertsTable, rows.AlertSchema, rows.AlertKeys...)
	if err != nil {
		t.Fatalf("opening the app.d table: %v", err)
	}
	metricsTable, err := c.OpenInputTable(ctx, rows.DefaultMetricsTable, rows.MetricSchema, rows.MetricsTable.Keys...)
	if err != nil {
		t.Fatalf("opening the app.d table: %v", err)
	}
	rulesTable, err := c.OpenInputTable(ctx, rows.DefaultRulesTable, rows.RuleSchema, rows.RuleKeys...)
	if err != nil {
		t.Fatalf("opening the app.d table: %v", err)
	}
	rrec := rows.RuleRecord(memory.DefaultAllocator, []rows.RuleRow{demoRuleRow(time.Now().UTC())})
	defer rrec.Release()
	if err := rulesTable.Add(ctx, rrec); err != nil {
		t.Fatal(err)
	}
	// Metrics first, so that each alert finds its sample when it joins.
	slots := make([]int64, len(metrics))
	for i := range slots {
		slots[i] = int64(i)
	}
	mrec := rows.MetricRecord(memory.DefaultAllocator, metrics, rows.Places{Writer: tables.WriterID("stack-test"), Slots: slots})
	defer mrec.Release()
	if err := metricsTable.Add(ctx, mrec); err != nil {
		t.Fatal(err)
	}
	arec := rows.AlertRecord(memory.DefaultAllocator, alerts)
	defer arec.Release()
	if err := alertsTable.Add(ctx, arec); err != nil {
		t.Fatal(err)
	}
	// One notification per alert event, as the webhook logs them: the
	// episodes count them.
	notesTable, err := c.OpenInputTable(ctx, rows.DefaultNotificationsTable, rows.NotificationSchema, rows.NotificationsTable.Keys...)
	if err != nil {
		t.Fatalf("opening the app.d table: %v", err)
	}
	notes := make([]rows.NotificationRow, len(alerts))
	noteSlots := make([]int64, len(alerts))
	for i, a := range alerts {
		notes[i] = rows.NotificationRow{Fingerprint: a.Fingerprint, StartsAt: a.StartsAt, Status: a.Status, AlertName: a.AlertName,
			ReceivedAt: a.AlertIngestDateTime, Source: a.Source, Receiver: a.Receiver}
		noteSlots[i] = int64(i)
	}
	nrec := rows.NotificationRecord(memory.DefaultAllocator, notes, rows.Places{Writer: tables.WriterID("stack-test"), Slots: noteSlots})
	defer nrec.Release()
	if err := notesTable.Add(ctx, nrec); err != nil {
		t.Fatal(err)
	}
	for {
		n, err := tableRows(ctx, c, rows.DefaultJoinedTable)
		if err == nil && n == int64(len(alerts)) {
			return alerts, metrics
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s has %d rows (err %v), want %d", rows.DefaultJoinedTable, n, err, len(alerts))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

package tables_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/tables"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func setup(t *testing.T) (*deephaven.Client, *tables.Tables) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := deephaven.Dial(ctx, testenv.Deephaven(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	sfx := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	n := tables.DefaultNames.WithSuffix(sfx)
	tb := tables.New(c, n, nil)
	if err := tb.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	return c, tb
}

// episodes reads the episodes table into maps by Fingerprint/StartsAt.
func episodes(t *testing.T, c *deephaven.Client, name string) map[string]map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tab, err := c.Snapshot(ctx, c.NamedTable(name))
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Release()
	out := map[string]map[string]any{}
	tr := array.NewTableReader(tab, 0)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			row := map[string]any{}
			for j, f := range rec.Schema().Fields() {
				col := rec.Column(j)
				if col.IsNull(i) {
					row[f.Name] = nil
					continue
				}
				switch a := col.(type) {
				case *array.Timestamp:
					row[f.Name] = time.Unix(0, int64(a.Value(i))).UTC()
				case *array.Float64:
					row[f.Name] = a.Value(i)
				case *array.Int64:
					row[f.Name] = a.Value(i)
				default:
					row[f.Name] = a.ValueStr(i)
				}
			}
			out[fmt.Sprintf("%s/%s", row["Fingerprint"], row["StartsAt"].(time.Time).Format(time.RFC3339))] = row
		}
	}
	return out
}

// The episodes table is live and server-side: an episode per fingerprint
// and start, its notifications counted, resolved at and duration filled in
// the moment its resolved row lands, a new start a new episode.
func TestEpisodes(t *testing.T) {
	c, tb := setup(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	firing := func(fp string, start time.Time) rows.AlertRow {
		return rows.AlertRow{PrometheusDateTime: start, Status: "firing", Fingerprint: fp, StartsAt: start, AlertName: "Disk", Severity: "critical",
			Labels: `{alertname="Disk"}`, AlertIngestDateTime: start.Add(time.Second), Source: rows.SourceAlertmanager}
	}
	note := func(fp string, start time.Time, status string, at time.Time, src string) rows.NotificationRow {
		return rows.NotificationRow{Fingerprint: fp, StartsAt: start, Status: status, AlertName: "Disk", ReceivedAt: at, Source: src, Receiver: "r"}
	}
	if err := tb.AddAlerts(ctx, []rows.AlertRow{firing("fa", t0)}); err != nil {
		t.Fatal(err)
	}
	notes := []rows.NotificationRow{
		note("fa", t0, "firing", t0.Add(time.Second), rows.SourceAlertmanager),
		note("fa", t0, "firing", t0.Add(4*time.Hour), rows.SourceAlertmanager), // repeat
		note("fa", t0, "firing", t0.Add(4*time.Hour), rows.SourceAPI),          // seen by the API too
	}
	if err := tb.AddNotifications(ctx, notes); err != nil {
		t.Fatal(err)
	}
	key := "fa/" + t0.Format(time.RFC3339)
	waitFor(t, func() string {
		e := episodes(t, c, tb.Names().Episodes)[key]
		if e == nil || e["Notifications"] != int64(2) || e["ResolvedAt"] != nil || e["DurationSeconds"] != nil {
			return fmt.Sprintf("firing episode %v", e)
		}
		return ""
	})
	// Resolve: the same episode row changes, live.
	resolved := firing("fa", t0)
	resolved.Status, resolved.EndsAt, resolved.PrometheusDateTime = "resolved", t0.Add(3*time.Hour+12*time.Minute), t0.Add(3*time.Hour+12*time.Minute)
	if err := tb.AddAlerts(ctx, []rows.AlertRow{resolved}); err != nil {
		t.Fatal(err)
	}
	if err := tb.AddNotifications(ctx, []rows.NotificationRow{note("fa", t0, "resolved", resolved.EndsAt, rows.SourceAlertmanager)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() string {
		e := episodes(t, c, tb.Names().Episodes)[key]
		if e == nil || e["Notifications"] != int64(3) || e["DurationSeconds"] != (3*time.Hour+12*time.Minute).Seconds() ||
			e["ResolvedAt"] != resolved.EndsAt || e["FirstSeen"] != t0.Add(time.Second) || e["AlertName"] != "Disk" {
			return fmt.Sprintf("resolved episode %v", e)
		}
		return ""
	})
	// It fires again: a second episode.
	t1 := t0.Add(5 * time.Hour)
	if err := tb.AddAlerts(ctx, []rows.AlertRow{firing("fa", t1)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() string {
		es := episodes(t, c, tb.Names().Episodes)
		if len(es) != 2 || es["fa/"+t1.Format(time.RFC3339)]["ResolvedAt"] != nil {
			return fmt.Sprintf("episodes %v", es)
		}
		return ""
	})
}

func waitFor(t *testing.T, f func() string) {
	t.Helper()
	var why string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if why = f(); why == "" {
			return
		}
	}
	t.Fatal(why)
}

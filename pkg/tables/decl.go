package tables

import (
	"context"
	"fmt"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// Input identifies one of the bridge's input tables.
type Input int

// The input tables.
const (
	Alerts Input = iota
	Metrics
	Rules
	State
	Notifications
	Checkpoints
	Samples
	numInputs
)

// inputDecl declares an input table: its name in Names and its columns and
// keys (from pkg/rows, the one place they are defined).
type inputDecl struct {
	id   Input
	name func(Names) string
	spec rows.TableSpec
}

// inputs are the tables rows are written into, in the order Ensure
// prepares them.
var inputs = []inputDecl{
	{Alerts, func(n Names) string { return n.Alerts }, rows.AlertsTable},
	{Metrics, func(n Names) string { return n.Metrics }, rows.MetricsTable},
	{Rules, func(n Names) string { return n.Rules }, rows.RulesTable},
	{State, func(n Names) string { return n.State }, rows.StateTable},
	{Notifications, func(n Names) string { return n.Notifications }, rows.NotificationsTable},
	{Checkpoints, func(n Names) string { return n.Checkpoints }, rows.CheckpointsTable},
	{Samples, func(n Names) string { return n.Samples }, rows.SamplesTable},
}

// derivedDecl declares a table Deephaven computes from input tables, live,
// on the server. build makes it from handles on the inputs with typed
// operations only: nothing in it comes from data.
type derivedDecl struct {
	name   func(Names) string
	inputs []Input // rebuilt when one of these was created
	build  func(ctx context.Context, c *deephaven.Client, in func(Input) *deephaven.Table) (*deephaven.Table, error)
}

// derived are the tables Deephaven derives, in the order Ensure publishes
// them.
var derived = []derivedDecl{
	{
		// prometheus_alerts_metrics: for each alert event, the latest sample
		// of the same query and series at or before the event.
		name:   func(n Names) string { return n.Joined },
		inputs: []Input{Alerts, Metrics},
		build: func(ctx context.Context, c *deephaven.Client, in func(Input) *deephaven.Table) (*deephaven.Table, error) {
			return c.AsOfJoin(ctx, in(Alerts), in(Metrics), rows.Join.ExactMatch, rows.Join.AsOf, rows.Join.Add)
		},
	},
	{
		// prometheus_alert_episodes: one row per alert episode
		// (Fingerprint, StartsAt), live.
		name:   func(n Names) string { return n.Episodes },
		inputs: []Input{Alerts, Notifications},
		build:  buildEpisodes,
	},
}

// buildEpisodes aggregates the alert rows (a firing and a resolved row per
// episode) and the notification log of each episode, and joins the two.
// Times are taken with min and max, never first or last: Deephaven's
// last_by picks by row position, and a key-backed table keeps a replaced row
// where it was.
func buildEpisodes(ctx context.Context, c *deephaven.Client, in func(Input) *deephaven.Table) (*deephaven.Table, error) {
	by := []string{"Fingerprint", "StartsAt"}
	alerts, err := in(Alerts).AggBy(ctx, []deephaven.Agg{
		deephaven.AggFirst("AlertName", "Severity", "Labels"),
		deephaven.AggMin("FirstSeen=AlertIngestDateTime"),
		// EndsAt is null on firing rows: null until the resolved row.
		deephaven.AggMax("ResolvedAt=EndsAt"),
	}, by...)
	if err != nil {
		return nil, err
	}
	defer alerts.Release(ctx)
	notes, err := in(Notifications).AggBy(ctx, []deephaven.Agg{
		deephaven.AggCountWhere("Notifications", "Source != `"+rows.SourceAPI+"`"),
		deephaven.AggMax("LastSeen=ReceivedAt"),
		deephaven.AggDistinct("Sources=Source"),
	}, by...)
	if err != nil {
		return nil, err
	}
	defer notes.Release(ctx)
	joined, err := c.NaturalJoin(ctx, alerts, notes, by, []string{"Notifications", "LastSeen", "Sources"})
	if err != nil {
		return nil, err
	}
	defer joined.Release(ctx)
	return joined.UpdateView(ctx, rows.EpisodeFormulas...)
}

// specOf returns the declaration of an input table.
func specOf(id Input) rows.TableSpec {
	for _, in := range inputs {
		if in.id == id {
			return in.spec
		}
	}
	panic(fmt.Sprintf("tables: undeclared input %d", id))
}

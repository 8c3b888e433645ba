package tables

import (
	"context"

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
	Checkpoints
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
	{Checkpoints, func(n Names) string { return n.Checkpoints }, rows.CheckpointsTable},
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
}

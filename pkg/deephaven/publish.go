package deephaven

import (
	"context"
	"fmt"
	"sort"

	pb "github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven/internal/backplane"
	consolepb "github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven/internal/console"
)

// Publish binds the table to the global name, replacing any table of that
// name. Published tables show in the IDE's Panels menu and outlive this
// session (not a server restart). No script runs: the name is passed as data.
func (c *Client) Publish(ctx context.Context, t *Table, name string) error {
	op := fmt.Sprintf("publish %s as %q", t.op, name)
	s, err := c.active()
	if err != nil {
		return wrap(op, err)
	}
	tkt, err := t.resolve(ctx, s)
	if err != nil {
		return wrap(op, err)
	}
	_, err = c.console.BindTableToVariable(withSession(ctx, s), &consolepb.BindTableToVariableRequest{VariableName: name, TableId: tk(tkt)})
	return wrap(op, err)
}

// ListTables returns the names of the global tables, sorted: what the IDE's
// Panels menu lists.
func (c *Client) ListTables(ctx context.Context) ([]string, error) {
	const op = "list tables"
	s, err := c.active()
	if err != nil {
		return nil, wrap(op, err)
	}
	ctx, cancel := context.WithCancel(withSession(ctx, s))
	defer cancel() // the stream would otherwise stay open for updates
	stream, err := c.apps.ListFields(ctx, &pb.ListFieldsRequest{})
	if err != nil {
		return nil, wrap(op, err)
	}
	first, err := stream.Recv()
	if err != nil {
		return nil, wrap(op, err)
	}
	var names []string
	for _, f := range first.GetCreated() {
		if f.GetApplicationId() == "scope" && f.GetTypedTicket().GetType() == "Table" {
			names = append(names, f.GetFieldName())
		}
	}
	sort.Strings(names)
	return names, nil
}

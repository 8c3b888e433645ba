package deephaven

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"

	pb "github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven/internal/backplane"
)

// InputTableForTest makes a handle on name with any schema, skipping the
// client-side schema check, so tests can reach the server's own check.
func InputTableForTest(c *Client, name string, schema *arrow.Schema) *InputTable {
	return &InputTable{c: c, name: name, schema: schema}
}

// LiveExports counts the exports the server holds for the client's current
// session, from the server's own export notifications.
func LiveExports(ctx context.Context, c *Client) (int, error) {
	s, err := c.active()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(withSession(ctx, s))
	defer cancel()
	stream, err := c.session.ExportNotifications(ctx, &pb.ExportNotificationRequest{})
	if err != nil {
		return 0, err
	}
	live := map[string]bool{}
	for {
		n, err := stream.Recv()
		if err != nil {
			return 0, err
		}
		// The server lists current exports, then sends a marker.
		if n.GetContext() == "run is complete" {
			return len(live), nil
		}
		switch n.GetExportState() {
		case pb.ExportNotification_RELEASED, pb.ExportNotification_CANCELLED, pb.ExportNotification_FAILED,
			pb.ExportNotification_DEPENDENCY_FAILED, pb.ExportNotification_DEPENDENCY_NEVER_FOUND,
			pb.ExportNotification_DEPENDENCY_CANCELLED, pb.ExportNotification_DEPENDENCY_RELEASED:
			delete(live, string(n.GetTicket().GetTicket()))
		default:
			live[string(n.GetTicket().GetTicket())] = true
		}
	}
}

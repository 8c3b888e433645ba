package deephaven

import (
	"encoding/binary"

	pb "github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven/internal/backplane"
)

// exportTicket is the ticket of a client-chosen export id: 'e' followed by
// the id as a little-endian int32.
func exportTicket(id int32) []byte {
	b := make([]byte, 5)
	b[0] = 'e'
	binary.LittleEndian.PutUint32(b[1:], uint32(id))
	return b
}

// scopeTicket is the ticket of a global variable: "s/<name>".
func scopeTicket(name string) []byte { return []byte("s/" + name) }

func ref(ticket []byte) *pb.TableReference {
	return &pb.TableReference{Ref: &pb.TableReference_Ticket{Ticket: &pb.Ticket{Ticket: ticket}}}
}

func tk(ticket []byte) *pb.Ticket { return &pb.Ticket{Ticket: ticket} }

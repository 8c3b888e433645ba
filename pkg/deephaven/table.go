package deephaven

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"

	pb "github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven/internal/backplane"
)

// Table is a handle on a table held by the server. Handles made by server-side
// operations remember how they were made and are rebuilt in a new session
// after a reconnect; handles of uploaded data ([Client.Import]) cannot be and
// return ErrStale then. Release a handle when done with it; handles on
// published names hold nothing and need no release.
type Table struct {
	c    *Client
	op   string // what made the table, for error messages
	name string // global name, for handles on published tables

	// build makes the table in session s and returns its creation response;
	// nil for uploads.
	build func(ctx context.Context, s *session, result []byte) (*pb.ExportedTableCreationResponse, error)

	mu       sync.Mutex
	s        *session
	ticket   []byte
	schema   *arrow.Schema
	size     int64
	static   bool
	released bool
}

// Schema returns the table's Arrow schema as the server reported it when
// the handle was made (nil for a handle on a name; see Client.TableSchema).
func (t *Table) Schema() *arrow.Schema { t.mu.Lock(); defer t.mu.Unlock(); return t.schema }

// Size returns the row count reported when the handle was made.
func (t *Table) Size() int64 { t.mu.Lock(); defer t.mu.Unlock(); return t.size }

// IsStatic reports whether the table never changes (false for ticking tables
// such as input tables and joins over them).
func (t *Table) IsStatic() bool { t.mu.Lock(); defer t.mu.Unlock(); return t.static }

// Name returns the global name of a handle made by NamedTable, else "".
func (t *Table) Name() string { return t.name }

// resolve returns the ticket that names this table in session s, rebuilding
// the table there when it was made in an earlier session. It never hands out
// a ticket whose creating call has not completed.
func (t *Table) resolve(ctx context.Context, s *session) ([]byte, error) {
	if t.name != "" && t.build == nil {
		return scopeTicket(t.name), nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.released {
		return nil, fmt.Errorf("deephaven: %s: table was released", t.op)
	}
	if t.s == s {
		return t.ticket, nil
	}
	if t.build == nil {
		return nil, ErrStale
	}
	ticket := s.newTicket()
	resp, err := t.build(ctx, s, ticket)
	if err != nil {
		// The failed export may exist server-side; releasing it is harmless.
		t.c.release(s, ticket)
		return nil, err
	}
	if err := t.setFrom(resp); err != nil {
		t.c.release(s, ticket)
		return nil, err
	}
	if t.s != nil && t.ticket != nil {
		t.c.release(t.s, t.ticket)
	}
	t.s, t.ticket = s, ticket
	return ticket, nil
}

func (t *Table) setFrom(resp *pb.ExportedTableCreationResponse) error {
	if resp == nil {
		return nil
	}
	if !resp.GetSuccess() {
		return &Error{Op: t.op, Code: 2, Message: resp.GetErrorInfo()}
	}
	if h := resp.GetSchemaHeader(); len(h) > 0 {
		sc, err := flight.DeserializeSchema(h, t.c.mem)
		if err != nil {
			return fmt.Errorf("deephaven: %s: read schema: %w", t.op, err)
		}
		t.schema = sc
	}
	t.size, t.static = resp.GetSize(), resp.GetIsStatic()
	return nil
}

// Release frees the server-side export behind the handle. It is idempotent;
// using the handle afterwards is an error.
func (t *Table) Release(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.released || t.ticket == nil || t.s == nil {
		t.released = true
		return nil
	}
	t.released = true
	t.c.release(t.s, t.ticket)
	return nil
}

// newTable makes a handle from a server-side operation and builds it now.
func (c *Client) newTable(ctx context.Context, op string, build func(ctx context.Context, s *session, result []byte) (*pb.ExportedTableCreationResponse, error)) (*Table, error) {
	s, err := c.active()
	if err != nil {
		return nil, wrap(op, err)
	}
	t := &Table{c: c, op: op, build: build}
	if _, err := t.resolve(ctx, s); err != nil {
		return nil, wrap(op, err)
	}
	return t, nil
}

// derive makes a table from a server-side operation on parent tables.
func (c *Client) derive(ctx context.Context, op string, parents []*Table, call func(ctx context.Context, result *pb.Ticket, src []*pb.TableReference) (*pb.ExportedTableCreationResponse, error)) (*Table, error) {
	return c.newTable(ctx, op, func(ctx context.Context, s *session, result []byte) (*pb.ExportedTableCreationResponse, error) {
		refs := make([]*pb.TableReference, len(parents))
		for i, p := range parents {
			if p.c != c {
				return nil, fmt.Errorf("deephaven: %s: table belongs to another client", op)
			}
			tkt, err := p.resolve(ctx, s)
			if err != nil {
				return nil, err
			}
			refs[i] = ref(tkt)
		}
		resp, err := call(withSession(ctx, s), tk(result), refs)
		if err != nil {
			return nil, wrap(op, err)
		}
		return resp, nil
	})
}

// NamedTable returns a handle on the global (published) table name. It makes
// no round trip and holds no export; operations fail with NotFound if the
// name does not exist when they run.
func (c *Client) NamedTable(name string) *Table {
	return &Table{c: c, op: fmt.Sprintf("table %q", name), name: name}
}

// OpenTable fetches the published table name into an export of this session,
// checking that it exists and learning its schema and size.
func (c *Client) OpenTable(ctx context.Context, name string) (*Table, error) {
	op := fmt.Sprintf("open table %q", name)
	return c.newTable(ctx, op, func(ctx context.Context, s *session, result []byte) (*pb.ExportedTableCreationResponse, error) {
		resp, err := c.tables.FetchTable(withSession(ctx, s), &pb.FetchTableRequest{SourceId: ref(scopeTicket(name)), ResultId: tk(result)})
		return resp, wrap(op, err)
	})
}

// Where filters rows with Deephaven filter expressions (e.g. `Status == "firing"`).
func (t *Table) Where(ctx context.Context, filters ...string) (*Table, error) {
	return t.c.derive(ctx, "where "+strings.Join(filters, ", "), []*Table{t}, func(ctx context.Context, r *pb.Ticket, src []*pb.TableReference) (*pb.ExportedTableCreationResponse, error) {
		return t.c.tables.UnstructuredFilter(ctx, &pb.UnstructuredFilterTableRequest{ResultId: r, SourceId: src[0], Filters: filters})
	})
}

// Update adds or replaces columns computed by formulas (e.g. `X = Value * 2`).
func (t *Table) Update(ctx context.Context, formulas ...string) (*Table, error) {
	return t.c.derive(ctx, "update "+strings.Join(formulas, ", "), []*Table{t}, func(ctx context.Context, r *pb.Ticket, src []*pb.TableReference) (*pb.ExportedTableCreationResponse, error) {
		return t.c.tables.Update(ctx, &pb.SelectOrUpdateRequest{ResultId: r, SourceId: src[0], ColumnSpecs: formulas})
	})
}

// View selects (and computes) columns lazily.
func (t *Table) View(ctx context.Context, columns ...string) (*Table, error) {
	return t.c.derive(ctx, "view "+strings.Join(columns, ", "), []*Table{t}, func(ctx context.Context, r *pb.Ticket, src []*pb.TableReference) (*pb.ExportedTableCreationResponse, error) {
		return t.c.tables.View(ctx, &pb.SelectOrUpdateRequest{ResultId: r, SourceId: src[0], ColumnSpecs: columns})
	})
}

// DropColumns removes columns.
func (t *Table) DropColumns(ctx context.Context, columns ...string) (*Table, error) {
	return t.c.derive(ctx, "drop columns "+strings.Join(columns, ", "), []*Table{t}, func(ctx context.Context, r *pb.Ticket, src []*pb.TableReference) (*pb.ExportedTableCreationResponse, error) {
		return t.c.tables.DropColumns(ctx, &pb.DropColumnsRequest{ResultId: r, SourceId: src[0], ColumnNames: columns})
	})
}

// SortColumn is one sort key.
type SortColumn struct {
	Name       string
	Descending bool
}

// Asc and Desc build sort keys.
func Asc(name string) SortColumn  { return SortColumn{Name: name} }
func Desc(name string) SortColumn { return SortColumn{Name: name, Descending: true} }

// Sort orders rows by the given columns.
func (t *Table) Sort(ctx context.Context, by ...SortColumn) (*Table, error) {
	names := make([]string, len(by))
	sorts := make([]*pb.SortDescriptor, len(by))
	for i, b := range by {
		dir := pb.SortDescriptor_ASCENDING
		if b.Descending {
			dir = pb.SortDescriptor_DESCENDING
		}
		sorts[i] = &pb.SortDescriptor{ColumnName: b.Name, Direction: dir}
		names[i] = b.Name
	}
	return t.c.derive(ctx, "sort "+strings.Join(names, ", "), []*Table{t}, func(ctx context.Context, r *pb.Ticket, src []*pb.TableReference) (*pb.ExportedTableCreationResponse, error) {
		return t.c.tables.Sort(ctx, &pb.SortTableRequest{ResultId: r, SourceId: src[0], Sorts: sorts})
	})
}

// Head keeps the first n rows.
func (t *Table) Head(ctx context.Context, n int64) (*Table, error) {
	return t.c.derive(ctx, fmt.Sprintf("head %d", n), []*Table{t}, func(ctx context.Context, r *pb.Ticket, src []*pb.TableReference) (*pb.ExportedTableCreationResponse, error) {
		return t.c.tables.Head(ctx, &pb.HeadOrTailRequest{ResultId: r, SourceId: src[0], NumRows: n})
	})
}

// Tail keeps the last n rows.
func (t *Table) Tail(ctx context.Context, n int64) (*Table, error) {
	return t.c.derive(ctx, fmt.Sprintf("tail %d", n), []*Table{t}, func(ctx context.Context, r *pb.Ticket, src []*pb.TableReference) (*pb.ExportedTableCreationResponse, error) {
		return t.c.tables.Tail(ctx, &pb.HeadOrTailRequest{ResultId: r, SourceId: src[0], NumRows: n})
	})
}

// AsOfJoin joins right onto left (Deephaven's aj): for each left row, the
// right row with equal exactMatch columns (`Col` or `Left=Right`) and the
// greatest as-of stamp not after the left one (asOf such as
// `LeftTime>=RightTime`). add lists the right columns to add, renames allowed
// (`New=Old`); empty adds all. The result ticks when either side changes.
func (c *Client) AsOfJoin(ctx context.Context, left, right *Table, exactMatch []string, asOf string, add []string) (*Table, error) {
	op := fmt.Sprintf("as-of join on %s, %s", strings.Join(exactMatch, ", "), asOf)
	return c.derive(ctx, op, []*Table{left, right}, func(ctx context.Context, r *pb.Ticket, src []*pb.TableReference) (*pb.ExportedTableCreationResponse, error) {
		return c.tables.AjTables(ctx, &pb.AjRajTablesRequest{ResultId: r, LeftId: src[0], RightId: src[1], ExactMatchColumns: exactMatch, AsOfColumn: asOf, ColumnsToAdd: add})
	})
}

// Freeze copies the table's current rows into a static table on the server
// (Deephaven's snapshot): later changes to the source do not reach it, so
// reading the frozen table and then deleting by it acts on exactly the rows
// that were read. A frozen table is never rebuilt: in a later session it
// fails with ErrStale rather than silently holding other rows.
func (t *Table) Freeze(ctx context.Context) (*Table, error) {
	f, err := t.c.derive(ctx, "snapshot of "+t.op, []*Table{t}, func(ctx context.Context, r *pb.Ticket, src []*pb.TableReference) (*pb.ExportedTableCreationResponse, error) {
		return t.c.tables.Snapshot(ctx, &pb.SnapshotTableRequest{ResultId: r, SourceId: src[0]})
	})
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.build = nil
	f.mu.Unlock()
	return f, nil
}

package deephaven

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	pb "github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven/internal/backplane"
)

// InputTable is a published Deephaven input table that rows are added to.
// Key-backed tables replace a row whose key columns match; append-only
// tables append every row. Because the handle works through the table's
// global name, it stays valid across reconnects while the server keeps the
// name.
type InputTable struct {
	c      *Client
	name   string
	schema *arrow.Schema
	keys   []string

	mu       sync.Mutex // guards inflight, max, queue and handle
	handle   *Table     // the table fetched into an export of the current session
	inflight int        // uploads in flight
	max      int        // most uploads in flight; see SetMaxInFlight
	queue    []*addRequest
}

// SetMaxInFlight lets up to n uploads to the table run at once (default 1).
// With more than one, Adds that are in flight together may be applied in
// any order: callers that need rows with the same key applied in order must
// not have two Adds holding that key in flight together (pkg/sink sees to
// that). It may be called at any time.
func (it *InputTable) SetMaxInFlight(n int) {
	it.mu.Lock()
	it.max = max(n, 1)
	it.mu.Unlock()
}

// Name returns the global name.
func (it *InputTable) Name() string { return it.name }

// Schema returns the table's columns as the client writes them.
func (it *InputTable) Schema() *arrow.Schema { return it.schema }

// Keys returns the key columns (empty for append-only).
func (it *InputTable) Keys() []string { return slices.Clone(it.keys) }

// Table returns a handle for reading or joining the input table.
func (it *InputTable) Table() *Table { return it.c.NamedTable(it.name) }

// CreateInputTable creates an input table with the schema and publishes it as
// name (replacing a table of that name). No keys makes it append-only.
func (c *Client) CreateInputTable(ctx context.Context, name string, schema *arrow.Schema, keys ...string) (*InputTable, error) {
	op := fmt.Sprintf("create input table %q", name)
	for _, k := range keys {
		if _, ok := schema.FieldsByName(k); !ok {
			return nil, fmt.Errorf("deephaven: %s: key column %q is not in the schema", op, k)
		}
	}
	kind := &pb.CreateInputTableRequest_InputTableKind{Kind: &pb.CreateInputTableRequest_InputTableKind_InMemoryAppendOnly_{InMemoryAppendOnly: &pb.CreateInputTableRequest_InputTableKind_InMemoryAppendOnly{}}}
	if len(keys) > 0 {
		kind = &pb.CreateInputTableRequest_InputTableKind{Kind: &pb.CreateInputTableRequest_InputTableKind_InMemoryKeyBacked_{InMemoryKeyBacked: &pb.CreateInputTableRequest_InputTableKind_InMemoryKeyBacked{KeyColumns: keys}}}
	}
	schemaBytes := flight.SerializeSchema(schema, c.mem)
	t, err := c.newTable(ctx, op, func(ctx context.Context, s *session, result []byte) (*pb.ExportedTableCreationResponse, error) {
		resp, err := c.tables.CreateInputTable(withSession(ctx, s), &pb.CreateInputTableRequest{
			ResultId:   tk(result),
			Definition: &pb.CreateInputTableRequest_Schema{Schema: schemaBytes},
			Kind:       kind,
		})
		return resp, wrap(op, err)
	})
	if err != nil {
		return nil, err
	}
	// The global keeps the table alive; our export is no longer needed.
	defer t.Release(ctx)
	if err := c.Publish(ctx, t, name); err != nil {
		return nil, err
	}
	return &InputTable{c: c, name: name, schema: schema, keys: slices.Clone(keys)}, nil
}

// OpenInputTable finds the published input table name and checks that its
// columns, types and key columns are the ones expected. A mismatch is an
// error naming the column and both types.
func (c *Client) OpenInputTable(ctx context.Context, name string, want *arrow.Schema, keys ...string) (*InputTable, error) {
	got, err := c.TableSchema(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := CheckSchema(name, got, want, keys); err != nil {
		return nil, err
	}
	return &InputTable{c: c, name: name, schema: want, keys: slices.Clone(keys)}, nil
}

// EnsureInputTable opens the input table name if it exists (checking its
// schema) and creates it otherwise. created reports which happened.
func (c *Client) EnsureInputTable(ctx context.Context, name string, schema *arrow.Schema, keys ...string) (it *InputTable, created bool, err error) {
	it, err = c.OpenInputTable(ctx, name, schema, keys...)
	if err == nil {
		return it, false, nil
	}
	if !IsNotFound(err) {
		return nil, false, err
	}
	it, err = c.CreateInputTable(ctx, name, schema, keys...)
	return it, err == nil, err
}

// IsNotFound reports whether err says a table name does not exist.
func IsNotFound(err error) bool {
	var de *Error
	return asError(err, &de) && de.Code == codes.NotFound
}

// Add appends the records to the input table (for key-backed tables, rows
// with an existing key replace it). It returns once the server holds the
// rows. The upload's temporary export is released in the background.
//
// Concurrent Adds to one table are combined: while the uploads allowed in
// flight (SetMaxInFlight, default 1) are busy, the next callers' records
// queue up and travel together in the following upload, in arrival order.
// This keeps many small appends from paying one server round trip each. An
// Add whose context ends while it waits returns the context's error; its
// rows may still be written by the upload it joined.
func (it *InputTable) Add(ctx context.Context, recs ...arrow.RecordBatch) error {
	op := fmt.Sprintf("add rows to %q", it.name)
	for _, r := range recs {
		if !r.Schema().Equal(it.schema) {
			return fmt.Errorf("deephaven: %s: record schema %s differs from the table's %s", op, r.Schema(), it.schema)
		}
	}
	req := &addRequest{ctx: ctx, recs: recs, done: make(chan error, 1)}
	it.mu.Lock()
	if it.inflight >= max(it.max, 1) {
		it.queue = append(it.queue, req)
		it.mu.Unlock()
		select {
		case err := <-req.done:
			return err
		case <-ctx.Done():
			return wrap(op, ctx.Err())
		}
	}
	it.inflight++
	it.mu.Unlock()

	// This caller uploads its own rows, then whatever queued meanwhile,
	// until the queue is empty.
	batch := []*addRequest{req}
	for {
		bctx, cancel := batchContext(batch)
		var all []arrow.RecordBatch
		for _, r := range batch {
			all = append(all, r.recs...)
		}
		merged := it.c.concat(it.schema, all)
		err := it.add(bctx, op, merged)
		cancel()
		if len(all) > 1 && len(merged) == 1 {
			merged[0].Release()
		}
		for _, r := range batch {
			r.done <- err
		}
		it.mu.Lock()
		if len(it.queue) == 0 {
			it.inflight--
			it.mu.Unlock()
			break
		}
		batch, it.queue = it.queue, nil
		it.mu.Unlock()
	}
	return <-req.done
}

type addRequest struct {
	ctx  context.Context
	recs []arrow.RecordBatch
	done chan error // buffered(1)
}

// batchContext is a context for an upload on behalf of several callers: it
// ends when every caller's context has ended, and has the latest of their
// deadlines.
func batchContext(batch []*addRequest) (context.Context, context.CancelFunc) {
	if len(batch) == 1 {
		return batch[0].ctx, func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var latest time.Time
	bounded := true
	remaining := atomic.Int32{}
	remaining.Store(int32(len(batch)))
	var stops []func() bool
	for _, r := range batch {
		if d, ok := r.ctx.Deadline(); ok {
			if d.After(latest) {
				latest = d
			}
		} else {
			bounded = false
		}
		stops = append(stops, context.AfterFunc(r.ctx, func() {
			if remaining.Add(-1) == 0 {
				cancel()
			}
		}))
	}
	if bounded {
		var dcancel context.CancelFunc
		ctx, dcancel = context.WithDeadline(ctx, latest)
		return ctx, func() {
			dcancel()
			cancel()
			for _, s := range stops {
				s()
			}
		}
	}
	return ctx, func() {
		cancel()
		for _, s := range stops {
			s()
		}
	}
}

// add makes one upload: DoPut into a fresh export, add it to the input
// table, release the export.
func (it *InputTable) add(ctx context.Context, op string, recs []arrow.RecordBatch) error {
	s, err := it.c.active()
	if err != nil {
		return wrap(op, err)
	}
	target, err := it.target(ctx, s)
	if err != nil {
		return wrap(op, err)
	}
	id := s.newTicket()
	defer it.c.release(s, id)
	if err := it.c.doPut(ctx, s, id, it.schema, recs); err != nil {
		return wrap(op, err)
	}
	_, err = it.c.inputs.AddTableToInputTable(withSession(ctx, s), &pb.AddTableRequest{InputTable: tk(target), TableToAdd: tk(id)})
	return wrap(op, err)
}

// target returns an export of the input table in session s. Resolving the
// global name on every add costs the server a scope lookup; an export made
// once per session is reused by every later add.
func (it *InputTable) target(ctx context.Context, s *session) ([]byte, error) {
	it.mu.Lock()
	h := it.handle
	if h == nil {
		h = &Table{c: it.c, op: fmt.Sprintf("input table %q", it.name), build: func(ctx context.Context, s *session, result []byte) (*pb.ExportedTableCreationResponse, error) {
			return it.c.tables.FetchTable(withSession(ctx, s), &pb.FetchTableRequest{SourceId: ref(scopeTicket(it.name)), ResultId: tk(result)})
		}}
		it.handle = h
	}
	it.mu.Unlock()
	return h.resolve(ctx, s)
}

// Delete removes the rows whose keys are in recs, which must hold exactly
// the key columns (key-backed tables only).
func (it *InputTable) Delete(ctx context.Context, keySchema *arrow.Schema, recs ...arrow.RecordBatch) error {
	op := fmt.Sprintf("delete rows from %q", it.name)
	s, err := it.c.active()
	if err != nil {
		return wrap(op, err)
	}
	id := s.newTicket()
	defer it.c.release(s, id)
	if err := it.c.doPut(ctx, s, id, keySchema, recs); err != nil {
		return wrap(op, err)
	}
	_, err = it.c.inputs.DeleteTableFromInputTable(withSession(ctx, s), &pb.DeleteTableRequest{InputTable: tk(scopeTicket(it.name)), TableToRemove: tk(id)})
	return wrap(op, err)
}

// DeleteRows removes from a key-backed input table the rows whose keys are
// in rows, a table on the same server (typically a snapshot of a filter of
// this table). Only its key columns are sent to the delete, and the keys
// never leave the server.
func (it *InputTable) DeleteRows(ctx context.Context, rows *Table) error {
	op := fmt.Sprintf("delete rows from %q", it.name)
	if len(it.keys) == 0 {
		return wrap(op, errors.New("the table is append-only"))
	}
	keys, err := rows.View(ctx, it.keys...)
	if err != nil {
		return wrap(op, err)
	}
	defer keys.Release(context.WithoutCancel(ctx))
	s, err := it.c.active()
	if err != nil {
		return wrap(op, err)
	}
	target, err := it.target(ctx, s)
	if err != nil {
		return wrap(op, err)
	}
	ref, err := keys.resolve(ctx, s)
	if err != nil {
		return wrap(op, err)
	}
	_, err = it.c.inputs.DeleteTableFromInputTable(withSession(ctx, s), &pb.DeleteTableRequest{InputTable: tk(target), TableToRemove: tk(ref)})
	return wrap(op, err)
}

// TypeName returns the Deephaven column type of an Arrow field: its
// deephaven:type metadata when present, else the type Deephaven maps the
// Arrow type to.
func TypeName(f arrow.Field) string {
	if i := f.Metadata.FindKey("deephaven:type"); i >= 0 {
		return f.Metadata.Values()[i]
	}
	switch f.Type.ID() {
	case arrow.STRING, arrow.LARGE_STRING:
		return "java.lang.String"
	case arrow.FLOAT64:
		return "double"
	case arrow.FLOAT32:
		return "float"
	case arrow.INT64:
		return "long"
	case arrow.INT32:
		return "int"
	case arrow.INT16:
		return "short"
	case arrow.INT8:
		return "byte"
	case arrow.BOOL:
		return "java.lang.Boolean"
	case arrow.TIMESTAMP:
		return "java.time.Instant"
	}
	return f.Type.String()
}

// CheckSchema compares a table's server-side schema with the expected one
// and expected key columns. Column order does not matter to input tables,
// so it is not checked.
func CheckSchema(name string, got, want *arrow.Schema, keys []string) error {
	var problems []string
	for _, wf := range want.Fields() {
		gfs, ok := got.FieldsByName(wf.Name)
		if !ok {
			problems = append(problems, fmt.Sprintf("column %q is missing (want %s)", wf.Name, TypeName(wf)))
			continue
		}
		if g, w := TypeName(gfs[0]), TypeName(wf); g != w {
			problems = append(problems, fmt.Sprintf("column %q has type %s, want %s", wf.Name, g, w))
		}
	}
	for _, gf := range got.Fields() {
		if _, ok := want.FieldsByName(gf.Name); !ok {
			problems = append(problems, fmt.Sprintf("unexpected column %q (%s)", gf.Name, TypeName(gf)))
		}
	}
	if gotKeys, isInput := inputTableKeys(got); !isInput {
		problems = append(problems, "it is not an input table")
	} else {
		w := slices.Clone(keys)
		sort.Strings(w)
		if !slices.Equal(gotKeys, w) {
			problems = append(problems, fmt.Sprintf("key columns are [%s], want [%s]", strings.Join(gotKeys, ", "), strings.Join(w, ", ")))
		}
	}
	if len(problems) > 0 {
		return &SchemaError{Table: name, Problems: problems}
	}
	return nil
}

// SchemaError says how a table on the server differs from what we expect.
type SchemaError struct {
	Table    string
	Problems []string
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("deephaven: table %q does not match the expected schema: %s", e.Table, strings.Join(e.Problems, "; "))
}

// inputTableKeys reads the sorted key columns from the deephaven:tableMetadata
// schema metadata of an input table; isInput is false for other tables.
func inputTableKeys(sc *arrow.Schema) (keys []string, isInput bool) {
	md := sc.Metadata()
	i := md.FindKey("deephaven:tableMetadata")
	if i < 0 {
		return nil, md.FindKey("deephaven:unsent.attribute.InputTable") >= 0
	}
	raw, err := base64.StdEncoding.DecodeString(md.Values()[i])
	if err != nil {
		return nil, false
	}
	var m pb.DeephavenTableMetadata
	if err := proto.Unmarshal(raw, &m); err != nil || m.GetInputTableMetadata() == nil {
		return nil, false
	}
	for col, info := range m.GetInputTableMetadata().GetColumnInfo() {
		if info.GetKind() == pb.InputTableColumnInfo_KIND_KEY {
			keys = append(keys, col)
		}
	}
	sort.Strings(keys)
	return keys, true
}

package deephaven

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// doPut uploads records into export ticket of session s through Flight
// DoPut. It returns once the server has acknowledged the whole stream, so
// the export can be referenced afterwards.
func (c *Client) doPut(ctx context.Context, s *session, id []byte, schema *arrow.Schema, recs []arrow.RecordBatch) error {
	ctx, cancel := context.WithCancel(withSession(ctx, s))
	defer cancel()
	stream, err := c.flight.DoPut(ctx)
	if err != nil {
		return err
	}
	body := c.body()
	defer c.keepBody(body)
	pw := &payloadWriter{stream: stream, body: body}
	pw.fd.FlightDescriptor = &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{"export", strconv.FormatInt(int64(exportID(id)), 10)}}
	w := ipc.NewWriterWithPayloadWriter(pw, ipc.WithSchema(schema), ipc.WithAllocator(c.mem))
	for _, rec := range recs {
		if !rec.Schema().Equal(schema) {
			w.Close()
			return fmt.Errorf("record schema %s differs from the table's %s", rec.Schema(), schema)
		}
		// Big batches travel in slices, so the server decodes one while
		// the next is on the wire, and no message is over its limit.
		chunk := chunkRows(rec)
		for off := int64(0); off < rec.NumRows() || off == 0; off += chunk {
			part := rec
			if rec.NumRows() > chunk {
				part = rec.NewSlice(off, min(off+chunk, rec.NumRows()))
			}
			err := w.Write(part)
			if part != rec {
				part.Release()
			}
			if err != nil {
				w.Close()
				return drainErr(stream, err)
			}
			if rec.NumRows() == 0 {
				break
			}
		}
	}
	// With no records, Close still sends the schema: an empty table.
	if err := w.Close(); err != nil {
		return drainErr(stream, err)
	}
	if err := stream.CloseSend(); err != nil {
		return drainErr(stream, err)
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// payloadWriter sends IPC messages as FlightData, as flight.NewRecordWriter
// does, but serializes bodies into a buffer that outlives the upload (Send
// has copied the message into gRPC's own buffers when it returns). The
// first message carries the flight descriptor.
type payloadWriter struct {
	stream flight.FlightService_DoPutClient
	fd     flight.FlightData
	body   *bytes.Buffer
}

func (p *payloadWriter) Start() error { return nil }
func (p *payloadWriter) Close() error { return nil }

func (p *payloadWriter) WritePayload(payload ipc.Payload) error {
	meta := payload.Meta()
	defer meta.Release()
	p.body.Reset()
	if err := payload.SerializeBody(p.body); err != nil {
		return fmt.Errorf("serialize a Flight message: %w", err)
	}
	p.fd.DataHeader, p.fd.DataBody = meta.Bytes(), p.body.Bytes()
	err := p.stream.Send(&p.fd)
	p.fd.FlightDescriptor = nil
	return err
}

// drainErr prefers the server's status (read from the stream) over a local
// io.EOF from a send on a stream the server already closed.
func drainErr(stream flight.FlightService_DoPutClient, err error) error {
	if errors.Is(err, io.EOF) {
		for {
			if _, rerr := stream.Recv(); rerr != nil {
				if errors.Is(rerr, io.EOF) {
					return err
				}
				return rerr
			}
		}
	}
	return err
}

// putChunkRows is the most rows sent in one Flight message.
const putChunkRows = 1 << 15

// putChunkBytes bounds the buffers of one Flight message. Deephaven refuses
// a gRPC message over 100 MiB (RESOURCE_EXHAUSTED, on every retry alike),
// and 27,500 alert rows with 4 kB of annotations each are one: a journal's
// backlog or a storm of verbose alerts would never be delivered.
const putChunkBytes = 16 << 20

// chunkRows is how many rows of rec go in one Flight message: at most
// putChunkRows, and few enough that a message of rows of rec's average
// size stays within putChunkBytes.
func chunkRows(rec arrow.RecordBatch) int64 {
	n := rec.NumRows()
	var size int64
	for _, col := range rec.Columns() {
		size += dataBytes(col.Data())
	}
	if size <= putChunkBytes || n == 0 {
		return putChunkRows
	}
	return min(putChunkRows, max(1, n*putChunkBytes/size))
}

// dataBytes is the size of an array's buffers, its children's included.
func dataBytes(d arrow.ArrayData) int64 {
	var n int64
	for _, b := range d.Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		n += dataBytes(c)
	}
	return n
}

func exportID(ticket []byte) int32 {
	return int32(uint32(ticket[1]) | uint32(ticket[2])<<8 | uint32(ticket[3])<<16 | uint32(ticket[4])<<24)
}

// Import uploads records (all with the given schema; none makes an empty
// table) into a new static server-side table. The handle is tied to this
// session: after a reconnect it returns ErrStale.
func (c *Client) Import(ctx context.Context, schema *arrow.Schema, recs ...arrow.RecordBatch) (*Table, error) {
	const op = "import table"
	s, err := c.active()
	if err != nil {
		return nil, wrap(op, err)
	}
	id := s.newTicket()
	if err := c.doPut(ctx, s, id, schema, recs); err != nil {
		c.release(s, id)
		return nil, wrap(op, err)
	}
	var n int64
	for _, r := range recs {
		n += r.NumRows()
	}
	return &Table{c: c, op: op, s: s, ticket: id, schema: schema, size: n, static: true}, nil
}

// Snapshot reads the table's current rows (Flight DoGet). The caller must
// Release the returned arrow.Table.
func (c *Client) Snapshot(ctx context.Context, t *Table) (arrow.Table, error) {
	var (
		recs   []arrow.RecordBatch
		schema *arrow.Schema
	)
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	err := c.Read(ctx, t, func(sc *arrow.Schema, rec arrow.RecordBatch) error {
		schema = sc
		if rec != nil {
			rec.Retain()
			recs = append(recs, rec)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return array.NewTableFromRecords(schema, recs), nil
}

// Read streams the table's current rows (Flight DoGet) to fn, one record
// batch at a time, without holding them all; fn must Retain a batch it
// keeps. fn is called once with a nil batch when the table is empty, so
// that it always learns the schema. An error from fn stops the read.
func (c *Client) Read(ctx context.Context, t *Table, fn func(*arrow.Schema, arrow.RecordBatch) error) error {
	op := "read " + t.op
	s, err := c.active()
	if err != nil {
		return wrap(op, err)
	}
	tkt, err := t.resolve(ctx, s)
	if err != nil {
		return wrap(op, err)
	}
	ctx, cancel := context.WithCancel(withSession(ctx, s))
	defer cancel()
	stream, err := c.flight.DoGet(ctx, &flight.Ticket{Ticket: tkt})
	if err != nil {
		return wrap(op, err)
	}
	r, err := flight.NewRecordReader(stream, ipc.WithAllocator(c.mem))
	if err != nil {
		return wrap(op, err)
	}
	defer r.Release()
	n := 0
	for r.Next() {
		n++
		if err := fn(r.Schema(), r.RecordBatch()); err != nil {
			return err
		}
	}
	if err := r.Err(); err != nil && !errors.Is(err, io.EOF) {
		return wrap(op, err)
	}
	if n == 0 {
		return fn(r.Schema(), nil)
	}
	return nil
}

// TableSchema returns the schema of the published table name without
// making an export. A name that does not exist gives an *Error with code
// NotFound.
func (c *Client) TableSchema(ctx context.Context, name string) (*arrow.Schema, error) {
	op := fmt.Sprintf("get schema of %q", name)
	s, err := c.active()
	if err != nil {
		return nil, wrap(op, err)
	}
	res, err := c.flight.GetSchema(withSession(ctx, s), &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{"scope", name}})
	if err != nil {
		return nil, wrap(op, err)
	}
	sc, err := flight.DeserializeSchema(res.GetSchema(), c.mem)
	if err != nil {
		return nil, fmt.Errorf("deephaven: %s: read schema: %w", op, err)
	}
	return sc, nil
}

// concat merges many small record batches into one, so the server handles
// one batch per upload instead of one per caller.
func (c *Client) concat(schema *arrow.Schema, recs []arrow.RecordBatch) []arrow.RecordBatch {
	if len(recs) < 2 {
		return recs
	}
	cols := make([]arrow.Array, schema.NumFields())
	var rows int64
	for _, r := range recs {
		rows += r.NumRows()
	}
	for i := range cols {
		parts := make([]arrow.Array, len(recs))
		for j, r := range recs {
			parts[j] = r.Column(i)
		}
		col, err := array.Concatenate(parts, c.mem)
		if err != nil {
			for _, done := range cols[:i] {
				done.Release()
			}
			return recs // fall back to sending them as they are
		}
		cols[i] = col
	}
	merged := array.NewRecordBatch(schema, cols, rows)
	for _, col := range cols {
		col.Release()
	}
	return []arrow.RecordBatch{merged}
}

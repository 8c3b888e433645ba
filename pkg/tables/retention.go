package tables

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
)

// Aged is an input table that retention bounds: rows whose Time column is
// older than the live window leave it.
type Aged struct {
	Input Input
	Name  string // its global name
	Time  string // the column rows are aged by
	Keys  []string
}

// Aged lists the input tables retention bounds, in declaration order.
func (t *Tables) Aged() []Aged {
	var out []Aged
	for _, in := range inputs {
		if in.spec.Time != "" {
			out = append(out, Aged{Input: in.id, Name: in.name(t.names), Time: in.spec.Time, Keys: in.spec.Keys})
		}
	}
	return out
}

// ReadFunc streams rows to fn, a record batch at a time (nil once for no
// rows); fn must Retain a batch it keeps.
type ReadFunc func(fn func(*arrow.Schema, arrow.RecordBatch) error) error

// Expire takes the rows of an aged table whose time is before cutoff out of
// the live table. It freezes them on the server, lets keep read them
// (retention writes them to the history; nil keeps nothing), deletes
// exactly the frozen rows (a row that arrives meanwhile stays, even an old
// one, until the next call), and, for a slotted table, frees the slots that
// no longer hold rows. If keep fails nothing is deleted. It returns how
// many rows left. An error after the delete (freeing the slots) wraps
// ErrAfterDelete: the rows are gone from Deephaven, so what keep made of
// them must be kept.
//
// Expire holds off Ensure while it runs, so the rows it deletes are from
// the table it read, never from one made since.
func (t *Tables) Expire(ctx context.Context, in Input, cutoff time.Time, keep func(ctx context.Context, rows int64, read ReadFunc) error) (int64, error) {
	t.gate.RLock()
	defer t.gate.RUnlock()
	it := t.input[in].Load()
	if it == nil || !t.ready.Load() {
		return 0, ErrNotReady
	}
	spec := specOf(in)
	name := it.Name()
	old, err := it.Table().Where(ctx, fmt.Sprintf("%s < '%s'", spec.Time, cutoff.UTC().Format(time.RFC3339Nano)))
	if err != nil {
		return 0, fmt.Errorf("tables: select expired rows of %s: %w", name, err)
	}
	defer old.Release(context.WithoutCancel(ctx))
	frozen, err := old.Freeze(ctx)
	if err != nil {
		return 0, fmt.Errorf("tables: freeze expired rows of %s: %w", name, err)
	}
	defer frozen.Release(context.WithoutCancel(ctx))
	n := frozen.Size()
	if n == 0 {
		return 0, t.freeSlots(ctx, in, it)
	}
	if keep != nil {
		read := func(fn func(*arrow.Schema, arrow.RecordBatch) error) error { return t.client.Read(ctx, frozen, fn) }
		if err := keep(ctx, n, read); err != nil {
			return 0, fmt.Errorf("tables: keep %d expired rows of %s: %w", n, name, err)
		}
	}
	if err := it.DeleteRows(ctx, frozen); err != nil {
		return 0, fmt.Errorf("tables: delete %d expired rows of %s: %w", n, name, err)
	}
	if err := t.freeSlots(ctx, in, it); err != nil {
		return n, fmt.Errorf("tables: %w: %w", ErrAfterDelete, err)
	}
	return n, nil
}

// ErrAfterDelete marks an error of Expire that came after the expired
// rows were deleted.
var ErrAfterDelete = errors.New("the expired rows were deleted, but then")

// freeSlots frees the chunks of slots whose rows all left.
func (t *Tables) freeSlots(ctx context.Context, in Input, it *deephaven.InputTable) error {
	sp := t.slots[in]
	if sp == nil {
		return nil
	}
	start := time.Now()
	used, err := t.usedChunks(ctx, it.Table())
	if err != nil {
		return fmt.Errorf("tables: read which slots of %s hold rows: %w", it.Name(), err)
	}
	if n := sp.refresh(used, start); n > 0 {
		t.logger.Debug("Freed slots", "table", it.Name(), "chunks", n, "busy", sp.busyChunks())
	}
	return nil
}

// usedChunks reads which chunks of this writer's slots hold rows in tb. The
// server computes the distinct chunks; only this bridge's writer number and
// fixed column names are in the filter.
func (t *Tables) usedChunks(ctx context.Context, tb *deephaven.Table) (map[int64]bool, error) {
	mine, err := tb.Where(ctx, fmt.Sprintf("Writer == %dL", t.writer))
	if err != nil {
		return nil, err
	}
	defer mine.Release(context.WithoutCancel(ctx))
	chunks, err := mine.View(ctx, fmt.Sprintf("Chunk = (long) (Slot / %d)", chunkSlots))
	if err != nil {
		return nil, err
	}
	defer chunks.Release(context.WithoutCancel(ctx))
	distinct, err := chunks.SelectDistinct(ctx, "Chunk")
	if err != nil {
		return nil, err
	}
	defer distinct.Release(context.WithoutCancel(ctx))
	used := map[int64]bool{}
	err = t.client.Read(ctx, distinct, func(_ *arrow.Schema, rec arrow.RecordBatch) error {
		if rec == nil {
			return nil
		}
		col, ok := rec.Column(0).(*array.Int64)
		if !ok {
			return fmt.Errorf("chunk column is %s, want int64", rec.Column(0).DataType())
		}
		for i := 0; i < col.Len(); i++ {
			if col.IsValid(i) {
				used[col.Value(i)] = true
			}
		}
		return nil
	})
	return used, err
}

// Holds reports whether the live table still holds any of the rows in recs
// (same key and time): whether a delete that an export was waiting for
// happened. recs must have the table's columns.
//
// It may be called from OnReady (it takes no lock and does not wait for the
// tables to be ready), so that exports a crash left are settled before
// rows flow.
func (t *Tables) Holds(ctx context.Context, in Input, recs ...arrow.RecordBatch) (bool, error) {
	it := t.input[in].Load()
	if it == nil {
		return false, ErrNotReady
	}
	spec := specOf(in)
	if len(recs) == 0 {
		return false, nil
	}
	probe, err := t.client.Import(ctx, recs[0].Schema(), recs...)
	if err != nil {
		return false, fmt.Errorf("tables: upload probe rows for %s: %w", it.Name(), err)
	}
	defer probe.Release(context.WithoutCancel(ctx))
	match := append(append([]string{}, spec.Keys...), spec.Time)
	found, err := t.client.WhereIn(ctx, it.Table(), probe, false, match...)
	if err != nil {
		return false, fmt.Errorf("tables: look up probe rows in %s: %w", it.Name(), err)
	}
	defer found.Release(context.WithoutCancel(ctx))
	tab, err := t.client.Snapshot(ctx, found)
	if err != nil {
		return false, fmt.Errorf("tables: look up probe rows in %s: %w", it.Name(), err)
	}
	defer tab.Release()
	return tab.NumRows() > 0, nil
}

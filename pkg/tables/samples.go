package tables

import (
	"context"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// AddSamples writes remote-written samples into the samples table.
func (t *Tables) AddSamples(ctx context.Context, rs []rows.SampleRow) error {
	places, done, err := t.place(ctx, Samples, len(rs))
	if err != nil {
		return err
	}
	defer done()
	rec := rows.SampleRecord(t.mem, rs, places)
	defer rec.Release()
	return t.Add(ctx, Samples, rec)
}

package tables

import (
	"context"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// AddSamples writes remote-written samples into the samples table.
func (t *Tables) AddSamples(ctx context.Context, rs []rows.SampleRow) error {
	rec := rows.SampleRecord(t.mem, rs)
	defer rec.Release()
	return t.Add(ctx, Samples, rec)
}

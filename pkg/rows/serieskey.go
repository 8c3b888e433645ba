package rows

import (
	"slices"

	"github.com/prometheus/common/model"
)

// DefaultJoinLabels identify a configured query's series in the join unless
// the query says otherwise (its join_labels).
var DefaultJoinLabels = []string{"instance", "job"}

// KeySpec says which labels identify a series in the join of alerts onto
// metrics: the SeriesKey column of both tables is the canonical text of
// those labels, so an alert and the samples of its series get the same key.
//
// With Only set, exactly those labels count (a configured query's
// join_labels; absent ones are left out). Otherwise every label counts
// except __name__ and those in Drop (for a rule's value expression: the
// rule's static labels, alertname and Prometheus's external labels on the
// alert side, which the series never carry).
type KeySpec struct {
	Only []string
	Drop []string
}

// Key returns the series key of a label set: its chosen labels as canonical
// text, {a="1", b="2"} (model.LabelSet's String), "{}" for none.
func (k KeySpec) Key(ls model.LabelSet) string {
	out := make(model.LabelSet, len(ls))
	if k.Only != nil {
		for _, name := range k.Only {
			if v, ok := ls[model.LabelName(name)]; ok && v != "" {
				out[model.LabelName(name)] = v
			}
		}
		return out.String()
	}
	for name, v := range ls {
		if name == model.MetricNameLabel || v == "" || slices.Contains(k.Drop, string(name)) {
			continue
		}
		out[name] = v
	}
	return out.String()
}

// LabelText returns model.LabelSet's String of ls without building a map:
// the Labels column. ls must be sorted by name, without repeated names.
func LabelText(ls []Label) string {
	var arr [1024]byte // on the stack for common sizes
	return string(appendLabelText(arr[:0], ls, func(Label) bool { return true }))
}

// KeyText returns Key of ls without building a map: the SeriesKey column.
// ls must be sorted by name, without repeated names.
func (k KeySpec) KeyText(ls []Label) string {
	var arr [1024]byte
	return string(k.AppendKeyText(arr[:0], ls))
}

// AppendLabelText appends LabelText(ls) to b.
func AppendLabelText(b []byte, ls []Label) []byte {
	return appendLabelText(b, ls, func(Label) bool { return true })
}

// AppendKeyText appends KeyText(ls) to b.
func (k KeySpec) AppendKeyText(b []byte, ls []Label) []byte {
	return appendLabelText(b, ls, k.keeps)
}

// keeps reports whether l is part of the series key (see Key).
func (k KeySpec) keeps(l Label) bool {
	if l.Value == "" {
		return false
	}
	if k.Only != nil {
		return slices.Contains(k.Only, l.Name)
	}
	return l.Name != model.MetricNameLabel && !slices.Contains(k.Drop, l.Name)
}

// appendLabelText appends the labels of ls that keep accepts as
// model.LabelSet's String does: {a="1", b="2"}, in the order of ls.
func appendLabelText(b []byte, ls []Label, keep func(Label) bool) []byte {
	b = append(b, '{')
	first := true
	for _, l := range ls {
		if !keep(l) {
			continue
		}
		if !first {
			b = append(b, ", "...)
		}
		first = false
		b = append(b, l.Name...)
		b = append(b, '=')
		b = appendQuoted(b, l.Value)
	}
	return append(b, '}')
}

// Equal reports whether two specs choose the same labels.
func (k KeySpec) Equal(o KeySpec) bool {
	return (k.Only == nil) == (o.Only == nil) && slices.Equal(k.Only, o.Only) && slices.Equal(k.Drop, o.Drop)
}

// JoinTarget is where an alert joins the metrics: the polled query it is
// about (its PrometheusQuery) and the key of its series there (its
// SeriesKey).
type JoinTarget struct {
	Query     string
	SeriesKey string
}

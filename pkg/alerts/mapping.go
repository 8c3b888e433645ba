package alerts

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// Rows maps every alert of m to a row of prometheus_alerts, in payload order.
// receivedAt becomes AlertIngestDateTime. opts.QueryLabel, SeverityLabel,
// JoinLabels and Resolver are used (empty values get the defaults); ctx
// bounds the Resolver.
func (m *Message) Rows(ctx context.Context, receivedAt time.Time, opts Options) []rows.AlertRow {
	opts = opts.withDefaults()
	out := make([]rows.AlertRow, 0, len(m.Alerts))
	for i := range m.Alerts {
		out = append(out, m.Alerts[i].row(ctx, m, receivedAt.UTC(), opts))
	}
	return out
}

// Resolver finds where an alert joins the metrics (rows.JoinTarget). It may wait briefly (e.g. for a look at
// Prometheus's rules when the alert's rule is new), bounded by ctx, and
// returns ok=false when it does not know the alert; the configured queries
// are asked then. It must be safe for concurrent use.
type Resolver interface {
	Resolve(ctx context.Context, labels map[string]string, generatorURL string) (t rows.JoinTarget, ok bool)
}

// configuredTarget is the join target of an alert by its QueryLabel (or its
// alertname): the configured query of that name, keyed on the query's join
// labels (job and instance by default).
func configuredTarget(labels map[string]string, opts Options) rows.JoinTarget {
	// Rules that watch a configured query carry its name in QueryLabel.
	// Prometheus drops empty labels, so an empty value counts as absent.
	query := labels[opts.QueryLabel]
	if query == "" {
		query = labels["alertname"]
	}
	join, ok := opts.JoinLabels[query]
	if !ok {
		join = rows.DefaultJoinLabels
	}
	if join == nil {
		// A KeySpec without Only keys on every label.
		return rows.JoinTarget{Query: query, SeriesKey: rows.KeySpec{}.Key(toLabelSet(labels))}
	}
	// This is rows.KeySpec{Only: join}.Key(toLabelSet(labels))
	// (TestConfiguredTargetKey): the join labels that are set and not empty,
	// as canonical text, without copying every label into a LabelSet first.
	key := make(map[string]string, len(join))
	for _, name := range join {
		if v := labels[name]; v != "" {
			key[name] = v
		}
	}
	return rows.JoinTarget{Query: query, SeriesKey: LabelsText(key)}
}

func (a *Alert) row(ctx context.Context, m *Message, receivedAt time.Time, opts Options) rows.AlertRow {
	// Times are kept to the millisecond: Alertmanager's API reports them
	// so (its webhook to the nanosecond), and the same alert read from
	// both must be the same row.
	startsAt, endsAt := a.StartsAt.Truncate(time.Millisecond), a.EndsAt.Truncate(time.Millisecond)
	// The time of the event the row records: when it began firing, or when
	// it resolved. It is part of the row's key, so a resolved alert gets a
	// row of its own next to the firing one.
	at := startsAt
	if a.Status == StatusResolved {
		at = endsAt
	}
	// An alert labelled with a configured query's name joins that query;
	// otherwise its rule's value expression does, when the Resolver knows
	// the rule.
	var target rows.JoinTarget
	found := false
	if opts.Resolver != nil && a.Labels[opts.QueryLabel] == "" {
		target, found = opts.Resolver.Resolve(ctx, a.Labels, a.GeneratorURL)
	}
	if !found {
		target = configuredTarget(a.Labels, opts)
	}
	source := rows.SourceAlertmanager
	if m.Grafana != nil {
		source = rows.SourceGrafana
	}
	return rows.AlertRow{
		PrometheusDateTime:  at.UTC(),
		Job:                 a.Labels["job"],
		Instance:            a.Labels["instance"],
		PrometheusQuery:     target.Query,
		Status:              a.Status,
		AlertIngestDateTime: receivedAt,
		AlertName:           a.Labels["alertname"],
		Severity:            a.Labels[opts.SeverityLabel],
		Fingerprint:         a.Fingerprint,
		StartsAt:            startsAt.UTC(),
		EndsAt:              endsAt.UTC(),
		Labels:              LabelsText(a.Labels),
		Annotations:         LabelsText(a.Annotations),
		GeneratorURL:        a.GeneratorURL,
		Receiver:            m.Receiver,
		Source:              source,
		SeriesKey:           target.SeriesKey,
		Values:              a.ValuesText(),
		AlertValue:          a.Value,
	}
}

// LabelsText renders a label set as Prometheus does,
// {instance="a:9090", job="x"}: names sorted, ", " between pairs, values
// quoted with Go's %q rules. It is model.LabelSet's String, used so that the
// alerts and metrics tables write label sets identically. Names are written
// unquoted; Alertmanager only sends non-empty names, but a UTF-8 name holding
// '"' or ',' makes the text ambiguous (the structured columns are not).
func LabelsText(m map[string]string) string {
	// It writes what model.LabelSet's String writes
	// (TestLabelsTextIsModels), without copying m into a LabelSet first,
	// and copying plain values rather than quoting them rune by rune.
	type label struct{ name, value string }
	var stack [32]label // room for most label sets without an allocation
	labels := stack[:0]
	size := len("{}")
	for name, value := range m {
		labels = append(labels, label{name, value})
		size += len(name) + len(value) + len(`="", `)
	}
	slices.SortFunc(labels, func(a, b label) int { return strings.Compare(a.name, b.name) })
	var sb strings.Builder
	sb.Grow(size)
	sb.WriteByte('{')
	for i, l := range labels {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(l.name)
		sb.WriteByte('=')
		writeQuoted(&sb, l.value)
	}
	sb.WriteByte('}')
	return sb.String()
}

// writeQuoted writes s quoted as strconv.Quote (Go's %q) quotes it. Values
// of printable ASCII without '"' or '\\', nearly all of them, are written as
// they are; others are left to strconv.
func writeQuoted(sb *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' || c == '"' || c == '\\' {
			var buf [128]byte
			sb.Write(strconv.AppendQuote(buf[:0], s))
			return
		}
	}
	sb.WriteByte('"')
	sb.WriteString(s)
	sb.WriteByte('"')
}

// ValuesText renders the reported values as canonical text, names sorted,
// e.g. {B="44.2", C="1"} (values in Go's shortest 'g' form, NaN and ±Inf
// included): Values, or when it is null or empty the values parsed from
// ValueString, the same ones Value is chosen from. When neither holds a
// value but ValueString is not empty (all its values null, or a format this
// package does not know), it is ValueString as sent, so that the column is
// never empty when Grafana reported something. It is "" when the sender
// reported nothing (always, for Alertmanager).
func (a *Alert) ValuesText() string {
	m := a.candidates()
	if len(m) == 0 {
		return a.ValueString
	}
	ls := make(model.LabelSet, len(m))
	for k, v := range m {
		ls[model.LabelName(k)] = model.LabelValue(strconv.FormatFloat(v, 'g', -1, 64))
	}
	return ls.String()
}

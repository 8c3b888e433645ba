package alerts

import (
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// Rows maps every alert of m to a row of prometheus_alerts, in payload order.
// receivedAt becomes AlertIngestDateTime. Only opts.QueryLabel and
// opts.SeverityLabel are used (empty values get the defaults).
func (m *Message) Rows(receivedAt time.Time, opts Options) []rows.AlertRow {
	opts = opts.withDefaults()
	out := make([]rows.AlertRow, 0, len(m.Alerts))
	for i := range m.Alerts {
		out = append(out, m.Alerts[i].row(m.Receiver, receivedAt.UTC(), opts))
	}
	return out
}

func (a *Alert) row(receiver string, receivedAt time.Time, opts Options) rows.AlertRow {
	// The time of the event the row records: when it began firing, or when
	// it resolved. It is part of the row's key, so a resolved alert gets a
	// row of its own next to the firing one.
	at := a.StartsAt
	if a.Status == StatusResolved {
		at = a.EndsAt
	}
	// Rules that watch a polled query carry its name in QueryLabel, which
	// lets Deephaven join the alert to that query's samples. Prometheus drops
	// empty labels, so an empty value counts as absent.
	query := a.Labels[opts.QueryLabel]
	if query == "" {
		query = a.Labels["alertname"]
	}
	return rows.AlertRow{
		PrometheusDateTime:  at.UTC(),
		Job:                 a.Labels["job"],
		Instance:            a.Labels["instance"],
		PrometheusQuery:     query,
		Status:              a.Status,
		AlertIngestDateTime: receivedAt,
		AlertName:           a.Labels["alertname"],
		Severity:            a.Labels[opts.SeverityLabel],
		Fingerprint:         a.Fingerprint,
		StartsAt:            a.StartsAt.UTC(),
		EndsAt:              a.EndsAt.UTC(),
		Labels:              LabelsText(a.Labels),
		Annotations:         LabelsText(a.Annotations),
		GeneratorURL:        a.GeneratorURL,
		Receiver:            receiver,
	}
}

// LabelsText renders a label set as Prometheus does,
// {instance="a:9090", job="x"}: names sorted, ", " between pairs, values
// quoted with Go's %q rules. It is model.LabelSet's String, used so that the
// alerts and metrics tables write label sets identically. Names are written
// unquoted; Alertmanager only sends non-empty names, but a UTF-8 name holding
// '"' or ',' makes the text ambiguous (the structured columns are not).
func LabelsText(m map[string]string) string {
	return toLabelSet(m).String()
}

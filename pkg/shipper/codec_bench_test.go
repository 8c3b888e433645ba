package shipper

import (
	stdjson "encoding/json"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// recordByValue is the record as it was before: the alert row embedded by
// value, so a notification record carried an empty alert row's fields.
type recordByValue struct {
	rows.AlertRow
	Notification *rows.NotificationRow `json:",omitempty"`
}

// BenchmarkRecordCodec is a journal record's round trip (encode, decode)
// with the journal's codec and record, and with encoding/json and the
// record as it was.
func BenchmarkRecordCodec(b *testing.B) {
	v := 0.93
	now := time.Date(2026, 12, 3, 12, 0, 0, 123456789, time.UTC)
	a := rows.AlertRow{PrometheusDateTime: now, Job: "node", Instance: "host-17:9100", PrometheusQuery: "node_load1", Status: "firing",
		AlertIngestDateTime: now, AlertName: "HighLoad", Severity: "warning", Fingerprint: "3f8a9b0c1d2e3f40", StartsAt: now,
		Labels: `{alertname="HighLoad", instance="host-17:9100", job="node", severity="warning"}`, Annotations: `{summary="Load is high on host-17:9100"}`,
		GeneratorURL: "http://prometheus:9090/graph?g0.expr=node_load1+%3E+0.9&g0.tab=1", Receiver: "deephaven", Source: "alertmanager",
		SeriesKey: `instance="host-17:9100",job="node"`, AlertValue: &v}
	n := rows.NotificationRow{Fingerprint: a.Fingerprint, StartsAt: a.StartsAt, Status: a.Status, AlertName: a.AlertName,
		ReceivedAt: a.AlertIngestDateTime, Source: a.Source, Receiver: a.Receiver}
	roundTrip := func(b *testing.B, in any, out func() any, marshal func(any) ([]byte, error), unmarshal func([]byte, any) error) {
		for b.Loop() {
			data, err := marshal(in)
			if err != nil {
				b.Fatal(err)
			}
			if err := unmarshal(data, out()); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("alert", func(b *testing.B) {
		roundTrip(b, &a, func() any { return &record{} }, json.Marshal, json.Unmarshal)
	})
	b.Run("notification", func(b *testing.B) {
		roundTrip(b, &record{Notification: &n}, func() any { return &record{} }, json.Marshal, json.Unmarshal)
	})
	b.Run("alert_encoding_json_by_value", func(b *testing.B) {
		roundTrip(b, &a, func() any { return &recordByValue{} }, stdjson.Marshal, stdjson.Unmarshal)
	})
	b.Run("notification_encoding_json_by_value", func(b *testing.B) {
		roundTrip(b, &recordByValue{Notification: &n}, func() any { return &recordByValue{} }, stdjson.Marshal, stdjson.Unmarshal)
	})
}

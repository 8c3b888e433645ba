package kafkasink

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// keysInOrder returns the object's keys in the order they appear.
func keysInOrder(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", b)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
	return keys
}

// columns are a table's columns as Kafka mode writes them: no slots, and
// the Bridge field last.
func columns(cs []rows.Column) []string {
	var out []string
	for _, c := range cs {
		if c.Name != "Writer" && c.Name != "Slot" {
			out = append(out, c.Name)
		}
	}
	return append(out, "Bridge")
}

func encode[R any](f func(*R, *encoder), r R) []byte {
	e := &encoder{bridge: "b1"}
	f(&r, e)
	return e.finish()
}

// TestEncodeColumns keeps the records' fields equal to pkg/rows' columns,
// which app.d's JSON specs repeat.
func TestEncodeColumns(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []byte
		cols []rows.Column
	}{
		{"alerts", encode(encodeAlert, rows.AlertRow{}), rows.AlertColumns},
		{"metrics", encode(encodeMetric, rows.MetricRow{}), rows.MetricColumns},
		{"samples", encode(encodeSample, rows.SampleRow{}), rows.SampleColumns},
		{"rules", encode(encodeRule, rows.RuleRow{}), rows.RuleColumns},
		{"state", encode(encodeState, rows.AlertStateRow{}), rows.StateColumns},
		{"notifications", encode(encodeNotification, rows.NotificationRow{}), rows.NotificationColumns},
	} {
		if got, want := keysInOrder(t, tc.got), columns(tc.cols); !slices.Equal(got, want) {
			t.Errorf("%s: fields %v, want %v", tc.name, got, want)
		}
	}
}

func TestEncodeValues(t *testing.T) {
	at := time.Date(2026, 12, 2, 20, 0, 0, 123456789, time.FixedZone("x", 3600))
	v := 2.5
	b := encode(encodeAlert, rows.AlertRow{
		PrometheusDateTime: at, Fingerprint: "fp", Labels: "{job=\"a\\b\"}\n\x00", Annotations: "ü", AlertValue: &v,
	})
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	for k, want := range map[string]any{
		"PrometheusDateTime": "2026-12-02T19:00:00.123456789Z", "EndsAt": nil, "Fingerprint": "fp",
		"Labels": "{job=\"a\\b\"}\n\x00", "Annotations": "ü", "AlertValue": 2.5, "Bridge": "b1",
	} {
		if m[k] != want {
			t.Errorf("%s = %#v, want %#v", k, m[k], want)
		}
	}
	for f, want := range map[float64]any{math.Inf(1): "Infinity", math.Inf(-1): "-Infinity", -0.5: -0.5} {
		b := encode(encodeSample, rows.SampleRow{Value: f})
		if err := json.Unmarshal(b, &m); err != nil || m["Value"] != want {
			t.Errorf("Value %v: %s, %v; want %#v", f, b, err, want)
		}
	}
	b = encode(encodeSample, rows.SampleRow{Value: math.NaN()})
	if err := json.Unmarshal(b, &m); err != nil || m["Value"] != "NaN" {
		t.Errorf("Value NaN: %s, %v", b, err)
	}
}

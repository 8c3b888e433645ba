package shipper

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/alerts"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// Every alert row the webhook makes of its test payloads (Alertmanager's
// and Grafana's, hostile labels and NaN values included) comes back from
// its journal record field for field: the journal must not refuse or
// change what the webhook accepted.
func TestWebhookRowsRoundTripThroughTheJournal(t *testing.T) {
	checked := 0
	for _, body := range webhookPayloads(t) {
		checked += roundTrip(t, body)
	}
	if checked < 20 {
		t.Fatalf("only %d rows checked", checked)
	}
}

// FuzzWebhookRowsThroughTheJournal is that test over any body the
// webhook accepts.
func FuzzWebhookRowsThroughTheJournal(f *testing.F) {
	for _, body := range webhookPayloads(f) {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) { roundTrip(t, body) })
}

// webhookPayloads are the webhook's test payloads under 64 KiB (the big
// ones only slow a fuzzer down), and a Grafana alert with every value
// JSON has no number for.
func webhookPayloads(tb testing.TB) [][]byte {
	files, err := filepath.Glob(filepath.Join("..", "alerts", "testdata", "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no payloads: %v", err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		if len(b) < 64<<10 {
			out = append(out, b)
		}
	}
	for _, v := range []string{"NaN", "+Inf", "-Inf", "-0", "1e-320"} {
		out = append(out, []byte(`{"version":"1","status":"firing","receiver":"r","orgId":1,"alerts":[{"status":"firing","labels":{"alertname":"A"},
"startsAt":"2026-12-04T10:00:00+01:00","endsAt":"0001-01-01T00:00:00Z","fingerprint":"f1","values":null,
"valueString":"[ var='B' labels={} value=`+v+` ], [ var='C' labels={} value=1 ]"}]}`))
	}
	// Escapes a Go string cannot hold as such: lone surrogates (decoded
	// to U+FFFD), NUL, the JavaScript line separators, HTML characters.
	for _, v := range []string{`\ud800`, `\udc00x`, `\ud83d\ude00`, `\u0000`, `\u2028\u2029`, `<>&`} {
		out = append(out, []byte(`{"version":"4","status":"firing","receiver":"r","groupKey":"g","alerts":[{"status":"firing",
"labels":{"alertname":"A","v":"`+v+`"},"annotations":{"s":"`+v+`"},"startsAt":"2026-12-04T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"f1"}]}`))
	}
	return out
}

// roundTrip checks the alert rows of body, if the webhook accepts it,
// against their journal records, and returns how many it checked.
func roundTrip(t *testing.T, body []byte) int {
	t.Helper()
	msg, err := alerts.Decode(body, alerts.Options{})
	if err != nil {
		return 0 // a payload the webhook refuses
	}
	received := time.Date(2026, 12, 4, 19, 0, 0, 123456789, time.UTC)
	n := 0
	for _, r := range msg.Rows(context.Background(), received, alerts.Options{}) {
		data, err := encodeAlert(&r)
		if err != nil {
			t.Errorf("alert %q: encode: %v", r.Fingerprint, err)
			continue
		}
		back, err := decodeRecord(data)
		if err != nil || back.AlertRow == nil || back.Notification != nil {
			t.Errorf("alert %q: decode %s: %+v, %v", r.Fingerprint, data, back, err)
			continue
		}
		if diff := rowDiff(r, *back.AlertRow); diff != "" {
			t.Errorf("alert %q: %s: %s", r.Fingerprint, diff, data)
		}
		n++
	}
	return n
}

// rowDiff names the first field in which a and b differ: times by instant,
// values with NaN equal to NaN.
func rowDiff(a, b rows.AlertRow) string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		name := va.Type().Field(i).Name
		x, y := va.Field(i).Interface(), vb.Field(i).Interface()
		switch x := x.(type) {
		case time.Time:
			if !x.Equal(y.(time.Time)) {
				return name + " differs"
			}
		case *float64:
			y := y.(*float64)
			if (x == nil) != (y == nil) || x != nil && !(*x == *y || math.IsNaN(*x) && math.IsNaN(*y)) {
				return name + " differs"
			}
		default:
			if x != y {
				return name + " differs"
			}
		}
	}
	return ""
}

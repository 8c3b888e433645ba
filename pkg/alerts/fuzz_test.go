package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// FuzzDecode checks that Decode never panics, returns only *Error, and that
// whatever it accepts maps to rows the tables can hold. It also checks
// Decode against encoding/json: its scanner accepts exactly the bodies
// encoding/json finds valid (that are valid UTF-8 and nested no deeper than
// maxDepth), and it decodes every body as decodeOld, the encoding/json
// decoder it replaced, did (the same message or the same error text). The
// seeds are the payloads of testdata, Alertmanager's and Grafana's, valid
// and hostile, plus generated Grafana bodies just past the limits used
// here.
func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) < 64<<10 { // the big ones only slow the fuzzer down
			f.Add(b)
		}
	}
	for _, b := range [][]byte{
		grafanaBody(manyValues(51), `""`),
		grafanaBody("null", manyValueStringEntries(51)),
		grafanaBody("null", `"[ var='A' labels={a=b, c=d} type='query' value=NaN ], [ var='B' labels={} value=+Inf ], [ var='C' labels={} value=null ], [ metric='m' labels={} value=-Inf ]"`),
		grafanaBody(`{"B0":0.5,"B1":2}`, `""`),
		grafanaBody(`{"B":-1,"C":-1}`, `""`),
		grafanaBody(`{"B":1e999}`, `""`),
		grafanaBody(`{"B":"NaN"}`, `""`),
		grafanaBody(`{"B":null}`, `""`),
		grafanaBody(`"44.2"`, `""`),
		grafanaBody(`{"B":`+strings.Repeat("[", 60)+strings.Repeat("]", 60)+`}`, `""`),
		grafanaBody("null", `"`+strings.Repeat("[ var='B' labels={", 200)+`"`),
	} {
		f.Add(b)
	}
	received := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		opts := Options{MaxAlertsPerRequest: 50, MaxLabelsPerAlert: 50}
		if got, want := scanValid(body), json.Valid(body) && utf8.Valid(body) && checkDepth(body, maxDepth) == nil; got != want {
			t.Fatalf("scanner accepts the body: %v, encoding/json (UTF-8, depth %d): %v", got, maxDepth, want)
		}
		if d := diffOld(body, opts); d != "" {
			t.Fatal(d)
		}
		m, err := Decode(body, opts)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is %T, want *Error", err, err)
			}
			return
		}
		for i, r := range m.Rows(context.Background(), received, Options{}) {
			if r.Status != StatusFiring && r.Status != StatusResolved {
				t.Fatalf("row %d: status %q", i, r.Status)
			}
			if r.Fingerprint == "" {
				t.Fatalf("row %d: empty fingerprint", i)
			}
			for _, tm := range []time.Time{r.PrometheusDateTime, r.StartsAt} {
				if tm.Before(minTime) || tm.After(maxTime) || tm.Location() != time.UTC {
					t.Fatalf("row %d: time %v out of range or not UTC", i, tm)
				}
			}
			if r.Status == StatusFiring && !r.EndsAt.IsZero() {
				t.Fatalf("row %d: firing with EndsAt %v", i, r.EndsAt)
			}
			if r.Status == StatusResolved && !r.PrometheusDateTime.Equal(r.EndsAt) {
				t.Fatalf("row %d: resolved at %v, ends %v", i, r.PrometheusDateTime, r.EndsAt)
			}
			if r.Labels == "" || r.Labels[0] != '{' || r.Annotations == "" {
				t.Fatalf("row %d: labels %q annotations %q", i, r.Labels, r.Annotations)
			}
			// Only Grafana reports values, and a chosen value is one of
			// those shown in the Values column.
			if (r.Source == rows.SourceGrafana) != (m.Grafana != nil) {
				t.Fatalf("row %d: source %q for version %q", i, r.Source, m.Version)
			}
			if m.Grafana == nil && (r.Values != "" || r.AlertValue != nil) {
				t.Fatalf("row %d: Alertmanager row with values %q, value %v", i, r.Values, r.AlertValue)
			}
			if r.AlertValue != nil && !strings.Contains(r.Values, `="`+strconv.FormatFloat(*r.AlertValue, 'g', -1, 64)+`"`) {
				t.Fatalf("row %d: value %v not among values %q", i, *r.AlertValue, r.Values)
			}
		}
	})
}

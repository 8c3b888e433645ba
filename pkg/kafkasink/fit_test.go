package kafkasink

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// newTestSink is a Sink that is never connected: records are only encoded.
func newTestSink(t testing.TB) *Sink {
	t.Helper()
	s, err := New(Options{Brokers: []string{"127.0.0.1:1"}, ClientID: "test", TopicPrefix: "t_", Bridge: "b1"}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// A row too large for one record is written with its long text cut to fit,
// each cut field ending in a note of its length, and every other field
// whole; rows that fit are untouched.
func TestOversizeRowsAreCutToFit(t *testing.T) {
	s := newTestSink(t)
	w := s.Alerts()
	const limit = 100_000
	small := rows.AlertRow{Fingerprint: "fp-small", Status: "firing", Annotations: `{"summary":"ok"}`}
	big := rows.AlertRow{Fingerprint: "fp-big", Status: "firing", AlertName: "Huge", Job: "node",
		Labels:      `{alertname="Huge", job="node"}`,
		Annotations: strings.Repeat("é", 150_000), // two bytes each: 300,000 bytes
		Values:      strings.Repeat("v", 30_000)}  // fits on its own: stays whole
	twoLong := rows.AlertRow{Fingerprint: "fp-two", Status: "resolved",
		Labels: strings.Repeat("l", 90_000), SeriesKey: strings.Repeat("s", 90_000)}
	escaped := rows.AlertRow{Fingerprint: "fp-esc", Status: "firing",
		Annotations: strings.Repeat("\x01", 60_000)} // six bytes each in JSON
	recs := w.records([]rows.AlertRow{small, big, twoLong, escaped}, limit)
	if len(recs) != 4 {
		t.Fatalf("%d records", len(recs))
	}
	if want := encode(encodeAlert, small); string(recs[0].Value) != string(want) {
		t.Errorf("a row that fits was changed:\n%s\nwant\n%s", recs[0].Value, want)
	}
	for i, r := range recs {
		if n := len(r.Key) + len(r.Value); n > limit {
			t.Errorf("record %d: %d bytes, over the limit of %d", i, n, limit)
		}
		var got map[string]any
		if err := json.Unmarshal(r.Value, &got); err != nil {
			t.Fatalf("record %d is not JSON: %v", i, err)
		}
		if !utf8.Valid(r.Value) {
			t.Errorf("record %d is not valid UTF-8", i)
		}
	}
	var got rows.AlertRow
	if err := json.Unmarshal(recs[1].Value, &got); err != nil {
		t.Fatal(err)
	}
	if got.Fingerprint != "fp-big" || got.AlertName != "Huge" || got.Job != "node" || got.Labels != big.Labels || got.Values != big.Values {
		t.Errorf("short fields changed: %+v", got)
	}
	note := "…[cut by prometheus-deephaven-bridge from 300000 bytes]"
	if !strings.HasSuffix(got.Annotations, note) || !strings.HasPrefix(got.Annotations, "éé") {
		t.Errorf("Annotations = %.40q … %q, want a prefix of the text and the note %q", got.Annotations, got.Annotations[max(0, len(got.Annotations)-80):], note)
	}
	// The first try keeps of the long field what the others leave.
	if kept := len(got.Annotations); kept < limit/2 {
		t.Errorf("kept %d bytes of the annotations, want at least %d", kept, limit/2)
	}
	if err := json.Unmarshal(recs[2].Value, &got); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(got.Labels, "from 90000 bytes]") || !strings.HasSuffix(got.SeriesKey, "from 90000 bytes]") {
		t.Errorf("both long fields should be cut: %.60q, %.60q", got.Labels, got.SeriesKey)
	}
	if err := json.Unmarshal(recs[3].Value, &got); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(got.Annotations, "from 60000 bytes]") {
		t.Errorf("escaped text not cut: %d bytes", len(got.Annotations))
	}
	if n := testutil.ToFloat64(s.cut.WithLabelValues("t_alerts")); n != 3 {
		t.Errorf("kafka_records_cut_total = %v, want 3", n)
	}
}

// A key over maxKeyBytes becomes its hash: stable, so its rows keep to one
// partition, and short.
func TestLongKeysAreHashed(t *testing.T) {
	w := newTestSink(t).Alerts()
	long := strings.Repeat("f", 5000)
	longRule := strings.Repeat("e", 1000) // a long expression: kept as it is
	recs := w.records([]rows.AlertRow{{Fingerprint: longRule}, {Fingerprint: long}, {Fingerprint: long}}, 100_000)
	if string(recs[0].Key) != longRule {
		t.Errorf("a key of 1,000 bytes changed: %.20q…", recs[0].Key)
	}
	if len(recs[1].Key) != 64 || string(recs[1].Key) != string(recs[2].Key) {
		t.Errorf("long key: %q and %q, want one 64-character hash", recs[1].Key, recs[2].Key)
	}
	var got rows.AlertRow
	if err := json.Unmarshal(recs[1].Value, &got); err != nil || got.Fingerprint != long {
		t.Errorf("the value keeps the whole fingerprint: %v, %d bytes", err, len(got.Fingerprint))
	}
}

func TestCutTextKeepsCharacters(t *testing.T) {
	for _, tc := range []struct {
		in string
		n  int
	}{
		{strings.Repeat("日本", 1000), 200},
		{strings.Repeat("a", 1000), 100},
		{"€" + strings.Repeat("x", 500), 61},
		{strings.Repeat("x", 500), 10}, // shorter than the note: the note alone
	} {
		got := cutText(tc.in, tc.n)
		if !utf8.ValidString(got) {
			t.Errorf("cutText(%.10q…, %d) is not valid UTF-8", tc.in, tc.n)
		}
		if !strings.HasPrefix(tc.in, strings.SplitN(got, "…[cut", 2)[0]) {
			t.Errorf("cutText(%.10q…, %d) = %q: not a prefix", tc.in, tc.n, got)
		}
		if len(got) > max(tc.n, 60) {
			t.Errorf("cutText(%.10q…, %d): %d bytes", tc.in, tc.n, len(got))
		}
	}
}

// FuzzRecordsFit: whatever the row, its record fits the limit, is valid
// JSON and UTF-8, and a row that fitted is written as it is.
func FuzzRecordsFit(f *testing.F) {
	f.Add("fp", `{alertname="A"}`, `{summary="s"}`, 100, 20_000)
	f.Add(strings.Repeat("k", 5000), strings.Repeat("é", 5000), "\x01\x02\"\\", 1000, 17_000)
	f.Add("fp", "\xff\xfe", strings.Repeat("日本", 3000), 4000, minRecordBytes)
	w := newTestSink(f).Alerts()
	f.Fuzz(func(t *testing.T, fp, labels, annotations string, repeat, limit int) {
		repeat = min(max(repeat, 0), 50_000)
		limit = min(max(limit, minRecordBytes), 1<<20)
		r := rows.AlertRow{Fingerprint: fp, Status: "firing", Labels: labels,
			Annotations: strings.Repeat(annotations, max(1, repeat/max(1, len(annotations))))}
		rec := w.records([]rows.AlertRow{r}, limit)[0]
		if n := len(rec.Key) + len(rec.Value); n > limit {
			t.Fatalf("record of %d bytes over the limit of %d", n, limit)
		}
		if !utf8.Valid(rec.Value) {
			t.Fatal("record is not valid UTF-8")
		}
		var got map[string]any
		if err := json.Unmarshal(rec.Value, &got); err != nil {
			t.Fatalf("record is not JSON: %v", err)
		}
		if whole := encode(encodeAlert, r); len(recordKey([]byte(fp)))+len(whole) <= limit && string(rec.Value) != string(whole) {
			t.Fatal("a row that fitted was changed")
		}
	})
}

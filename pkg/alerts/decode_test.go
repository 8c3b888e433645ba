package alerts

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeFiles runs Decode over every payload in testdata. The error texts
// are part of the API: they are the bodies of 400 responses that operators
// read in Alertmanager's logs.
func TestDecodeFiles(t *testing.T) {
	for _, tc := range []struct {
		file   string
		opts   Options
		alerts int    // when err is empty
		err    string // exact text
	}{
		// Accepted.
		{file: "am025_firing.json", alerts: 2},
		{file: "am025_resolved.json", alerts: 1},
		{file: "am034_extra_fields.json", alerts: 2},
		{file: "script_strings.json", alerts: 1},
		{file: "missing_fingerprint.json", alerts: 1},
		{file: "no_version.json", alerts: 1},
		{file: "nul_escaped.json", alerts: 1},
		{file: "empty_alerts.json", alerts: 0},
		{file: "dup_in_request.json", alerts: 2},
		{file: "nesting_100.json", alerts: 0},
		{file: "startsAt_year_9999.json", err: "alerts[0].startsAt: 9999-12-31T23:59:59Z is out of range [1970-01-01T00:00:00Z, 2262-04-11T23:47:16.854775807Z]"},
		{file: "many_labels.json", opts: Options{MaxLabelsPerAlert: 10000}, alerts: 1},
		{file: "am_with_grafana_fields.json", alerts: 1}, // version "4": Grafana's fields are unknown ones
		{file: "grafana_8_0_constructed.json", alerts: 1},
		{file: "grafana_9_0_firing.json", alerts: 2},
		{file: "grafana_docs_03703ac_data_avg_firing.json", alerts: 2},
		{file: "grafana_11_firing.json", alerts: 2},
		{file: "grafana_11_nodata_constructed.json", alerts: 3},
		{file: "grafana_12_values_null_constructed.json", alerts: 2},
		{file: "grafana_test_notification_constructed.json", alerts: 1},

		// Rejected: the body as a whole.
		{file: "empty.json", err: "empty body"},
		{file: "truncated_body.json", err: "invalid JSON: unexpected end of JSON input"},
		{file: "invalid_json.json", err: "invalid JSON at byte offset 44: invalid character '}' looking for beginning of object key string"},
		{file: "trailing_data.json", err: "invalid JSON at byte offset 325: invalid character '{' after top-level value"},
		{file: "invalid_utf8.json", err: "body is not valid UTF-8 (byte offset 104)"},
		{file: "nul_raw.json", err: "invalid JSON at byte offset 104: invalid character '\\x00' in string literal"},
		{file: "deep_nesting.json", err: "JSON nested deeper than 100 levels"},
		{file: "top_level_array.json", err: "expected a JSON object, got array"},

		// Rejected: the message.
		{file: "version_5.json", err: `version: unsupported webhook version "5", want "4" (Alertmanager) or "1" (Grafana)`},
		{file: "version_number.json", err: "version: expected string, got number"},
		{file: "missing_alerts.json", err: "alerts: missing"},
		{file: "alerts_not_array.json", err: "alerts: expected array, got object"},
		{file: "wrong_type_receiver.json", err: "receiver: expected string, got number"},
		{file: "truncated_negative.json", err: "truncatedAlerts: expected a non-negative integer, got -1"},
		{file: "grafana_version_2.json", err: `version: unsupported webhook version "2", want "4" (Alertmanager) or "1" (Grafana)`},
		{file: "grafana_version_number.json", err: "version: expected string, got number"},
		{file: "grafana_orgId_string.json", err: "orgId: expected number, got string"},
		{file: "grafana_orgId_float.json", err: "orgId: expected an integer, got 1.5"},
		{file: "grafana_title_number.json", err: "title: expected string, got number"},
		{file: "grafana_title_invalid_utf8.json", err: "body is not valid UTF-8 (byte offset 699)"},
		{file: "grafana_values_nan_literal.json", err: "invalid JSON at byte offset 460: invalid character 'N' looking for beginning of value"},
		{file: "grafana_values_deep_nesting.json", err: "JSON nested deeper than 100 levels"},
		{file: "am025_firing.json", opts: Options{MaxAlertsPerRequest: 1}, err: "alerts: 2 alerts, more than the limit of 1"},

		// Rejected: one alert.
		{file: "alert_null.json", err: "alerts[1]: expected object, got null"},
		{file: "missing_status.json", err: "alerts[0].status: missing"},
		{file: "bad_status.json", err: `alerts[1].status: must be "firing" or "resolved", got "pending"`},
		{file: "missing_startsAt.json", err: "alerts[0].startsAt: missing"},
		{file: "bad_startsAt.json", err: `alerts[2].startsAt: parsing time "x" as "2006-01-02T15:04:05Z07:00": cannot parse "x" as "2006"`},
		{file: "startsAt_number.json", err: "alerts[0].startsAt: expected string, got number"},
		{file: "resolved_zero_endsAt.json", err: "alerts[0].endsAt: a resolved alert needs an end time"},
		{file: "resolved_no_endsAt.json", err: "alerts[0].endsAt: a resolved alert needs an end time"},
		{file: "startsAt_before_1970.json", err: "alerts[0].startsAt: 1969-12-31T23:59:59Z is out of range [1970-01-01T00:00:00Z, 2262-04-11T23:47:16.854775807Z]"},
		{file: "startsAt_year_0.json", err: "alerts[0].startsAt: 0000-01-01T00:00:00Z is out of range [1970-01-01T00:00:00Z, 2262-04-11T23:47:16.854775807Z]"},
		{file: "endsAt_after_2262.json", err: "alerts[0].endsAt: 2262-04-12T00:00:00Z is out of range [1970-01-01T00:00:00Z, 2262-04-11T23:47:16.854775807Z]"},
		{file: "wrong_type_label.json", err: `alerts[3].labels["job"]: expected string, got number`},
		{file: "wrong_type_labels.json", err: "alerts[0].labels: expected object, got array"},
		{file: "null_label_value.json", err: `alerts[0].labels["job"]: expected string, got null`},
		{file: "empty_label_name.json", err: "alerts[0].labels: empty label name"},
		{file: "wrong_type_fingerprint.json", err: "alerts[0].fingerprint: expected string, got boolean"},
		{file: "many_labels.json", err: "alerts[0].labels: 10000 entries, more than the limit of 1000"},
		{file: "many_annotations.json", err: "alerts[0].annotations: 1001 entries, more than the limit of 1000"},
		{file: "grafana_missing_status.json", err: "alerts[0].status: missing"},
		{file: "grafana_values_string.json", err: "alerts[0].values: expected object or null, got string"},
		{file: "grafana_values_array.json", err: "alerts[0].values: expected object or null, got array"},
		{file: "grafana_values_entry_string.json", err: `alerts[0].values["B"]: expected number, got string`},
		{file: "grafana_values_nan_string.json", err: `alerts[0].values["B"]: expected number, got string`},
		{file: "grafana_values_entry_null.json", err: `alerts[0].values["B"]: expected number, got null`},
		{file: "grafana_values_entry_object.json", err: `alerts[0].values["B"]: expected number, got object`},
		{file: "grafana_values_out_of_range.json", err: `alerts[0].values["B"]: 1e999 is out of the float64 range`},
		{file: "grafana_values_empty_name.json", err: "alerts[0].values: empty value name"},
		{file: "grafana_valueString_number.json", err: "alerts[0].valueString: expected string, got number"},
		{file: "grafana_silenceURL_object.json", err: "alerts[0].silenceURL: expected string, got object"},
	} {
		name := strings.TrimSuffix(tc.file, ".json")
		if tc.opts.MaxAlertsPerRequest != 0 || tc.opts.MaxLabelsPerAlert != 0 {
			name += "/limits"
		}
		t.Run(name, func(t *testing.T) {
			m, err := Decode(readTestdata(t, tc.file), tc.opts)
			if tc.err != "" {
				if err == nil {
					t.Fatalf("Decode: no error, want %q", tc.err)
				}
				if err.Error() != tc.err {
					t.Fatalf("Decode error:\n got %s\nwant %s", err, tc.err)
				}
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("error is %T, want *Error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(m.Alerts) != tc.alerts {
				t.Fatalf("got %d alerts, want %d", len(m.Alerts), tc.alerts)
			}
		})
	}
}

func TestDecodeFiring(t *testing.T) {
	m, err := Decode(readTestdata(t, "am025_firing.json"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != "4" || m.Receiver != "deephaven" || m.GroupKey != `{}:{alertname="SelfUp"}` ||
		m.ExternalURL != "http://vm:19093" || m.Status != "firing" || m.TruncatedAlerts != 0 {
		t.Errorf("message fields: %+v", m)
	}
	a := m.Alerts[0]
	if want := time.Date(2026, 11, 25, 2, 54, 38, 320000000, time.UTC); !a.StartsAt.Equal(want) || a.StartsAt.Location() != time.UTC {
		t.Errorf("StartsAt = %v, want %v in UTC", a.StartsAt, want)
	}
	if !a.EndsAt.IsZero() {
		t.Errorf("EndsAt = %v, want zero for a firing alert", a.EndsAt)
	}
	// The testdata carries Alertmanager's fingerprints; check they are what
	// Alertmanager computes, so that the "computed when absent" path matches.
	for i, a := range m.Alerts {
		if got := toLabelSet(a.Labels).Fingerprint().String(); got != a.Fingerprint {
			t.Errorf("alerts[%d]: fingerprint %s, labels hash to %s", i, a.Fingerprint, got)
		}
	}
}

func TestDecodeResolvedOffsets(t *testing.T) {
	m, err := Decode(readTestdata(t, "am025_resolved.json"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := m.Alerts[0]
	if want := time.Date(2026, 11, 25, 1, 0, 0, 123456789, time.UTC); !a.StartsAt.Equal(want) || a.StartsAt.Location() != time.UTC {
		t.Errorf("StartsAt = %v, want %v", a.StartsAt, want)
	}
	if want := time.Date(2026, 11, 25, 1, 10, 0, 500000000, time.UTC); !a.EndsAt.Equal(want) || a.EndsAt.Location() != time.UTC {
		t.Errorf("EndsAt = %v, want %v", a.EndsAt, want)
	}
}

func TestDecodeExtraFields(t *testing.T) {
	m, err := Decode(readTestdata(t, "am034_extra_fields.json"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.TruncatedAlerts != 3 {
		t.Errorf("TruncatedAlerts = %d, want 3", m.TruncatedAlerts)
	}
	if m.Alerts[1].Status != StatusResolved || len(m.Alerts[0].Annotations) != 0 {
		t.Errorf("alerts: %+v", m.Alerts)
	}
}

func TestDecodeComputesFingerprint(t *testing.T) {
	m, err := Decode(readTestdata(t, "missing_fingerprint.json"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// FNV-1a 64 of alertname\xffA\xffjob\xffj\xff, as Alertmanager computes it.
	if got, want := m.Alerts[0].Fingerprint, toLabelSet(map[string]string{"alertname": "A", "job": "j"}).Fingerprint().String(); got != want || len(got) != 16 {
		t.Errorf("Fingerprint = %q, want %q", got, want)
	}
}

func TestDecodeKeepsStringsVerbatim(t *testing.T) {
	m, err := Decode(readTestdata(t, "script_strings.json"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := m.Alerts[0]
	const evil = `"); import os; os.system("touch /tmp/pwned") #`
	for _, c := range []struct{ got, want string }{
		{a.Labels["alertname"], evil},
		{a.Annotations["summary"], evil},
		{a.Labels["job"], "j'; DROP TABLE prometheus_alerts; --"},
		{a.Labels["instance"], "${jndi:ldap://x/a}"},
		{a.Annotations["html"], "<script>alert(1)</script>"},
		{a.GeneratorURL, "javascript:alert(1)"},
		{m.Receiver, "`rm -rf /`"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}

	m, err = Decode(readTestdata(t, "nul_escaped.json"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Alerts[0].Labels["alertname"]; got != "A\x00B" {
		t.Errorf("alertname = %q, want NUL kept", got)
	}
}

func TestDecodeTimeError(t *testing.T) {
	_, err := Decode(readTestdata(t, "bad_startsAt.json"), Options{})
	var pe *time.ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v does not wrap a *time.ParseError", err)
	}
}

func TestCheckDepth(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`[[[]]]`, true},
		{`[[[[]]]]`, false},
		{`["[[[[[[", "\"[[[[["]`, true}, // brackets in strings don't count
		{`[{"a":[{}]}]`, false},
		{`{"a":{"b":[1]}}`, true},
	} {
		err := checkDepth([]byte(tc.in), 3)
		if (err == nil) != tc.ok {
			t.Errorf("checkDepth(%s, 3) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

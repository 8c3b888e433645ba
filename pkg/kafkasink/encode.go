package kafkasink

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// encoder builds one record's JSON object, field by field, in column order.
type encoder struct {
	buf    []byte
	bridge string
	// maxText, when positive, cuts longer text fields to it (Writer.fit);
	// cut counts the fields cut, longest is the longest text seen.
	maxText, cut, longest int
}

// minRecordBytes is the least room a record is given: the fields that are
// never long, and every text field cut to its least.
const minRecordBytes = 16 << 10

func (e *encoder) name(n string) {
	if len(e.buf) == 0 {
		e.buf = append(e.buf, '{')
	} else {
		e.buf = append(e.buf, ',')
	}
	e.buf = append(e.buf, '"')
	e.buf = append(e.buf, n...)
	e.buf = append(e.buf, '"', ':')
}

func (e *encoder) str(n, v string) {
	e.name(n)
	e.longest = max(e.longest, len(v))
	if e.maxText > 0 && len(v) > e.maxText {
		v = cutText(v, e.maxText)
		e.cut++
	}
	e.buf = appendString(e.buf, v)
}

// cutText cuts s to at most n bytes (more when n is shorter than the note)
// on a character boundary, ending in a note of how long it was.
func cutText(s string, n int) string {
	note := "…[cut by prometheus-deephaven-bridge from " + strconv.Itoa(len(s)) + " bytes]"
	return runePrefix(s, max(n-len(note), 0)) + note
}

// runePrefix is s cut to at most n bytes on a character boundary.
func runePrefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// instant writes t as RFC 3339 with nanoseconds, which Deephaven's JSON
// spec parses into an Instant; a zero time is null, as in direct mode.
func (e *encoder) instant(n string, t time.Time) {
	e.name(n)
	if t.IsZero() {
		e.buf = append(e.buf, "null"...)
		return
	}
	e.buf = append(e.buf, '"')
	e.buf = t.UTC().AppendFormat(e.buf, time.RFC3339Nano)
	e.buf = append(e.buf, '"')
}

// double writes v. JSON has no number for NaN or the infinities, so those
// are the strings "NaN", "Infinity" and "-Infinity", which Deephaven's JSON
// consumer reads into the double column as those values (it parses a
// string with Java's Double.parseDouble), as direct mode stores them: a
// Grafana error ratio of 0/0, a histogram_quantile over no data, a
// staleness marker. null stays for "no value".
func (e *encoder) double(n string, v float64) {
	e.name(n)
	switch {
	case math.IsNaN(v):
		e.buf = append(e.buf, `"NaN"`...)
	case math.IsInf(v, 1):
		e.buf = append(e.buf, `"Infinity"`...)
	case math.IsInf(v, -1):
		e.buf = append(e.buf, `"-Infinity"`...)
	default:
		e.buf = strconv.AppendFloat(e.buf, v, 'g', -1, 64)
	}
}

func (e *encoder) long(n string, v int64) {
	e.name(n)
	e.buf = strconv.AppendInt(e.buf, v, 10)
}

func (e *encoder) boolean(n string, v bool) {
	e.name(n)
	e.buf = strconv.AppendBool(e.buf, v)
}

// finish adds the Bridge field and closes the object.
func (e *encoder) finish() []byte {
	e.name("Bridge")
	e.buf = appendString(e.buf, e.bridge) // never cut
	return append(e.buf, '}')
}

// appendString appends s as a JSON string. Plain ASCII is copied; anything
// else goes through encoding/json (invalid UTF-8 becomes U+FFFD).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func encodeAlert(r *rows.AlertRow, e *encoder) {
	e.instant("PrometheusDateTime", r.PrometheusDateTime)
	e.str("Job", r.Job)
	e.str("Instance", r.Instance)
	e.str("PrometheusQuery", r.PrometheusQuery)
	e.str("Status", r.Status)
	e.instant("AlertIngestDateTime", r.AlertIngestDateTime)
	e.str("AlertName", r.AlertName)
	e.str("Severity", r.Severity)
	e.str("Fingerprint", r.Fingerprint)
	e.instant("StartsAt", r.StartsAt)
	e.instant("EndsAt", r.EndsAt)
	e.str("Labels", r.Labels)
	e.str("Annotations", r.Annotations)
	e.str("GeneratorURL", r.GeneratorURL)
	e.str("Receiver", r.Receiver)
	e.str("Source", r.Source)
	e.str("SeriesKey", r.SeriesKey)
	e.str("Values", r.Values)
	if r.AlertValue != nil {
		e.double("AlertValue", *r.AlertValue)
	} else {
		e.name("AlertValue")
		e.buf = append(e.buf, "null"...)
	}
}

func encodeMetric(r *rows.MetricRow, e *encoder) {
	e.instant("PrometheusDateTime", r.PrometheusDateTime)
	e.str("PrometheusQuery", r.PrometheusQuery)
	e.str("Job", r.Job)
	e.str("Instance", r.Instance)
	e.double("Value", r.Value)
	e.instant("MetricIngestDateTime", r.MetricIngestDateTime)
	e.str("Labels", r.Labels)
	e.str("SeriesKey", r.SeriesKey)
}

func encodeSample(r *rows.SampleRow, e *encoder) {
	e.instant("PrometheusDateTime", r.PrometheusDateTime)
	e.str("MetricName", r.MetricName)
	e.str("SeriesKey", r.SeriesKey)
	e.str("Labels", r.Labels)
	e.double("Value", r.Value)
	e.str("Job", r.Job)
	e.str("Instance", r.Instance)
	e.instant("SampleIngestDateTime", r.SampleIngestDateTime)
}

func encodeRule(r *rows.RuleRow, e *encoder) {
	e.str("Group", r.Group)
	e.str("File", r.File)
	e.str("AlertName", r.AlertName)
	e.str("Expr", r.Expr)
	e.str("ValueExpr", r.ValueExpr)
	e.boolean("Reduced", r.Reduced)
	e.str("Derivation", r.Derivation)
	e.str("Query", r.Query)
	e.str("JoinLabels", r.JoinLabels)
	e.double("ForSeconds", r.ForSeconds)
	e.double("IntervalSeconds", r.IntervalSeconds)
	e.str("StaticLabels", r.StaticLabels)
	e.str("Annotations", r.Annotations)
	e.str("Health", r.Health)
	e.str("LastError", r.LastError)
	e.str("State", r.State)
	e.long("ActiveAlerts", r.ActiveAlerts)
	e.instant("LastEvaluation", r.LastEvaluation)
	e.instant("UpdatedAt", r.UpdatedAt)
	e.boolean("Present", r.Present)
}

func encodeState(r *rows.AlertStateRow, e *encoder) {
	e.str("Fingerprint", r.Fingerprint)
	e.str("AlertName", r.AlertName)
	e.str("Severity", r.Severity)
	e.str("State", r.State)
	e.str("SilencedBy", r.SilencedBy)
	e.str("InhibitedBy", r.InhibitedBy)
	e.str("Receivers", r.Receivers)
	e.instant("StartsAt", r.StartsAt)
	e.instant("EndsAt", r.EndsAt)
	e.instant("UpdatedAt", r.UpdatedAt)
	e.str("Labels", r.Labels)
	e.str("Annotations", r.Annotations)
	e.str("GeneratorURL", r.GeneratorURL)
	e.str("Alertmanager", r.Alertmanager)
	e.instant("SyncedAt", r.SyncedAt)
}

func encodeNotification(r *rows.NotificationRow, e *encoder) {
	e.str("Fingerprint", r.Fingerprint)
	e.instant("StartsAt", r.StartsAt)
	e.str("Status", r.Status)
	e.str("AlertName", r.AlertName)
	e.instant("ReceivedAt", r.ReceivedAt)
	e.str("Source", r.Source)
	e.str("Receiver", r.Receiver)
}

package alerts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
)

// WebhookVersion is the only payload version Decode accepts. Alertmanager has
// sent "4" since 0.x; a new number would mean an incompatible shape.
const WebhookVersion = "4"

// maxDepth bounds how deeply the JSON body may nest. A real payload nests four
// levels (message, alerts, alert, labels); unknown fields get generous room.
const maxDepth = 100

// Time bounds for alert timestamps. Nothing Prometheus evaluates predates the
// Unix epoch, and Deephaven Instants (like rows.AlertKey) are int64
// nanoseconds since the epoch, which end in April 2262.
var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// Error is a problem with a webhook payload. Its text names the JSON field at
// fault, e.g. `alerts[3].labels["job"]: expected string, got number`, and is
// meant for the body of a 400 response: it quotes only what the client sent.
type Error struct {
	// Field is the path of the offending JSON value; empty when the problem
	// concerns the body as a whole (invalid UTF-8, syntax, nesting).
	Field string
	// Msg says what is wrong with it.
	Msg string
	// Err is the underlying cause, if any (e.g. a *time.ParseError).
	Err error
}

// Error returns "field: message", or the message alone for the whole body.
func (e *Error) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

func errorf(field, format string, args ...any) *Error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Message is a decoded Alertmanager webhook notification (version 4). Only the
// fields the bridge uses are kept; groupLabels, commonLabels and
// commonAnnotations are derived from the alerts and are neither decoded nor
// type-checked, like any field this package does not know.
type Message struct {
	Version         string // "4", or "" when the sender left it out
	GroupKey        string
	Status          string // of the whole group; not validated, not used
	Receiver        string
	ExternalURL     string
	TruncatedAlerts uint64 // alerts Alertmanager dropped because of max_alerts
	Alerts          []Alert
	// Grafana holds what only a Grafana-managed alert notification
	// (version "1") has; nil for Alertmanager's.
	Grafana *GrafanaMessage
}

// GrafanaMessage is the part of a Grafana webhook notification that
// Alertmanager's lacks.
type GrafanaMessage struct {
	OrgID   int64
	Title   string
	State   string
	Message string
}

// Alert is one alert of a notification, validated.
type Alert struct {
	Status       string // StatusFiring or StatusResolved
	Labels       map[string]string
	Annotations  map[string]string
	StartsAt     time.Time // UTC
	EndsAt       time.Time // UTC; zero while firing
	GeneratorURL string
	// Fingerprint is the one Alertmanager sent or, when absent, the same hash
	// computed from Labels.
	Fingerprint string
	// Values are the values the sender reported with the alert, by name
	// (Grafana: the value of each query or expression ref); nil when none.
	Values map[string]float64
	// Value is the value that fed the alert's condition, when the sender
	// reports one (see chooseValue for Grafana's); nil otherwise.
	Value *float64
	// ValueString is Grafana's text form of the values, kept for when
	// Values is null (Grafana sends null when a value is NaN or ±Inf).
	ValueString string
	// SilenceURL, DashboardURL, PanelURL and ImageURL are Grafana's links.
	SilenceURL, DashboardURL, PanelURL, ImageURL string
}

// Alert statuses.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// rawMessage and rawAlert hold undecoded field values so that every type
// error can be reported with its full path (encoding/json's own errors name
// Go types and lose array indexes).
type rawMessage struct {
	Version         json.RawMessage `json:"version"`
	GroupKey        json.RawMessage `json:"groupKey"`
	Status          json.RawMessage `json:"status"`
	Receiver        json.RawMessage `json:"receiver"`
	ExternalURL     json.RawMessage `json:"externalURL"`
	TruncatedAlerts json.RawMessage `json:"truncatedAlerts"`
	Alerts          json.RawMessage `json:"alerts"`
}

type rawAlert struct {
	Status       json.RawMessage `json:"status"`
	Labels       json.RawMessage `json:"labels"`
	Annotations  json.RawMessage `json:"annotations"`
	StartsAt     json.RawMessage `json:"startsAt"`
	EndsAt       json.RawMessage `json:"endsAt"`
	GeneratorURL json.RawMessage `json:"generatorURL"`
	Fingerprint  json.RawMessage `json:"fingerprint"`
}

// Decode parses and validates one webhook body. It is all-or-nothing: any
// invalid alert makes the whole message an error, so that the tables only
// ever hold valid data. Errors are of type *Error. Only
// opts.MaxAlertsPerRequest and opts.MaxLabelsPerAlert are used (zero values
// get the defaults).
//
// Strings are kept verbatim, including NUL characters sent as \u0000; the
// body must be valid UTF-8 because encoding/json would otherwise replace bad
// bytes silently.
func Decode(body []byte, opts Options) (*Message, error) {
	opts = opts.withDefaults()
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errorf("", "empty body")
	}
	if i := invalidUTF8(body); i >= 0 {
		return nil, errorf("", "body is not valid UTF-8 (byte offset %d)", i)
	}
	if err := checkDepth(body, maxDepth); err != nil {
		return nil, err
	}
	// Unmarshal checks the syntax of the whole body before decoding any of it.
	if err := json.Unmarshal(body, new(json.RawMessage)); err != nil {
		// Offset counts the bytes read, the offending one included; report
		// the offending byte's own 0-based offset, as for UTF-8 errors.
		var se *json.SyntaxError
		if errors.As(err, &se) && se.Offset > 0 && se.Offset <= int64(len(body)) && !strings.HasPrefix(se.Error(), "unexpected end") {
			return nil, &Error{Msg: fmt.Sprintf("invalid JSON at byte offset %d: %v", se.Offset-1, se), Err: err}
		}
		return nil, &Error{Msg: "invalid JSON: " + err.Error(), Err: err}
	}
	if k := kind(body); k != "object" {
		return nil, errorf("", "expected a JSON object, got %s", k)
	}
	var raw rawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		// Unreachable with RawMessage fields, but never trust that silently.
		return nil, &Error{Msg: "invalid JSON: " + err.Error(), Err: err}
	}

	m := &Message{}
	var err error
	if raw.Version != nil && !isNull(raw.Version) {
		if m.Version, err = decodeString(raw.Version, "version"); err != nil {
			return nil, err
		}
		if m.Version != WebhookVersion {
			return nil, errorf("version", "unsupported webhook version %q, want %q", m.Version, WebhookVersion)
		}
	}
	for _, f := range []struct {
		raw  json.RawMessage
		name string
		dst  *string
	}{
		{raw.GroupKey, "groupKey", &m.GroupKey},
		{raw.Status, "status", &m.Status},
		{raw.Receiver, "receiver", &m.Receiver},
		{raw.ExternalURL, "externalURL", &m.ExternalURL},
	} {
		if *f.dst, err = decodeOptionalString(f.raw, f.name); err != nil {
			return nil, err
		}
	}
	if raw.TruncatedAlerts != nil && !isNull(raw.TruncatedAlerts) {
		if k := kind(raw.TruncatedAlerts); k != "number" {
			return nil, errorf("truncatedAlerts", "expected number, got %s", k)
		}
		n, perr := strconv.ParseUint(string(raw.TruncatedAlerts), 10, 64)
		if perr != nil {
			return nil, errorf("truncatedAlerts", "expected a non-negative integer, got %s", raw.TruncatedAlerts)
		}
		m.TruncatedAlerts = n
	}

	if raw.Alerts == nil || isNull(raw.Alerts) {
		return nil, errorf("alerts", "missing")
	}
	if k := kind(raw.Alerts); k != "array" {
		return nil, errorf("alerts", "expected array, got %s", k)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw.Alerts, &elems); err != nil {
		return nil, &Error{Field: "alerts", Msg: err.Error(), Err: err}
	}
	if len(elems) > opts.MaxAlertsPerRequest {
		return nil, errorf("alerts", "%d alerts, more than the limit of %d", len(elems), opts.MaxAlertsPerRequest)
	}
	m.Alerts = make([]Alert, 0, len(elems))
	for i, e := range elems {
		a, err := decodeAlert(e, fmt.Sprintf("alerts[%d]", i), opts.MaxLabelsPerAlert)
		if err != nil {
			return nil, err
		}
		m.Alerts = append(m.Alerts, a)
	}
	return m, nil
}

func decodeAlert(b json.RawMessage, path string, maxLabels int) (Alert, error) {
	var a Alert
	if k := kind(b); k != "object" {
		return a, errorf(path, "expected object, got %s", k)
	}
	var raw rawAlert
	if err := json.Unmarshal(b, &raw); err != nil {
		return a, &Error{Field: path, Msg: err.Error(), Err: err}
	}

	if raw.Status == nil || isNull(raw.Status) {
		return a, errorf(path+".status", "missing")
	}
	status, err := decodeString(raw.Status, path+".status")
	if err != nil {
		return a, err
	}
	if status != StatusFiring && status != StatusResolved {
		return a, errorf(path+".status", "must be %q or %q, got %q", StatusFiring, StatusResolved, status)
	}
	a.Status = status

	if a.Labels, err = decodeLabels(raw.Labels, path+".labels", maxLabels); err != nil {
		return a, err
	}
	if a.Annotations, err = decodeLabels(raw.Annotations, path+".annotations", maxLabels); err != nil {
		return a, err
	}

	if raw.StartsAt == nil || isNull(raw.StartsAt) {
		return a, errorf(path+".startsAt", "missing")
	}
	if a.StartsAt, err = decodeTime(raw.StartsAt, path+".startsAt"); err != nil {
		return a, err
	}
	if err := checkRange(a.StartsAt, path+".startsAt"); err != nil {
		return a, err
	}

	// Alertmanager sends the zero time 0001-01-01T00:00:00Z as the end of a
	// firing alert. Other senders may leave it out or send an estimate; a
	// firing row has no end either way, but a malformed value is still an
	// error.
	var endsAt time.Time
	if raw.EndsAt != nil && !isNull(raw.EndsAt) {
		if endsAt, err = decodeTime(raw.EndsAt, path+".endsAt"); err != nil {
			return a, err
		}
	}
	if status == StatusResolved {
		if endsAt.IsZero() {
			return a, errorf(path+".endsAt", "a resolved alert needs an end time")
		}
		if err := checkRange(endsAt, path+".endsAt"); err != nil {
			return a, err
		}
		a.EndsAt = endsAt
	}

	if a.GeneratorURL, err = decodeOptionalString(raw.GeneratorURL, path+".generatorURL"); err != nil {
		return a, err
	}
	if a.Fingerprint, err = decodeOptionalString(raw.Fingerprint, path+".fingerprint"); err != nil {
		return a, err
	}
	if a.Fingerprint == "" {
		// Alertmanager always sends it; computing the same FNV-1a hash of the
		// label set keeps hand-written and older senders usable.
		a.Fingerprint = toLabelSet(a.Labels).Fingerprint().String()
	}
	return a, nil
}

// decodeLabels decodes a label or annotation set. Missing or null means
// empty. Values must be strings (null is not a string); names must not be
// empty, as in Alertmanager's own validation.
func decodeLabels(b json.RawMessage, path string, maxLabels int) (map[string]string, error) {
	if b == nil || isNull(b) {
		return map[string]string{}, nil
	}
	if k := kind(b); k != "object" {
		return nil, errorf(path, "expected object, got %s", k)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, &Error{Field: path, Msg: err.Error(), Err: err}
	}
	if len(raw) > maxLabels {
		return nil, errorf(path, "%d entries, more than the limit of %d", len(raw), maxLabels)
	}
	out := make(map[string]string, len(raw))
	for name, v := range raw {
		if name == "" {
			return nil, errorf(path, "empty label name")
		}
		s, err := decodeString(v, fmt.Sprintf("%s[%q]", path, name))
		if err != nil {
			return nil, err
		}
		out[name] = s
	}
	return out, nil
}

// decodeString decodes a JSON value that must be a string.
func decodeString(b json.RawMessage, path string) (string, error) {
	if k := kind(b); k != "string" {
		return "", errorf(path, "expected string, got %s", k)
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return "", &Error{Field: path, Msg: err.Error(), Err: err}
	}
	return s, nil
}

// decodeOptionalString is decodeString with missing or null meaning "".
func decodeOptionalString(b json.RawMessage, path string) (string, error) {
	if b == nil || isNull(b) {
		return "", nil
	}
	return decodeString(b, path)
}

// decodeTime decodes an RFC 3339 timestamp strictly (as time.Time's JSON
// decoding does) and returns it in UTC.
func decodeTime(b json.RawMessage, path string) (time.Time, error) {
	s, err := decodeString(b, path)
	if err != nil {
		return time.Time{}, err
	}
	var t time.Time
	if err := t.UnmarshalText([]byte(s)); err != nil {
		return time.Time{}, &Error{Field: path, Msg: err.Error(), Err: err}
	}
	return t.UTC(), nil
}

func checkRange(t time.Time, path string) error {
	if t.Before(minTime) || t.After(maxTime) {
		return errorf(path, "%s is out of range [%s, %s]",
			t.Format(time.RFC3339Nano), minTime.Format(time.RFC3339Nano), maxTime.Format(time.RFC3339Nano))
	}
	return nil
}

// kind names the JSON type of a syntactically valid value.
func kind(b []byte) string {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 'n':
		return "null"
	case 't', 'f':
		return "boolean"
	}
	return "number"
}

func isNull(b []byte) bool { return kind(b) == "null" }

// invalidUTF8 returns the offset of the first byte that is not part of valid
// UTF-8, or -1.
func invalidUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// checkDepth rejects bodies that nest arrays and objects deeper than max. It
// is a single pass that only tracks strings and brackets, so it is cheap even
// for a body of many megabytes; syntax is checked afterwards.
func checkDepth(b []byte, max int) error {
	depth := 0
	inString, escaped := false, false
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > max {
				return errorf("", "JSON nested deeper than %d levels", max)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

func toLabelSet(m map[string]string) model.LabelSet {
	ls := make(model.LabelSet, len(m))
	for k, v := range m {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}

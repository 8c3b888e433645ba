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

// Webhook payload versions Decode accepts. Alertmanager has sent "4" since
// 0.x; Grafana-managed alerting has sent "1" since Grafana 8.0 (2021), with
// the Alertmanager fields plus its own. Any other number would mean an
// incompatible shape (or a Grafana custom payload template), so it is refused.
const (
	WebhookVersion        = "4" // Alertmanager (and Mimir, Cortex)
	GrafanaWebhookVersion = "1" // Grafana-managed alerts
)

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

// Message is a decoded webhook notification: Alertmanager's (version "4") or
// Grafana's (version "1"). Only the fields the bridge uses are kept;
// groupLabels, commonLabels and commonAnnotations are derived from the alerts
// and are neither decoded nor type-checked, like any field this package does
// not know (Grafana's ruleUID, per-alert orgId, enrichments, appVersion...).
type Message struct {
	Version         string // "4", "1", or "" when the sender left it out
	GroupKey        string
	Status          string // of the whole group; not validated, not used
	Receiver        string
	ExternalURL     string
	TruncatedAlerts uint64 // alerts the sender dropped (Alertmanager's max_alerts, Grafana's Max Alerts)
	Alerts          []Alert
	// Grafana holds what only a Grafana-managed alert notification
	// (version "1") has; nil for Alertmanager's. It is set for every
	// version "1" message, even one without any of these fields: older
	// Grafana versions lack some of them (orgId came in 8.3).
	Grafana *GrafanaMessage
}

// GrafanaMessage is the part of a Grafana webhook notification that
// Alertmanager's lacks. Missing fields are zero.
type GrafanaMessage struct {
	OrgID   int64  // orgId: the Grafana organisation
	Title   string // title: the rendered notification title template
	State   string // state: "alerting" or "ok" from Grafana; not validated, not used
	Message string // message: the rendered notification message template
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
	// (Grafana's values: the value of each query or expression ref ID);
	// nil when none. Grafana sends null rather than a map holding NaN or
	// ±Inf, which JSON cannot encode, and before 9.3 it sent no values.
	Values map[string]float64
	// Value is the value that fed the alert's condition, when the sender
	// reports one: Grafana's, chosen by the rule documented on chooseValue;
	// nil otherwise. It may be NaN or ±Inf (parsed from ValueString).
	Value *float64
	// ValueString is Grafana's text form of the values, e.g.
	// "[ var='B' labels={host=a} value=44.2 ], [ var='C' labels={host=a} value=1 ]".
	// It keeps NaN and ±Inf, so it stands in for Values when those are null.
	ValueString string
	// SilenceURL, DashboardURL, PanelURL and ImageURL are Grafana's links,
	// "" when absent.
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

	// Grafana's only (version "1").
	OrgID   json.RawMessage `json:"orgId"`
	Title   json.RawMessage `json:"title"`
	State   json.RawMessage `json:"state"`
	Message json.RawMessage `json:"message"`
}

type rawAlert struct {
	Status       json.RawMessage `json:"status"`
	Labels       json.RawMessage `json:"labels"`
	Annotations  json.RawMessage `json:"annotations"`
	StartsAt     json.RawMessage `json:"startsAt"`
	EndsAt       json.RawMessage `json:"endsAt"`
	GeneratorURL json.RawMessage `json:"generatorURL"`
	Fingerprint  json.RawMessage `json:"fingerprint"`

	// Grafana's only (version "1").
	Values       json.RawMessage `json:"values"`
	ValueString  json.RawMessage `json:"valueString"`
	SilenceURL   json.RawMessage `json:"silenceURL"`
	DashboardURL json.RawMessage `json:"dashboardURL"`
	PanelURL     json.RawMessage `json:"panelURL"`
	ImageURL     json.RawMessage `json:"imageURL"`
}

// Decode parses and validates one webhook body. It is all-or-nothing: any
// invalid alert makes the whole message an error, so that the tables only
// ever hold valid data. Errors are of type *Error. Only
// opts.MaxAlertsPerRequest and opts.MaxLabelsPerAlert are used (zero values
// get the defaults).
//
// A body with version "1" is Grafana's: its own fields (orgId, title, state,
// message; per alert values, valueString and the URLs) are decoded and
// type-checked too, every one optional because Grafana versions differ, and
// each alert's Value is chosen (see chooseValue). A body with version "4" or
// none is Alertmanager's, and those fields are ignored like any unknown one.
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
		switch m.Version {
		case WebhookVersion:
		case GrafanaWebhookVersion:
			m.Grafana = &GrafanaMessage{}
		default:
			return nil, errorf("version", "unsupported webhook version %q, want %q (Alertmanager) or %q (Grafana)",
				m.Version, WebhookVersion, GrafanaWebhookVersion)
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
	if m.Grafana != nil {
		if err := decodeGrafanaMessage(&raw, m.Grafana); err != nil {
			return nil, err
		}
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
		a, err := decodeAlert(e, fmt.Sprintf("alerts[%d]", i), opts.MaxLabelsPerAlert, m.Grafana != nil)
		if err != nil {
			return nil, err
		}
		m.Alerts = append(m.Alerts, a)
	}
	return m, nil
}

// decodeAlert decodes and validates alerts[i] (path); grafana says whether
// to decode Grafana's per-alert fields too.
func decodeAlert(b json.RawMessage, path string, maxLabels int, grafana bool) (Alert, error) {
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
	if grafana {
		if err := decodeGrafanaAlert(&raw, path, maxLabels, &a); err != nil {
			return a, err
		}
	}
	return a, nil
}

// decodeGrafanaMessage decodes the top-level fields only Grafana sends. All
// are optional: orgId came in Grafana 8.3, and title, state and message were
// once meant to go.
func decodeGrafanaMessage(raw *rawMessage, g *GrafanaMessage) error {
	if raw.OrgID != nil && !isNull(raw.OrgID) {
		if k := kind(raw.OrgID); k != "number" {
			return errorf("orgId", "expected number, got %s", k)
		}
		n, err := strconv.ParseInt(string(raw.OrgID), 10, 64)
		if err != nil {
			return errorf("orgId", "expected an integer, got %s", raw.OrgID)
		}
		g.OrgID = n
	}
	var err error
	for _, f := range []struct {
		raw  json.RawMessage
		name string
		dst  *string
	}{
		{raw.Title, "title", &g.Title},
		{raw.State, "state", &g.State},
		{raw.Message, "message", &g.Message},
	} {
		if *f.dst, err = decodeOptionalString(f.raw, f.name); err != nil {
			return err
		}
	}
	return nil
}

// decodeGrafanaAlert decodes the per-alert fields only Grafana sends into a,
// whose labels and annotations are decoded already, and chooses a.Value.
// values is bounded by maxLabels like the labels, and so are the values
// parsed from valueString when it stands in for values.
func decodeGrafanaAlert(raw *rawAlert, path string, maxLabels int, a *Alert) error {
	var err error
	if a.Values, err = decodeValues(raw.Values, path+".values", maxLabels); err != nil {
		return err
	}
	for _, f := range []struct {
		raw  json.RawMessage
		name string
		dst  *string
	}{
		{raw.ValueString, "valueString", &a.ValueString},
		{raw.SilenceURL, "silenceURL", &a.SilenceURL},
		{raw.DashboardURL, "dashboardURL", &a.DashboardURL},
		{raw.PanelURL, "panelURL", &a.PanelURL},
		{raw.ImageURL, "imageURL", &a.ImageURL},
	} {
		if *f.dst, err = decodeOptionalString(f.raw, path+"."+f.name); err != nil {
			return err
		}
	}
	// valueString stands in for values when that is null; bound it the same
	// way.
	candidates, over := a.boundedCandidates(maxLabels)
	if over {
		return errorf(path+".valueString", "more than %d values, the limit", maxLabels)
	}
	if ref, ok := chooseValue(candidates, a.Labels, a.Annotations); ok {
		v := candidates[ref]
		a.Value = &v
	}
	return nil
}

// decodeValues decodes Grafana's values: an object of ref ID to number, or
// null (nil). Entries must be JSON numbers within the float64 range: Grafana
// cannot encode NaN or ±Inf and sends null for the whole map instead, and it
// never sends a null entry (encoding/json would make one 0 unnoticed).
func decodeValues(b json.RawMessage, path string, maxValues int) (map[string]float64, error) {
	if b == nil || isNull(b) {
		return nil, nil
	}
	if k := kind(b); k != "object" {
		return nil, errorf(path, "expected object or null, got %s", k)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, &Error{Field: path, Msg: err.Error(), Err: err}
	}
	if len(raw) > maxValues {
		return nil, errorf(path, "%d entries, more than the limit of %d", len(raw), maxValues)
	}
	out := make(map[string]float64, len(raw))
	for name, v := range raw {
		if name == "" {
			return nil, errorf(path, "empty value name")
		}
		field := fmt.Sprintf("%s[%q]", path, name)
		if k := kind(v); k != "number" {
			return nil, errorf(field, "expected number, got %s", k)
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			// The syntax is JSON's, checked already: only the range is left.
			return nil, errorf(field, "%s is out of the float64 range", v)
		}
		out[name] = f
	}
	return out, nil
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

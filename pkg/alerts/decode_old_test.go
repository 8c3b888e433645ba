package alerts

// decodeOld is Decode as it was before the single-pass decoder: encoding/json
// level by level (the body, then each alert, then each label set). It is kept
// here, in a test file only, as the reference the new decoder is compared
// with, output for output and error text for error text (FuzzDecode,
// TestDecodeMatchesOld), and as the baseline of BenchmarkDecode.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// rawMessageOld and rawAlertOld hold undecoded field values so that every type
// error can be reported with its full path (encoding/json's own errors name
// Go types and lose array indexes).
type rawMessageOld struct {
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

type rawAlertOld struct {
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

// decodeOld is the former Decode. Decode parses and validates one webhook body. It is all-or-nothing: any
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
func decodeOld(body []byte, opts Options) (*Message, error) {
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
	if k := kindOld(body); k != "object" {
		return nil, errorf("", "expected a JSON object, got %s", k)
	}
	var raw rawMessageOld
	if err := json.Unmarshal(body, &raw); err != nil {
		// Unreachable with RawMessage fields, but never trust that silently.
		return nil, &Error{Msg: "invalid JSON: " + err.Error(), Err: err}
	}

	m := &Message{}
	var err error
	if raw.Version != nil && !isNullOld(raw.Version) {
		if m.Version, err = decodeStringOld(raw.Version, "version"); err != nil {
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
		if *f.dst, err = decodeOptionalStringOld(f.raw, f.name); err != nil {
			return nil, err
		}
	}
	if raw.TruncatedAlerts != nil && !isNullOld(raw.TruncatedAlerts) {
		if k := kindOld(raw.TruncatedAlerts); k != "number" {
			return nil, errorf("truncatedAlerts", "expected number, got %s", k)
		}
		n, perr := strconv.ParseUint(string(raw.TruncatedAlerts), 10, 64)
		if perr != nil {
			return nil, errorf("truncatedAlerts", "expected a non-negative integer, got %s", raw.TruncatedAlerts)
		}
		m.TruncatedAlerts = n
	}
	if m.Grafana != nil {
		if err := decodeGrafanaMessageOld(&raw, m.Grafana); err != nil {
			return nil, err
		}
	}

	if raw.Alerts == nil || isNullOld(raw.Alerts) {
		return nil, errorf("alerts", "missing")
	}
	if k := kindOld(raw.Alerts); k != "array" {
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
		a, err := decodeAlertOld(e, fmt.Sprintf("alerts[%d]", i), opts.MaxLabelsPerAlert, m.Grafana != nil)
		if err != nil {
			return nil, err
		}
		m.Alerts = append(m.Alerts, a)
	}
	return m, nil
}

// decodeAlert decodes and validates alerts[i] (path); grafana says whether
// to decode Grafana's per-alert fields too.
func decodeAlertOld(b json.RawMessage, path string, maxLabels int, grafana bool) (Alert, error) {
	var a Alert
	if k := kindOld(b); k != "object" {
		return a, errorf(path, "expected object, got %s", k)
	}
	var raw rawAlertOld
	if err := json.Unmarshal(b, &raw); err != nil {
		return a, &Error{Field: path, Msg: err.Error(), Err: err}
	}

	if raw.Status == nil || isNullOld(raw.Status) {
		return a, errorf(path+".status", "missing")
	}
	status, err := decodeStringOld(raw.Status, path+".status")
	if err != nil {
		return a, err
	}
	if status != StatusFiring && status != StatusResolved {
		return a, errorf(path+".status", "must be %q or %q, got %q", StatusFiring, StatusResolved, status)
	}
	a.Status = status

	if a.Labels, err = decodeLabelsOld(raw.Labels, path+".labels", maxLabels); err != nil {
		return a, err
	}
	if a.Annotations, err = decodeLabelsOld(raw.Annotations, path+".annotations", maxLabels); err != nil {
		return a, err
	}

	if raw.StartsAt == nil || isNullOld(raw.StartsAt) {
		return a, errorf(path+".startsAt", "missing")
	}
	if a.StartsAt, err = decodeTimeOld(raw.StartsAt, path+".startsAt"); err != nil {
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
	if raw.EndsAt != nil && !isNullOld(raw.EndsAt) {
		if endsAt, err = decodeTimeOld(raw.EndsAt, path+".endsAt"); err != nil {
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

	if a.GeneratorURL, err = decodeOptionalStringOld(raw.GeneratorURL, path+".generatorURL"); err != nil {
		return a, err
	}
	if a.Fingerprint, err = decodeOptionalStringOld(raw.Fingerprint, path+".fingerprint"); err != nil {
		return a, err
	}
	if a.Fingerprint == "" {
		// Alertmanager always sends it; computing the same FNV-1a hash of the
		// label set keeps hand-written and older senders usable.
		a.Fingerprint = toLabelSet(a.Labels).Fingerprint().String()
	}
	if grafana {
		if err := decodeGrafanaAlertOld(&raw, path, maxLabels, &a); err != nil {
			return a, err
		}
	}
	return a, nil
}

// decodeGrafanaMessage decodes the top-level fields only Grafana sends. All
// are optional: orgId came in Grafana 8.3, and title, state and message were
// once meant to go.
func decodeGrafanaMessageOld(raw *rawMessageOld, g *GrafanaMessage) error {
	if raw.OrgID != nil && !isNullOld(raw.OrgID) {
		if k := kindOld(raw.OrgID); k != "number" {
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
		if *f.dst, err = decodeOptionalStringOld(f.raw, f.name); err != nil {
			return err
		}
	}
	return nil
}

// decodeGrafanaAlert decodes the per-alert fields only Grafana sends into a,
// whose labels and annotations are decoded already, and chooses a.Value.
// values is bounded by maxLabels like the labels, and so are the values
// parsed from valueString when it stands in for values.
func decodeGrafanaAlertOld(raw *rawAlertOld, path string, maxLabels int, a *Alert) error {
	var err error
	if a.Values, err = decodeValuesOld(raw.Values, path+".values", maxLabels); err != nil {
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
		if *f.dst, err = decodeOptionalStringOld(f.raw, path+"."+f.name); err != nil {
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
func decodeValuesOld(b json.RawMessage, path string, maxValues int) (map[string]float64, error) {
	if b == nil || isNullOld(b) {
		return nil, nil
	}
	if k := kindOld(b); k != "object" {
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
		if k := kindOld(v); k != "number" {
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
func decodeLabelsOld(b json.RawMessage, path string, maxLabels int) (map[string]string, error) {
	if b == nil || isNullOld(b) {
		return map[string]string{}, nil
	}
	if k := kindOld(b); k != "object" {
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
		s, err := decodeStringOld(v, fmt.Sprintf("%s[%q]", path, name))
		if err != nil {
			return nil, err
		}
		out[name] = s
	}
	return out, nil
}

// decodeString decodes a JSON value that must be a string.
func decodeStringOld(b json.RawMessage, path string) (string, error) {
	if k := kindOld(b); k != "string" {
		return "", errorf(path, "expected string, got %s", k)
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return "", &Error{Field: path, Msg: err.Error(), Err: err}
	}
	return s, nil
}

// decodeOptionalString is decodeString with missing or null meaning "".
func decodeOptionalStringOld(b json.RawMessage, path string) (string, error) {
	if b == nil || isNullOld(b) {
		return "", nil
	}
	return decodeStringOld(b, path)
}

// decodeTime decodes an RFC 3339 timestamp strictly (as time.Time's JSON
// decoding does) and returns it in UTC.
func decodeTimeOld(b json.RawMessage, path string) (time.Time, error) {
	s, err := decodeStringOld(b, path)
	if err != nil {
		return time.Time{}, err
	}
	var t time.Time
	if err := t.UnmarshalText([]byte(s)); err != nil {
		return time.Time{}, &Error{Field: path, Msg: err.Error(), Err: err}
	}
	return t.UTC(), nil
}

// kind names the JSON type of a syntactically valid value.
func kindOld(b []byte) string {
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

func isNullOld(b []byte) bool { return kindOld(b) == "null" }

// invalidUTF8 returns the offset of the first byte that is not part of valid

func checkRange(t time.Time, path string) error {
	if !inRange(t) {
		return rangeError(t, path)
	}
	return nil
}

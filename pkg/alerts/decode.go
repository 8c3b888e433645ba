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
// The body is read once, front to back, and decoded as it is read. All of
// it, the fields Decode ignores included, must be JSON as encoding/json
// accepts it, valid UTF-8, and nested at most 100 deep. Members are
// matched to fields as encoding/json matches them to a struct's (exactly,
// else case-insensitively; the last of repeated members counts), and the
// checks are made in a fixed order once everything they depend on is read,
// so that the error reported does not depend on the order of the members:
// the message's fields first (version, groupKey, status, receiver,
// externalURL, truncatedAlerts, Grafana's fields), then alerts, then each
// alert in turn. Strings are kept verbatim, including NUL characters sent as
// \u0000.
func Decode(body []byte, opts Options) (*Message, error) {
	opts = opts.withDefaults()
	d := decoder{
		scanner:   scanner{data: body},
		maxAlerts: opts.MaxAlertsPerRequest,
		maxLabels: opts.MaxLabelsPerAlert,
	}
	m, err := d.message()
	if d.failed {
		// The body is refused as a whole, whatever was found in it before.
		return nil, bodyError(body, d.failPos)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// decoder decodes one webhook body with a single pass of its scanner. A
// member of an object may come anywhere in it, and more than once, and a
// message's version, which says whether its alerts have Grafana's fields,
// usually comes after its alerts. So each field is decoded when it is read,
// and keeps the first problem found in its value (a later member of the same
// name replaces both); the checks that involve several fields, and the
// choice of the error to report, wait until the object ends. Grafana's
// fields are decoded in every body and dropped, problems included, if it is
// not Grafana's.
type decoder struct {
	scanner
	maxAlerts, maxLabels int

	buf    []byte         // unescaped string values
	labels []labelEntry   // the label set being read
	values []valueEntry   // the values being read
	strs   [128][2]string // see shared
}

// shared returns b as a string, the same string for the same bytes within
// one body, mostly: the label names, and the label values and generator
// URLs the alerts of a group have in common, are allocated once per body
// rather than once per alert. It is a small cache indexed by the length
// and three bytes of a string, of two strings an entry, the more recently
// used first, so that the strings of each alert that no other alert has
// (its instance, say) do not push out the ones they all have. A miss costs
// little more than the allocation it could not save.
func (d *decoder) shared(b []byte) string {
	n := len(b)
	if n == 0 {
		return ""
	}
	k := uint32(n) ^ uint32(b[0])<<8 ^ uint32(b[n/2])<<16 ^ uint32(b[n-1])<<24
	e := &d.strs[(k*0x9e3779b1)>>(32-7)] // Fibonacci hashing to 7 bits
	switch {
	case e[0] == string(b):
		return e[0]
	case e[1] == string(b):
		e[0], e[1] = e[1], e[0]
		return e[0]
	}
	e[1], e[0] = e[0], string(b)
	return e[0]
}

// str reads the string at pos, which the caller has peeked, as a Go string.
func (d *decoder) str(share bool) string {
	var b []byte
	b, d.buf = d.strValue(d.buf)
	if share {
		return d.shared(b)
	}
	return string(b)
}

// path returns the JSON path of a field of alerts[alert], or of the message
// when alert is negative; an empty field names the alert itself. It is only
// called for errors, so that valid bodies do not pay for paths.
func path(alert int, field string) string {
	if alert < 0 {
		return field
	}
	p := "alerts[" + strconv.Itoa(alert) + "]"
	if field != "" {
		p += "." + field
	}
	return p
}

// optString reads a value that must be a string or null (""): into *dst,
// or a problem into *err. share is as for str.
func (d *decoder) optString(alert int, field string, share bool, dst *string, err **Error) {
	*dst, *err = "", nil
	switch c := d.peek(); c {
	case '"':
		*dst = d.str(share)
	case 'n':
		d.literal()
	default:
		d.skip()
		*err = errorf(path(alert, field), "expected string, got %s", kindOf(c))
	}
}

// number reads a value that must be a number or null (set is false) and
// returns its text, which aliases the body.
func (d *decoder) number(field string) (text []byte, set bool, err *Error) {
	switch c := d.peek(); {
	case c == 'n':
		d.literal()
		return nil, false, nil
	case c == '-' || ('0' <= c && c <= '9'):
		return d.num(), true, nil
	default:
		d.skip()
		return nil, true, errorf(field, "expected number, got %s", kindOf(c))
	}
}

// Members of a message that Decode decodes, as indexes of messageFields.
const (
	mVersion = iota
	mGroupKey
	mStatus
	mReceiver
	mExternalURL
	mTruncatedAlerts
	mAlerts
	mOrgID
	mTitle
	mState
	mMessage
)

var messageFields = []string{"version", "groupKey", "status", "receiver", "externalURL",
	"truncatedAlerts", "alerts", "orgId", "title", "state", "message"}

// messageField returns the index in messageFields of the field a member
// name selects, or -1 for a member Decode ignores.
func messageField(name []byte) int {
	switch string(name) {
	case "version":
		return mVersion
	case "groupKey":
		return mGroupKey
	case "status":
		return mStatus
	case "receiver":
		return mReceiver
	case "externalURL":
		return mExternalURL
	case "truncatedAlerts":
		return mTruncatedAlerts
	case "alerts":
		return mAlerts
	case "orgId":
		return mOrgID
	case "title":
		return mTitle
	case "state":
		return mState
	case "message":
		return mMessage
	}
	return matchField(name, messageFields)
}

// message reads the whole body. When the scanner fails, what it returns
// does not matter.
func (d *decoder) message() (*Message, *Error) {
	if c := d.peek(); c != '{' {
		d.skip()
		d.end()
		return nil, errorf("", "expected a JSON object, got %s", kindOf(c))
	}
	m := &Message{}
	var (
		g                                                   GrafanaMessage
		version                                             string
		versionSet                                          bool
		versionErr, truncatedErr, orgIDErr                  *Error
		groupKeyErr, statusErr, receiverErr, externalURLErr *Error
		titleErr, stateErr, messageErr                      *Error
		alerts                                              alertsField
		text                                                []byte
		set                                                 bool
	)
	d.open()
	for n := 0; ; n++ {
		name, ok := d.member(n)
		if !ok {
			break
		}
		switch messageField(name) {
		case mVersion:
			version, versionSet, versionErr = "", false, nil
			switch c := d.peek(); c {
			case '"':
				var b []byte
				b, d.buf = d.strValue(d.buf)
				switch string(b) {
				case WebhookVersion:
					version = WebhookVersion
				case GrafanaWebhookVersion:
					version = GrafanaWebhookVersion
				default:
					version = string(b)
				}
				versionSet = true
			case 'n':
				d.literal()
			default:
				d.skip()
				versionSet, versionErr = true, errorf("version", "expected string, got %s", kindOf(c))
			}
		case mGroupKey:
			d.optString(-1, "groupKey", false, &m.GroupKey, &groupKeyErr)
		case mStatus:
			d.optString(-1, "status", false, &m.Status, &statusErr)
		case mReceiver:
			d.optString(-1, "receiver", false, &m.Receiver, &receiverErr)
		case mExternalURL:
			d.optString(-1, "externalURL", false, &m.ExternalURL, &externalURLErr)
		case mTruncatedAlerts:
			m.TruncatedAlerts = 0
			if text, set, truncatedErr = d.number("truncatedAlerts"); set && truncatedErr == nil {
				var err error
				if m.TruncatedAlerts, err = strconv.ParseUint(string(text), 10, 64); err != nil {
					truncatedErr = errorf("truncatedAlerts", "expected a non-negative integer, got %s", text)
				}
			}
		case mAlerts:
			d.alerts(&alerts)
		case mOrgID:
			g.OrgID = 0
			if text, set, orgIDErr = d.number("orgId"); set && orgIDErr == nil {
				var err error
				if g.OrgID, err = strconv.ParseInt(string(text), 10, 64); err != nil {
					orgIDErr = errorf("orgId", "expected an integer, got %s", text)
				}
			}
		case mTitle:
			d.optString(-1, "title", false, &g.Title, &titleErr)
		case mState:
			d.optString(-1, "state", false, &g.State, &stateErr)
		case mMessage:
			d.optString(-1, "message", false, &g.Message, &messageErr)
		default:
			d.skip()
		}
	}
	d.end()
	if d.failed {
		return nil, nil
	}

	if versionErr != nil {
		return nil, versionErr
	}
	if versionSet {
		switch version {
		case WebhookVersion:
		case GrafanaWebhookVersion:
			gm := g // only Grafana's messages get one on the heap
			m.Grafana = &gm
		default:
			return nil, errorf("version", "unsupported webhook version %q, want %q (Alertmanager) or %q (Grafana)",
				version, WebhookVersion, GrafanaWebhookVersion)
		}
		m.Version = version
	}
	for _, err := range []*Error{groupKeyErr, statusErr, receiverErr, externalURLErr, truncatedErr} {
		if err != nil {
			return nil, err
		}
	}
	if m.Grafana != nil {
		for _, err := range []*Error{orgIDErr, titleErr, stateErr, messageErr} {
			if err != nil {
				return nil, err
			}
		}
	}
	if err := alerts.finish(m.Grafana != nil, d.maxAlerts, d.maxLabels); err != nil {
		return nil, err
	}
	m.Alerts = alerts.alerts
	return m, nil
}

// alertsField is the decoded alerts member of a message.
type alertsField struct {
	set    bool    // present and not null
	err    *Error  // not an array
	n      int     // its elements
	alerts []Alert // the valid ones, up to the first invalid one or the limit
	// bad is the problem with the first invalid alert, alerts[len(alerts)];
	// the alerts after it are not decoded, only scanned.
	bad *Error
	// grafanaErr is the first problem with Grafana's fields, in the alert at
	// grafanaAt; grafana is whether any alert has any of those fields.
	grafanaErr *Error
	grafanaAt  int
	grafana    bool
}

// alerts reads the alerts member into f.
func (d *decoder) alerts(f *alertsField) {
	*f = alertsField{}
	switch c := d.peek(); c {
	case '[':
	case 'n':
		d.literal()
		return
	default:
		d.skip()
		f.set, f.err = true, errorf("alerts", "expected array, got %s", kindOf(c))
		return
	}
	f.set = true
	d.open()
	for ; d.element(f.n); f.n++ {
		if f.bad != nil || f.n >= d.maxAlerts {
			// Nothing in these can change the error.
			d.skip()
			continue
		}
		if f.alerts == nil {
			// Real alerts take 500 bytes of JSON or more: this is room for
			// all of them, mostly, in less memory than half the body's.
			f.alerts = make([]Alert, 0, min(d.maxAlerts, (len(d.data)-d.pos)/512+1))
		}
		f.alerts = append(f.alerts, Alert{})
		a := &f.alerts[len(f.alerts)-1]
		err, grafanaErr, grafana := d.alert(f.n, a)
		f.grafana = f.grafana || grafana
		if err != nil {
			f.bad = err
			f.alerts = f.alerts[:len(f.alerts)-1]
			continue
		}
		if grafanaErr != nil && f.grafanaErr == nil {
			f.grafanaErr, f.grafanaAt = grafanaErr, f.n
		}
	}
	switch {
	case f.n > d.maxAlerts:
		f.alerts = nil
	case f.alerts == nil:
		f.alerts = []Alert{} // an empty array is an empty list, not none
	}
}

// finish checks the alerts of a message that has passed its other checks:
// in order, the member itself, the limit, and each alert, Grafana's fields
// of an alert included when grafana (they are cleared otherwise).
func (f *alertsField) finish(grafana bool, maxAlerts, maxLabels int) *Error {
	if !f.set {
		return errorf("alerts", "missing")
	}
	if f.err != nil {
		return f.err
	}
	if f.n > maxAlerts {
		return errorf("alerts", "%d alerts, more than the limit of %d", f.n, maxAlerts)
	}
	if !grafana {
		if f.bad != nil {
			return f.bad
		}
		if f.grafana {
			for i := range f.alerts {
				a := &f.alerts[i]
				a.Values, a.ValueString = nil, ""
				a.SilenceURL, a.DashboardURL, a.PanelURL, a.ImageURL = "", "", "", ""
			}
		}
		return nil
	}
	for i := range f.alerts {
		if f.grafanaErr != nil && i == f.grafanaAt {
			return f.grafanaErr
		}
		if err := f.alerts[i].setValue(i, maxLabels); err != nil {
			return err
		}
	}
	return f.bad
}

// setValue sets the Value of Grafana's alerts[i] (see chooseValue). The
// values parsed from valueString when it stands in for values are bounded
// by maxLabels, like values.
func (a *Alert) setValue(i, maxLabels int) *Error {
	candidates, over := a.boundedCandidates(maxLabels)
	if over {
		return errorf(path(i, "valueString"), "more than %d values, the limit", maxLabels)
	}
	if ref, ok := chooseValue(candidates, a.Labels, a.Annotations); ok {
		v := candidates[ref]
		a.Value = &v
	}
	return nil
}

// Members of an alert that Decode decodes, as indexes of alertFields.
const (
	aStatus = iota
	aLabels
	aAnnotations
	aStartsAt
	aEndsAt
	aGeneratorURL
	aFingerprint
	aValues
	aValueString
	aSilenceURL
	aDashboardURL
	aPanelURL
	aImageURL
)

var alertFields = []string{"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint",
	"values", "valueString", "silenceURL", "dashboardURL", "panelURL", "imageURL"}

// alertField returns the index in alertFields of the field a member name
// selects, or -1 for a member Decode ignores.
func alertField(name []byte) int {
	switch string(name) {
	case "status":
		return aStatus
	case "labels":
		return aLabels
	case "annotations":
		return aAnnotations
	case "startsAt":
		return aStartsAt
	case "endsAt":
		return aEndsAt
	case "generatorURL":
		return aGeneratorURL
	case "fingerprint":
		return aFingerprint
	case "values":
		return aValues
	case "valueString":
		return aValueString
	case "silenceURL":
		return aSilenceURL
	case "dashboardURL":
		return aDashboardURL
	case "panelURL":
		return aPanelURL
	case "imageURL":
		return aImageURL
	}
	return matchField(name, alertFields)
}

// alert reads alerts[i] into a. err is its first problem, in the order
// Decode checks an alert: status, labels, annotations, startsAt, endsAt,
// generatorURL, fingerprint. grafanaErr is the first problem with Grafana's
// fields, in the order values, valueString, silenceURL, dashboardURL,
// panelURL, imageURL; it is nil when err is not, because err comes first.
// grafana reports whether the alert has any of Grafana's fields.
func (d *decoder) alert(i int, a *Alert) (err, grafanaErr *Error, grafana bool) {
	if c := d.peek(); c != '{' {
		d.skip()
		return errorf(path(i, ""), "expected object, got %s", kindOf(c)), nil, false
	}
	var (
		statusSet, startsAtSet               bool
		statusErr, labelsErr, annotationsErr *Error
		startsAtErr, endsAtErr               *Error
		generatorURLErr, fingerprintErr      *Error
		grafanaErrs                          [6]*Error // by field, values to imageURL
		endsAt                               time.Time
	)
	d.open()
	for n := 0; ; n++ {
		name, ok := d.member(n)
		if !ok {
			break
		}
		switch alertField(name) {
		case aStatus:
			a.Status, statusSet, statusErr = d.status(i)
		case aLabels:
			a.Labels, labelsErr = d.labelSet(i, "labels")
		case aAnnotations:
			a.Annotations, annotationsErr = d.labelSet(i, "annotations")
		case aStartsAt:
			a.StartsAt, startsAtSet, startsAtErr = d.time(i, "startsAt")
			if startsAtSet && startsAtErr == nil && !inRange(a.StartsAt) {
				startsAtErr = rangeError(a.StartsAt, path(i, "startsAt"))
			}
		case aEndsAt:
			endsAt, _, endsAtErr = d.time(i, "endsAt")
		case aGeneratorURL:
			d.optString(i, "generatorURL", true, &a.GeneratorURL, &generatorURLErr)
		case aFingerprint:
			d.optString(i, "fingerprint", false, &a.Fingerprint, &fingerprintErr)
		case aValues:
			grafana = true
			a.Values, grafanaErrs[0] = d.valueSet(i)
		case aValueString:
			grafana = true
			d.optString(i, "valueString", false, &a.ValueString, &grafanaErrs[1])
		case aSilenceURL:
			grafana = true
			d.optString(i, "silenceURL", false, &a.SilenceURL, &grafanaErrs[2])
		case aDashboardURL:
			grafana = true
			d.optString(i, "dashboardURL", true, &a.DashboardURL, &grafanaErrs[3])
		case aPanelURL:
			grafana = true
			d.optString(i, "panelURL", true, &a.PanelURL, &grafanaErrs[4])
		case aImageURL:
			grafana = true
			d.optString(i, "imageURL", false, &a.ImageURL, &grafanaErrs[5])
		default:
			d.skip()
		}
	}
	if d.failed {
		return nil, nil, false
	}

	if !statusSet {
		return errorf(path(i, "status"), "missing"), nil, grafana
	}
	for _, err := range []*Error{statusErr, labelsErr, annotationsErr} {
		if err != nil {
			return err, nil, grafana
		}
	}
	if !startsAtSet {
		return errorf(path(i, "startsAt"), "missing"), nil, grafana
	}
	if startsAtErr != nil {
		return startsAtErr, nil, grafana
	}
	// Alertmanager sends the zero time 0001-01-01T00:00:00Z as the end of a
	// firing alert. Other senders may leave it out or send an estimate; a
	// firing row has no end either way, but a malformed value is still an
	// error.
	if endsAtErr != nil {
		return endsAtErr, nil, grafana
	}
	if a.Status == StatusResolved {
		if endsAt.IsZero() {
			return errorf(path(i, "endsAt"), "a resolved alert needs an end time"), nil, grafana
		}
		if !inRange(endsAt) {
			return rangeError(endsAt, path(i, "endsAt")), nil, grafana
		}
		a.EndsAt = endsAt
	}
	if generatorURLErr != nil {
		return generatorURLErr, nil, grafana
	}
	if fingerprintErr != nil {
		return fingerprintErr, nil, grafana
	}
	// Missing or null label sets are empty.
	if a.Labels == nil {
		a.Labels = map[string]string{}
	}
	if a.Annotations == nil {
		a.Annotations = map[string]string{}
	}
	if a.Fingerprint == "" {
		// Alertmanager always sends it; computing the same FNV-1a hash of the
		// label set keeps hand-written and older senders usable.
		a.Fingerprint = model.Fingerprint(model.LabelsToSignature(a.Labels)).String()
	}
	for _, err := range grafanaErrs {
		if err != nil {
			return nil, err, grafana
		}
	}
	return nil, nil, grafana
}

// status reads an alert's status: StatusFiring or StatusResolved; set is
// false for null.
func (d *decoder) status(i int) (status string, set bool, err *Error) {
	switch c := d.peek(); c {
	case '"':
		var b []byte
		b, d.buf = d.strValue(d.buf)
		switch string(b) {
		case StatusFiring:
			return StatusFiring, true, nil
		case StatusResolved:
			return StatusResolved, true, nil
		}
		return "", true, errorf(path(i, "status"), "must be %q or %q, got %q", StatusFiring, StatusResolved, b)
	case 'n':
		d.literal()
		return "", false, nil
	default:
		d.skip()
		return "", true, errorf(path(i, "status"), "expected string, got %s", kindOf(c))
	}
}

// time reads an RFC 3339 timestamp, strictly (as time.Time's JSON decoding
// does), in UTC; set is false for null.
func (d *decoder) time(i int, field string) (t time.Time, set bool, err *Error) {
	switch c := d.peek(); c {
	case '"':
		var b []byte
		b, d.buf = d.strValue(d.buf)
		if err := t.UnmarshalText(b); err != nil {
			return time.Time{}, true, &Error{Field: path(i, field), Msg: err.Error(), Err: err}
		}
		return t.UTC(), true, nil
	case 'n':
		d.literal()
		return time.Time{}, false, nil
	default:
		d.skip()
		return time.Time{}, true, errorf(path(i, field), "expected string, got %s", kindOf(c))
	}
}

// inRange reports whether t is within [minTime, maxTime].
func inRange(t time.Time) bool { return !t.Before(minTime) && !t.After(maxTime) }

// rangeError is the error for a time t, at path, that is not inRange.
func rangeError(t time.Time, path string) *Error {
	return errorf(path, "%s is out of range [%s, %s]",
		t.Format(time.RFC3339Nano), minTime.Format(time.RFC3339Nano), maxTime.Format(time.RFC3339Nano))
}

// labelEntry is a member of a label set as read: its value, or the JSON
// type of a value that is not a string.
type labelEntry struct {
	name, value, badKind string
}

// labelSet reads a label or annotation set of alerts[i]: an object of
// strings, or null (nil). Names must not be empty, as in Alertmanager's own
// validation, and there may be at most maxLabels of them.
func (d *decoder) labelSet(i int, field string) (map[string]string, *Error) {
	switch c := d.peek(); c {
	case '{':
	case 'n':
		d.literal()
		return nil, nil
	default:
		d.skip()
		return nil, errorf(path(i, field), "expected object, got %s", kindOf(c))
	}
	d.open()
	entries := d.labels[:0]
	clean := true // every value a string, every name not empty
	for n := 0; ; n++ {
		name, ok := d.member(n)
		if !ok {
			break
		}
		e := labelEntry{name: d.shared(name)}
		if c := d.peek(); c == '"' {
			e.value = d.str(true)
		} else {
			d.skip()
			e.badKind = kindOf(c)
			clean = false
		}
		clean = clean && e.name != ""
		entries = append(entries, e)
	}
	d.labels = entries[:0]
	if d.failed {
		return nil, nil
	}
	if !clean || len(entries) > d.maxLabels {
		p := path(i, field)
		if err := checkEntries(entries, func(e labelEntry) string { return e.name }, d.maxLabels, func(e labelEntry) *Error {
			switch {
			case e.name == "":
				return errorf(p, "empty label name")
			case e.badKind != "":
				return errorf(fmt.Sprintf("%s[%q]", p, e.name), "expected string, got %s", e.badKind)
			}
			return nil
		}, p); err != nil {
			return nil, err
		}
	}
	m := make(map[string]string, len(entries))
	for _, e := range entries {
		m[e.name] = e.value
	}
	return m, nil
}

// valueEntry is a member of Grafana's values as read: its value, or the
// JSON type of a value that is not a number, or the text of a number out of
// the float64 range.
type valueEntry struct {
	name            string
	value           float64
	badKind, badNum string
}

// valueSet reads Grafana's values of alerts[i]: an object of ref ID to
// number, or null (nil). Entries must be JSON numbers within the float64
// range: Grafana cannot encode NaN or ±Inf and sends null for the whole map
// instead, and it never sends a null entry (encoding/json would make one 0
// unnoticed). There may be at most maxLabels of them, like labels.
func (d *decoder) valueSet(i int) (map[string]float64, *Error) {
	switch c := d.peek(); c {
	case '{':
	case 'n':
		d.literal()
		return nil, nil
	default:
		d.skip()
		return nil, errorf(path(i, "values"), "expected object or null, got %s", kindOf(c))
	}
	d.open()
	entries := d.values[:0]
	clean := true
	for n := 0; ; n++ {
		name, ok := d.member(n)
		if !ok {
			break
		}
		e := valueEntry{name: d.shared(name)}
		if c := d.peek(); c == '-' || ('0' <= c && c <= '9') {
			text := d.num()
			v, err := strconv.ParseFloat(string(text), 64)
			if err != nil {
				// The syntax is JSON's, checked already: only the range is left.
				e.badNum = string(text)
				clean = false
			}
			e.value = v
		} else {
			d.skip()
			e.badKind = kindOf(c)
			clean = false
		}
		clean = clean && e.name != ""
		entries = append(entries, e)
	}
	d.values = entries[:0]
	if d.failed {
		return nil, nil
	}
	if !clean || len(entries) > d.maxLabels {
		p := path(i, "values")
		if err := checkEntries(entries, func(e valueEntry) string { return e.name }, d.maxLabels, func(e valueEntry) *Error {
			field := fmt.Sprintf("%s[%q]", p, e.name)
			switch {
			case e.name == "":
				return errorf(p, "empty value name")
			case e.badKind != "":
				return errorf(field, "expected number, got %s", e.badKind)
			case e.badNum != "":
				return errorf(field, "%s is out of the float64 range", e.badNum)
			}
			return nil
		}, p); err != nil {
			return nil, err
		}
	}
	m := make(map[string]float64, len(entries))
	for _, e := range entries {
		m[e.name] = e.value
	}
	return m, nil
}

// checkEntries checks the members of an object read into entries, as
// decoding them into a map and checking that would: a repeated name counts
// once, with the value of its last member; there may be at most max names;
// and check finds the problem of an entry, if any. The first entry with a
// problem, in the order of the body, is reported (decoding into a map, and
// ranging over it, picked one of several at random).
func checkEntries[E any](entries []E, name func(E) string, max int, check func(E) *Error, path string) *Error {
	last := make(map[string]int, len(entries))
	for j, e := range entries {
		last[name(e)] = j
	}
	if len(last) > max {
		return errorf(path, "%d entries, more than the limit of %d", len(last), max)
	}
	for j, e := range entries {
		if last[name(e)] != j {
			continue
		}
		if err := check(e); err != nil {
			return err
		}
	}
	return nil
}

// bodyError explains why the scanner refused body, in the words Decode has
// always used: an empty body, invalid UTF-8, nesting deeper than maxDepth,
// or encoding/json's description of the syntax error, in that order, as
// they were checked one after the other before Decode read bodies in one
// pass. at is where the scanner failed, for the case that encoding/json
// accepts the body (a bug: the scanner is meant to accept what it accepts).
func bodyError(body []byte, at int) *Error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errorf("", "empty body")
	}
	if i := invalidUTF8(body); i >= 0 {
		return errorf("", "body is not valid UTF-8 (byte offset %d)", i)
	}
	if err := checkDepth(body, maxDepth); err != nil {
		return err
	}
	if err := json.Unmarshal(body, new(json.RawMessage)); err != nil {
		// Offset counts the bytes read, the offending one included; report
		// the offending byte's own 0-based offset, as for UTF-8 errors.
		var se *json.SyntaxError
		if errors.As(err, &se) && se.Offset > 0 && se.Offset <= int64(len(body)) && !strings.HasPrefix(se.Error(), "unexpected end") {
			return &Error{Msg: fmt.Sprintf("invalid JSON at byte offset %d: %v", se.Offset-1, se), Err: err}
		}
		return &Error{Msg: "invalid JSON: " + err.Error(), Err: err}
	}
	return errorf("", "invalid JSON at byte offset %d", at)
}

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
// only tracks strings and brackets, even in a body that is not JSON, so
// that an error is reported as it was before the scanner checked depth
// itself (see bodyError).
func checkDepth(b []byte, max int) *Error {
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

package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/common/model"
)

// identifierRE matches names usable as Python and Java identifiers, which
// Deephaven table names must be.
var identifierRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// keyPath is the dotted path of a key in the file, e.g. "queries[2].interval".
type keyPath string

func (p keyPath) field(name string) keyPath {
	if p == "" {
		return keyPath(name)
	}
	return p + "." + keyPath(name)
}

func (p keyPath) index(i int) keyPath {
	return keyPath(fmt.Sprintf("%s[%d]", p, i))
}

// validator collects the problems of one file.
type validator struct {
	file string
	errs []error
}

func (v *validator) add(key keyPath, err error) {
	v.errs = append(v.errs, &Error{File: v.file, Key: string(key), Err: err})
}

func (v *validator) errorf(key keyPath, format string, args ...any) {
	v.add(key, fmt.Errorf(format, args...))
}

func (v *validator) required(key keyPath, s string) bool {
	if strings.TrimSpace(s) == "" {
		v.errorf(key, "must be set")
		return false
	}
	return true
}

func (v *validator) positive(key keyPath, n int64) {
	if n <= 0 {
		v.errorf(key, "must be greater than 0")
	}
}

func (v *validator) positiveDuration(key keyPath, d model.Duration) {
	v.positive(key, int64(d))
}

// validate checks the decoded configuration, defaults applied, and returns
// all its problems joined, in file order.
func (c *Config) validate(file string) error {
	v := &validator{file: file}

	dh := keyPath("deephaven")
	// In Kafka mode the bridge does not connect to Deephaven.
	if !c.KafkaMode() || c.Deephaven.Address != "" {
		v.address(dh.field("address"), c.Deephaven.Address)
	}
	v.auth(dh.field("auth"), c.Deephaven.Auth)
	tls := c.Deephaven.TLS
	if (tls.CertFile == "") != (tls.KeyFile == "") {
		v.errorf(dh.field("tls"), "cert_file and key_file must be set together")
	}
	v.positive(dh.field("batch_max_rows"), int64(c.Deephaven.BatchMaxRows))
	v.positive(dh.field("uploads_in_flight"), int64(c.Deephaven.UploadsInFlight))
	// batch_max_delay may be 0 (no lingering); model.Duration cannot be negative.
	v.positiveDuration(dh.field("timeout"), c.Deephaven.Timeout)

	prom := keyPath("prometheus")
	v.url(prom.field("url"), c.Prometheus.URL)
	v.positiveDuration(prom.field("poll_interval"), c.Prometheus.PollInterval)
	v.positiveDuration(prom.field("query_timeout"), c.Prometheus.QueryTimeout)
	if ba := c.Prometheus.BasicAuth; ba != nil {
		if c.Prometheus.BearerTokenFile != "" {
			v.errorf(prom, "basic_auth and bearer_token_file are mutually exclusive")
		}
		v.required(prom.field("basic_auth").field("username"), ba.Username)
		v.required(prom.field("basic_auth").field("password_file"), ba.PasswordFile)
	}

	firstUse := make(map[string]keyPath, len(c.Queries))
	for i, q := range c.Queries {
		p := keyPath("queries").index(i)
		if v.required(p.field("name"), q.Name) {
			v.name(p.field("name"), q.Name)
			if first, ok := firstUse[q.Name]; ok {
				v.errorf(p.field("name"), "duplicate name %q, first used by %s", q.Name, first)
			} else {
				firstUse[q.Name] = p
			}
		}
		v.required(p.field("expr"), q.Expr)
		v.positiveDuration(p.field("interval"), q.Interval)
		v.positiveDuration(p.field("timeout"), q.Timeout)
		for j, l := range q.JoinLabels {
			if !model.LabelName(l).IsValidLegacy() || l == model.MetricNameLabel {
				v.errorf(p.field("join_labels").index(j), "%q is not a label name", l)
			}
		}
	}

	al := keyPath("alerts")
	v.labelName(al.field("query_label"), c.Alerts.QueryLabel)
	v.labelName(al.field("severity_label"), c.Alerts.SeverityLabel)
	v.positive(al.field("max_body_bytes"), c.Alerts.MaxBodyBytes)
	v.positive(al.field("max_alerts_per_request"), int64(c.Alerts.MaxAlertsPerRequest))
	v.positive(al.field("max_concurrent_requests"), int64(c.Alerts.MaxConcurrentRequests))
	v.positiveDuration(al.field("request_timeout"), c.Alerts.RequestTimeout)
	v.positive(al.field("dedup_cache_size"), int64(c.Alerts.DedupCacheSize))

	r := keyPath("rules")
	v.positiveDuration(r.field("refresh_interval"), c.Rules.RefreshInterval)
	for i, sel := range c.Rules.Match {
		if _, err := ParseSelector(sel); err != nil {
			v.errorf(r.field("match").index(i), "%v", err)
		}
	}
	for name := range c.Rules.ExternalLabels {
		if !model.LabelName(name).IsValidLegacy() {
			v.errorf(r.field("external_labels"), "%q is not a label name", name)
		}
	}

	am := keyPath("alertmanager")
	v.positiveDuration(am.field("sync_interval"), c.Alertmanager.SyncInterval)
	v.positiveDuration(am.field("timeout"), c.Alertmanager.Timeout)
	for i, u := range c.Alertmanager.URLs {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			v.errorf(am.field("urls").index(i), "%q is not an absolute http or https URL", u)
		}
	}

	ret := keyPath("retention")
	if c.Retention.Live < 0 || (c.Retention.Live > 0 && time.Duration(c.Retention.Live) < 10*time.Second) {
		v.errorf(ret.field("live"), "%s: want 0 (keep everything) or at least 10s", c.Retention.Live)
	}
	if c.Retention.Interval < 0 {
		v.errorf(ret.field("interval"), "%s is negative", c.Retention.Interval)
	}
	if c.History.MaxAge < 0 {
		v.errorf(keyPath("history").field("max_age"), "%s is negative", c.History.MaxAge)
	} else if c.History.MaxAge > 0 && c.History.MaxAge < c.Retention.Live {
		v.errorf(keyPath("history").field("max_age"), "%s is shorter than retention.live (%s): rows would be deleted as they leave the live tables", c.History.MaxAge, c.Retention.Live)
	}
	if c.Alerts.NotificationWindow < 0 {
		v.errorf(keyPath("alerts").field("notification_window"), "%s is negative", c.Alerts.NotificationWindow)
	}

	if c.Journal.Dir != "" {
		j := keyPath("journal")
		v.positive(j.field("max_bytes"), c.Journal.MaxBytes)
		v.positiveDuration(j.field("max_age"), c.Journal.MaxAge)
		v.positive(j.field("segment_bytes"), c.Journal.SegmentBytes)
	}

	tables := keyPath("tables")
	usedBy := make(map[string]keyPath, 8)
	for _, t := range []struct {
		key, name string
	}{
		{"alerts", c.Tables.Alerts},
		{"metrics", c.Tables.Metrics},
		{"joined", c.Tables.Joined},
		{"rules", c.Tables.Rules},
		{"state", c.Tables.State},
		{"notifications", c.Tables.Notifications},
		{"episodes", c.Tables.Episodes},
		{"checkpoints", c.Tables.Checkpoints},
		{"samples", c.Tables.Samples},
	} {
		p := tables.field(t.key)
		switch {
		case t.name == "":
			v.errorf(p, "must be set")
		case !identifierRE.MatchString(t.name):
			v.errorf(p, "%q is not a valid identifier (%s)", t.name, identifierRE)
		case usedBy[t.name] != "":
			v.errorf(p, "%q is already used by %s", t.name, usedBy[t.name])
		default:
			usedBy[t.name] = p
		}
	}

	c.RemoteWrite.validate(v, "remote_write")
	c.validateSink(v)

	return errors.Join(v.errs...)
}

// address checks a host:port to dial.
func (v *validator) address(key keyPath, addr string) {
	if !v.required(key, addr) {
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		// net's own text puts the address first ("address x: missing port
		// in address"); put the problem first, as the other messages do.
		var ae *net.AddrError
		if errors.As(err, &ae) {
			v.errorf(key, "%s %q", ae.Err, ae.Addr)
		} else {
			v.add(key, err)
		}
		return
	}
	if host == "" {
		v.errorf(key, "missing host in address %q", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		v.errorf(key, "port %q must be a number from 1 to 65535", port)
	}
}

func (v *validator) auth(key keyPath, a AuthConfig) {
	switch a.Type {
	case AuthAnonymous:
		if a.KeyFile != "" {
			v.errorf(key.field("key_file"), "only valid with type psk")
		}
		if a.KeyEnv != "" {
			v.errorf(key.field("key_env"), "only valid with type psk")
		}
	case AuthPSK:
		switch {
		case a.KeyFile == "" && a.KeyEnv == "":
			v.errorf(key, "type psk needs key_file or key_env")
		case a.KeyFile != "" && a.KeyEnv != "":
			v.errorf(key, "key_file and key_env are mutually exclusive")
		case a.KeyEnv != "" && !identifierRE.MatchString(a.KeyEnv):
			v.errorf(key.field("key_env"), "%q is not a valid environment variable name", a.KeyEnv)
		}
	default:
		v.errorf(key.field("type"), "unknown type %q, want %s or %s", a.Type, AuthAnonymous, AuthPSK)
	}
}

// url checks Prometheus' base URL. Error messages never repeat a password
// the URL might hold.
func (v *validator) url(key keyPath, s string) {
	if !v.required(key, s) {
		return
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Error repeats the whole URL; keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		v.add(key, fmt.Errorf("invalid URL: %w", err))
		return
	}
	switch {
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		v.errorf(key, "%q is not an absolute http or https URL", u.Redacted())
	case u.User != nil:
		v.errorf(key, "must not hold credentials, use basic_auth or bearer_token_file")
	}
}

// name checks a query name: it is written to a table column and compared
// with alert labels, so it must read the same to everyone.
func (v *validator) name(key keyPath, s string) {
	switch {
	case !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		v.errorf(key, "%q must contain only printable characters", s)
	case strings.TrimSpace(s) != s:
		v.errorf(key, "%q must not begin or end with white space", s)
	}
}

func (v *validator) labelName(key keyPath, s string) {
	if v.required(key, s) && !model.UTF8Validation.IsValidLabelName(s) {
		v.errorf(key, "%q is not a valid label name", s)
	}
}

// Package config reads, defaults and validates the bridge's YAML configuration
// file.
//
// Load and Parse return a *Config that is complete: every default has been
// applied (including the per-query interval and timeout inherited from the
// prometheus section) and every value has been checked, so callers can use the
// fields directly. Durations are model.Duration values; convert them with
// time.Duration(d).
//
// Decoding is strict: an unknown key is an error. Errors name the file, the
// key and the problem, for example
//
//	bridge.yml: queries[2].interval: must be greater than 0
//
// and their text is stable: tests compare it exactly. Each problem is an
// *Error; when a file has several, all are reported, one per line.
//
// Load, unlike Parse, takes relative paths in the file (key files, TLS files,
// journal.dir) relative to the file's directory, as Prometheus does.
//
// The configuration never holds secrets, only where to find them (file paths
// and environment variable names), so it is safe to print or log; see
// Config.String and Config.ResolvePSK.
//
// The package imports no other package of this project.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration file.
type Config struct {
	Deephaven  DeephavenConfig  `yaml:"deephaven"`
	Prometheus PrometheusConfig `yaml:"prometheus"`
	// Queries are polled from Prometheus. An empty list is valid: the bridge
	// then only receives alerts.
	Queries []QueryConfig `yaml:"queries,omitempty"`
	Alerts  AlertsConfig  `yaml:"alerts"`
	Rules   RulesConfig   `yaml:"rules"`
	// Alertmanager is the sync of Alertmanager's own view of the alerts.
	Alertmanager AlertmanagerConfig `yaml:"alertmanager"`
	Journal      JournalConfig      `yaml:"journal"`
	// Retention bounds what the live tables hold; History keeps what
	// leaves them.
	Retention RetentionConfig `yaml:"retention"`
	History   HistoryConfig   `yaml:"history"`
	Tables    TablesConfig    `yaml:"tables"`

	// RemoteWrite receives samples from Prometheus's remote write.
	RemoteWrite RemoteWriteConfig `yaml:"remote_write"`

	// Sink chooses between writing into Deephaven directly and producing
	// to Kafka; Kafka configures the latter.
	Sink  SinkConfig  `yaml:"sink"`
	Kafka KafkaConfig `yaml:"kafka"`
}

// RetentionConfig bounds the live tables: rows older than Live leave them
// (into the history, when it is on), so Deephaven's memory does not grow
// for ever.
type RetentionConfig struct {
	// Live is how much the live tables hold, by each table's time column.
	// Default 24h; 0 keeps everything (Deephaven's memory then grows
	// without bound).
	Live model.Duration `yaml:"live"`
	// Interval is how often rows are moved out. Default: live/24, at least
	// 10s and at most 1h.
	Interval model.Duration `yaml:"interval"`
	// Writer names this bridge among the bridges writing into the same
	// Deephaven tables; each needs its own. Default: the host name and the
	// web listen port.
	Writer string `yaml:"writer,omitempty"`
}

// EffectiveInterval returns Interval, or its default for Live.
func (r RetentionConfig) EffectiveInterval() time.Duration {
	if r.Interval > 0 {
		return time.Duration(r.Interval)
	}
	return min(max(time.Duration(r.Live)/24, 10*time.Second), time.Hour)
}

// HistoryConfig is where rows that left the live tables are kept, as
// Parquet files, one date-partitioned tree per table.
type HistoryConfig struct {
	// Dir holds the files. Default "data/history"; empty drops the rows
	// that leave the live tables.
	Dir string `yaml:"dir"`
	// MaxAge bounds the history by date. Default 90 days; 0 keeps it all.
	MaxAge model.Duration `yaml:"max_age"`
}

// DeephavenConfig says where and how to write rows.
type DeephavenConfig struct {
	// Address is the server's host:port. Required.
	Address string     `yaml:"address"`
	Auth    AuthConfig `yaml:"auth"`
	TLS     TLSConfig  `yaml:"tls"`
	// BatchMaxRows is the most rows sent in one write. Default 50000:
	// Deephaven's cost is mostly per upload, and batches only grow this big
	// under load (group commit), so a high cap costs no latency.
	BatchMaxRows int `yaml:"batch_max_rows"`
	// BatchMaxDelay is how long the first row of an idle table waits for
	// more rows before its upload starts. Default 0: rows that arrive while
	// an upload is in flight form the next batch, so batches grow with load
	// without delaying anyone when idle.
	BatchMaxDelay model.Duration `yaml:"batch_max_delay"`
	// Timeout bounds each call to the server. Default 30s.
	Timeout model.Duration `yaml:"timeout"`
	// UploadsInFlight is how many uploads to one table may run at once,
	// so that the server's fixed cost per upload overlaps. Rows with the
	// same key are still applied in arrival order. Default 4.
	UploadsInFlight int `yaml:"uploads_in_flight"`
}

// AuthType names a Deephaven authentication method.
type AuthType string

// The authentication methods.
const (
	AuthAnonymous AuthType = "anonymous"
	AuthPSK       AuthType = "psk" // pre-shared key
)

// AuthConfig is how the bridge authenticates to Deephaven.
type AuthConfig struct {
	// Type is AuthAnonymous (the default) or AuthPSK.
	Type AuthType `yaml:"type"`
	// KeyFile is a file holding the pre-shared key. With type psk exactly one
	// of KeyFile and KeyEnv must be set; with type anonymous, neither.
	KeyFile string `yaml:"key_file,omitempty"`
	// KeyEnv is the name of an environment variable holding the pre-shared key.
	KeyEnv string `yaml:"key_env,omitempty"`
}

// TLSConfig is the client side of TLS to Deephaven.
//
// In YAML it is either a boolean (tls: true) or a mapping with the fields
// below. In the mapping form Enabled defaults to true: writing a tls block
// turns TLS on unless it says enabled: false.
type TLSConfig struct {
	Enabled bool `yaml:"enabled"`
	// CAFile verifies the server; the system roots when empty.
	CAFile string `yaml:"ca_file,omitempty"`
	// CertFile and KeyFile are the client certificate; both or neither.
	CertFile string `yaml:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file,omitempty"`
	// ServerName overrides the name checked in the server's certificate.
	ServerName         string `yaml:"server_name,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify,omitempty"`
}

// UnmarshalYAML accepts both a boolean and a mapping.
func (t *TLSConfig) UnmarshalYAML(unmarshal func(any) error) error {
	var raw any
	if err := unmarshal(&raw); err != nil {
		return err
	}
	switch raw.(type) {
	case map[string]any, map[any]any:
		*t = TLSConfig{Enabled: true}
		type TLSConfig tlsConfig // same fields, no UnmarshalYAML
		return unmarshal((*TLSConfig)(t))
	default:
		// Anything else must be a boolean; yaml reports the line if not.
		var enabled bool
		if err := unmarshal(&enabled); err != nil {
			return err
		}
		*t = TLSConfig{Enabled: enabled}
		return nil
	}
}

// PrometheusConfig says where and how to run the queries.
type PrometheusConfig struct {
	// URL is Prometheus' absolute http or https base URL. Required.
	URL string `yaml:"url"`
	// PollInterval is the default interval of every query. Default 1s.
	PollInterval model.Duration `yaml:"poll_interval"`
	// QueryTimeout is the default timeout of every query. Default 10s.
	QueryTimeout model.Duration `yaml:"query_timeout"`
	// BasicAuth and BearerTokenFile are optional and mutually exclusive.
	BasicAuth       *BasicAuth `yaml:"basic_auth,omitempty"`
	BearerTokenFile string     `yaml:"bearer_token_file,omitempty"`
	// BackfillMax is how far back the poller fills a gap after downtime;
	// 0 disables backfill. Default 1h.
	BackfillMax model.Duration `yaml:"backfill_max"`
}

// BasicAuth is HTTP basic authentication; the password is read from a file.
type BasicAuth struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
}

// QueryConfig is one PromQL query polled at a fixed interval.
type QueryConfig struct {
	// Name identifies the query: it is the PrometheusQuery column of its rows
	// and the value of alerts.query_label in the alerts it joins with.
	// Required, unique, printable.
	Name string `yaml:"name"`
	// Expr is the PromQL expression. Required.
	Expr string `yaml:"expr"`
	// Interval defaults to prometheus.poll_interval.
	Interval model.Duration `yaml:"interval"`
	// Timeout defaults to prometheus.query_timeout.
	Timeout model.Duration `yaml:"timeout"`
	// JoinLabels are the labels that identify a series of this query in
	// the join with alerts that name it (alerts.query_label): an alert
	// joins the samples whose values of these labels equal its own.
	// Default [job, instance].
	JoinLabels []string `yaml:"join_labels,omitempty"`
}

// These aliases let an UnmarshalYAML method declare a local copy of its
// type, with the same name but without the method, to decode into. yaml's
// errors then name the real type ("field x not found in type
// config.QueryConfig") instead of a helper type.
type (
	queryConfig = QueryConfig
	tlsConfig   = TLSConfig
)

// unset marks a query's interval or timeout that the file does not set, so
// that an explicit 0 can be told apart and rejected. model.Duration cannot
// be negative when parsed, so the value cannot come from a file.
const unset = model.Duration(-1)

// UnmarshalYAML marks the optional durations so that Parse can default them.
func (q *QueryConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*q = QueryConfig{Interval: unset, Timeout: unset}
	type QueryConfig queryConfig // same fields, no UnmarshalYAML
	return unmarshal((*QueryConfig)(q))
}

// AlertsConfig is the Alertmanager webhook receiver.
type AlertsConfig struct {
	// QueryLabel is the alert label naming the query an alert belongs to;
	// alerts without it use their alertname. Default "prometheus_query".
	QueryLabel string `yaml:"query_label"`
	// SeverityLabel is the alert label read into the Severity column.
	// Default "severity".
	SeverityLabel string `yaml:"severity_label"`
	// MaxBodyBytes bounds a request body. Default 4 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxAlertsPerRequest bounds the alerts of one notification. Default 1000.
	MaxAlertsPerRequest int `yaml:"max_alerts_per_request"`
	// MaxConcurrentRequests bounds requests handled at once. Default 64.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// RequestTimeout bounds handling one request. Default 30s.
	RequestTimeout model.Duration `yaml:"request_timeout"`
	// DedupCacheSize is how many recent alert events are remembered to drop
	// repeats. Default 100000.
	DedupCacheSize int `yaml:"dedup_cache_size"`
	// BearerTokenFile, when set, holds the token webhook requests must carry.
	BearerTokenFile string `yaml:"bearer_token_file,omitempty"`
	// NotificationWindow is how long a notification of an alert counts as
	// the same one in prometheus_alert_notifications: an HA replica's
	// copy, or a retry, within it is logged once. Default 1m.
	NotificationWindow model.Duration `yaml:"notification_window"`
}

// RulesConfig is the discovery of Prometheus's alerting rules: each rule's
// value expression is polled like a configured query, and alerts of the
// rule join its samples, with no configuration per rule.
type RulesConfig struct {
	// Enabled turns discovery on. Default true.
	Enabled bool `yaml:"enabled"`
	// RefreshInterval is how often the rules are read again. Default 1m.
	RefreshInterval model.Duration `yaml:"refresh_interval"`
	// Match narrows discovery to rules whose labels (their static labels
	// and alertname) match at least one of these selectors, e.g.
	// '{severity=~"critical|warning"}'. Default: all rules.
	Match []string `yaml:"match,omitempty"`
	// ExternalLabels are Prometheus's global.external_labels, which alerts
	// carry and query results do not. Default: read from Prometheus's
	// /api/v1/status/config.
	ExternalLabels map[string]string `yaml:"external_labels,omitempty"`
}

// AlertmanagerConfig is the sync of the alerts Alertmanager holds, silenced
// and inhibited ones included, which no webhook carries.
type AlertmanagerConfig struct {
	// Enabled turns the sync on. Default true.
	Enabled bool `yaml:"enabled"`
	// URLs are the base URLs of the replicas of one Alertmanager cluster
	// (an HA pair counts as one source). Default: the active Alertmanagers
	// Prometheus sends its alerts to (/api/v1/alertmanagers).
	URLs []string `yaml:"urls,omitempty"`
	// SyncInterval is how often the alerts are read. Default 30s.
	SyncInterval model.Duration `yaml:"sync_interval"`
	// Timeout bounds one sync. Default 10s.
	Timeout model.Duration `yaml:"timeout"`
}

// JournalConfig is the on-disk queue of rows not yet written to Deephaven.
type JournalConfig struct {
	// Dir holds the journal; empty (the default) disables it.
	Dir string `yaml:"dir,omitempty"`
	// MaxBytes bounds the journal's size. Default 1 GiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxAge bounds the age of journaled rows. Default 168h.
	MaxAge model.Duration `yaml:"max_age"`
	// SegmentBytes is the size at which the journal starts a new segment
	// file; whole segments are what retention deletes. Default 16 MiB; a
	// value above max_bytes counts as max_bytes.
	SegmentBytes int64 `yaml:"segment_bytes"`
}

// TablesConfig names the Deephaven tables. Names are identifiers
// ([A-Za-z_][A-Za-z0-9_]*) and differ from each other.
type TablesConfig struct {
	Alerts  string `yaml:"alerts"`  // default "prometheus_alerts"
	Metrics string `yaml:"metrics"` // default "prometheus_metrics"
	Joined  string `yaml:"joined"`  // default "prometheus_alerts_metrics"
	// Rules lists the discovered alerting rules. Default "prometheus_rules".
	Rules string `yaml:"rules"`
	// State holds each alert's state in Alertmanager. Default
	// "prometheus_alert_state".
	State string `yaml:"state"`
	// Notifications logs every notification of every alert. Default
	// "prometheus_alert_notifications".
	Notifications string `yaml:"notifications"`
	// Episodes is derived: one row per alert episode. Default
	// "prometheus_alert_episodes".
	Episodes string `yaml:"episodes"`
	// Checkpoints records which bridges' history a Deephaven holds; it is
	// how a restarted Deephaven is noticed. Default
	// "prometheus_bridge_checkpoints"; bridges sharing a server share it.
	Checkpoints string `yaml:"checkpoints"`
	// Samples holds the samples received by remote write. Default
	// "prometheus_samples".
	Samples string `yaml:"samples"`
}

// defaults returns a Config holding every default. Parse decodes the file
// over it, so keys the file leaves out keep these values.
// DefaultBatchMaxRows is deephaven.batch_max_rows when unset.
const DefaultBatchMaxRows = 50000

func defaults() Config {
	return Config{
		Deephaven: DeephavenConfig{
			Auth:          AuthConfig{Type: AuthAnonymous},
			BatchMaxRows:  DefaultBatchMaxRows,
			BatchMaxDelay: 0,
			Timeout:       model.Duration(30 * time.Second),

			UploadsInFlight: 4,
		},
		Prometheus: PrometheusConfig{
			PollInterval: model.Duration(time.Second),
			QueryTimeout: model.Duration(10 * time.Second),
			BackfillMax:  model.Duration(time.Hour),
		},
		Alerts: AlertsConfig{
			QueryLabel:            "prometheus_query",
			SeverityLabel:         "severity",
			MaxBodyBytes:          4 << 20,
			MaxAlertsPerRequest:   1000,
			MaxConcurrentRequests: 64,
			RequestTimeout:        model.Duration(30 * time.Second),
			DedupCacheSize:        100000,
			NotificationWindow:    model.Duration(time.Minute),
		},
		Retention: RetentionConfig{Live: model.Duration(24 * time.Hour)},
		History:   HistoryConfig{Dir: "data/history", MaxAge: model.Duration(90 * 24 * time.Hour)},
		Journal: JournalConfig{
			MaxBytes:     1 << 30,
			MaxAge:       model.Duration(7 * 24 * time.Hour),
			SegmentBytes: 16 << 20,
		},
		Tables: TablesConfig{
			Alerts:  "prometheus_alerts",
			Metrics: "prometheus_metrics",
			Joined:  "prometheus_alerts_metrics",

			Rules:         "prometheus_rules",
			State:         "prometheus_alert_state",
			Notifications: "prometheus_alert_notifications",
			Episodes:      "prometheus_alert_episodes",
			Checkpoints:   "prometheus_bridge_checkpoints",
			Samples:       "prometheus_samples",
		},
		Rules: RulesConfig{
			Enabled:         true,
			RefreshInterval: model.Duration(time.Minute),
		},
		Alertmanager: AlertmanagerConfig{
			Enabled:      true,
			SyncInterval: model.Duration(30 * time.Second),
			Timeout:      model.Duration(10 * time.Second),
		},
		RemoteWrite: RemoteWriteConfig{Enabled: true, MaxBodyBytes: DefaultRemoteWriteMaxBodyBytes},
		Sink:        SinkConfig{Kind: SinkDirect},
		Kafka:       defaultKafka(),
	}
}

// Error is a problem with a configuration file, or with one key of it.
type Error struct {
	File string // the name given to Load or Parse
	Key  string // e.g. "queries[2].interval"; empty for the file as a whole
	Err  error
}

func (e *Error) Error() string {
	if e.Key == "" {
		return e.File + ": " + e.Err.Error()
	}
	return e.File + ": " + e.Key + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Load reads and validates the file at path. Relative file and directory
// paths in it (key files, TLS files, journal.dir) are taken relative to the
// file's directory, as Prometheus does.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	cfg, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	cfg.resolvePaths(filepath.Dir(path))
	return cfg, nil
}

// Parse decodes and validates a configuration; filename is used only in error
// messages. Relative paths are left as they are. When the configuration has
// several problems, the error reports all of them, one per line.
func Parse(data []byte, filename string) (*Config, error) {
	cfg := defaults()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: filename, Err: errors.New("empty configuration")}
		}
		return nil, decodeError(data, filename, err)
	}
	// Further documents would be ignored: reject them, unless empty (a
	// trailing "---").
	for {
		var extra yaml.Node
		err := dec.Decode(&extra)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &Error{File: filename, Err: err}
		}
		if !isEmptyDocument(&extra) {
			return nil, &Error{File: filename, Err: errors.New("more than one YAML document")}
		}
	}
	cfg.applyQueryDefaults()
	if err := cfg.validate(filename); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func isEmptyDocument(n *yaml.Node) bool {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// decodeError adds the file name to a decoding error. yaml reports type
// errors with their line, but passes on an UnmarshalYAML error as it is:
// model.Duration's says only `not a valid duration string: "1x"`, so we look
// for the bad duration ourselves to name its key.
func decodeError(data []byte, filename string, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		var root yaml.Node
		if yaml.Unmarshal(data, &root) == nil {
			if key, derr := findBadDuration(&root, reflect.TypeFor[Config](), ""); derr != nil {
				return &Error{File: filename, Key: string(key), Err: derr}
			}
		}
	}
	return &Error{File: filename, Err: err}
}

var durationType = reflect.TypeFor[model.Duration]()

// findBadDuration walks the document along the Go type t and returns the
// path and parse error of the first duration that does not parse.
func findBadDuration(n *yaml.Node, t reflect.Type, path keyPath) (keyPath, error) {
	for n.Kind == yaml.DocumentNode || n.Kind == yaml.AliasNode {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		} else if len(n.Content) > 0 {
			n = n.Content[0]
		} else {
			return "", nil
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType && n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null":
		if _, err := model.ParseDuration(n.Value); err != nil {
			return path, err
		}
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			for j := range t.NumField() {
				f := t.Field(j)
				if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name == n.Content[i].Value {
					if p, err := findBadDuration(n.Content[i+1], f.Type, path.field(name)); err != nil {
						return p, err
					}
				}
			}
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			if p, err := findBadDuration(c, t.Elem(), path.index(i)); err != nil {
				return p, err
			}
		}
	}
	return "", nil
}

// applyQueryDefaults gives each query the interval and timeout of the
// prometheus section unless it sets its own.
func (c *Config) applyQueryDefaults() {
	for i := range c.Queries {
		q := &c.Queries[i]
		if q.Interval == unset {
			q.Interval = c.Prometheus.PollInterval
		}
		if q.Timeout == unset {
			q.Timeout = c.Prometheus.QueryTimeout
		}
		if q.JoinLabels == nil {
			q.JoinLabels = []string{"job", "instance"}
		}
	}
}

// resolvePaths makes relative paths relative to dir.
func (c *Config) resolvePaths(dir string) {
	for _, p := range []*string{
		&c.Deephaven.Auth.KeyFile,
		&c.Deephaven.TLS.CAFile,
		&c.Deephaven.TLS.CertFile,
		&c.Deephaven.TLS.KeyFile,
		&c.Prometheus.BearerTokenFile,
		&c.Alerts.BearerTokenFile,
		&c.Journal.Dir,
		&c.History.Dir,
	} {
		*p = joinDir(dir, *p)
	}
	if c.Prometheus.BasicAuth != nil {
		c.Prometheus.BasicAuth.PasswordFile = joinDir(dir, c.Prometheus.BasicAuth.PasswordFile)
	}
}

func joinDir(dir, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// String returns the configuration as YAML. It holds no secrets, only file
// paths and environment variable names, so it is safe to log.
func (c *Config) String() string {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return fmt.Sprintf("<error marshaling config: %s>", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Sprintf("<error marshaling config: %s>", err)
	}
	return b.String()
}

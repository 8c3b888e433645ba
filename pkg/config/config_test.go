package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

func dur(s string) model.Duration {
	d, err := model.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

// TestLoadErrors checks the exact text of every error: it is part of the API.
func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		file string
		want string // after the "testdata/<file>: " prefix
	}{
		{"empty.yml", "empty configuration"},
		{"bad-syntax.yml", "yaml: line 2: did not find expected key"},
		{"bad-multi-doc.yml", "more than one YAML document"},
		{"bad-unknown-key.yml", "yaml: unmarshal errors:\n  line 3: field adress not found in type config.DeephavenConfig"},
		{"bad-unknown-tls-key.yml", "yaml: unmarshal errors:\n  line 4: field ca not found in type config.TLSConfig"},
		{"bad-unknown-query-key.yml", "yaml: unmarshal errors:\n  line 8: field intervall not found in type config.QueryConfig"},
		{"bad-tls-type.yml", "yaml: unmarshal errors:\n  line 3: cannot unmarshal !!int `5` into bool"},
		{"bad-duration.yml", `queries[1].interval: unknown unit "x" in duration "1x"`},

		{"bad-missing-address.yml", "deephaven.address: must be set"},
		{"bad-missing-port.yml", `deephaven.address: missing port in address "localhost"`},
		{"bad-missing-host.yml", `deephaven.address: missing host in address ":10000"`},
		{"bad-port.yml", `deephaven.address: port "http" must be a number from 1 to 65535`},
		{"bad-port-range.yml", `deephaven.address: port "65536" must be a number from 1 to 65535`},
		{"bad-auth-type.yml", `deephaven.auth.type: unknown type "password", want anonymous or psk`},
		{"bad-psk-no-key.yml", "deephaven.auth: type psk needs key_file or key_env"},
		{"bad-psk-both.yml", "deephaven.auth: key_file and key_env are mutually exclusive"},
		{"bad-anonymous-key.yml", "deephaven.auth.key_file: only valid with type psk"},
		{"bad-tls-cert-without-key.yml", "deephaven.tls: cert_file and key_file must be set together"},
		{"bad-batch.yml", "deephaven.batch_max_rows: must be greater than 0"},

		{"bad-missing-url.yml", "prometheus.url: must be set"},
		{"bad-url.yml", `prometheus.url: "localhost:9090" is not an absolute http or https URL`},
		{"bad-url-parse.yml", `prometheus.url: invalid URL: invalid port ":90x0" after host`},
		{"bad-url-credentials.yml", "prometheus.url: must not hold credentials, use basic_auth or bearer_token_file"},
		{"bad-basic-and-bearer.yml", "prometheus: basic_auth and bearer_token_file are mutually exclusive"},
		{"bad-basic-auth.yml", "prometheus.basic_auth.password_file: must be set"},
		{"bad-poll-interval.yml", "prometheus.poll_interval: must be greater than 0"},
		{"bad-query-timeout.yml", "prometheus.query_timeout: must be greater than 0"},

		{"bad-missing-name.yml", "queries[0].name: must be set"},
		{"bad-query-name.yml", `queries[0].name: "up\tdown" must contain only printable characters`},
		{"bad-query-name-space.yml", `queries[0].name: "up " must not begin or end with white space`},
		{"bad-duplicate-query.yml", `queries[2].name: duplicate name "up", first used by queries[0]`},
		{"bad-empty-expr.yml", "queries[0].expr: must be set"},
		{"bad-zero-interval.yml", "queries[2].interval: must be greater than 0"},
		{"bad-zero-query-timeout.yml", "queries[0].timeout: must be greater than 0"},
		{"bad-join-labels.yml", `queries[0].join_labels[1]: "in-stance" is not a label name`},

		{"bad-alerts.yml", "alerts.max_body_bytes: must be greater than 0"},
		{"bad-query-label.yml", "alerts.query_label: must be set"},
		{"bad-journal.yml", "journal.max_bytes: must be greater than 0"},
		{"bad-journal-segment.yml", "journal.segment_bytes: must be greater than 0"},
		{"bad-table-name.yml", `tables.alerts: "prometheus-alerts" is not a valid identifier (^[A-Za-z_][A-Za-z0-9_]*$)`},
		{"bad-duplicate-tables.yml", `tables.joined: "prometheus_alerts" is already used by tables.alerts`},
		{"bad-rules-match.yml", `rules.match[1]: invalid selector "{severity=}": 1:11: parse error: unexpected "}" in label matching, expected string`},
		{"bad-rules-empty-match.yml", "rules.match[0]: empty selector {} matches everything; leave match out instead"},
		{"bad-alertmanager-url.yml", `alertmanager.urls[1]: "am:9093" is not an absolute http or https URL`},
		{"bad-retention-live.yml", "retention.live: 5s: want 0 (keep everything) or at least 10s"},
		{"bad-history-age.yml", "history.max_age: 1d is shorter than retention.live (2d): rows would be deleted as they leave the live tables"},
		{"bad-remote-write.yml", "remote_write.max_body_bytes: must be greater than 0\n" +
			"testdata/bad-remote-write.yml: remote_write.match[1]: invalid selector \"up{job=~\\\"(\\\"}\": 1:4: parse error: error parsing regexp: missing closing ): `(`\n" +
			"testdata/bad-remote-write.yml: remote_write.match[2]: empty selector {} matches everything; leave match out instead"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file)
			cfg, err := Load(path)
			if err == nil {
				t.Fatalf("Load(%s) = %v, want error", path, cfg)
			}
			if want := path + ": " + tc.want; err.Error() != want {
				t.Errorf("Load(%s) error:\n got %q\nwant %q", path, err, want)
			}
			var cerr *Error
			if !errors.As(err, &cerr) || cerr.File != path {
				t.Errorf("Load(%s) error %#v is not an *Error naming the file", path, err)
			}
		})
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	_, err := Load("testdata/bad-several.yml")
	want := strings.Join([]string{
		`testdata/bad-several.yml: deephaven.address: missing port in address "localhost"`,
		`testdata/bad-several.yml: prometheus.url: "ftp://localhost" is not an absolute http or https URL`,
		`testdata/bad-several.yml: queries[0].expr: must be set`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n got %v\nwant %s", err, want)
	}
	var cerr *Error
	if !errors.As(err, &cerr) || cerr.Key != "deephaven.address" {
		t.Errorf("first *Error = %#v, want key deephaven.address", cerr)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("error %v, want os.ErrNotExist", err)
	}
	if want := "read config file: open testdata/does-not-exist.yml: no such file or directory"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// minimalWant is testdata/minimal.yml with every default applied.
func minimalWant() *Config {
	return &Config{
		Deephaven: DeephavenConfig{
			Address:       "localhost:10000",
			Auth:          AuthConfig{Type: AuthAnonymous},
			BatchMaxRows:  50000,
			BatchMaxDelay: 0,
			Timeout:       dur("30s"),

			UploadsInFlight: 4,
		},
		Prometheus: PrometheusConfig{
			URL:          "http://localhost:9090",
			PollInterval: dur("1s"),
			QueryTimeout: dur("10s"),
			BackfillMax:  dur("1h"),
		},
		Alerts: AlertsConfig{
			QueryLabel:            "prometheus_query",
			SeverityLabel:         "severity",
			MaxBodyBytes:          4194304,
			MaxAlertsPerRequest:   1000,
			MaxConcurrentRequests: 64,
			RequestTimeout:        dur("30s"),
			DedupCacheSize:        100000,
			NotificationWindow:    dur("1m"),
		},
		Journal:   JournalConfig{MaxBytes: 1 << 30, MaxAge: dur("168h"), SegmentBytes: 16 << 20},
		Retention: RetentionConfig{Live: dur("24h")},
		History:   HistoryConfig{Dir: "testdata/data/history", MaxAge: dur("2160h")},
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
		Rules:        RulesConfig{Enabled: true, RefreshInterval: dur("1m")},
		Alertmanager: AlertmanagerConfig{Enabled: true, SyncInterval: dur("30s"), Timeout: dur("10s")},
		RemoteWrite:  RemoteWriteConfig{Enabled: true, MaxBodyBytes: 32 << 20},
		Sink:         SinkConfig{Kind: SinkDirect},
		Kafka: KafkaConfig{TopicPrefix: "prometheus_", ClientID: "prometheus-deephaven-bridge",
			ProduceTimeout: dur("10s"), Partitions: 4},
	}
}

func TestDefaults(t *testing.T) {
	got, err := Load("testdata/minimal.yml")
	if err != nil {
		t.Fatal(err)
	}
	if want := minimalWant(); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(minimal.yml):\n got %s\nwant %s", got, want)
	}
}

func TestLoadGood(t *testing.T) {
	got, err := Load("testdata/good.yml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Deephaven: DeephavenConfig{
			Address: "deephaven.example.com:8443",
			Auth:    AuthConfig{Type: AuthPSK, KeyFile: "/etc/bridge/psk"},
			TLS: TLSConfig{
				Enabled:            true,
				CAFile:             "/etc/bridge/ca.pem",
				CertFile:           "/etc/bridge/client.pem",
				KeyFile:            "/etc/bridge/client-key.pem",
				ServerName:         "dh.internal",
				InsecureSkipVerify: true,
			},
			BatchMaxRows:  500,
			BatchMaxDelay: dur("250ms"),
			Timeout:       dur("5s"),

			UploadsInFlight: 4,
		},
		Prometheus: PrometheusConfig{
			URL:          "https://prometheus.example.com/prom",
			PollInterval: dur("15s"),
			QueryTimeout: dur("3s"),
			BasicAuth:    &BasicAuth{Username: "bridge", PasswordFile: "/etc/bridge/prom-password"},
			BackfillMax:  0,
		},
		Queries: []QueryConfig{
			{Name: "up", Expr: "up", Interval: dur("15s"), Timeout: dur("3s"), JoinLabels: jl},
			{Name: "http rate", Expr: "sum(rate(http_requests_total[5m]))", Interval: dur("1m"), Timeout: dur("20s"), JoinLabels: jl},
		},
		Alerts: AlertsConfig{
			QueryLabel:            "query",
			SeverityLabel:         "level",
			MaxBodyBytes:          1048576,
			MaxAlertsPerRequest:   10,
			MaxConcurrentRequests: 4,
			RequestTimeout:        dur("10s"),
			DedupCacheSize:        50,
			BearerTokenFile:       "/etc/bridge/webhook-token",
			NotificationWindow:    dur("1m"),
		},
		Journal:   JournalConfig{Dir: "/var/lib/bridge/journal", MaxBytes: 1000000, MaxAge: dur("24h"), SegmentBytes: 16 << 20},
		Retention: RetentionConfig{Live: dur("24h")},
		History:   HistoryConfig{Dir: "testdata/data/history", MaxAge: dur("2160h")},
		Tables: TablesConfig{Alerts: "a", Metrics: "m", Joined: "j", Rules: "prometheus_rules", State: "prometheus_alert_state",
			Notifications: "prometheus_alert_notifications", Episodes: "prometheus_alert_episodes", Checkpoints: "prometheus_bridge_checkpoints",
			Samples: "s"},
		Rules:        RulesConfig{Enabled: true, RefreshInterval: dur("1m")},
		Alertmanager: AlertmanagerConfig{Enabled: true, SyncInterval: dur("30s"), Timeout: dur("10s")},
		RemoteWrite: RemoteWriteConfig{Enabled: false, MaxBodyBytes: 1 << 20,
			Match: []string{`{__name__=~"node_cpu.*", job="node"}`, `up`}},
		Sink: SinkConfig{Kind: SinkDirect},
		Kafka: KafkaConfig{TopicPrefix: "prometheus_", ClientID: "prometheus-deephaven-bridge",
			ProduceTimeout: dur("10s"), Partitions: 4},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load(good.yml):\n got %s\nwant %s", got, want)
	}
	if time.Duration(got.Queries[1].Interval) != time.Minute {
		t.Errorf("Queries[1].Interval = %v, want 1m", got.Queries[1].Interval)
	}
}

// TestStringRoundTrip checks that String is valid configuration that parses
// back to the same value.
func TestStringRoundTrip(t *testing.T) {
	for _, file := range []string{"testdata/good.yml", "testdata/minimal.yml", "../../bridge.yml"} {
		cfg, err := Load(file)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse([]byte(cfg.String()), "String()")
		if err != nil {
			t.Fatalf("%s: reparsing String(): %v\n%s", file, err, cfg)
		}
		if !reflect.DeepEqual(cfg, again) {
			t.Errorf("%s: round trip changed the config:\n got %s\nwant %s", file, again, cfg)
		}
	}
}

// parseMinimal parses minimal.yml with extra YAML appended under deephaven.
func parseMinimal(t *testing.T, deephavenExtra string) (*Config, error) {
	t.Helper()
	data := "deephaven:\n  address: localhost:10000\n" + deephavenExtra + "prometheus:\n  url: http://localhost:9090\n"
	return Parse([]byte(data), "inline.yml")
}

func TestTLSForms(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       TLSConfig
	}{
		{"absent", "", TLSConfig{}},
		{"null", "  tls:\n", TLSConfig{}},
		{"false", "  tls: false\n", TLSConfig{}},
		{"true", "  tls: true\n", TLSConfig{Enabled: true}},
		{"empty mapping enables", "  tls: {}\n", TLSConfig{Enabled: true}},
		{"mapping enables", "  tls:\n    ca_file: /ca.pem\n    server_name: dh\n",
			TLSConfig{Enabled: true, CAFile: "/ca.pem", ServerName: "dh"}},
		{"mapping disabled", "  tls: {enabled: false, ca_file: /ca.pem}\n",
			TLSConfig{CAFile: "/ca.pem"}},
		{"client certificate", "  tls: {enabled: true, cert_file: c.pem, key_file: k.pem, insecure_skip_verify: true}\n",
			TLSConfig{Enabled: true, CertFile: "c.pem", KeyFile: "k.pem", InsecureSkipVerify: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseMinimal(t, tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Deephaven.TLS != tc.want {
				t.Errorf("TLS = %+v, want %+v", cfg.Deephaven.TLS, tc.want)
			}
		})
	}
}

func TestQueryDefaults(t *testing.T) {
	data := `
deephaven: {address: "[::1]:10000"}
prometheus: {url: "http://localhost:9090", poll_interval: 7s, query_timeout: 2s}
queries:
  - {name: a, expr: a}
  - {name: b, expr: b, interval: 1m}
  - {name: c, expr: c, timeout: 9s}
`
	cfg, err := Parse([]byte(data), "inline.yml")
	if err != nil {
		t.Fatal(err)
	}
	want := []QueryConfig{
		{Name: "a", Expr: "a", Interval: dur("7s"), Timeout: dur("2s"), JoinLabels: jl},
		{Name: "b", Expr: "b", Interval: dur("1m"), Timeout: dur("2s"), JoinLabels: jl},
		{Name: "c", Expr: "c", Interval: dur("7s"), Timeout: dur("9s"), JoinLabels: jl},
	}
	if !reflect.DeepEqual(cfg.Queries, want) {
		t.Errorf("Queries = %+v, want %+v", cfg.Queries, want)
	}
}

func TestNullSectionsKeepDefaults(t *testing.T) {
	data := "deephaven:\n  address: localhost:10000\nprometheus:\n  url: http://localhost:9090\nqueries:\nalerts:\njournal:\ntables:\n"
	got, err := Parse([]byte(data), "inline.yml")
	if err != nil {
		t.Fatal(err)
	}
	want := minimalWant()
	want.History.Dir = "data/history" // Parse leaves it relative
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func TestRelativePaths(t *testing.T) {
	cfg, err := Load("testdata/relative-paths.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, got, want string }{
		{"deephaven.auth.key_file", cfg.Deephaven.Auth.KeyFile, "testdata/secrets/psk"},
		{"deephaven.tls.ca_file", cfg.Deephaven.TLS.CAFile, "testdata/ca.pem"},
		{"deephaven.tls.cert_file", cfg.Deephaven.TLS.CertFile, "/abs/cert.pem"},
		{"deephaven.tls.key_file", cfg.Deephaven.TLS.KeyFile, "testdata/key.pem"},
		{"prometheus.bearer_token_file", cfg.Prometheus.BearerTokenFile, "testdata/prom.token"},
		{"alerts.bearer_token_file", cfg.Alerts.BearerTokenFile, "webhook.token"},
		{"journal.dir", cfg.Journal.Dir, "testdata/journal"},
	} {
		if tc.got != filepath.FromSlash(tc.want) {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}

	// Parse has no directory to resolve against and leaves paths alone.
	data, err := os.ReadFile("testdata/relative-paths.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = Parse(data, "relative-paths.yml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Deephaven.Auth.KeyFile; got != "secrets/psk" {
		t.Errorf("Parse: key_file = %q, want secrets/psk", got)
	}
}

func TestExampleConfig(t *testing.T) {
	cfg, err := Load("../../bridge.yml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Deephaven.Address != "localhost:10000" || cfg.Prometheus.URL != "http://localhost:9090" {
		t.Errorf("address %q, url %q", cfg.Deephaven.Address, cfg.Prometheus.URL)
	}
	want := []QueryConfig{
		{Name: "go_memstats_alloc_bytes", Expr: "go_memstats_alloc_bytes", Interval: dur("1s"), Timeout: dur("10s"), JoinLabels: jl},
		{Name: "go_goroutines", Expr: "go_goroutines", Interval: dur("1s"), Timeout: dur("10s"), JoinLabels: jl},
		{Name: "up", Expr: "up", Interval: dur("1s"), Timeout: dur("10s"), JoinLabels: jl},
		{
			Name:       "prometheus_http_requests_rate",
			Expr:       "sum by (job, instance) (rate(prometheus_http_requests_total[1m]))",
			Interval:   dur("5s"),
			Timeout:    dur("10s"),
			JoinLabels: jl,
		},
	}
	if !reflect.DeepEqual(cfg.Queries, want) {
		t.Errorf("Queries = %+v, want %+v", cfg.Queries, want)
	}
	// Everything else is the defaults.
	cfg.Queries = nil
	def := minimalWant()
	def.History.Dir = "../../data/history" // next to bridge.yml
	if !reflect.DeepEqual(cfg, def) {
		t.Errorf("got %s\nwant %s", cfg, def)
	}
}

func TestTrailingEmptyDocument(t *testing.T) {
	data := "deephaven: {address: \"localhost:10000\"}\nprometheus: {url: \"http://localhost:9090\"}\n---\n"
	if _, err := Parse([]byte(data), "inline.yml"); err != nil {
		t.Errorf("Parse: %v", err)
	}
}

var jl = []string{"job", "instance"}

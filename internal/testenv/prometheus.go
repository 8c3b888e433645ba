package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const promStartTimeout = 60 * time.Second

// PrometheusOptions configures a Prometheus server.
type PrometheusOptions struct {
	// ConfigYAML is the final prometheus.yml. Empty means a configuration
	// that scrapes the server itself every second.
	ConfigYAML string
	// RulesYAML, if set, is written as rules.yml next to prometheus.yml; the
	// configuration must list it under rule_files.
	RulesYAML string
	// ExtraArgs are appended to the command line. They must not repeat the
	// flags StartPrometheus sets.
	ExtraArgs []string
	// Port is the port to listen on; 0 picks a free one. Choose the port with
	// FreePort beforehand when the configuration must contain it, e.g. to
	// scrape the server itself.
	Port int
}

// DefaultPrometheusConfig is used when PrometheusOptions.ConfigYAML is empty.
// It is a template for Render with the field Addr.
const DefaultPrometheusConfig = `global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['{{.Addr}}']
`

// StartPrometheus starts Prometheus on 127.0.0.1 with its configuration and
// TSDB in t's temporary directory, and waits until /-/ready answers 200. The
// lifecycle API is enabled, so tests can POST /-/reload after rewriting
// ConfigPath. The server is stopped when t ends.
func StartPrometheus(t testing.TB, opts PrometheusOptions) *Process {
	t.Helper()
	bin := findBinary(t, "PROMETHEUS_BIN", "prometheus")
	dir := t.TempDir()
	port := opts.Port
	if port == 0 {
		port = FreePort(t)
	}
	cfg := opts.ConfigYAML
	if cfg == "" {
		cfg = Render(t, DefaultPrometheusConfig, struct{ Addr string }{fmt.Sprintf("127.0.0.1:%d", port)})
	}
	writeFile(t, filepath.Join(dir, "prometheus.yml"), cfg)
	if opts.RulesYAML != "" {
		writeFile(t, filepath.Join(dir, "rules.yml"), opts.RulesYAML)
	}
	argv := append([]string{
		bin,
		"--config.file=" + filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
		"--web.enable-lifecycle",
	}, opts.ExtraArgs...)
	return startServer(t, "prometheus", port, argv, dir, filepath.Join(dir, "prometheus.yml"))
}

// AlertmanagerOptions configures an Alertmanager.
type AlertmanagerOptions struct {
	// ConfigYAML is the final alertmanager configuration. Empty means one
	// that routes everything to a receiver without integrations.
	ConfigYAML string
	// ExtraArgs are appended to the command line. They must not repeat the
	// flags StartAlertmanager sets, except --cluster.listen-address, which is
	// only set (to "", disabling clustering) when ExtraArgs lack it.
	ExtraArgs []string
	// Port is the port to listen on; 0 picks a free one.
	Port int
}

// DefaultAlertmanagerConfig is used when AlertmanagerOptions.ConfigYAML is
// empty.
const DefaultAlertmanagerConfig = `route:
  receiver: discard
receivers:
  - name: discard
`

// StartAlertmanager starts Alertmanager on 127.0.0.1 with its configuration
// and storage in t's temporary directory, and waits until /-/ready answers
// 200. The server is stopped when t ends.
func StartAlertmanager(t testing.TB, opts AlertmanagerOptions) *Process {
	t.Helper()
	bin := findBinary(t, "ALERTMANAGER_BIN", "prometheus-alertmanager", "alertmanager")
	dir := t.TempDir()
	port := opts.Port
	if port == 0 {
		port = FreePort(t)
	}
	cfg := opts.ConfigYAML
	if cfg == "" {
		cfg = DefaultAlertmanagerConfig
	}
	writeFile(t, filepath.Join(dir, "alertmanager.yml"), cfg)
	argv := []string{
		bin,
		"--config.file=" + filepath.Join(dir, "alertmanager.yml"),
		"--storage.path=" + filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
	}
	if !hasFlag(opts.ExtraArgs, "--cluster.listen-address") {
		// The default gossips on 0.0.0.0:9094, which parallel tests would
		// fight over; a single instance needs no cluster.
		argv = append(argv, "--cluster.listen-address=")
	}
	argv = append(argv, opts.ExtraArgs...)
	return startServer(t, "alertmanager", port, argv, dir, filepath.Join(dir, "alertmanager.yml"))
}

// StartNodeExporter starts Debian's prometheus-node-exporter (or
// NODE_EXPORTER_BIN) on 127.0.0.1 with the collectors real alerting rules
// use (cpu, load, memory, filesystem, uname, time) and waits until it
// serves /metrics. It is stopped when t ends.
func StartNodeExporter(t testing.TB) *Process {
	t.Helper()
	bin := findBinary(t, "NODE_EXPORTER_BIN", "prometheus-node-exporter", "node_exporter")
	dir := t.TempDir()
	port := FreePort(t)
	argv := []string{
		bin,
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
		"--collector.disable-defaults",
		"--collector.cpu", "--collector.loadavg", "--collector.meminfo",
		"--collector.filesystem", "--collector.uname", "--collector.time", "--collector.stat",
	}
	p := newProcess(t, "node-exporter", port, argv, dir)
	p.startTimeout = promStartTimeout
	p.ready = httpReady("/metrics")
	p.cleanup(t)
	if err := p.startAndWait(); err != nil {
		t.Fatal(err)
	}
	return p
}

// ConfigPath returns the configuration file a Prometheus or Alertmanager
// started here reads, for tests that rewrite it and reload.
// It is empty for other servers.
func (p *Process) ConfigPath() string { return p.configPath }

func startServer(t testing.TB, name string, port int, argv []string, dir, configPath string) *Process {
	t.Helper()
	p := newProcess(t, name, port, argv, dir)
	p.configPath = configPath
	p.startTimeout = promStartTimeout
	p.ready = httpReady("/-/ready")
	p.cleanup(t)
	if err := p.startAndWait(); err != nil {
		t.Fatal(err)
	}
	return p
}

// findBinary returns $env or the first of names found on $PATH.
func findBinary(t testing.TB, env string, names ...string) string {
	t.Helper()
	if bin := os.Getenv(env); bin != "" {
		if _, err := exec.LookPath(bin); err != nil {
			Missing(t, "%s=%s: %v", env, bin, err)
		}
		return bin
	}
	for _, n := range names {
		if bin, err := exec.LookPath(n); err == nil {
			return bin
		}
	}
	Missing(t, "%s not found on $PATH (set %s)", strings.Join(names, " or "), env)
	return ""
}

func hasFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return true
		}
	}
	return false
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// DemoAddrs are the addresses that replace the docker-compose service
// addresses in the demo configuration files.
type DemoAddrs struct {
	Prometheus   string // host:port, replaces localhost:9090
	Alertmanager string // host:port, replaces alertmanager:9093
	Bridge       string // host:port, replaces bridge:5000
}

// DemoPrometheusConfig returns prometheus/prometheus.yml with the compose
// service addresses replaced by a's. Start Alertmanager first and choose the
// Prometheus port with FreePort. Pass DemoRules as RulesYAML.
func DemoPrometheusConfig(t testing.TB, a DemoAddrs) string {
	t.Helper()
	if a.Prometheus == "" || a.Alertmanager == "" || a.Bridge == "" {
		t.Fatal("DemoPrometheusConfig needs all three addresses")
	}
	return Replace(t, RepoFile(t, "prometheus/prometheus.yml"),
		"localhost:9090", a.Prometheus,
		"alertmanager:9093", a.Alertmanager,
		"bridge:5000", a.Bridge,
	)
}

// DemoRules returns prometheus/rules.yml.
func DemoRules(t testing.TB) string {
	t.Helper()
	return RepoFile(t, "prometheus/rules.yml")
}

// DemoAlertmanagerConfig returns alertmanager/config.yml with the bridge's
// webhook URL replaced by webhookURL.
func DemoAlertmanagerConfig(t testing.TB, webhookURL string) string {
	t.Helper()
	return Replace(t, RepoFile(t, "alertmanager/config.yml"), "http://bridge:5000/alerts", webhookURL)
}

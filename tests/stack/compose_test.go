package stack

import (
	"bufio"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
)

// The parts of docker-compose.yml the checks below read. Only the short
// syntax of volumes and ports and the map syntax of environment and
// depends_on are supported: the test fails on the others, which is the
// moment to extend it.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string                       `yaml:"image"`
	Build       *composeBuild                `yaml:"build"`
	Command     []string                     `yaml:"command"`
	Environment map[string]string            `yaml:"environment"`
	Volumes     []string                     `yaml:"volumes"`
	Ports       []string                     `yaml:"ports"`
	User        string                       `yaml:"user"`
	Profiles    []string                     `yaml:"profiles"`
	DependsOn   map[string]composeDependency `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

type composeDependency struct {
	Condition string `yaml:"condition"`
}

// mounts returns the service's bind mounts as container path -> host path
// relative to the repository. Named volumes are left out (see named).
func (s composeService) mounts(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && !strings.Contains(parts[0], "/") && !strings.HasPrefix(parts[0], ".") {
			continue // a named volume
		}
		if len(parts) < 2 || !strings.HasPrefix(parts[0], "./") {
			t.Errorf("volume %q: want a ./host:/container bind mount", v)
			continue
		}
		m[parts[1]] = filepath.Clean(parts[0])
	}
	return m
}

// named returns the service's named volumes as container path -> name.
func (s composeService) named() map[string]string {
	m := map[string]string{}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && !strings.Contains(parts[0], "/") && !strings.HasPrefix(parts[0], ".") {
			m[parts[1]] = parts[0]
		}
	}
	return m
}

// containerPorts returns the container side of the service's port mappings.
func (s composeService) containerPorts() []string {
	var ps []string
	for _, p := range s.Ports {
		// "${BIND_ADDR:-127.0.0.1}:10000:10000": the container port is last.
		ps = append(ps, p[strings.LastIndex(p, ":")+1:])
	}
	return ps
}

// flag returns the value of --name=value in the service's command.
func (s composeService) flag(name string) (string, bool) {
	for _, a := range s.Command {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func readYAML(t *testing.T, rel string, v any) {
	t.Helper()
	if err := yaml.Unmarshal([]byte(testenv.RepoFile(t, rel)), v); err != nil {
		t.Fatalf("parsing %s: %v", rel, err)
	}
}

// TestComposeFileAgreesWithConfigs checks that docker-compose.yml is valid
// and that the service names, ports and paths it defines are the ones the
// configuration files it mounts refer to. Nothing here needs Docker: the
// mistakes it catches would otherwise only show as an empty table after
// `docker compose up`.
func TestComposeFileAgreesWithConfigs(t *testing.T) {
	root := testenv.RepoRoot(t)

	t.Run("docker-compose config", func(t *testing.T) {
		bin := lookPath(t, "docker-compose")
		cmd := exec.Command(bin, "-f", "docker-compose.yml", "config", "--quiet")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docker-compose config: %v\n%s", err, out)
		}
	})

	var compose composeFile
	readYAML(t, "docker-compose.yml", &compose)
	svc := compose.Services
	for _, name := range []string{"deephaven", "prometheus", "alertmanager", "bridge"} {
		if _, ok := svc[name]; !ok {
			t.Fatalf("docker-compose.yml has no service %q (services: %v)", name, keys(svc))
		}
	}

	// servicePort says whether host:port is a compose service and one of its
	// container ports. "localhost" in prometheus.yml is the prometheus
	// service itself.
	servicePort := func(self, hostport string) bool {
		host, port, err := net.SplitHostPort(hostport)
		if err != nil {
			t.Errorf("%q: %v", hostport, err)
			return false
		}
		if host == "localhost" {
			host = self
		}
		s, ok := svc[host]
		return ok && slices.Contains(s.containerPorts(), port)
	}

	t.Run("history shared", func(t *testing.T) {
		// The bridge writes the Parquet history where BRIDGE_HISTORY_DIR
		// says; Deephaven's app.d reads PROMETHEUS_BRIDGE_HISTORY_DIR: one
		// named volume must be behind both.
		bridgeDir := svc["bridge"].Environment["BRIDGE_HISTORY_DIR"]
		dhDir := svc["deephaven"].Environment["PROMETHEUS_BRIDGE_HISTORY_DIR"]
		bv, dv := svc["bridge"].named()[bridgeDir], svc["deephaven"].named()[dhDir]
		if bridgeDir == "" || dhDir == "" || bv == "" || bv != dv {
			t.Errorf("history: bridge writes %q (volume %q), Deephaven reads %q (volume %q)", bridgeDir, bv, dhDir, dv)
		}
		if _, ok := compose.Volumes[bv]; !ok {
			t.Errorf("volume %q is not declared", bv)
		}
	})

	t.Run("mounts", func(t *testing.T) {
		// Each service's configuration must be mounted from the repository
		// where its command line (or START_OPTS) looks for it.
		want := []struct {
			service, hostPath, containerFile string
		}{
			{"deephaven", "app.d", "/app.d"},
			{"prometheus", "prometheus", "/etc/prometheus/prometheus.yml"},
			{"alertmanager", "alertmanager/config.yml", "/etc/alertmanager/alertmanager.yml"},
			{"bridge", "bridge.yml", "/etc/bridge/bridge.yml"},
		}
		for _, w := range want {
			s := svc[w.service]
			m := s.mounts(t)
			for _, host := range m {
				if _, err := os.Stat(filepath.Join(root, host)); err != nil {
					t.Errorf("%s mounts %s, which does not exist in the repository: %v", w.service, host, err)
				}
			}
			// The mount that provides containerFile: the file itself or a
			// directory holding it.
			var host string
			for container, h := range m {
				if container == w.containerFile {
					host = h
				} else if rel, ok := strings.CutPrefix(w.containerFile, container+"/"); ok {
					host = filepath.Join(h, rel)
				}
			}
			if host == "" {
				t.Errorf("%s: nothing is mounted at %s (mounts %v)", w.service, w.containerFile, m)
			} else if filepath.Clean(host) != filepath.Clean(w.hostPath) && !strings.HasPrefix(host, w.hostPath+"/") {
				t.Errorf("%s: %s comes from %s, want %s", w.service, w.containerFile, host, w.hostPath)
			}
		}
		for service, flag := range map[string]string{
			"prometheus":   "/etc/prometheus/prometheus.yml",
			"alertmanager": "/etc/alertmanager/alertmanager.yml",
			"bridge":       "/etc/bridge/bridge.yml",
		} {
			if got, _ := svc[service].flag("config.file"); got != flag {
				t.Errorf("%s --config.file=%q, want %q (the mounted file)", service, got, flag)
			}
		}
		if opts := svc["deephaven"].Environment["START_OPTS"]; !strings.Contains(opts, "-Ddeephaven.application.dir=/app.d") {
			t.Errorf("deephaven START_OPTS %q does not set -Ddeephaven.application.dir=/app.d", opts)
		}
		// prometheus.yml's rule_files are relative to it, in the same mount.
		var prom struct {
			RuleFiles []string `yaml:"rule_files"`
		}
		readYAML(t, "prometheus/prometheus.yml", &prom)
		for _, f := range prom.RuleFiles {
			if _, err := os.Stat(filepath.Join(root, "prometheus", f)); err != nil {
				t.Errorf("prometheus.yml rule_files %s: %v", f, err)
			}
		}
	})

	t.Run("alertmanager webhook", func(t *testing.T) {
		var am struct {
			Receivers []struct {
				Name           string `yaml:"name"`
				WebhookConfigs []struct {
					URL string `yaml:"url"`
				} `yaml:"webhook_configs"`
			} `yaml:"receivers"`
		}
		readYAML(t, "alertmanager/config.yml", &am)
		n := 0
		for _, r := range am.Receivers {
			for _, w := range r.WebhookConfigs {
				n++
				u, err := url.Parse(w.URL)
				if err != nil {
					t.Errorf("receiver %s: %v", r.Name, err)
					continue
				}
				if u.Hostname() != "bridge" || !servicePort("alertmanager", u.Host) || u.Path != "/alerts" {
					t.Errorf("receiver %s sends to %s, want http://bridge:<a container port of bridge>/alerts (bridge ports %v)",
						r.Name, w.URL, svc["bridge"].containerPorts())
				}
			}
		}
		if n == 0 {
			t.Error("alertmanager/config.yml has no webhook receiver")
		}
		// The bridge must listen on the port the webhook uses: its default
		// (:5000) unless the command says otherwise.
		listen, ok := svc["bridge"].flag("web.listen-address")
		if !ok {
			listen = ":5000"
		}
		if _, port, _ := net.SplitHostPort(listen); !slices.Contains(svc["bridge"].containerPorts(), port) {
			t.Errorf("bridge listens on %s but publishes %v", listen, svc["bridge"].containerPorts())
		}
	})

	t.Run("prometheus targets", func(t *testing.T) {
		var prom struct {
			Alerting struct {
				Alertmanagers []struct {
					StaticConfigs []struct {
						Targets []string `yaml:"targets"`
					} `yaml:"static_configs"`
				} `yaml:"alertmanagers"`
			} `yaml:"alerting"`
			ScrapeConfigs []struct {
				JobName       string `yaml:"job_name"`
				StaticConfigs []struct {
					Targets []string `yaml:"targets"`
				} `yaml:"static_configs"`
			} `yaml:"scrape_configs"`
		}
		readYAML(t, "prometheus/prometheus.yml", &prom)
		var am []string
		for _, a := range prom.Alerting.Alertmanagers {
			for _, sc := range a.StaticConfigs {
				am = append(am, sc.Targets...)
			}
		}
		if !slices.Equal(am, []string{"alertmanager:9093"}) || !servicePort("prometheus", "alertmanager:9093") {
			t.Errorf("alerting targets %v, want [alertmanager:9093] with 9093 published by alertmanager (ports %v)",
				am, svc["alertmanager"].containerPorts())
		}
		scraped := map[string]bool{}
		for _, sc := range prom.ScrapeConfigs {
			for _, st := range sc.StaticConfigs {
				for _, target := range st.Targets {
					if !servicePort("prometheus", target) {
						t.Errorf("job %s scrapes %s, which is no compose service and port", sc.JobName, target)
					}
					host, _, _ := net.SplitHostPort(target)
					if host == "localhost" {
						host = "prometheus"
					}
					scraped[host] = true
				}
			}
		}
		// The BridgeDown rule and the demo alerts need these scraped.
		for _, s := range []string{"prometheus", "alertmanager", "bridge"} {
			if !scraped[s] {
				t.Errorf("prometheus.yml does not scrape %s", s)
			}
		}
	})

	t.Run("bridge environment", func(t *testing.T) {
		env := svc["bridge"].Environment
		if got := env["BRIDGE_DEEPHAVEN_ADDRESS"]; got != "deephaven:10000" || !servicePort("bridge", got) {
			t.Errorf("bridge BRIDGE_DEEPHAVEN_ADDRESS=%q, want deephaven:10000 (deephaven ports %v)", got, svc["deephaven"].containerPorts())
		}
		got := env["BRIDGE_PROMETHEUS_URL"]
		u, err := url.Parse(got)
		if got != "http://prometheus:9090" || err != nil || !servicePort("bridge", u.Host) {
			t.Errorf("bridge BRIDGE_PROMETHEUS_URL=%q, want http://prometheus:9090 (prometheus ports %v)", got, svc["prometheus"].containerPorts())
		}
	})

	t.Run("kafka mode", func(t *testing.T) {
		// The broker runs only with --profile kafka, advertises the name
		// the bridge and Deephaven dial, and one variable switches both to
		// Kafka mode.
		k, ok := svc["kafka"]
		if !ok {
			t.Fatalf("no kafka service")
		}
		if !slices.Equal(k.Profiles, []string{"kafka"}) {
			t.Errorf("kafka profiles %v, want [kafka]", k.Profiles)
		}
		if !strings.Contains(k.Environment["KAFKA_ADVERTISED_LISTENERS"], "PLAINTEXT://kafka:9092") ||
			!strings.Contains(k.Environment["KAFKA_LISTENERS"], "PLAINTEXT://:9092") {
			t.Errorf("kafka listeners %q advertised %q, want PLAINTEXT on :9092 as kafka:9092",
				k.Environment["KAFKA_LISTENERS"], k.Environment["KAFKA_ADVERTISED_LISTENERS"])
		}
		if k.Environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] != "false" {
			t.Errorf("KAFKA_AUTO_CREATE_TOPICS_ENABLE=%q, want false: a typo in a topic prefix must not create topics", k.Environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"])
		}
		bridge, dh := svc["bridge"].Environment, svc["deephaven"].Environment
		if bridge["BRIDGE_KAFKA_BROKERS"] != "kafka:9092" || dh["PROMETHEUS_BRIDGE_KAFKA_BROKERS"] != "kafka:9092" {
			t.Errorf("brokers: bridge %q, deephaven %q, want kafka:9092", bridge["BRIDGE_KAFKA_BROKERS"], dh["PROMETHEUS_BRIDGE_KAFKA_BROKERS"])
		}
		if kind := bridge["BRIDGE_SINK_KIND"]; kind != "${SINK_KIND:-direct}" || dh["PROMETHEUS_BRIDGE_SINK_KIND"] != kind {
			t.Errorf("sink kind: bridge %q, deephaven %q, want both ${SINK_KIND:-direct}", kind, dh["PROMETHEUS_BRIDGE_SINK_KIND"])
		}
		for _, name := range []string{"bridge", "deephaven"} {
			if _, ok := svc[name].DependsOn["kafka"]; ok {
				t.Errorf("%s depends on kafka, which is not started without --profile kafka", name)
			}
		}
	})

	t.Run("queries and rules", func(t *testing.T) {
		var bridge struct {
			Queries []struct {
				Name string `yaml:"name"`
			} `yaml:"queries"`
			Alerts struct {
				QueryLabel string `yaml:"query_label"`
			} `yaml:"alerts"`
		}
		readYAML(t, "bridge.yml", &bridge)
		label := bridge.Alerts.QueryLabel
		if label == "" {
			label = "prometheus_query"
		}
		var rules struct {
			Groups []struct {
				Rules []struct {
					Alert  string            `yaml:"alert"`
					Labels map[string]string `yaml:"labels"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		readYAML(t, "prometheus/rules.yml", &rules)
		queries := map[string]bool{}
		for _, q := range bridge.Queries {
			queries[q.Name] = true
		}
		labelled := map[string]bool{}
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				q, ok := r.Labels[label]
				if !ok {
					// Joined by rule discovery: its value expression.
					continue
				}
				if !queries[q] {
					t.Errorf("rule %s: %s=%q is not a query in bridge.yml", r.Alert, label, q)
				}
				labelled[q] = true
			}
		}
		for q := range queries {
			if !labelled[q] {
				t.Errorf("bridge.yml query %s has no alert rule with %s=%q in prometheus/rules.yml", q, label, q)
			}
		}
	})

	t.Run("bridge runs as non-root", func(t *testing.T) {
		b := svc["bridge"]
		if b.User != "" {
			if isRoot(b.User) {
				t.Errorf("bridge user %q is root", b.User)
			}
			return
		}
		if b.Build == nil {
			t.Fatal("bridge has neither user nor build")
		}
		dockerfile := b.Build.Dockerfile
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		user := finalStageUser(t, filepath.Join(root, b.Build.Context, dockerfile))
		if user == "" || isRoot(user) {
			t.Errorf("the last stage of %s runs as %q; want a non-root USER", dockerfile, user)
		}
	})

	t.Run("bridge waits for healthy dependencies", func(t *testing.T) {
		deps := svc["bridge"].DependsOn
		for _, d := range []string{"deephaven", "prometheus"} {
			if deps[d].Condition != "service_healthy" {
				t.Errorf("bridge depends_on %s condition %q, want service_healthy", d, deps[d].Condition)
			}
			if svc[d].Healthcheck == nil || len(svc[d].Healthcheck.Test) == 0 {
				t.Errorf("%s has no healthcheck, so service_healthy never holds", d)
			}
		}
	})
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func isRoot(user string) bool {
	name, _, _ := strings.Cut(user, ":")
	return name == "root" || name == "0"
}

// finalStageUser returns the last USER of the Dockerfile's last stage, or ""
// if that stage has none (it then runs as the base image's user).
func finalStageUser(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	user := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			user = ""
		case "USER":
			if len(fields) > 1 {
				user = fields[1]
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return user
}
